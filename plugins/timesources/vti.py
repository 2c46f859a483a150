"""Time source ``vti-ocr``: burned-in video time inserter (VTI) stamps read by OCR.

Registration only; the work is in the private siblings ``_vti_ocr`` (characters),
``_vti_decode`` (layouts and grammar), ``_vti_check`` (consistency and correction) and
``_vti_api`` (fields, stamps, strips), imported when a series is stamped.

No user boxes: the OSD band, the character pitch and the digit glyphs are learned from
the video (the field counter steps by one each field and so labels the digits; on
GPS-BoxSprite, BoxSprite 3 and GHS, which print no counter, the tenths-of-a-second digit
does, counted through its changes so that dropped and repeated frames do not upset it).
"""
from __future__ import annotations

import attrs

from occcore.plugin import TimeSourceSpec, hookimpl

VTI_CHOICES = ("auto", "iota-vti", "kiwi-osd", "gps-boxsprite", "boxsprite", "ghs")
ORDER_CHOICES = ("auto", "first-parity-first", "second-parity-first")


@attrs.frozen(kw_only=True)
class VtiOcrOptions:
    vti: str = attrs.field(default="auto", validator=attrs.validators.in_(VTI_CHOICES))
    """Which inserter printed the times; ``auto`` tries each and keeps the best-read one."""
    field_order: str = attrs.field(default="auto", validator=attrs.validators.in_(ORDER_CHOICES))
    """Which field of a frame is earlier; ``auto`` decides from the counters (both occur).
    ``first-parity-first`` means the field on the even frame rows is earlier."""
    instant: str = attrs.field(default="mid", validator=attrs.validators.in_(("start", "mid", "end")))
    """Which instant of each frame's exposure the returned times mean."""
    camera_delay_s: float | None = None
    """A measured camera delay (s), subtracted from every time; overrides ``camera``."""
    camera: str | None = None
    """Camera model, looked up in the table of cited delays. The table is empty (no
    published table could be cited with the instant it refers to), so naming a camera
    without ``camera_delay_s`` is refused with the reason: give the measured delay."""
    integration_mode: str = "none"
    """Integration mode of the camera (e.g. ``x4``), the second key of the delay table."""
    max_fix_chars: int = attrs.field(default=2, validator=attrs.validators.in_((0, 1, 2, 3)))
    """At most this many characters of a reading may be replaced by the expected value."""


VIDEO_FORMATS = ("avi", "aav", "mkv", "mov", "mp4", "osd-strips")
"""Formats that carry analogue video with a burned-in display; other series (FITS, SER,
ADV from GPS cameras) are declined at once, without reading a frame."""


def _stamp(series, *, options, context=None):
    from occcore.plugin import NotApplicable
    if series.format not in VIDEO_FORMATS and "osd_rows" not in series.meta:
        raise NotApplicable(f"{series.format or 'this'} series carry no burned-in video time")
    from ._vti_api import stamp

    return stamp(series, options=options, context=context)


@hookimpl
def occcore_time_sources():
    yield TimeSourceSpec(
        name="vti-ocr",
        summary="Times burned in by a video time inserter (IOTA-VTI, KIWI-OSD, GPS-BoxSprite, "
                "BoxSprite 3, GHS), read by "
                "self-calibrating OCR with counter/field-period checks",
        stamp=_stamp, options=VtiOcrOptions, read_fields=_read_fields)


def _read_fields(what, *, options):
    """``occcore ocr``: one record per field of a series, or of a list of strip images."""
    options = options or VtiOcrOptions()
    if isinstance(what, (list, tuple)):
        return ocr_strips(what, vti=options.vti, field_order=options.field_order)
    return ocr_series(what, vti=options.vti, field_order=options.field_order)


def ocr_strips(paths, *, vti: str = "auto", field_order: str = "auto") -> list[dict]:
    """OCR a folder of OSD strip images (one per field, ``NNN-even``/``NNN-odd``)."""
    from ._vti_api import ocr_strips as run

    return run(paths, vti=vti, field_order=field_order)


def ocr_series(series, *, vti: str = "auto", field_order: str = "auto") -> list[dict]:
    """One record per field of a frame series (interlaced frames or split fields)."""
    from ._vti_api import ocr_series as run

    return run(series, vti=vti, field_order=field_order)
