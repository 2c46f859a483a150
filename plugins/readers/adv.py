"""ADV (Astro Digital Video, v1 and v2) and AAV (Astro Analogue Video, OccuRec) readers.

Both containers start with ``FSTF`` and a version byte; AAV is told apart from ADV by
its header tags (v1: ``FSTF-TYPE`` = ``AAV``; v2: an ``AAV-VERSION`` tag), so there are
two readers, ``adv`` and ``aav``, each claiming only its own files at content level.
Pixels: 8/12/16-bit raw, 12-bit packed, ADV v1 and AAV difference coding; codecs
UNCOMPRESSED, QuickLZ level 1 and LAGARITH16 (pure Python + numpy, numba when installed).
Frames of a file that declares ``SECTION-DATA-REDUNDANCY-CHECK=CRC32`` are checked against
their CRC slot when read (a mismatch is an error naming the frame).
Times are the container's mid-exposure UTC stamps (ADV) or PC/NTP-derived container time
(AAV, low trust). The 2016 draft ADV v2 and the defined-but-unwritten colour and ROI
layouts are recognised and refused by name.

This module only registers: parsing and decoding live in ``_adv_format``,
``_adv_codecs`` and ``_adv_reader``, imported when a file is opened.
"""
from __future__ import annotations

import struct

import attrs

from occcore.plugin import Match, NotApplicable, ReaderSpec, hookimpl

MAGIC = b"FSTF"


@attrs.frozen(kw_only=True)
class AdvOptions:
    numba: str = attrs.field(default="auto", validator=attrs.validators.in_(
        ("auto", "yes", "no")))
    """Decode QuickLZ/LAGARITH16 with numba: auto (when installed), yes, no (pure Python)."""


def _string(probe, pos: int, width: int):
    raw = probe.read(pos, width)
    if len(raw) < width:
        raise ValueError
    n = raw[0] if width == 1 else struct.unpack("<H", raw)[0]
    text = probe.read(pos + width, n)
    if len(text) < n:
        raise ValueError
    return text.decode("utf-8", "replace"), pos + width + n


def _system_tags(probe, version: int) -> dict:
    """The system metadata table, read through the probe (small reads, no decoding)."""
    head = probe.head
    if version == 1:
        offset = struct.unpack_from("<q", head, 17)[0]
        width = 1
    else:
        offset = struct.unpack_from("<q", head, 17)[0]
        width = 2
    if not 0 < offset < probe.size:
        raise ValueError
    count = struct.unpack("<I", probe.read(offset, 4))[0]
    if count > 10_000:
        raise ValueError
    tags, pos = {}, offset + 4
    for _ in range(count):
        key, pos = _string(probe, pos, width)
        value, pos = _string(probe, pos, width)
        tags[key] = value
    return tags


def classify(probe):
    """('adv' | 'aav' | 'draft', note), or None when the file is no FSTF container."""
    head = probe.head
    if probe.is_dir or len(head) < 40 or not head.startswith(MAGIC) or head[4] not in (1, 2):
        return None
    version = head[4]
    if version == 2 and head.find(b"\x05IMAGE", 33, 400) > 0:
        return "draft", "FSTF v2 with 1-byte section names: the unsupported 2016 draft ADV v2"
    try:
        tags = _system_tags(probe, version)
    except (ValueError, struct.error, OSError):
        return "damaged", f"FSTF v{version} magic, but the metadata table cannot be read"
    aav = (tags.get("FSTF-TYPE", "").upper() == "AAV") if version == 1 else \
        ("AAV-VERSION" in tags)
    size = f"{tags.get('WIDTH', '?')}x{tags.get('HEIGHT', '?')}"
    kind = "aav" if aav else "adv"
    recorder = tags.get('RECORDER-SOFTWARE') or tags.get('RECORDER') or 'unknown recorder'
    return kind, f"{kind.upper()} v{version} {size}, {recorder}"


def _identify_as(kind: str):
    def identify(probe):
        try:
            found = classify(probe)
        except Exception:       # identify never raises
            return None
        if found is None:
            return None
        what, note = found
        if what == kind:
            return Match.CONTENT, note
        if kind == "adv" and what in ("draft", "damaged"):
            # ADV owns the FSTF signature: open() then says what is wrong with the file
            return Match.SIGNATURE, note
        return None
    return identify


def _open(source, *, options, context):
    if len(source.paths) != 1 or source.kind == "dir":
        raise NotApplicable("an ADV/AAV source is one file")
    from occplugins.readers._adv_reader import open_adv
    options = options or AdvOptions()
    use_numba = {"auto": None, "yes": True, "no": False}[options.numba]
    return open_adv(source.path, use_numba=use_numba)


@hookimpl
def occcore_readers():
    yield ReaderSpec(name="adv", summary="ADV v1/v2 video (SharpCap, OccuRec, ADVS): raw, "
                     "12-bit packed, QuickLZ, LAGARITH16", patterns=("*.adv",),
                     identify=_identify_as("adv"), open=_open, options=AdvOptions)
    yield ReaderSpec(name="aav", summary="AAV v1/v2 analogue video (OccuRec), with "
                     "integration and OSD metadata", patterns=("*.aav",),
                     identify=_identify_as("aav"), open=_open, options=AdvOptions)
