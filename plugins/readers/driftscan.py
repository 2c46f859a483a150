"""Drift-scan images: one long CCD exposure with the drive off, timed by John Broughton's
method (trail ends = shutter open/close; the gap's edges where the trail profile
crosses 49 % between its local levels).

Used only when chosen by name (``--reader driftscan``): an ordinary FITS image looks
the same. Returns a one-frame series whose ``meta["driftscan"]`` holds the analysis
(trail, edge positions, levels, D/R times by both conversions, 1-sigma errors, notes).
``driftscan_lightcurve(path, options)`` returns the trail's light curve.

Options (``[read.options.driftscan]`` or ``--set read.options.driftscan.KEY=VALUE``):
``shutter_open_utc``/``shutter_close_utc`` (default: the header's ``DATE-OBS`` and
exposure, ``DATE-OBS`` taken to mean ``date_obs_instant``, the shutter opening unless
said otherwise), ``direction_deg`` (the star's motion on the chip from +x towards +y;
``"auto"`` measures it), ``target`` (x,y near the target trail), ``profile_rows``,
``dec_deg`` and ``plate_scale_arcsec`` (the sidereal conversion; a celestial WCS in the
header is used when present), ``level_fraction``, ``shutter_err_s``, ``saturation_adu``.
"""
from __future__ import annotations

import re

import attrs
import numpy as np

from occcore.model import FrameSeries
from occcore.plugin import LightCurveReaderSpec, InputError, ReaderSpec, hookimpl

_ISO = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?$")


def _iso_or_none(instance, attribute, value):
    if value is not None and not (isinstance(value, str) and _ISO.match(value.strip())):
        raise ValueError(f"{attribute.name} must be an ISO UTC time like "
                         f"2003-08-24T09:02:35.52, not {value!r}")


def _to_target(value):
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parts = value.replace(" ", "").split(",")
    else:
        parts = list(value)
    try:
        x, y = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"target must be x,y (two numbers), not {value!r}") from None
    return (x, y)


def _direction(value):
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"direction_deg must be a number of degrees or 'auto', "
                         f"not {value!r}") from None


def _positive_or_none(instance, attribute, value):
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


@attrs.frozen(kw_only=True)
class DriftScanOptions:
    shutter_open_utc: str | None = attrs.field(default=None, validator=_iso_or_none)
    shutter_close_utc: str | None = attrs.field(default=None, validator=_iso_or_none)
    date_obs_instant: str = attrs.field(default="start", validator=attrs.validators.in_(
        ("start", "mid", "end")))
    direction_deg: float | str = attrs.field(default=0.0, converter=_direction)
    refine_direction: bool = True
    target: tuple[float, float] | None = attrs.field(default=None, converter=_to_target)
    profile_rows: int = attrs.field(default=4, validator=[attrs.validators.instance_of(int),
                                                          attrs.validators.ge(1),
                                                          attrs.validators.le(15)])
    dec_deg: float | None = attrs.field(default=None, validator=attrs.validators.optional(
        [attrs.validators.gt(-90.0), attrs.validators.lt(90.0)]))
    plate_scale_arcsec: float | None = attrs.field(default=None, validator=_positive_or_none)
    use_wcs: bool = True
    level_fraction: float = attrs.field(default=0.49, validator=[attrs.validators.gt(0.0),
                                                                 attrs.validators.lt(1.0)])
    level_window_px: float = attrs.field(default=15.0, validator=attrs.validators.ge(3.0))
    shutter_err_s: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    saturation_adu: float | None = attrs.field(default=None, validator=_positive_or_none)


def _read_image(path):
    """(2-D float image, header, saturation level or None) of a FITS file."""
    from astropy.io import fits
    try:
        with fits.open(path) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.data.ndim >= 2), None)
            if hdu is None:
                raise InputError(f"{path}: no image in the file (expected a 2-D FITS image)")
            if hdu.data.ndim != 2 and not (hdu.data.ndim == 3 and hdu.data.shape[0] == 1):
                raise InputError(f"{path}: image has shape {hdu.data.shape}; a drift scan is "
                                 "one 2-D image")
            image = np.asarray(hdu.data, dtype=np.float64).reshape(hdu.data.shape[-2:])
            header = hdu.header.copy()
            bitpix = header.get("BITPIX")
    except InputError:
        raise
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise InputError(f"{path}: not a readable FITS image ({exc})") from None
    saturation = None
    for key in ("SATURATE", "DATAMAX"):
        value = header.get(key)
        if isinstance(value, (int, float)) and value > 0:
            saturation = float(value)
            break
    if saturation is None and bitpix in (8, 16):
        bzero = float(header.get("BZERO", 0) or 0)
        saturation = 255.0 if bitpix == 8 else (65535.0 if bzero == 32768 else 32767.0 + bzero)
    return image, header, saturation


def _shutter_times(path, header, options):
    """(open, close, exposure_s, note, source) from the options or the header."""
    from astropy import units as u
    from astropy.time import Time
    exposure = None
    for key in ("EXPTIME", "EXPOSURE", "XPOSURE"):
        value = header.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            exposure, exposure_key = float(value), key
            break
    notes = []
    try:
        opened = Time(options.shutter_open_utc.strip().rstrip("Z"), scale="utc") \
            if options.shutter_open_utc else None
        closed = Time(options.shutter_close_utc.strip().rstrip("Z"), scale="utc") \
            if options.shutter_close_utc else None
    except ValueError as exc:
        raise InputError(f"{path}: unreadable shutter time: {exc}") from None
    source = "unknown"
    if opened is None or closed is None:
        date_obs = header.get("DATE-OBS")
        if opened is None and closed is None:
            if not date_obs or exposure is None:
                raise InputError(f"{path}: no shutter times: give shutter_open_utc and "
                                 "shutter_close_utc, or a header with DATE-OBS and EXPTIME "
                                 f"(DATE-OBS={date_obs!r}, exposure={exposure!r})")
            try:
                stamp = Time(str(date_obs).strip().rstrip("Z"), scale="utc")
            except ValueError as exc:
                raise InputError(f"{path}: DATE-OBS {date_obs!r} unreadable: {exc}") from None
            shift = {"start": 0.0, "mid": 0.5, "end": 1.0}[options.date_obs_instant] * exposure
            opened = stamp - shift * u.s
            closed = opened + exposure * u.s
            source = "header"
            notes.append(f"shutter times from the header: DATE-OBS taken as the "
                         f"{options.date_obs_instant} of the exposure, {exposure_key} = "
                         f"{exposure} s; header clocks are rarely good to 0.1 s (Broughton: "
                         "'too inaccurate to be used'): give the measured shutter times")
        elif opened is None:
            if exposure is None:
                raise InputError(f"{path}: shutter_close_utc given without shutter_open_utc "
                                 "and the header has no EXPTIME")
            opened = closed - exposure * u.s
            notes.append(f"shutter opening = close - {exposure_key} ({exposure} s)")
        else:
            if exposure is None:
                raise InputError(f"{path}: shutter_open_utc given without shutter_close_utc "
                                 "and the header has no EXPTIME")
            closed = opened + exposure * u.s
            notes.append(f"shutter closing = open + {exposure_key} ({exposure} s)")
    span = round(float((closed - opened).to_value("s")), 9)
    if span <= 0:
        raise InputError(f"{path}: shutter close {closed.isot} is not after shutter open "
                         f"{opened.isot} ({span:+.3f} s)")
    return opened, closed, span, notes, source


def analyse_file(path, options: DriftScanOptions | None = None):
    """(DriftScanResult, image, header, time source) for one FITS drift scan; the
    shutter-time notes are in the result's ``notes``."""
    from astropy.time import Time

    from occplugins.readers import _driftscan
    options = options or DriftScanOptions()
    image, header, saturation = _read_image(path)
    opened, closed, exposure_s, notes, source = _shutter_times(path, header, options)
    pixel_to_ra = None
    if options.use_wcs and str(header.get("CTYPE1", "")).upper().startswith("RA"):
        try:
            from astropy.wcs import WCS
            wcs = WCS(header, naxis=2)

            def pixel_to_ra(x, y):
                return float(wcs.pixel_to_world_values(x, y)[0])
            notes.append("sidereal conversion through the header's WCS (distortion-free)")
        except Exception as exc:   # noqa: BLE001 - a broken WCS only loses that conversion
            notes.append(f"header WCS unusable ({type(exc).__name__}: {exc}); not used")
    try:
        result = _driftscan.analyse(
            image, exposure_s=exposure_s, shutter_open_utc=Time(opened, precision=6).isot,
            shutter_close_utc=Time(closed, precision=6).isot,
            direction_deg=options.direction_deg, refine_direction=options.refine_direction,
            target_xy=options.target, profile_rows=options.profile_rows,
            dec_deg=options.dec_deg, plate_scale_arcsec=options.plate_scale_arcsec,
            pixel_to_ra_deg=pixel_to_ra,
            saturation_adu=options.saturation_adu or saturation,
            level_fraction=options.level_fraction, level_window_px=options.level_window_px,
            shutter_err_s=options.shutter_err_s, name=str(path))
    except _driftscan.DriftScanError as exc:
        raise InputError(f"{path}: {exc}") from None
    result = attrs.evolve(result, notes=tuple(notes) + result.notes)
    return result, image, header, source


def driftscan_lightcurve(path, options: DriftScanOptions | None = None):
    """The target trail's light curve (a ``LightCurve``; see ``_driftscan.trail_lightcurve``)."""
    from occplugins.readers import _driftscan
    result, _, _, _ = analyse_file(path, options)
    return _driftscan.trail_lightcurve(result, name="driftscan")


def _open(source, *, options, context):
    from astropy.time import Time
    options = options or DriftScanOptions()
    path = source.path
    result, image, header, time_source = analyse_file(path, options)
    analysis = result.to_dict()
    meta = {"driftscan": analysis,
            "header": {k: header[k] for k in header if k and k not in ("COMMENT", "HISTORY")
                       and isinstance(header[k], (str, int, float, bool))},
            "notes": list(result.notes)}
    summary = "drift scan: no gap in the target trail (no occultation detected)"
    if result.event_detected:
        parts = [f"{k[0].upper()} {analysis[k]['utc'][11:]} +- {analysis[k]['err_s']:.3f} s"
                 for k in ("disappearance", "reappearance")]
        summary = (f"drift scan ({result.primary} conversion, 1 sigma): " + ", ".join(parts)
                   + "; see metadata.driftscan")
    series = FrameSeries.from_arrays(
        image[np.newaxis].astype(np.float32), times=Time(result.shutter_open_utc, scale="utc"),
        offsets_s=[0.0], exposure_s=result.exposure_s, time_instant="start",
        time_source=time_source, time_uncertainty_s=options.shutter_err_s or None,
        bit_depth=32, format="fits-driftscan", reader="driftscan",
        source_name=source.display_name, meta=meta)
    return series.with_times(attrs.evolve(series.times, note=summary))


def _read_lightcurve(source, *, options, context):
    """The ``driftscan`` light-curve reader: the target trail's profile against time; its
    metadata says which timing fitter suits it (the trail-PSF edge model)."""
    import attrs as _attrs
    lc = driftscan_lightcurve(source.path, options)
    return _attrs.evolve(lc, meta={**lc.meta, "column": "trail profile",
                                   "preferred_fitters": ["driftscan"],
                                   "date_source": "shutter times"})


@hookimpl
def occcore_lightcurve_readers():
    yield LightCurveReaderSpec(name="driftscan", summary="drift-scan CCD image: the target "
                               "trail's profile as a light curve (chosen by name only)",
                               read=_read_lightcurve, auto_identify=False, inputs=("file",),
                               options=DriftScanOptions)


@hookimpl
def occcore_readers():
    yield ReaderSpec(name="driftscan", summary="drift-scan CCD image: occultation timed from "
                     "the target trail (Broughton's method); chosen by name only",
                     open=_open, patterns=(), auto_identify=False, inputs=("file",),
                     options=DriftScanOptions)
