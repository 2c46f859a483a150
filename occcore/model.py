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
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import numpy as np
from astropy import units as u
from astropy.time import Time

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
    t = t if isinstance(t, Time) else Time(t, scale="utc")
    if not t.isscalar:
        raise ValueError("the reference epoch must be a single instant")
    return t.utc


def _time_equal(a: Time, b: Time) -> bool:
    return bool(np.all((a - b).sec == 0))


def iso_utc(t: Time) -> str | list[str]:
    """ISO 8601 UTC with microseconds (``2023-08-06T06:52:40.000000``)."""
    t = t.utc
    out = Time(t, precision=6).isot
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

        ``flags`` (per frame) are OR-ed into the series' flags; ``meta`` entries are added
        to ``meta``. The frames, the reader and the open file are shared, not copied.
        """
        if len(times) != self.n_frames:
            raise ValueError(f"{len(times)} time stamps for {self.n_frames} frames")
        merged = self.frame_flags if flags is None else \
            readonly(self.frame_flags | np.asarray(flags, np.uint32))
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


@attrs.frozen(kw_only=True)
class TimingResult:
    """Immersion (disappearance) and emersion (reappearance) with two-sided error bars in s."""

    model: str
    immersion: Time | None
    emersion: Time | None
    immersion_err_s: tuple[float, float] | None = None      # (minus, plus), 1 sigma
    emersion_err_s: tuple[float, float] | None = None
    immersion_err3_s: tuple[float, float] | None = None     # 3 sigma
    emersion_err3_s: tuple[float, float] | None = None
    chi2: float = float("nan")
    dof: int = 0
    baseline: float = float("nan")
    bottom: float = float("nan")
    snr: float = float("nan")
    false_positive_probability: float = float("nan")
    params: Mapping[str, Any] = attrs.field(factory=dict)
    provenance: tuple[StepProvenance, ...] = attrs.field(default=(), converter=tuple)


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
    for a positive chord, the sampled path for a negative one); ``err_km`` their errors.
    """

    name: str
    positive: bool
    site: Site | None = None
    timing: TimingResult | None = None
    f_km: np.ndarray | None = _optional_array_field(np.float64)
    g_km: np.ndarray | None = _optional_array_field(np.float64)
    err_km: np.ndarray | None = _optional_array_field(np.float64)
    meta: Mapping[str, Any] = attrs.field(factory=dict)


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


@attrs.frozen(kw_only=True)
class LimbFit:
    """An elliptical limb on the sky plane with two-sided 1-sigma error bars."""

    model: str
    center_f_km: float
    center_g_km: float
    equatorial_radius_km: float
    oblateness: float
    position_angle_deg: float
    errors: Mapping[str, tuple[float, float]] = attrs.field(factory=dict)
    chi2: float = float("nan")
    dof: int = 0
    residuals_km: Mapping[str, Any] = attrs.field(factory=dict)
    params: Mapping[str, Any] = attrs.field(factory=dict)
    provenance: tuple[StepProvenance, ...] = attrs.field(default=(), converter=tuple)


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
    and ``limb`` the contents of ``timing.json`` and ``limb.json``; ``profile`` the
    observer profile (sections observer, site, equipment, event, conditions); ``steps``
    the provenance of every step that produced them, fallbacks included.
    """

    directory: Any
    lightcurve: LightCurve | None = None
    apertures: Mapping[str, LightCurve] = attrs.field(factory=dict)
    timing: Mapping[str, Any] | None = None
    limb: Mapping[str, Any] | None = None
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
