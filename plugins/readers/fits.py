"""FITS image series: one file, a cube (NAXIS3), a directory, a glob or a list of files.

Timing comes from the headers and is chosen per file, in this order unless the
options (or a per-writer profile) say otherwise:

1. a GPS time inserted by IOTA's FitsReader (a second ``DATE-OBS`` card placed first,
   the original renamed ``OBS-DATE``) — source ``gps``;
2. NINA's ``GPS_SUTC`` when ``GPS_SFLG`` says the receiver was locked — source ``gps``;
3. ``DATE-OBS`` (with ``TIME-OBS`` when the date holds no time), ``DATE-BEG``,
   ``MJD-OBS``, ``DATE-AVG`` (mid exposure) or ``DATE-END`` (end) — source ``header``.

SharpCap's ``DATE-OBS = 0001-01-01...`` (GPS lock lost) marks the frame BAD_TIME.
``TIMESYS`` other than UTC is converted. Frames are ordered by time (not by file
name); duplicated and non-monotonic stamps are flagged and reported. Frames whose
``IMAGETYP`` says bias, dark or flat are split from the lights (see calibration.py).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import attrs
import numpy as np

from occcore.model import FrameFlag, FrameSeries, FrameTimes
from occcore.plugin import CorruptSource, InputError, Match, NotApplicable, ReaderSpec, hookimpl
from occplugins.readers import calibration
from occplugins.readers.fitsheader import Header, read_header

log = logging.getLogger("occcore.fits")

PATTERNS = ("*.fits", "*.fit", "*.fts", "*.fits.gz", "*.fit.gz", "*.fz")
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_TIME_KEYS = ("auto", "iota", "gps", "DATE-OBS", "DATE-BEG", "MJD-OBS", "DATE-AVG", "DATE-END")
_KEY_INSTANT = {"iota": "start", "gps": "start", "DATE-OBS": "start", "DATE-BEG": "start",
                "MJD-OBS": "start", "DATE-AVG": "mid", "DATE-END": "end"}
_SCALES = {"UTC": "utc", "TT": "tt", "TAI": "tai", "TDB": "tdb", "GPS": "gps"}
_YEAR_ONE = re.compile(r"^0*1-01-01")


@attrs.frozen(kw_only=True)
class FitsOptions:
    time_key: str = attrs.field(default="auto", validator=attrs.validators.in_(_TIME_KEYS))
    time_instant: str = attrs.field(default="auto", validator=attrs.validators.in_(
        ("auto", "start", "mid", "end")))
    exposure_key: str = "auto"
    writers: dict = attrs.field(factory=dict)   # program substring -> {time_key, time_instant}
    allow_index_time: bool = False
    cadence_s: float | None = None
    index_epoch: str | None = None


@attrs.frozen
class FileInfo:
    path: Path
    header: Header
    n_planes: int
    height: int
    width: int
    bitpix: int
    bzero: float
    bscale: float
    imagetyp: str
    time_iso: str | None
    time_key: str
    time_instant: str
    time_source: str
    time_scale: str
    exposure_s: float | None
    note: str


def _identify(probe):
    if probe.is_dir:
        fits = [m for m in probe.members if any(m.name.lower().endswith(p[1:]) for p in PATTERNS)]
        if fits and probe.head.startswith(b"SIMPLE  ="):
            return Match.CONTENT, f"directory of {len(fits)} FITS files"
        return None
    if probe.head.startswith(b"SIMPLE  ="):
        if b"NAXIS3  =" in probe.head[:8 * 2880]:
            return Match.CONTENT, "FITS cube (NAXIS3)"
        return Match.SIGNATURE, "FITS signature"
    return None


def _classify(imagetyp: str) -> str:
    word = (imagetyp or "").strip().lower().split(" ")[0] if imagetyp else ""
    if word in ("bias", "zero", "offset"):
        return "bias"
    if word.startswith("dark"):
        return "dark"
    if word.startswith("flat"):
        return "flat"
    return "light"


def _writer_profile(header: Header, writers: dict) -> dict:
    program = " ".join(str(header.get(k, "")) for k in ("SWCREATE", "PROGRAM", "CREATOR",
                                                         "SOFTWARE", "ORIGIN")).lower()
    for pattern, profile in writers.items():
        if pattern.lower() in program:
            return dict(profile)
    return {}


def _pick_time(header: Header, options: FitsOptions, name: str):
    """(iso string or None, key, instant, source, note) for one header."""
    profile = _writer_profile(header, options.writers)
    key_choice = profile.get("time_key", options.time_key)
    instant_choice = profile.get("time_instant", options.time_instant)
    date_obs = header.all("DATE-OBS")
    candidates = []
    iota = len(date_obs) > 1 or "OBS-DATE" in header or \
        any("iota" in c.comment.lower() for c in date_obs)
    if iota and date_obs:
        candidates.append(("iota", date_obs[0].value, "gps",
                           "GPS DATE-OBS inserted by IOTA FitsReader"))
    if "GPS_SUTC" in header:
        locked = header.get("GPS_SFLG") == 3
        if locked:
            candidates.append(("gps", header.get("GPS_SUTC"), "gps", "NINA GPS_SUTC, receiver locked"))
    if date_obs:
        value = str(date_obs[-1].value if iota else date_obs[0].value)
        if "T" not in value and "TIME-OBS" in header:
            value = f"{value}T{header.get('TIME-OBS')}"
        candidates.append(("DATE-OBS", value, "header", ""))
    for key in ("DATE-BEG", "DATE-AVG", "DATE-END"):
        if key in header:
            candidates.append((key, header.get(key), "header", ""))
    if isinstance(header.get("MJD-OBS"), (int, float)):
        candidates.append(("MJD-OBS", header.get("MJD-OBS"), "header", ""))
    if key_choice != "auto":
        candidates = [c for c in candidates if c[0] == key_choice]
    if not candidates:
        return None, key_choice, "start", "unknown", "no usable time key"
    key, value, source, note = candidates[0]
    if "GPS_SUTC" in header and header.get("GPS_SFLG") != 3 and key != "gps":
        note = (note + "; " if note else "") + f"GPS_SFLG={header.get('GPS_SFLG')} (not locked)"
    instant = _KEY_INSTANT[key] if instant_choice == "auto" else instant_choice
    if key == "MJD-OBS":
        from astropy.time import Time
        value = Time(float(value), format="mjd", scale="utc").isot
    value = str(value).strip()
    if _YEAR_ONE.match(value):
        return None, key, instant, source, f"{key} is {value}: no GPS time (lock lost)"
    value = _repair_date(value)
    return value, key, instant, source, note


def _repair_date(value: str) -> str:
    """Accept 'dd/mm/yy' (old FITS), a space instead of 'T', and a trailing 'Z'."""
    m = re.fullmatch(r"(\d\d)/(\d\d)/(\d\d)", value)
    if m:
        day, month, year = m.groups()
        return f"19{year}-{month}-{day}"
    value = value.rstrip("Z")
    if re.fullmatch(r"\d{4}-\d\d-\d\d \d.*", value):
        value = value.replace(" ", "T", 1)
    return value


def _exposure(header: Header, key: str) -> float | None:
    keys = ("EXPTIME", "EXPOSURE", "XPOSURE") if key == "auto" else (key,)
    for k in keys:
        value = header.get(k)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def scan_file(path: Path, options: FitsOptions) -> FileInfo:
    name = str(path)
    if path.name.lower().endswith((".gz", ".fz")):
        header = _header_via_astropy(path)
    else:
        try:
            with open(path, "rb") as fh:
                header = read_header(fh, name)
        except OSError as exc:
            raise InputError(f"{name}: cannot be read: {exc}") from None
    naxis = header.get("NAXIS")
    bitpix = header.get("BITPIX")
    if bitpix not in _BITPIX:
        raise CorruptSource(f"{name}: unsupported BITPIX {bitpix!r}")
    if naxis not in (2, 3):
        raise CorruptSource(f"{name}: primary HDU has NAXIS={naxis!r}; expected an image "
                            "(NAXIS 2) or a cube (NAXIS 3)")
    dims = [header.get(f"NAXIS{i}") for i in range(1, naxis + 1)]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise CorruptSource(f"{name}: bad image size NAXISn = {dims}")
    width, height = dims[0], dims[1]
    n_planes = dims[2] if naxis == 3 else 1
    iso, key, instant, source, note = _pick_time(header, options, name)
    scale = _SCALES.get(str(header.get("TIMESYS", "UTC")).strip().upper())
    if scale is None:
        raise InputError(f"{name}: TIMESYS {header.get('TIMESYS')!r} is not supported "
                         f"(use one of {', '.join(_SCALES)})")
    return FileInfo(path=path, header=header, n_planes=n_planes, height=height, width=width,
                    bitpix=bitpix, bzero=float(header.get("BZERO", 0) or 0),
                    bscale=float(header.get("BSCALE", 1) or 1),
                    imagetyp=str(header.get("IMAGETYP", "") or ""), time_iso=iso, time_key=key,
                    time_instant=instant, time_source=source, time_scale=scale,
                    exposure_s=_exposure(header, options.exposure_key), note=note)


def _header_via_astropy(path: Path) -> Header:
    from astropy.io import fits

    from occplugins.readers.fitsheader import Card
    try:
        with fits.open(path) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.header.get("NAXIS", 0) >= 2),
                       None)
            if hdu is None:
                raise CorruptSource(f"{path}: no image HDU")
            cards = tuple(Card(c.keyword, c.value, c.comment) for c in hdu.header.cards)
            cards = tuple(c for c in cards if c.key not in ("XTENSION", "ZIMAGE"))
            cards = (Card("SIMPLE", True, ""),) + cards
            return Header(cards=cards, size_bytes=-1)
    except (OSError, ValueError) as exc:
        raise CorruptSource(f"{path}: cannot be read as FITS: {exc}") from None


def _data_dtype(info: FileInfo):
    """(stored dtype, output dtype, converter) of one file's pixels."""
    stored = np.dtype(_BITPIX[info.bitpix])
    if info.bscale == 1 and info.bitpix == 16 and info.bzero == 32768:
        return stored, np.dtype(np.uint16), lambda a: a.view(">u2") ^ np.uint16(0x8000)
    if info.bscale == 1 and info.bitpix == 32 and info.bzero == 2 ** 31:
        return stored, np.dtype(np.uint32), lambda a: a.view(">u4") ^ np.uint32(0x8000_0000)
    if info.bscale == 1 and info.bzero == 0:
        native = stored.newbyteorder("=")
        return stored, native, lambda a: a.astype(native)
    out = np.dtype(np.float64 if info.bitpix in (-64, 32, 64) else np.float32)
    return stored, out, lambda a: a.astype(out) * out.type(info.bscale) + out.type(info.bzero)


def _read_planes(info: FileInfo, first: int, stop: int) -> np.ndarray:
    stored, _, convert = _data_dtype(info)
    count = (stop - first) * info.height * info.width
    if info.header.size_bytes < 0:
        from astropy.io import fits
        with fits.open(info.path, do_not_scale_image_data=True) as hdul:
            hdu = next(h for h in hdul if h.data is not None)
            raw = np.asarray(hdu.data).reshape(-1, info.height, info.width)[first:stop]
            return convert(raw.astype(stored))
    offset = info.header.size_bytes + first * info.height * info.width * stored.itemsize
    with open(info.path, "rb") as fh:
        fh.seek(offset)
        raw = np.fromfile(fh, stored, count)
    if raw.size != count:
        raise CorruptSource(f"{info.path}: data truncated: expected {count} pixels from byte "
                            f"{offset}, found {raw.size}")
    return convert(raw).reshape(stop - first, info.height, info.width)


def _source_files(source) -> list[Path]:
    if source.kind == "dir":
        files = [p for p in source.path.iterdir()
                 if p.is_file() and p.name.lower().endswith(tuple(x[1:] for x in PATTERNS))]
        if not files:
            raise NotApplicable(f"{source.display_name}: directory holds no FITS file")
        return sorted(files)
    return list(source.paths)


def _open(source, *, options, context):
    options = options or FitsOptions()
    files = _source_files(source)
    infos = []
    for i, path in enumerate(files):
        infos.append(scan_file(path, options))
        if len(files) > 200 and i % 200 == 0:
            context.progress(i, len(files), "reading FITS headers")
    groups = calibration.split_by_type(infos, _classify)
    lights = groups["light"]
    if not lights:
        raise InputError(f"{source.display_name}: no light frames (only "
                         f"{', '.join(f'{len(v)} {k}' for k, v in groups.items() if v)})")
    first = lights[0]
    for info in lights[1:]:
        if (info.height, info.width) != (first.height, first.width):
            raise InputError(f"{info.path}: frame size {info.width}x{info.height} differs from "
                             f"{first.path} ({first.width}x{first.height})")
    frame_file, frame_plane, times, flags, time_meta = _order_and_time(lights, options,
                                                                       source.display_name)
    out_dtypes = {_data_dtype(i)[1] for i in lights}
    dtype = out_dtypes.pop() if len(out_dtypes) == 1 else np.dtype(np.float32)
    exposures = [i.exposure_s for i in lights if i.exposure_s is not None]
    exposure_s = float(np.median(exposures)) if exposures else None
    notes = list(time_meta.pop("notes"))
    if exposures and np.ptp(exposures) > 1e-6 * max(exposures):
        notes.append(f"exposure varies from {min(exposures)} to {max(exposures)} s; "
                     "series uses the median")
    calibrator = calibration.build(groups, context.config.get("calibrate", {}),
                                   lambda path: scan_file(path, options), _read_planes,
                                   source.display_name)
    if calibrator is not None:
        dtype = np.dtype(np.float32)
        notes.append(calibrator.note)
    elif any(groups[k] for k in ("bias", "dark", "flat")):
        notes.append("calibration frames found ({}) but [calibrate] is not enabled".format(
            ", ".join(f"{len(groups[k])} {k}" for k in ("bias", "dark", "flat") if groups[k])))

    def read_batch(a, b):
        out = np.empty((b - a, first.height, first.width), dtype)
        k = a
        while k < b:
            info = lights[frame_file[k]]
            plane = frame_plane[k]
            run = 1
            while (k + run < b and frame_file[k + run] == frame_file[k]
                   and frame_plane[k + run] == plane + run):
                run += 1
            block = _read_planes(info, plane, plane + run)
            out[k - a:k - a + run] = block if calibrator is None else \
                calibrator.apply(block, info.exposure_s)
            k += run
        return out

    meta = {"files": len(files), "lights": len(lights),
            "imagetyp": sorted({i.imagetyp for i in lights}),
            "header": {c.key: c.value for c in first.header.cards
                       if c.key and c.value is not None and c.key not in ("COMMENT", "HISTORY")},
            **time_meta, "notes": notes}
    bit_depth = 16 if first.bitpix == 16 else abs(first.bitpix)
    return FrameSeries(n_frames=len(frame_file), height=first.height, width=first.width,
                       dtype=dtype, bit_depth=bit_depth, times=times, exposure_s=exposure_s,
                       read_batch=read_batch, format="fits-cube" if first.n_planes > 1 else "fits",
                       reader="fits", source_name=source.display_name, meta=meta, flags=flags)


def _order_and_time(lights: list[FileInfo], options: FitsOptions, name: str):
    """Expand cubes into frames, parse times, order by time, flag problems."""
    from astropy import units as u
    from astropy.time import Time

    frame_file, frame_plane, frame_iso, frame_step = [], [], [], []
    for k, info in enumerate(lights):
        cadence = None
        if info.n_planes > 1:
            cadence = options.cadence_s or info.header.get("FRM-TIME") or info.exposure_s
            if not cadence:
                raise InputError(f"{info.path}: cube of {info.n_planes} planes but no plane "
                                 "cadence (FRM-TIME, EXPTIME or read.options.fits.cadence_s)")
        for p in range(info.n_planes):
            frame_file.append(k)
            frame_plane.append(p)
            frame_iso.append(info.time_iso)
            frame_step.append(p * float(cadence) if cadence else 0.0)
    n = len(frame_file)
    frame_file = np.array(frame_file)
    frame_plane = np.array(frame_plane)
    flags = np.zeros(n, np.uint32)
    valid = np.array([iso is not None for iso in frame_iso])
    instants = {lights[f].time_instant for f in frame_file[valid]} or {"start"}
    sources = {lights[f].time_source for f in frame_file[valid]}
    notes = sorted({i.note for i in lights if i.note})
    keys = sorted({i.time_key for i in lights})
    if len(instants) > 1:
        raise InputError(f"{name}: frames mix time stamps meaning {sorted(instants)} of exposure; "
                         "set read.options.fits.time_key to use one key")
    instant = instants.pop()
    meta = {"time_keys": keys, "notes": notes}
    if not valid.any():
        if not (options.allow_index_time and options.cadence_s):
            raise InputError(f"{name}: no frame has a usable time ({'; '.join(notes) or 'no DATE-OBS'}); "
                             "to time frames by index, set read.options.fits.allow_index_time = true "
                             "and read.options.fits.cadence_s")
        epoch = Time(options.index_epoch or "2000-01-01T00:00:00", scale="utc")
        offsets = np.arange(n) * options.cadence_s
        flags |= np.uint32(FrameFlag.INDEX_TIME)
        times = FrameTimes(epoch=epoch, offsets_s=offsets, instant="start", source="index",
                           note=f"index timing: frame number x {options.cadence_s} s (as requested)")
        return frame_file, frame_plane, times, flags, meta
    scale = lights[frame_file[valid][0]].time_scale
    try:
        parsed = Time([iso for iso in np.array(frame_iso, object)[valid]], scale=scale).utc
    except ValueError as exc:
        raise InputError(f"{name}: unreadable time stamp: {exc}") from None
    epoch = parsed[0]
    offsets = np.empty(n)
    offsets[valid] = (parsed - epoch).to_value("s") + np.array(frame_step)[valid]
    if not valid.all():
        flags[~valid] |= np.uint32(FrameFlag.BAD_TIME | FrameFlag.INDEX_TIME)
        index = np.arange(n)
        offsets[~valid] = np.interp(index[~valid], index[valid], offsets[valid])
        log.warning("%s: %d frames have no usable time; their times are interpolated by index "
                    "and flagged BAD_TIME", name, int((~valid).sum()))
        meta["bad_time_frames"] = int((~valid).sum())
    order = np.argsort(offsets, kind="stable")
    if np.any(order != np.arange(n)):
        moved = int(np.sum(order != np.arange(n)))
        meta["reordered_frames"] = moved
        notes.append(f"{moved} frames were out of file-name order and are ordered by time")
        log.warning("%s: %d frames out of file-name order; ordered by time", name, moved)
    frame_file, frame_plane, offsets, flags = (frame_file[order], frame_plane[order],
                                               offsets[order], flags[order])
    duplicate = np.zeros(n, bool)
    duplicate[1:] = np.diff(offsets) == 0
    if duplicate.any():
        flags[duplicate] |= np.uint32(FrameFlag.DUPLICATE_TIME)
        meta["duplicate_times"] = int(duplicate.sum())
        log.warning("%s: %d frames repeat the previous frame's time stamp", name, int(duplicate.sum()))
    if any(lights[f].n_planes > 1 for f in frame_file):
        flags[frame_plane > 0] |= np.uint32(FrameFlag.INDEX_TIME)
        notes.append("cube planes timed as DATE-OBS + plane x cadence")
    source = "gps" if sources == {"gps"} else ("header" if "header" in sources else sources.pop())
    first_offset = float(offsets[0])
    times = FrameTimes(epoch=epoch + first_offset * u.s, offsets_s=offsets - first_offset,
                       instant=instant, source=source, note=", ".join(keys) + " header time")
    return frame_file, frame_plane, times, flags, meta


@hookimpl
def occcore_readers():
    yield ReaderSpec(name="fits", summary="FITS frames, cubes, directories and globs",
                     patterns=PATTERNS, identify=_identify, open=_open, options=FitsOptions,
                     inputs=("file", "dir", "files"))
