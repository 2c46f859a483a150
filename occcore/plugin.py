"""The public plugin API of occcore.

A plugin author needs only this module and :mod:`occcore.model`; nothing else in
occcore is promised to stay the same.

A plugin is a module with ``@hookimpl`` functions named after the hooks in
:mod:`occcore.hookspecs`. Each registration hook yields records (``ReaderSpec``,
``AlignerSpec`` ...). occcore, not pluggy, decides which implementation runs, from
the user's configuration. Implementations are called as
``impl(input, *, options, context)`` and decline with :class:`NotApplicable`.

Example: the frame reader of the example plugin package ``examples/occcore-example``
(quoted by cog from its source; see ``docs/plugins.md``)::

    [[[cog
    import sys; sys.path.insert(0, "docs"); import quote
    quote.python("occcore_example/kiwi.py", "identify", "open_kiwi", indent=4, fence=False,
                 docstring=True)
    ]]]
    # examples/occcore-example/occcore_example/kiwi.py
    def identify(probe):
        if probe.head.startswith(MAGIC):
            return Match.CONTENT, "kiwi header"
        return None


    def open_kiwi(source, *, options, context):
        from astropy.time import Time          # heavy imports go inside the callable
        data = source.path.read_bytes()
        if len(data) < HEADER_BYTES or not data.startswith(MAGIC):
            raise CorruptSource(f"{source.path}: {len(data)} bytes, not a {HEADER_BYTES}-byte "
                                "kiwi header")
        n, h, w = data[8], data[9], data[10]
        body = data[HEADER_BYTES:]
        if n == 0 or len(body) < n * h * w:
            raise CorruptSource(f"{source.path}: {len(body)} pixel bytes for {n} frames of "
                                f"{w}x{h} (expected {n * h * w})")
        frames = np.frombuffer(body[:n * h * w], np.uint8).reshape(n, h, w)
        return FrameSeries.from_arrays(frames, times=Time("2025-05-05T05:05:05.25", scale="utc"),
                                       offsets_s=np.arange(n) * 0.04, exposure_s=0.04,
                                       time_instant="start", time_source="gps", format="kiwi",
                                       reader="kiwi", source_name=str(source.path))
    [[[end]]]

registered by::

    [[[cog
    quote.python("occcore_example/__init__.py", "occcore_readers", indent=4, fence=False,
                 docstring=True)
    ]]]
    # examples/occcore-example/occcore_example/__init__.py
    @hookimpl
    def occcore_readers():
        yield ReaderSpec(name="kiwi", summary="Kiwi OSD video (.kwv, a made-up format)",
                         patterns=("*.kwv",), identify=kiwi.identify, open=kiwi.open_kiwi)
    [[[end]]]

and, in the plugin's ``pyproject.toml``::

    [[[cog quote.entry_points(indent=4, fence=False) ]]]
    # examples/occcore-example/pyproject.toml
    [project.entry-points.occcore]
    example = "occcore_example"
    [[[end]]]
"""
from __future__ import annotations

import enum
import fnmatch
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pluggy

from occcore.errors import CorruptSource, InputError, LimitExceeded, Refused
from occcore import results
from occcore.model import FrameSeries
from occcore.output import atomic_path, write_text

__all__ = [
    "API_VERSION", "hookimpl", "Match", "NotApplicable", "CorruptSource", "InputError",
    "LimitExceeded", "Refused",
    "Probe", "Source", "StepContext", "Event",
    "ImplementationSpec", "ReaderSpec", "AlignerSpec", "PhotometrySpec",
    "TimingFitterSpec", "LimbFitterSpec", "ReporterSpec", "TimeSourceSpec",
    "LightCurveReaderSpec", "Kind", "KINDS", "kind_of", "SPEC_TYPES",
    "atomic_path", "write_text", "new_figure", "save_figure", "draw_timing", "draw_limb",
]

def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure on the Agg canvas (no display needed)."""
    from occcore.plotting import new_figure as make
    return make(width_in, height_in)


def save_figure(fig, path, fmt: str = "png"):
    """Save ``fig`` atomically; returns the path."""
    from occcore.plotting import save_figure as save
    return save(fig, path, fmt)


def draw_timing(fig, result, title: str) -> None:
    """occcore's timing figure (data, model, residuals, edge bands) for a TimingResult."""
    from occcore.plotting import draw_timing as draw
    draw(fig, result, title)


def draw_limb(ax, limb, title: str) -> None:
    """occcore's limb figure (chords, negative paths, limb and its band)."""
    from occcore.plotting import draw_limb as draw
    draw(ax, limb, title)


API_VERSION = 1
"""The plugin-API major version this occcore provides; records carry ``api``."""

hookimpl = pluggy.HookimplMarker("occcore")
"""Decorator for plugin functions implementing an ``occcore_*`` hook."""


class Match(enum.IntEnum):
    """How sure a reader is that it can read a source: extension < signature < content."""

    EXTENSION = 1   # the file name matches the reader's patterns
    SIGNATURE = 2   # the magic bytes match
    CONTENT = 3     # a header was parsed and is consistent


class NotApplicable(Exception):
    """Raised by an implementation to decline an input (recorded as ``declined``)."""


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_HEAD_BYTES = 64 * 1024


@attrs.frozen(kw_only=True)
class Probe:
    """A cheap look at a source for ``identify``: name, size and the first bytes.

    For a directory, ``members`` lists its files (sorted) and ``head`` is the head of
    the first one. ``read(offset, n)`` reads a little more of the (first) file.
    """

    path: Path
    name: str
    suffixes: tuple[str, ...]
    is_dir: bool
    size: int
    head: bytes = attrs.field(repr=False)
    members: tuple[Path, ...] = ()

    @classmethod
    def of(cls, path) -> Probe:
        path = Path(path)
        members: tuple[Path, ...] = ()
        first = path
        if path.is_dir():
            members = tuple(sorted((p for p in path.iterdir() if p.is_file()),
                                   key=lambda p: _natural_key(p.name)))
            first = members[0] if members else None
        head = b""
        if first is not None:
            with open(first, "rb") as fh:   # an I/O error here is an I/O error, not a format
                head = fh.read(_HEAD_BYTES)
        size = first.stat().st_size if first is not None else 0
        return cls(path=path, name=path.name, suffixes=tuple(s.lower() for s in path.suffixes),
                   is_dir=path.is_dir(), size=size, head=head, members=members)

    def matches(self, patterns: Sequence[str]) -> bool:
        name = self.name.lower()
        return any(fnmatch.fnmatch(name, p.lower()) for p in patterns)

    def read(self, offset: int, n: int) -> bytes:
        """Read at most 1 MiB at ``offset`` of the (first) file."""
        n = min(n, 1 << 20)
        if offset + n <= len(self.head):
            return self.head[offset:offset + n]
        target = self.members[0] if self.is_dir and self.members else self.path
        with open(target, "rb") as fh:
            fh.seek(offset)
            return fh.read(n)


def _natural_key(name: str):
    """Sort key that puts f9 before f10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


@attrs.frozen(kw_only=True)
class Source:
    """What a reader opens: one or more paths, the way the user named them."""

    paths: tuple[Path, ...] = attrs.field(converter=lambda ps: tuple(Path(p) for p in ps))
    kind: str = attrs.field(validator=attrs.validators.in_(("file", "dir", "glob", "list",
                                                            "archive")))
    display_name: str
    origin: Path | None = None      # the archive a member came from

    @property
    def path(self) -> Path:
        """The single path of a one-file (or one-directory) source; a source of several
        files raises, so a reader can never read the first file of a glob by mistake."""
        if len(self.paths) != 1:
            raise InputError(f"{self.display_name}: {len(self.paths)} files where one was "
                             "expected (this reader reads one file; use `paths`)")
        return self.paths[0]

    @property
    def input(self) -> str:
        """What this source is to a reader: ``"file"``, ``"dir"`` or ``"files"``."""
        if self.kind in ("file", "archive"):
            return "file"
        return "dir" if self.kind == "dir" else "files"


@attrs.frozen(kw_only=True)
class Event:
    """A progress or log event passed to every ``occcore_on_event`` observer.

    ``kind`` is one of ``step-started``, ``attempt-finished``, ``step-finished``,
    ``progress``, ``log``; ``done``/``total`` count work units for progress bars.
    """

    kind: str
    step: str = ""
    message: str = ""
    done: int = 0
    total: int = 0
    data: dict = attrs.field(factory=dict)


def _null_emit(event: Event) -> None:
    return None


@attrs.frozen(kw_only=True)
class StepContext:
    """What an implementation may use besides its input and options.

    New fields always get defaults, so plugins written today keep working.
    """

    step: str = ""
    logger: logging.Logger = attrs.field(factory=lambda: logging.getLogger("occcore"))
    rng: np.random.Generator = attrs.field(factory=lambda: np.random.default_rng(0))
    workdir: Path | None = None
    strict: bool = False
    config: dict = attrs.field(factory=dict)
    emit: Callable[[Event], None] = _null_emit
    open_source: Callable[[Path], FrameSeries] | None = None
    """Open another path with occcore's normal identification (archives use it for members)."""

    def progress(self, done: int, total: int, message: str = "") -> None:
        self.emit(Event(kind="progress", step=self.step, done=done, total=total,
                        message=message))


def _normalize_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"implementation name must be a string, not {type(name).__name__}")
    return name.strip().lower()


def _valid_name(instance, attribute, value):
    if not _NAME_RE.match(value) or "/" in value:
        raise ValueError(f"invalid implementation name {value!r}: use lower-case letters, "
                         "digits, '-', '_' and '.'")


def _valid_options(instance, attribute, value):
    if value is not None and not attrs.has(value):
        raise TypeError(f"options of {instance.name!r} must be an attrs class, not {value!r}")


def _callable(instance, attribute, value):
    if not callable(value):
        raise TypeError(f"{attribute.name} of {instance.name!r} must be callable")


@attrs.frozen(kw_only=True)
class ImplementationSpec:
    """Fields shared by every registration record."""

    name: str = attrs.field(converter=_normalize_name, validator=_valid_name)
    summary: str
    options: type | None = attrs.field(default=None, validator=_valid_options)
    requires: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    api: int = API_VERSION

    kind = "implementation"


@attrs.frozen(kw_only=True)
class Kind:
    """One kind of plugin, the single place every other table is derived from: the
    registry (which hook yields which record), the configuration schema (which section
    holds its chain and options), ``occcore plugins``, the runtime result checks and the
    conformance contracts.

    ``runs`` is ``"chain"`` (the first accepted implementation wins, in the order of
    ``[section] chain``) or ``"all"`` (every implementation in the chain runs: reporters).
    ``check(result, ...)`` returns None for a good result or the reason it is not; the
    step's gate and the contract tests both call it.
    """

    name: str
    record: type
    hook: str
    section: str
    default_chain: tuple[str, ...] = attrs.field(converter=tuple)
    result: str
    check: Callable[..., str | None]
    folder: str
    step: str
    output: str = ""
    runs: str = attrs.field(default="chain", validator=attrs.validators.in_(("chain", "all")))
    summary: str = ""


KINDS: list[Kind] = []
"""Every kind, in pipeline order (filled by :func:`kind` as the records are defined)."""


def kind(**fields):
    """Class decorator: declare the decorated record type as a kind (see :class:`Kind`)."""
    def register(record: type) -> type:
        entry = Kind(record=record, **fields)
        record.kind = entry.name
        KINDS.append(entry)
        return record
    return register


def kind_of(name: str) -> Kind:
    """The :class:`Kind` called ``name`` (``"reader"``, ``"timing-fitter"`` ...)."""
    for entry in KINDS:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown kind {name!r}; kinds: {', '.join(k.name for k in KINDS)}")


_INPUTS = ("file", "dir", "files")


def _valid_inputs(instance, attribute, value):
    unknown = [v for v in value if v not in _INPUTS]
    if unknown or not value:
        raise ValueError(f"inputs of {instance.name!r} must be among {_INPUTS}, not {value!r}")


@attrs.frozen(kw_only=True)
class IdentifiedSpec(ImplementationSpec):
    """Fields of the records whose input is identified by its content (readers of
    frames and of light curves)."""

    identify: Callable[[Probe], Any] | None = None
    patterns: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    auto_identify: bool = True
    priority: int = 0
    inputs: tuple[str, ...] = attrs.field(default=("file",), converter=tuple,
                                          validator=_valid_inputs)


@kind(name="reader", hook="occcore_readers", section="read", default_chain=("auto",),
      result="FrameSeries", check=results.check_series, folder="plugins/readers",
      step="occcore.api", summary="frames in: FITS, SER, archives, video")
@attrs.frozen(kw_only=True)
class ReaderSpec(IdentifiedSpec):
    """A reader: ``open(source, *, options, context) -> FrameSeries``.

    ``identify(probe)`` returns a :class:`Match`, a ``(Match, note)`` pair, or None.
    ``patterns`` are lower-case fnmatch patterns (``"*.fits"``). A reader with
    ``auto_identify=False`` is used only when chosen by name (drift-scan).
    ``inputs`` says what it can be handed: ``"file"`` (one file), ``"dir"`` (a
    directory) and/or ``"files"`` (a glob or a list read as one series); it is never
    offered anything else.
    """

    open: Callable[..., FrameSeries] = attrs.field(validator=_callable)


@kind(name="lightcurve-reader", hook="occcore_lightcurve_readers", section="lightcurve",
      default_chain=("auto",), result="LightCurve", check=results.check_lightcurve,
      folder="plugins/lightcurves", step="occcore.steps.timing",
      summary="light-curve files in: occcore ECSV, PyMovie/PyOTE, Tangra, Limovie, SORA")
@attrs.frozen(kw_only=True)
class LightCurveReaderSpec(IdentifiedSpec):
    """A light-curve reader: ``read(source, *, options, context) -> LightCurve``
    (``source.path`` is the file).

    Identified like frame readers: ``identify(probe)`` (extension < signature < content)
    and ``patterns``; ``auto_identify=False`` when it must be chosen by name.
    """

    read: Callable[..., Any] = attrs.field(validator=_callable)


@kind(name="time-source", hook="occcore_time_sources", section="time",
      default_chain=("vti-ocr", "container"), result="TimeStamps",
      check=results.check_time_stamps, folder="plugins/timesources", step="occcore.steps.reduce",
      summary="the time of every frame: burned-in VTI timestamps, the container's clock")
@attrs.frozen(kw_only=True)
class TimeSourceSpec(ImplementationSpec):
    """A time source: ``stamp(series, *, options, context) -> TimeStamps``.

    Gives every frame of a series its time (burned-in VTI timestamps read by OCR, GPS
    tags, or the container's own clock as the last, low-trust link of the chain).
    Declines (``NotApplicable``) a series it has nothing for.
    """

    stamp: Callable[..., Any] = attrs.field(validator=_callable)
    read_fields: Callable[..., Any] | None = None
    """Optional, for ``occcore ocr``: ``read_fields(what, *, options)`` with ``what`` a
    FrameSeries or a list of image files (one video field each) returns one JSON-able
    record per field (``file`` or ``frame``/``field``, ``time_utc``, ``field_number``,
    ``flagged``, ``corrected``)."""


@kind(name="aligner", hook="occcore_aligners", section="align",
      default_chain=("tracker", "astroalign", "roi", "coords"), result="Track",
      check=results.check_track, folder="plugins/aligners", step="occcore.steps.reduce",
      output="lightcurve.ecsv", summary="where every star is in every frame")
@attrs.frozen(kw_only=True)
class AlignerSpec(ImplementationSpec):
    """An aligner: ``align(request, *, options, context) -> Track``."""

    align: Callable[..., Any] = attrs.field(validator=_callable)


@kind(name="photometry", hook="occcore_photometry", section="photometry",
      default_chain=("sep", "photutils"), result="Photometry", check=results.check_photometry,
      folder="plugins/photometry", step="occcore.steps.reduce", output="lightcurve.ecsv",
      summary="aperture photometry of every star in every frame")
@attrs.frozen(kw_only=True)
class PhotometrySpec(ImplementationSpec):
    """Photometry: ``measure(request, *, options, context) -> Photometry``."""

    measure: Callable[..., Any] = attrs.field(validator=_callable)


@kind(name="timing-fitter", hook="occcore_timing_fitters", section="timing",
      default_chain=("diffraction", "square"), result="TimingResult",
      check=results.check_timing_result, folder="plugins/fitters",
      step="occcore.steps.timing", output="timing.json",
      summary="immersion and emersion of a light curve (occcore fit)")
@attrs.frozen(kw_only=True)
class TimingFitterSpec(ImplementationSpec):
    """A timing fitter: ``fit(lightcurve, *, options, context) -> TimingResult``."""

    fit: Callable[..., Any] = attrs.field(validator=_callable)


@kind(name="limb-fitter", hook="occcore_limb_fitters", section="limb",
      default_chain=("ellipse", "circle"), result="LimbFit", check=results.check_limb_fit,
      folder="plugins/fitters", step="occcore.steps.limb", output="limb.json",
      summary="the limb of the occulting body from chords (occcore limb)")
@attrs.frozen(kw_only=True)
class LimbFitterSpec(ImplementationSpec):
    """A limb fitter: ``fit(chords, *, options, context) -> LimbFit``."""

    fit: Callable[..., Any] = attrs.field(validator=_callable)


@kind(name="reporter", hook="occcore_reporters", section="report", default_chain=(),
      result="list of paths", check=results.check_written, folder="plugins/reporters",
      step="occcore.steps.report", runs="all",
      summary="reports the community reads: SORA, IOTA-ES, NA Excel, CSV, VizieR, plots")
@attrs.frozen(kw_only=True)
class ReporterSpec(ImplementationSpec):
    """A reporter: ``write(run, destination, *, options, context) -> list[Path]``."""

    write: Callable[..., Any] = attrs.field(validator=_callable)


SPEC_TYPES: dict[str, type[ImplementationSpec]] = {k.name: k.record for k in KINDS}
"""Kind name -> record type, in pipeline order (derived from :data:`KINDS`)."""
