"""The occcore data model (public API for plugin authors).

Every class is a frozen attrs class. Arrays are stored as read-only numpy views and
compared with :func:`numpy.array_equal`. Plain floats carry their unit in their name
(``exposure_s``, ``radius_px``, ``velocity_kms``).

Time is never a float JD: a series of instants is one UTC reference epoch (an
astropy :class:`~astropy.time.Time`) plus float64 offsets in seconds
(:class:`FrameTimes`), together with which instant of the exposure they mean, where
they came from and how uncertain they are.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

if TYPE_CHECKING:
    from astropy.time import Time

# astropy is imported inside the functions that need it: registering plugins (which
# imports this module) must not pay for it.

TIME_INSTANTS = ("start", "mid", "end")
TIME_SOURCES = ("gps", "ntp", "pc-clock", "header", "ocr", "index", "unknown")


class FrameFlag(enum.IntFlag):
    """Per-frame quality bits. Flagged frames are kept, never silently dropped."""

    NONE = 0
    BAD_TIME = 1            # no usable time stamp (e.g. a year-0001 date on lost GPS lock)
    DUPLICATE_TIME = 2      # same stamp as the previous frame
    NON_MONOTONIC = 4       # stamp earlier than the previous frame
    INDEX_TIME = 8          # time derived from index and cadence, not measured
    ALIGN_UNCERTAIN = 16    # the aligner could not pin this frame down
    SATURATED = 32
    EDGE = 64               # an aperture touches the frame edge
    TIME_CORRECTED = 128    # a time source corrected this frame's stamp (e.g. an OCR misread)
    DROPPED_BEFORE = 256    # one or more frames are missing just before this one
    CADENCE_CHANGE = 512    # the step to this frame differs from the series' cadence


TIME_FLAGS = (FrameFlag.BAD_TIME | FrameFlag.DUPLICATE_TIME | FrameFlag.NON_MONOTONIC |
              FrameFlag.INDEX_TIME | FrameFlag.TIME_CORRECTED | FrameFlag.DROPPED_BEFORE |
              FrameFlag.CADENCE_CHANGE)
"""The flag bits that describe time stamps (replaced when a time source restamps)."""


def readonly(array, dtype=None) -> np.ndarray:
    """A read-only view of ``array`` (a copy only when a dtype conversion needs one)."""
    view = np.asarray(array, dtype=dtype).view()
    view.flags.writeable = False
    return view


def _array_field(dtype=None, default=attrs.NOTHING):
    converter = (lambda a: readonly(a, dtype)) if dtype is not None else readonly
    return attrs.field(default=default, converter=converter, eq=attrs.cmp_using(eq=np.array_equal))


def _optional_array_field(dtype=None):
    def convert(a):
        return None if a is None else readonly(a, dtype)

    def equal(a, b):
        if a is None or b is None:
            return a is b
        return np.array_equal(a, b)

    return attrs.field(default=None, converter=convert, eq=attrs.cmp_using(eq=equal))


def _utc_scalar(t) -> Time:
    from astropy.time import Time
    t = t if isinstance(t, Time) else Time(t, scale="utc")
    if not t.isscalar:
        raise ValueError("the reference epoch must be a single instant")
    return t.utc


def _time_equal(a: Time, b: Time) -> bool:
    return bool(np.all((a - b).sec == 0))


def iso_utc(t: Time, digits: int = 6) -> str | list[str]:
    """ISO 8601 UTC with microseconds (``2023-08-06T06:52:40.000000``), or ``digits``."""
    from astropy.time import Time
    t = t.utc
    out = Time(t, precision=digits).isot
    return out.tolist() if isinstance(out, np.ndarray) else out


@attrs.frozen(kw_only=True)
class FrameTimes:
    """Time stamps of a series: ``epoch`` (UTC) + ``offsets_s`` (float64 seconds).

    ``instant`` says what a stamp means (start, mid or end of the exposure),
    ``source`` where it came from (gps, ntp, pc-clock, header, ocr, index, unknown),
    ``uncertainty_s`` how good it is (None when nobody knows).
    """

    epoch: Time = attrs.field(converter=_utc_scalar, eq=attrs.cmp_using(eq=_time_equal))
    offsets_s: np.ndarray = _array_field(np.float64)
    instant: str = attrs.field(validator=attrs.validators.in_(TIME_INSTANTS))
    source: str = attrs.field(default="unknown", validator=attrs.validators.in_(TIME_SOURCES))
    uncertainty_s: float | None = None
    note: str = ""

    @offsets_s.validator
    def _check_offsets(self, attribute, value):
        if value.ndim != 1:
            raise ValueError("offsets_s must be one-dimensional")
        if not np.all(np.isfinite(value)):
            raise ValueError("offsets_s must be finite; flag frames without a time instead")

    @classmethod
    def from_time(cls, times: Time, *, instant: str, source: str = "unknown",
                  uncertainty_s: float | None = None, note: str = "") -> FrameTimes:
        """Build from an astropy Time array (any scale); the first instant becomes the epoch."""
        from astropy.time import Time
        times = Time(times).utc
        times = times.reshape(-1)
        epoch = times[0]
        offsets = (times - epoch).to_value("s")
        return cls(epoch=epoch, offsets_s=offsets, instant=instant, source=source,
                   uncertainty_s=uncertainty_s, note=note)

    def __len__(self) -> int:
        return len(self.offsets_s)

    def utc(self, index=None) -> Time:
        """The stamps (or the one at ``index``) as an astropy Time in UTC."""
        from astropy import units as u
        offsets = self.offsets_s if index is None else self.offsets_s[index]
        # TimeDelta addition keeps the two-double precision of astropy Time.
        return (self.epoch + offsets * u.s).utc

    def mid_exposure_offsets_s(self, exposure_s: float | None) -> np.ndarray:
        """Offsets of the middle of each exposure, whatever the stamps mean."""
        if self.instant == "mid":
            return self.offsets_s
        if exposure_s is None:
            raise ValueError(f"stamps mean the {self.instant} of exposure and no exposure is known")
        shift = 0.5 * exposure_s if self.instant == "start" else -0.5 * exposure_s
        return self.offsets_s + shift

    def as_instant(self, instant: str, exposure_s: float | None) -> FrameTimes:
        """The same stamps converted to mean ``instant`` (start, mid or end of exposure)."""
        position = {"start": 0.0, "mid": 0.5, "end": 1.0}
        if instant == self.instant:
            return self
        if exposure_s is None:
            raise ValueError(f"cannot convert {self.instant}-exposure stamps to {instant} "
                             "without an exposure time")
        shift = (position[instant] - position[self.instant]) * exposure_s
        return attrs.evolve(self, offsets_s=self.offsets_s + shift, instant=instant)


@attrs.frozen(kw_only=True, eq=False)
class FrameSeries:
    """A lazy, indexable series of 2-D frames.

    ``len(series)``, ``series[i]`` (one read-only 2-D array), ``series[a:b]`` and
    ``series.batch(a, b)`` (one read-only ``(n, height, width)`` array), iteration,
    ``iter_batches(size)``, ``close()`` and use as a context manager.

    A reader supplies ``read_batch(start, stop)``, which returns frames
    ``start .. stop-1`` as one array; nothing is read before it is asked for.
    """

    n_frames: int
    height: int
    width: int
    dtype: np.dtype = attrs.field(converter=np.dtype)
    bit_depth: int
    times: FrameTimes
    exposure_s: float | None
    read_batch: Callable[[int, int], np.ndarray] = attrs.field(repr=False)
    format: str = ""
    reader: str = ""
    source_name: str = ""
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    frame_meta: Mapping[str, np.ndarray] = attrs.field(factory=dict, repr=False)
    flags: np.ndarray = _optional_array_field(np.uint32)
    gain_e_per_adu: float | None = None
    """Detector gain when the file says it (FITS EGAIN, ADV tags); None when unknown."""
    on_close: Callable[[], None] | None = attrs.field(default=None, repr=False)
    _state: dict = attrs.field(factory=dict, repr=False)

    def __attrs_post_init__(self):
        if self.n_frames < 1:
            raise ValueError("a frame series holds at least one frame")
        if len(self.times) != self.n_frames:
            raise ValueError(f"{len(self.times)} time stamps for {self.n_frames} frames")
        if self.flags is not None and self.flags.shape != (self.n_frames,):
            raise ValueError("flags must hold one value per frame")

    @classmethod
    def from_arrays(cls, frames, *, times, exposure_s: float | None, time_instant: str,
                    offsets_s=None, time_source: str = "unknown",
                    time_uncertainty_s: float | None = None, bit_depth: int | None = None,
                    format: str = "arrays", reader: str = "", source_name: str = "<arrays>",
                    meta: Mapping | None = None, frame_meta: Mapping | None = None,
                    flags=None) -> FrameSeries:
        """Build a series from a ``(n, height, width)`` array in one call.

        ``times`` is an astropy Time array (one per frame), or a single epoch with
        ``offsets_s`` giving float64 seconds after it.
        """
        data = readonly(frames)
        if data.ndim == 2:
            data = data[np.newaxis]
        if data.ndim != 3:
            raise ValueError(f"frames must be (n, height, width); got shape {data.shape}")
        if offsets_s is not None:
            frame_times = FrameTimes(epoch=times, offsets_s=offsets_s, instant=time_instant,
                                     source=time_source, uncertainty_s=time_uncertainty_s)
        else:
            frame_times = FrameTimes.from_time(times, instant=time_instant, source=time_source,
                                               uncertainty_s=time_uncertainty_s)
        if bit_depth is None:
            bit_depth = data.dtype.itemsize * 8
        return cls(n_frames=data.shape[0], height=data.shape[1], width=data.shape[2],
                   dtype=data.dtype, bit_depth=bit_depth, times=frame_times,
                   exposure_s=exposure_s, read_batch=lambda a, b: data[a:b], format=format,
                   reader=reader, source_name=source_name, meta=dict(meta or {}),
                   frame_meta={k: readonly(v) for k, v in (frame_meta or {}).items()},
                   flags=flags)

    # -- sequence protocol -------------------------------------------------------------
    def __len__(self) -> int:
        return self.n_frames

    def _index(self, i: int) -> int:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"frame index must be an integer, not {type(i).__name__}")
        j = int(i) + (self.n_frames if i < 0 else 0)
        if not 0 <= j < self.n_frames:
            raise IndexError(f"frame {i} out of range for {self.n_frames} frames "
                             f"of {self.source_name}")
        return j

    def __getitem__(self, item):
        if isinstance(item, slice):
            start, stop, step = item.indices(self.n_frames)
            if step != 1:
                return self.take(np.arange(start, stop, step))
            return self.batch(start, stop)
        j = self._index(item)
        return self.batch(j, j + 1)[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.iter_batches(64):
            yield from block

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start .. stop-1`` as one read-only ``(n, height, width)`` array."""
        self._check_open()
        start, stop = max(0, start), min(self.n_frames, stop)
        if stop <= start:
            return readonly(np.empty((0, self.height, self.width), self.dtype))
        return readonly(self.read_batch(start, stop))

    def take(self, indices) -> np.ndarray:
        """The frames at ``indices`` (any order) as one read-only array."""
        idx = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(idx), self.height, self.width), self.dtype)
        for k, j in enumerate(idx):
            out[k] = self.batch(self._index(j), self._index(j) + 1)[0]
        return readonly(out)

    def iter_batches(self, size: int = 256) -> Iterator[np.ndarray]:
        """Yield consecutive read-only blocks of at most ``size`` frames."""
        for start in range(0, self.n_frames, size):
            yield self.batch(start, min(start + size, self.n_frames))

    # -- times ---------------------------------------------------------------------------
    @property
    def frame_flags(self) -> np.ndarray:
        if self.flags is None:
            return readonly(np.zeros(self.n_frames, np.uint32))
        return self.flags

    def start_utc(self) -> Time:
        return self.times.utc(0)

    def end_utc(self) -> Time:
        return self.times.utc(self.n_frames - 1)

    def with_times(self, times: FrameTimes, flags=None, **meta) -> FrameSeries:
        """The same frames with other time stamps (a time source replaced them).

        ``flags`` (per frame) replace the series' time bits (:data:`TIME_FLAGS`); the other
        bits are kept; ``meta`` entries are added
        to ``meta``. The frames, the reader and the open file are shared, not copied.
        """
        if len(times) != self.n_frames:
            raise ValueError(f"{len(times)} time stamps for {self.n_frames} frames")
        # the time bits describe the stamps being replaced: the time source's flags take
        # their place; the other bits (alignment, saturation ...) stay
        kept = self.frame_flags & ~np.uint32(TIME_FLAGS)
        merged = readonly(kept if flags is None else kept | np.asarray(flags, np.uint32))
        return attrs.evolve(self, times=times, flags=merged, meta={**self.meta, **meta},
                            state=self._state)

    # -- lifetime ------------------------------------------------------------------------
    def _check_open(self):
        if self._state.get("closed"):
            raise ValueError(f"frame series of {self.source_name} is closed")

    def close(self) -> None:
        """Release files and memory maps; calling it twice is harmless."""
        if self._state.get("closed"):
            return
        self._state["closed"] = True
        if self.on_close is not None:
            self.on_close()

    @property
    def closed(self) -> bool:
        return bool(self._state.get("closed"))

    def __enter__(self) -> FrameSeries:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@attrs.frozen(kw_only=True)
class TimestampQuality:
    """What is wrong with a series of time stamps, with frame numbers (0-based positions
    in the series): gaps (dropped frames), duplicated stamps, negative steps
    (out of order) and cadence changes; ``flags`` marks each affected frame."""

    cadence_s: float | None
    dropped: tuple[tuple[int, int], ...] = ()       # (frame after the gap, frames missing)
    duplicated: tuple[int, ...] = ()                # frames with the previous frame's stamp
    negative_steps: tuple[int, ...] = ()            # frames stamped before the previous one
    cadence_changes: tuple[int, ...] = ()           # frames whose step is neither 1 nor k cadences
    flags: np.ndarray = _array_field(np.uint32, default=np.zeros(0, np.uint32))

    @property
    def clean(self) -> bool:
        return not (self.dropped or self.duplicated or self.negative_steps or
                    self.cadence_changes)

    def summary(self, limit: int = 8) -> str:
        """One line for a person: what was found, with the first frame numbers."""
        def first(items):
            items = list(items)
            text = ", ".join(str(i) for i in items[:limit])
            return text + (f" ... ({len(items)} in all)" if len(items) > limit else "")
        parts = []
        if self.dropped:
            parts.append(f"{sum(n for _, n in self.dropped)} dropped frame(s) before frame(s) "
                         f"{first(f for f, _ in self.dropped)}")
        if self.duplicated:
            parts.append(f"duplicated stamps at frame(s) {first(self.duplicated)}")
        if self.negative_steps:
            parts.append(f"time runs backwards at frame(s) {first(self.negative_steps)}")
        if self.cadence_changes:
            parts.append(f"cadence changes at frame(s) {first(self.cadence_changes)}")
        return "; ".join(parts) or "no timestamp problem found"

    def to_json(self) -> dict[str, Any]:
        return {"cadence_s": self.cadence_s, "dropped": [list(d) for d in self.dropped],
                "duplicated": list(self.duplicated), "negative_steps": list(self.negative_steps),
                "cadence_changes": list(self.cadence_changes), "summary": self.summary()}


def timestamp_quality(offsets_s, tolerance: float = 0.3) -> TimestampQuality:
    """Check stamps in file order (never re-sorted): the cadence is the median positive
    step; a step of k cadences (k >= 2, within ``tolerance`` of a cadence) means k - 1
    dropped frames, a zero step a duplicate, a negative step an out-of-order stamp, any
    other step a cadence change (GoPyOTE's +-30 % rule)."""
    t = np.asarray(offsets_s, np.float64)
    n = len(t)
    flags = np.zeros(n, np.uint32)
    if n < 3:
        return TimestampQuality(cadence_s=None, flags=flags)
    step = np.diff(t)
    positive = step[step > 0]
    if not len(positive):
        flags[1:] = np.uint32(FrameFlag.DUPLICATE_TIME)
        return TimestampQuality(cadence_s=None, duplicated=tuple(range(1, n)), flags=flags)
    cadence = float(np.median(positive))
    ratio = step / cadence
    k = np.rint(ratio)
    near = np.abs(ratio - k) <= tolerance
    frame = np.arange(1, n)
    duplicated = frame[step == 0]
    negative = frame[step < 0]
    dropped_mask = (step > 0) & near & (k >= 2)
    change_mask = (step > 0) & ~near
    dropped = tuple((int(f), int(m) - 1) for f, m in zip(frame[dropped_mask], k[dropped_mask],
                                                          strict=True))
    flags[duplicated] |= np.uint32(FrameFlag.DUPLICATE_TIME)
    flags[negative] |= np.uint32(FrameFlag.NON_MONOTONIC)
    flags[frame[dropped_mask]] |= np.uint32(FrameFlag.DROPPED_BEFORE)
    flags[frame[change_mask]] |= np.uint32(FrameFlag.CADENCE_CHANGE)
    return TimestampQuality(cadence_s=cadence, dropped=dropped,
                            duplicated=tuple(int(f) for f in duplicated),
                            negative_steps=tuple(int(f) for f in negative),
                            cadence_changes=tuple(int(f) for f in frame[change_mask]),
                            flags=flags)


@attrs.frozen(kw_only=True)
class TimeStamps:
    """What a time source returns for a frame series: one stamp per frame.

    ``times`` says the instant (start/mid/end of exposure), the source (``ocr``,
    ``gps`` ...) and the uncertainty; ``flags`` holds per-frame :class:`FrameFlag` bits
    (``TIME_CORRECTED``, ``BAD_TIME``, ``DROPPED_BEFORE``, ``DUPLICATE_TIME`` ...);
    ``report`` the statistics a person checks (fields read, corrected, flagged, the
    frame numbers of dropped and duplicated frames, the delay applied) as JSON-able
    values.
    """

    times: FrameTimes
    flags: np.ndarray = _array_field(np.uint32)
    report: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self):
        if self.flags.shape != (len(self.times),):
            raise ValueError(f"flags has shape {self.flags.shape}; expected ({len(self.times)},)")


@attrs.frozen(kw_only=True)
class Aperture:
    """A circular aperture and its sky annulus, in pixels on the reference frame (0-based)."""

    name: str
    role: str = attrs.field(validator=attrs.validators.in_(("target", "reference", "guide")))
    x: float
    y: float
    radius_px: float = attrs.field(validator=attrs.validators.gt(0))
    annulus_px: tuple[float, float] = attrs.field(converter=tuple)

    @annulus_px.validator
    def _check_annulus(self, attribute, value):
        inner, outer = value
        if not self.radius_px <= inner < outer:
            raise ValueError(f"annulus {value} must satisfy radius <= inner < outer "
                             f"(radius {self.radius_px})")


@attrs.frozen(kw_only=True)
class Track:
    """Per-frame star positions: ``x``/``y`` are ``(n_frames, n_stars)`` arrays in pixels."""

    names: tuple[str, ...] = attrs.field(converter=tuple)
    x: np.ndarray = _array_field(np.float64)
    y: np.ndarray = _array_field(np.float64)
    flags: np.ndarray = _array_field(np.uint32)
    reference_index: int = 0
    method: str = ""


@attrs.frozen(kw_only=True)
class AlignRequest:
    """What an aligner gets: the series, the stars (positions on the reference frame)
    and the reference frame's index.

    Stars whose role is ``target`` may vanish (they are being occulted): their positions
    must follow from the other stars, never from their own centroid.
    """

    series: FrameSeries
    apertures: tuple[Aperture, ...] = attrs.field(converter=tuple)
    reference_index: int = 0
    fwhm_px: float = 3.0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.apertures)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Reference-frame positions (x, y) of all stars, in aperture order."""
        return (np.array([a.x for a in self.apertures]), np.array([a.y for a in self.apertures]))


@attrs.frozen(kw_only=True)
class PhotometryRequest:
    """What a photometry method gets: the series, where each star is in every frame, the
    apertures (radius and sky annulus) and the detector's noise parameters."""

    series: FrameSeries
    track: Track
    apertures: tuple[Aperture, ...] = attrs.field(converter=tuple)
    gain_e_per_adu: float = 1.0
    read_noise_e: float = 0.0
    sky_method: str = attrs.field(default="median", validator=attrs.validators.in_(
        ("median", "clipped-mean")))


@attrs.frozen(kw_only=True)
class Photometry:
    """Aperture photometry: ``(n_frames, n_stars)`` arrays, one column per aperture name."""

    names: tuple[str, ...] = attrs.field(converter=tuple)
    flux: np.ndarray = _array_field(np.float64)
    flux_err: np.ndarray = _array_field(np.float64)
    sky: np.ndarray = _array_field(np.float64)
    flags: np.ndarray = _array_field(np.uint32)
    method: str = ""


@attrs.frozen(kw_only=True)
class LightCurve:
    """One signal against time (flux and its 1-sigma error, one value per reading)."""

    times: FrameTimes
    exposure_s: float | None
    flux: np.ndarray = _array_field(np.float64)
    flux_err: np.ndarray | None = _optional_array_field(np.float64)
    name: str = "flux"
    frame: np.ndarray | None = _optional_array_field(np.int64)
    flags: np.ndarray | None = _optional_array_field(np.uint32)
    dead_time_s: float = 0.0
    meta: Mapping[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self):
        n = len(self.times)
        for name in ("flux", "flux_err", "frame", "flags"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise ValueError(f"{name} has shape {value.shape}; expected ({n},)")


@attrs.frozen(kw_only=True)
class Attempt:
    """One try of one implementation in a fallback chain."""

    implementation: str
    provider: str
    status: str = attrs.field(validator=attrs.validators.in_(
        ("ok", "declined", "failed", "rejected", "unavailable")))
    reason: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class StepProvenance:
    """What ran for one step, with what options, and what was tried before it."""

    step: str
    implementation: str
    provider: str
    options: Mapping[str, Any] = attrs.field(factory=dict)
    attempts: tuple[Attempt, ...] = attrs.field(default=(), converter=tuple)

    def to_dict(self) -> dict:
        return {"step": self.step, "implementation": self.implementation,
                "provider": self.provider, "options": dict(self.options),
                "attempts": [a.to_dict() for a in self.attempts]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepProvenance:
        return cls(step=str(data.get("step", "")),
                   implementation=str(data.get("implementation", "")),
                   provider=str(data.get("provider", "")), options=data.get("options") or {},
                   attempts=[Attempt(**{k: a[k] for k in ("implementation", "provider",
                                                          "status", "reason", "seconds")
                                        if k in a}) for a in data.get("attempts") or []])


OPEN = math.inf
"""An interval side that does not close (e.g. a 3-sigma bound beyond the data)."""

SIGMA_LEVELS = (1, 2, 3)
OUTCOMES = ("positive", "negative", "undetermined")
TIMING_SCHEMA = "occcore.timing/2"
LIMB_SCHEMA = "occcore.limb/2"


def _interval(value):
    """None, or (minus_s, plus_s): non-negative floats, ``OPEN`` (inf) for a side that does
    not close. JSON spells an open side ``"open"``."""
    if value is None:
        return None
    try:
        minus, plus = value
    except (TypeError, ValueError):
        raise ValueError(f"an interval is (minus, plus), not {value!r}") from None
    out = []
    for side in (minus, plus):
        side = OPEN if side in ("open", None) else float(side)
        if math.isnan(side) or side < 0:
            raise ValueError(f"interval sides must be >= 0 or open, got {value!r}")
        out.append(side)
    return tuple(out)


def _interval_json(value):
    if value is None:
        return None
    return ["open" if math.isinf(v) else v for v in value]


def _optional_time(value):
    return None if value is None else _utc_scalar(value)


@attrs.frozen(kw_only=True)
class Edge:
    """One edge of an event (immersion or emersion): its UTC time and its intervals.

    ``err1_s``, ``err2_s`` and ``err3_s`` are the 1, 2 and 3-sigma intervals as
    ``(minus, plus)`` seconds before and after ``time``; a side may be :data:`OPEN`
    (``math.inf``: the interval does not close there), and a whole interval None when it
    was not computed. Only ``time`` is required.
    """

    time: Time = attrs.field(converter=_utc_scalar, eq=attrs.cmp_using(eq=_time_equal))
    err1_s: tuple[float, float] | None = attrs.field(default=None, converter=_interval)
    err2_s: tuple[float, float] | None = attrs.field(default=None, converter=_interval)
    err3_s: tuple[float, float] | None = attrs.field(default=None, converter=_interval)

    def err(self, sigma: int) -> tuple[float, float] | None:
        """The ``sigma``-level interval (1, 2 or 3), or None."""
        if sigma not in SIGMA_LEVELS:
            raise ValueError(f"sigma must be 1, 2 or 3, not {sigma!r}")
        return getattr(self, f"err{sigma}_s")

    def is_open(self, sigma: int) -> bool:
        interval = self.err(sigma)
        return interval is not None and any(math.isinf(v) for v in interval)

    def largest_err_s(self, sigma: int) -> float | None:
        """The larger side of the interval (``OPEN`` when a side is open), or None."""
        interval = self.err(sigma)
        return None if interval is None else max(interval)

    def err_text(self, sigma: int, decimals: int = 4) -> str:
        """``-0.0012 +0.0015`` with ``open`` for a side that does not close."""
        interval = self.err(sigma)
        if interval is None:
            return "(not computed)"
        minus, plus = (("open" if math.isinf(v) else f"{v:.{decimals}f}") for v in interval)
        return f"-{minus} +{plus}"

    def offset_s(self, epoch: Time) -> float:
        """Seconds from ``epoch`` to this edge."""
        return float((self.time - epoch).to_value("s"))

    def to_json(self) -> dict[str, Any]:
        return {"time_utc": iso_utc(self.time, digits=9), **{f"err{k}_s": _interval_json(self.err(k))
                                                  for k in SIGMA_LEVELS}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Edge:
        from astropy.time import Time
        return cls(time=Time(data["time_utc"], scale="utc"),
                   **{f"err{k}_s": data.get(f"err{k}_s") for k in SIGMA_LEVELS})


def _edge(value):
    if value is None or isinstance(value, Edge):
        return value
    return Edge(time=value)        # a bare Time: an edge without intervals


@attrs.frozen(kw_only=True)
class TimingReadings:
    """The readings as the fitter used them: exposure windows ``[start_s, end_s)`` in
    seconds after ``epoch``, the normalised flux and the fitted model (one per reading)."""

    epoch: Time = attrs.field(converter=_utc_scalar, eq=attrs.cmp_using(eq=_time_equal))
    start_s: np.ndarray = _array_field(np.float64)
    end_s: np.ndarray = _array_field(np.float64)
    flux: np.ndarray = _array_field(np.float64)
    model: np.ndarray | None = _optional_array_field(np.float64)

    def __attrs_post_init__(self):
        n = len(self.start_s)
        for name in ("end_s", "flux", "model"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise ValueError(f"readings {name} has shape {value.shape}; expected ({n},)")

    @property
    def mid_s(self) -> np.ndarray:
        return 0.5 * (self.start_s + self.end_s)

    def to_json(self) -> dict[str, Any]:
        return {"epoch_utc": iso_utc(self.epoch, digits=9), "start_s": self.start_s.tolist(),
                "end_s": self.end_s.tolist(), "flux": self.flux.tolist(),
                "model": None if self.model is None else self.model.tolist()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TimingReadings:
        from astropy.time import Time
        return cls(epoch=Time(data["epoch_utc"], scale="utc"), start_s=data["start_s"],
                   end_s=data["end_s"], flux=data["flux"], model=data.get("model"))


@attrs.frozen(kw_only=True)
class EventCandidate:
    """One candidate event of the detection search (seconds after the readings' epoch;
    None for an edge outside the data)."""

    immersion_s: float | None
    emersion_s: float | None
    readings: int
    log_likelihood: float
    relative_likelihood_flat: float
    drop: float


@attrs.frozen(kw_only=True)
class DetectionLimit:
    """What a negative could have seen: the shallowest drop (fraction of the baseline)
    lasting ``duration_s`` that would have been called significant at
    ``false_positive_probability``."""

    duration_s: float
    drop_fraction: float
    false_positive_probability: float
    method: str = ""


def _jsonable_mapping(value) -> dict:
    return dict(value or {})


@attrs.frozen(kw_only=True)
class TimingDiagnostics:
    """How a timing fit was made: everything a person checks besides the edges. Every
    field has a default; a fitter fills what it knows."""

    errors_method: str = ""
    significance_method: str = ""
    edges_fitted: str = ""              # both | immersion | emersion
    n_readings: int = 0
    exposure_s: float | None = None
    cycle_s: float | None = None
    time_instant_of_input: str = ""
    normalisation_degree: int | None = None
    integration_block: int | None = None       # readings per block of an integrating camera
    integration_offset: int | None = None
    sigma_baseline: float | None = None
    sigma_bottom: float | None = None
    noise_acf: tuple[float, ...] = attrs.field(default=(), converter=tuple)
    candidates: tuple[EventCandidate, ...] = attrs.field(default=(), converter=tuple)
    profile_intervals: Mapping[str, Any] = attrs.field(factory=dict, converter=_jsonable_mapping)
    monte_carlo_intervals: Mapping[str, Any] = attrs.field(factory=dict,
                                                           converter=_jsonable_mapping)
    physics: Mapping[str, Any] = attrs.field(factory=dict, converter=_jsonable_mapping)
    model_evaluations: int = 0
    fit_seconds: float = 0.0
    notes: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_jsonable_mapping)


def _float_or_none(value):
    return None if value is None else float(value)


def _json_float(value):
    return None if value is None or not math.isfinite(value) else value


@attrs.frozen(kw_only=True)
class TimingResult:
    """The timing of one light curve: an outcome and, for a positive, the immersion
    (disappearance) and emersion (reappearance) edges.

    ``outcome`` is ``positive`` (an event, with its significance), ``negative`` (analysed,
    no significant event; ``detection_limit`` says what could have been seen) or
    ``undetermined`` (could not be analysed; ``reason`` says why). A third-party fitter
    needs only ``model`` and the edges; everything else has a default.
    """

    model: str
    outcome: str = attrs.field(default="positive", validator=attrs.validators.in_(OUTCOMES))
    immersion: Edge | None = attrs.field(default=None, converter=_edge)
    emersion: Edge | None = attrs.field(default=None, converter=_edge)
    chi2: float = float("nan")
    dof: int = 0
    baseline: float = float("nan")
    bottom: float = float("nan")
    snr: float = float("nan")
    false_positive_probability: float = float("nan")
    reason: str = ""
    readings: TimingReadings | None = None
    detection_limit: DetectionLimit | None = None
    diagnostics: TimingDiagnostics = attrs.field(factory=TimingDiagnostics)
    source: str = ""
    column: str | None = None
    provenance: tuple[StepProvenance, ...] = attrs.field(default=(), converter=tuple)

    @property
    def edges(self) -> tuple[tuple[str, Edge], ...]:
        """``(("immersion", edge), ("emersion", edge))`` for the edges that are there."""
        return tuple((name, e) for name, e in (("immersion", self.immersion),
                                              ("emersion", self.emersion)) if e is not None)

    @property
    def duration_s(self) -> float | None:
        if self.immersion is None or self.emersion is None:
            return None
        return float((self.emersion.time - self.immersion.time).to_value("s"))

    def to_json(self) -> dict[str, Any]:
        """The content of ``timing.json`` (schema :data:`TIMING_SCHEMA`)."""
        d = self.diagnostics
        diagnostics = attrs.asdict(d, recurse=False)
        diagnostics["candidates"] = [attrs.asdict(c) for c in d.candidates]
        diagnostics["noise_acf"] = list(d.noise_acf)
        diagnostics["notes"] = list(d.notes)
        return {
            "schema": TIMING_SCHEMA, "outcome": self.outcome, "model": self.model,
            "reason": self.reason,
            "immersion": None if self.immersion is None else self.immersion.to_json(),
            "emersion": None if self.emersion is None else self.emersion.to_json(),
            "duration_s": self.duration_s,
            "chi2": _json_float(self.chi2), "dof": self.dof,
            "baseline": _json_float(self.baseline), "bottom": _json_float(self.bottom),
            "snr": _json_float(self.snr),
            "false_positive_probability": _json_float(self.false_positive_probability),
            "detection_limit": None if self.detection_limit is None else
            attrs.asdict(self.detection_limit),
            "source": self.source, "column": self.column,
            "diagnostics": diagnostics,
            "readings": None if self.readings is None else self.readings.to_json(),
            "provenance": [p.to_dict() for p in self.provenance],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TimingResult:
        """Read ``timing.json``; a file of another schema raises ValueError."""
        if data.get("schema") != TIMING_SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r} is not {TIMING_SCHEMA!r}")
        raw = dict(data.get("diagnostics") or {})
        raw["candidates"] = [EventCandidate(**c) for c in raw.get("candidates") or []]
        known = {f.name for f in attrs.fields(TimingDiagnostics)}
        diagnostics = TimingDiagnostics(**{k: v for k, v in raw.items() if k in known})
        limit = data.get("detection_limit")

        def number(key):
            value = data.get(key)
            return float("nan") if value is None else float(value)

        return cls(
            model=data["model"], outcome=data["outcome"], reason=data.get("reason", ""),
            immersion=None if data.get("immersion") is None else Edge.from_json(data["immersion"]),
            emersion=None if data.get("emersion") is None else Edge.from_json(data["emersion"]),
            chi2=number("chi2"), dof=int(data.get("dof") or 0), baseline=number("baseline"),
            bottom=number("bottom"), snr=number("snr"),
            false_positive_probability=number("false_positive_probability"),
            detection_limit=None if limit is None else DetectionLimit(**limit),
            readings=None if data.get("readings") is None else
            TimingReadings.from_json(data["readings"]),
            diagnostics=diagnostics, source=data.get("source", ""), column=data.get("column"),
            provenance=[StepProvenance.from_dict(p) for p in data.get("provenance") or []])


@attrs.frozen(kw_only=True)
class Site:
    """An observer's site on the WGS84 ellipsoid."""

    name: str
    latitude_deg: float = attrs.field(validator=[attrs.validators.ge(-90), attrs.validators.le(90)])
    longitude_deg: float
    height_m: float = 0.0


@attrs.frozen(kw_only=True)
class Chord:
    """One observer's result: a positive chord (immersion/emersion) or a negative one.

    ``f_km``/``g_km`` hold the sky-plane points once projected (immersion then emersion
    for a positive chord, the sampled path for a negative one); ``err_km`` their errors
    (the full sky-plane speed times the timing error, SORA's convention).
    ``times_utc`` are the instants observed (immersion and emersion of a positive chord;
    start and end of a negative one's observation), ``time_err_s`` the timing errors of a
    positive chord's two edges, ``vf_kms``/``vg_kms`` the shadow velocity at each point,
    ``clock_offset_s`` the correction applied to the observer's clock and
    ``time_shift_s`` a shift fitted to a chord with an unreliable clock.
    """

    name: str
    positive: bool
    site: Site | None = None
    timing: TimingResult | None = None
    f_km: np.ndarray | None = _optional_array_field(np.float64)
    g_km: np.ndarray | None = _optional_array_field(np.float64)
    err_km: np.ndarray | None = _optional_array_field(np.float64)
    times_utc: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    time_err_s: tuple[float, ...] = attrs.field(default=(), converter=tuple)
    vf_kms: np.ndarray | None = _optional_array_field(np.float64)
    vg_kms: np.ndarray | None = _optional_array_field(np.float64)
    clock_offset_s: float = 0.0
    time_shift_s: float = 0.0
    meta: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        def listed(a):
            return None if a is None else a.tolist()
        return {"name": self.name, "positive": self.positive,
                "site": None if self.site is None else attrs.asdict(self.site),
                "f_km": listed(self.f_km), "g_km": listed(self.g_km),
                "err_km": listed(self.err_km), "times_utc": list(self.times_utc),
                "time_err_s": list(self.time_err_s), "vf_kms": listed(self.vf_kms),
                "vg_kms": listed(self.vg_kms), "clock_offset_s": self.clock_offset_s,
                "time_shift_s": self.time_shift_s, "meta": dict(self.meta)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Chord:
        site = data.get("site")
        return cls(name=data["name"], positive=bool(data["positive"]),
                   site=None if site is None else Site(**site),
                   f_km=data.get("f_km"), g_km=data.get("g_km"), err_km=data.get("err_km"),
                   times_utc=data.get("times_utc") or (),
                   time_err_s=data.get("time_err_s") or (), vf_kms=data.get("vf_kms"),
                   vg_kms=data.get("vg_kms"), clock_offset_s=data.get("clock_offset_s", 0.0),
                   time_shift_s=data.get("time_shift_s", 0.0), meta=data.get("meta") or {})


LIMB_PARAMS = ("center_f_km", "center_g_km", "equatorial_radius_km", "oblateness",
               "position_angle_deg")
"""The parameters of a limb, in the order fitters, files and plots use them."""


def ellipse_radius_km(theta_rad, equatorial_radius_km, oblateness, position_angle_deg):
    """SORA's radial ellipse: the limb's distance from its centre at ``theta_rad`` =
    atan2(g - g0, f - f0), for a pole at ``position_angle_deg``. Broadcasts."""
    a = equatorial_radius_km
    b = a * (1 - oblateness)
    ang = theta_rad + np.radians(position_angle_deg)
    return a * b / np.sqrt((a * np.sin(ang)) ** 2 + (b * np.cos(ang)) ** 2)


def _error_pairs(value) -> dict:
    return {k: tuple(float(x) for x in v) for k, v in dict(value or {}).items()}


@attrs.frozen(kw_only=True)
class LimbFit:
    """An elliptical limb on the sky plane with two-sided 1-sigma error bars.

    ``errors`` and ``errors_3sigma`` map a parameter of :data:`LIMB_PARAMS` to its
    ``(minus, plus)`` interval (a parameter held fixed has none); ``fixed`` names the
    fixed ones. ``chords`` are the chords it was fitted to (after any time shift),
    ``negative_chords_crossed`` the negative chords the limb crosses (should be empty),
    ``solutions`` the alternatives a single chord allows, ``derived`` what follows from
    the limb (equivalent radius, astrometric offset, albedo), ``notes`` what a person
    should know. ``limb.json`` is :meth:`to_json`.
    """

    model: str
    center_f_km: float
    center_g_km: float
    equatorial_radius_km: float
    oblateness: float
    position_angle_deg: float
    errors: Mapping[str, tuple[float, float]] = attrs.field(factory=dict, converter=_error_pairs)
    errors_3sigma: Mapping[str, tuple[float, float]] = attrs.field(factory=dict,
                                                                   converter=_error_pairs)
    fixed: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    chi2: float = float("nan")
    dof: int = 0
    residuals_km: Mapping[str, Any] = attrs.field(factory=dict)
    negative_chords_crossed: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    solutions: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=tuple)
    chords: tuple[Chord, ...] = attrs.field(default=(), converter=tuple)
    derived: Mapping[str, Any] = attrs.field(factory=dict)
    event: Mapping[str, Any] = attrs.field(factory=dict)
    notes: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    time_shifts_s: Mapping[str, float] = attrs.field(factory=dict)
    params: Mapping[str, Any] = attrs.field(factory=dict)
    provenance: tuple[StepProvenance, ...] = attrs.field(default=(), converter=tuple)

    def value(self, name: str) -> float:
        return float(getattr(self, name))

    def to_json(self) -> dict[str, Any]:
        """The content of ``limb.json`` (schema :data:`LIMB_SCHEMA`)."""
        return {"schema": LIMB_SCHEMA, "model": self.model,
                **{p: getattr(self, p) for p in LIMB_PARAMS},
                "errors": {k: list(v) for k, v in self.errors.items()},
                "errors_3sigma": {k: list(v) for k, v in self.errors_3sigma.items()},
                "fixed": list(self.fixed), "chi2": _json_float(self.chi2), "dof": self.dof,
                "residuals_km": dict(self.residuals_km),
                "negative_chords_crossed": list(self.negative_chords_crossed),
                "solutions": [dict(x) for x in self.solutions],
                "chords": [c.to_json() for c in self.chords], "derived": dict(self.derived),
                "event": dict(self.event), "notes": list(self.notes),
                "time_shifts_s": dict(self.time_shifts_s), "params": dict(self.params),
                "provenance": [p.to_dict() for p in self.provenance]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LimbFit:
        """Read ``limb.json``; a file of another schema raises ValueError."""
        if data.get("schema") != LIMB_SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r} is not {LIMB_SCHEMA!r}")
        chi2 = data.get("chi2")
        return cls(model=data["model"], **{p: float(data[p]) for p in LIMB_PARAMS},
                   errors=data.get("errors") or {}, errors_3sigma=data.get("errors_3sigma") or {},
                   fixed=data.get("fixed") or (), chi2=float("nan") if chi2 is None else chi2,
                   dof=int(data.get("dof") or 0), residuals_km=data.get("residuals_km") or {},
                   negative_chords_crossed=data.get("negative_chords_crossed") or (),
                   solutions=data.get("solutions") or (),
                   chords=[Chord.from_json(c) for c in data.get("chords") or []],
                   derived=data.get("derived") or {}, event=data.get("event") or {},
                   notes=data.get("notes") or (), time_shifts_s=data.get("time_shifts_s") or {},
                   params=data.get("params") or {},
                   provenance=[StepProvenance.from_dict(p) for p in data.get("provenance") or []])


@attrs.frozen(kw_only=True)
class Provenance:
    """The provenance of a whole run: every step, in order."""

    steps: tuple[StepProvenance, ...] = attrs.field(default=(), converter=tuple)

    def to_dict(self) -> dict:
        return {"steps": [s.to_dict() for s in self.steps]}


@attrs.frozen(kw_only=True)
class ReportInput:
    """Everything a reporter may use: the outputs of one run, read once.

    ``lightcurve`` is the analysed signal (the one the timing fit used, else the
    normalised ratio); ``apertures`` the net flux of every aperture by name; ``timing``
    the timing result (``timing.json``) and ``limb`` the limb fit (``limb.json``); ``profile`` the
    observer profile (sections observer, site, equipment, event, conditions); ``steps``
    the provenance of every step that produced them, fallbacks included.
    """

    directory: Any
    lightcurve: LightCurve | None = None
    apertures: Mapping[str, LightCurve] = attrs.field(factory=dict)
    timing: TimingResult | None = None
    limb: LimbFit | None = None
    profile: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    steps: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=tuple)
    occcore_version: str = ""

    def section(self, name: str) -> Mapping[str, Any]:
        """One section of the observer profile (empty when absent)."""
        return self.profile.get(name, {})

    def produced_by(self) -> str:
        """'occcore X; read: ser; align: tracker; ...' with every fallback that was tried."""
        parts = [f"occcore {self.occcore_version}"]
        for step in self.steps:
            tried = [a for a in step.get("attempts", []) if a.get("status") != "ok"]
            text = f"{step.get('step')}: {step.get('implementation')}"
            if tried:
                text += " (after " + ", ".join(
                    f"{a.get('implementation')} {a.get('status')}" for a in tried) + ")"
            parts.append(text)
        return "; ".join(parts)
