"""FITS image series: one file, a cube (NAXIS3), a directory, a glob or a list of files.

Timing comes from the headers and is chosen per file, in this order unless the
options (or a per-writer profile) say otherwise:

1. a GPS time inserted by IOTA's FitsReader (a second ``DATE-OBS`` card placed first,
   the original renamed ``OBS-DATE``) — source ``gps``;
2. NINA's ``GPS_SUTC`` when ``GPS_SFLG`` says the receiver was locked — source ``gps``;
3. ``DATE-OBS`` (with ``TIME-OBS`` when the date holds no time), ``DATE-BEG``,
   ``MJD-OBS``, ``DATE-AVG`` (mid exposure) or ``DATE-END`` (end) — source ``header``.

SharpCap's ``DATE-OBS = 0001-01-01...`` (GPS lock lost) marks the frame BAD_TIME.
``TIMESYS`` other than UTC is converted (TT, TAI, TDB; GPS = TAI - 19 s, which astropy
has no scale for); any other time system is an error. Frames are ordered by time (not
by file name); duplicated and non-monotonic stamps are flagged and reported. Frames
whose ``IMAGETYP`` says bias, dark or flat are split from the lights and, with
``read.options.fits.calibrate`` (formerly ``[calibrate] enabled``), used as masters
(see calibration.py).

Bad input never reaches numpy or astropy unchecked: every card is type-checked (a
string where a number belongs names the file and the card), image sizes are checked
against the file size before anything is allocated, time stamps outside 1900-2200 are
refused before ERFA sees them, and a ``.fits.gz`` is inflated into the work directory
only as far as its header announces, never past ``max_decompressed_gb``
(``LimitExceeded``).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import attrs
import numpy as np

from occcore.model import FrameFlag, FrameSeries, FrameTimes
from occcore.plugin import (CorruptSource, InputError, LimitExceeded, Match, NotApplicable,
                            ReaderSpec, hookimpl)
from occplugins.readers import calibration
from occplugins.readers.fitsheader import Header, read_header

log = logging.getLogger("occcore.fits")

PATTERNS = ("*.fits", "*.fit", "*.fts", "*.fits.gz", "*.fit.gz", "*.fz")
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_TIME_KEYS = ("auto", "iota", "gps", "DATE-OBS", "DATE-BEG", "MJD-OBS", "DATE-AVG", "DATE-END")
_KEY_INSTANT = {"iota": "start", "gps": "start", "DATE-OBS": "start", "DATE-BEG": "start",
                "MJD-OBS": "start", "DATE-AVG": "mid", "DATE-END": "end"}
# astropy has no GPS scale: GPS time is TAI - 19 s, so a GPS stamp is read as TAI + 19 s
_SCALES = {"UTC": "utc", "TT": "tt", "TAI": "tai", "TDB": "tdb", "GPS": "gps"}
GPS_MINUS_TAI_S = -19.0
_YEAR_ONE = re.compile(r"^0*1-01-01")
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d):(\d\d(?:\.\d*)?))?")
_CLOCK = re.compile(r"\d\d:\d\d:\d\d(?:\.\d*)?")
YEARS = (1900, 2200)              # time stamps outside these years are refused (ERFA's range)
MJD_RANGE = (15020.0, 88069.0)    # 1900-01-01 .. 2200-01-01
MAX_AXIS = 1 << 20                # a side longer than a million pixels is not a frame
MAX_CADENCE_S = 86400.0


@attrs.frozen(kw_only=True)
class FitsOptions:
    time_key: str = attrs.field(default="auto", validator=attrs.validators.in_(_TIME_KEYS))
    time_instant: str = attrs.field(default="auto", validator=attrs.validators.in_(
        ("auto", "start", "mid", "end")))
    exposure_key: str = "auto"
    writers: dict = attrs.field(factory=dict)   # program substring -> {time_key, time_instant}
    allow_index_time: bool = False
    cadence_s: float | None = attrs.field(default=None, validator=attrs.validators.optional(
        [attrs.validators.instance_of((int, float)), attrs.validators.gt(0)]))
    index_epoch: str | None = None
    # compressed FITS (.fits.gz) is decompressed into the run's work directory, at most this
    max_decompressed_gb: float = attrs.field(default=20.0, validator=attrs.validators.gt(0))
    # pre-reduction with master frames (formerly the [calibrate] section)
    calibrate: bool = False
    bias: str = ""                # path or glob of extra bias frames
    dark: str = ""
    flat: str = ""


@attrs.frozen
class FileInfo:
    path: Path                    # the file read (a decompressed copy for .fits.gz)
    name: str                     # how messages name it (the user's file)
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
        value = _as_text(date_obs[-1].value if iota else date_obs[0].value, "DATE-OBS", name)
        if "T" not in value and "TIME-OBS" in header:
            clock = header.text("TIME-OBS", name)
            if not _CLOCK.fullmatch(clock):
                raise CorruptSource(f"{name}: header card TIME-OBS = {clock!r} is not a time of "
                                    "day (expected hh:mm:ss[.fff])")
            value = f"{value}T{clock}"
        candidates.append(("DATE-OBS", value, "header", ""))
    for key in ("DATE-BEG", "DATE-AVG", "DATE-END"):
        if key in header:
            candidates.append((key, header.get(key), "header", ""))
    if "MJD-OBS" in header:
        candidates.append(("MJD-OBS", header.number("MJD-OBS", name, lo=MJD_RANGE[0],
                                                    hi=MJD_RANGE[1]), "header", ""))
    if key_choice != "auto":
        candidates = [c for c in candidates if c[0] == key_choice]
    if not candidates:
        return None, key_choice, "start", "unknown", "no usable time key"
    key, value, source, note = candidates[0]
    if "GPS_SUTC" in header and header.get("GPS_SFLG") != 3 and key != "gps":
        note = (note + "; " if note else "") + f"GPS_SFLG={header.get('GPS_SFLG')} (not locked)"
    instant = _KEY_INSTANT[key] if instant_choice == "auto" else instant_choice
    if key == "MJD-OBS":
        if value is None:
            return None, key, instant, source, "MJD-OBS has no value"
        from astropy.time import Time
        value = Time(float(value), format="mjd", scale="utc").isot
    value = _as_text(value, key, name)
    if _YEAR_ONE.match(value):
        return None, key, instant, source, f"{key} is {value}: no GPS time (lock lost)"
    value = _repair_date(value)
    _check_iso(value, key, name)
    return value, key, instant, source, note


def _as_text(value, key: str, name: str) -> str:
    if not isinstance(value, str):
        raise CorruptSource(f"{name}: header card {key} = {value!r} is not a date string "
                            "(expected 'YYYY-MM-DDThh:mm:ss[.fff]')")
    return value.strip()


def _check_iso(value: str, key: str, name: str) -> None:
    """Refuse what astropy/ERFA would choke on, with the card named."""
    m = _ISO.fullmatch(value)
    if not m:
        raise CorruptSource(f"{name}: header card {key} = {value!r} is not an ISO date-time "
                            "(expected YYYY-MM-DDThh:mm:ss[.fff])")
    year, month, day = (int(g) for g in m.groups()[:3])
    if not YEARS[0] <= year <= YEARS[1]:
        raise CorruptSource(f"{name}: header card {key} = {value!r}: year {year} is outside "
                            f"{YEARS[0]}-{YEARS[1]}, the range this reader accepts")
    bad = not (1 <= month <= 12 and 1 <= day <= 31)
    if m.group(4) is not None:
        bad = bad or int(m.group(4)) > 23 or int(m.group(5)) > 59 or float(m.group(6)) >= 61
    if bad:
        raise CorruptSource(f"{name}: header card {key} = {value!r} is not a valid date-time")


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


def _exposure(header: Header, key: str, name: str) -> float | None:
    keys = ("EXPTIME", "EXPOSURE", "XPOSURE") if key == "auto" else (key,)
    for k in keys:
        value = header.number(k, name, lo=0.0, hi=MAX_CADENCE_S)
        if value is not None:
            return value
    return None


def _data_bytes(header: Header, name: str) -> tuple[int, int, list[int]]:
    """(bitpix, naxis, dims) of the primary image, type- and range-checked."""
    bitpix = header.integer("BITPIX", name)
    if bitpix not in _BITPIX:
        raise CorruptSource(f"{name}: unsupported BITPIX {bitpix!r} (expected one of "
                            f"{', '.join(map(str, _BITPIX))})")
    naxis = header.integer("NAXIS", name)
    if naxis not in (2, 3):
        raise CorruptSource(f"{name}: primary HDU has NAXIS={naxis!r}; expected an image "
                            "(NAXIS 2) or a cube (NAXIS 3)")
    dims = [header.integer(f"NAXIS{i}", name, lo=1, hi=MAX_AXIS if i < 3 else 1 << 40)
            for i in range(1, naxis + 1)]
    return bitpix, naxis, dims


def _image_bytes(bitpix: int, dims: list[int]) -> int:
    return int(np.prod(dims, dtype=object)) * (abs(bitpix) // 8)


def scan_file(path: Path, options: FitsOptions, *, name: str | None = None,
              workdir: Path | None = None) -> FileInfo:
    name = name or str(path)
    lower = path.name.lower()
    if lower.endswith(".gz"):
        path = _gunzip(path, name, options, workdir)
        lower = path.name.lower()
    if lower.endswith(".fz"):
        header = _header_via_astropy(path, name, options)
        file_bytes = None
    else:
        try:
            with open(path, "rb") as fh:
                header = read_header(fh, name)
            file_bytes = path.stat().st_size
        except OSError as exc:
            raise InputError(f"{name}: cannot be read: {exc}") from None
    bitpix, naxis, dims = _data_bytes(header, name)
    width, height = dims[0], dims[1]
    n_planes = dims[2] if naxis == 3 else 1
    if file_bytes is not None:
        need = header.size_bytes + _image_bytes(bitpix, dims)
        if need > file_bytes:
            raise CorruptSource(f"{name}: header says {'x'.join(map(str, dims))} pixels of "
                                f"BITPIX {bitpix} ({need} bytes with the header) but the file "
                                f"has {file_bytes} bytes")
    iso, key, instant, source, note = _pick_time(header, options, name)
    timesys = header.text("TIMESYS", name, "UTC").upper()
    scale = _SCALES.get(timesys)
    if scale is None:
        raise InputError(f"{name}: TIMESYS {timesys!r} is not supported "
                         f"(use one of {', '.join(_SCALES)})")
    return FileInfo(path=path, name=name, header=header, n_planes=n_planes, height=height,
                    width=width, bitpix=bitpix,
                    bzero=header.number("BZERO", name, default=0.0),
                    bscale=header.number("BSCALE", name, default=1.0, nonzero=True),
                    imagetyp=header.text("IMAGETYP", name), time_iso=iso, time_key=key,
                    time_instant=instant, time_source=source, time_scale=scale,
                    exposure_s=_exposure(header, options.exposure_key, name), note=note)


def _limit_bytes(options: FitsOptions, where: Path) -> int:
    import shutil
    return int(min(options.max_decompressed_gb * 1e9, shutil.disk_usage(where).free))


class _Recorder:
    """A file-like reader that keeps what was read (the header of a gzip stream)."""

    def __init__(self, src):
        self.src = src
        self.data = bytearray()

    def read(self, n):
        chunk = self.src.read(n)
        self.data += chunk
        return chunk


def _gunzip(path: Path, name: str, options: FitsOptions, workdir: Path | None) -> Path:
    """Decompress a .fits.gz into the work directory: only the bytes its header announces,
    never more than the limit, streamed (a gzip bomb is refused after its header)."""
    import gzip
    import tempfile
    import zlib
    where = Path(workdir) if workdir is not None else Path(tempfile.gettempdir())
    limit = _limit_bytes(options, where)
    out_dir = Path(tempfile.mkdtemp(prefix="fitsgz-", dir=where))
    out = out_dir / (path.name[:-3] or "frame.fits")
    try:
        with gzip.open(path, "rb") as src:
            recorder = _Recorder(src)
            header = read_header(recorder, name)
            bitpix, _, dims = _data_bytes(header, name)
            want = header.size_bytes + _image_bytes(bitpix, dims)
            if want > limit:
                raise LimitExceeded(f"{name}: the header announces {want / 1e9:.3g} GB of "
                                    f"pixels, more than the limit {limit / 1e9:.3g} GB "
                                    "(read.options.fits.max_decompressed_gb, free disk space)")
            with open(out, "wb") as dst:
                dst.write(recorder.data)
                left = want - len(recorder.data)
                while left > 0:
                    chunk = src.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    dst.write(chunk)
                    left -= len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptSource(f"{name}: cannot be decompressed: {type(exc).__name__}: {exc}") from None
    return out


def _header_via_astropy(path: Path, name: str, options: FitsOptions) -> Header:
    """The image header of a tile-compressed (.fz) FITS, checked before any pixel is read."""
    from astropy.io import fits

    from occplugins.readers.fitsheader import Card
    try:
        with fits.open(path) as hdul:
            hdu = next((h for h in hdul if h.is_image and h.header.get("NAXIS", 0) >= 2), None)
            if hdu is None:
                raise CorruptSource(f"{name}: no image HDU")
            cards = tuple(Card(c.keyword, c.value, c.comment) for c in hdu.header.cards)
    except InputError:
        raise
    except Exception as exc:          # astropy raises many types on damaged files
        raise CorruptSource(f"{name}: cannot be read as FITS: {type(exc).__name__}: {exc}") from None
    cards = tuple(c for c in cards if c.key not in ("XTENSION", "ZIMAGE"))
    cards = (Card("SIMPLE", True, ""),) + tuple(
        Card(c.key, c.value if isinstance(c.value, (bool, int, float, str)) else str(c.value),
             c.comment) for c in cards)
    header = Header(cards=cards, size_bytes=-1)
    bitpix, _, dims = _data_bytes(header, name)
    limit = _limit_bytes(options, path.parent)
    if _image_bytes(bitpix, dims) > limit:
        raise LimitExceeded(f"{name}: the compressed image expands to "
                            f"{_image_bytes(bitpix, dims) / 1e9:.3g} GB, more than the limit "
                            f"{limit / 1e9:.3g} GB (read.options.fits.max_decompressed_gb)")
    return header


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
        try:
            with fits.open(info.path, do_not_scale_image_data=True) as hdul:
                hdu = next(h for h in hdul if h.is_image and h.header.get("NAXIS", 0) >= 2)
                raw = np.asarray(hdu.data).reshape(-1, info.height, info.width)[first:stop]
                return convert(raw.astype(stored))
        except Exception as exc:       # a damaged tile or table: name the file and frames
            raise CorruptSource(f"{info.name}: planes {first}..{stop - 1} cannot be "
                                f"decompressed: {type(exc).__name__}: {exc}") from None
    offset = info.header.size_bytes + first * info.height * info.width * stored.itemsize
    try:
        with open(info.path, "rb") as fh:
            fh.seek(offset)
            raw = np.fromfile(fh, stored, count)
    except OSError as exc:
        raise InputError(f"{info.name}: cannot be read: {exc}") from None
    if raw.size != count:
        raise CorruptSource(f"{info.name}: data truncated: expected {count} pixels from byte "
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


def _display(path: Path, source) -> str:
    """How messages name a file: as the user gave it (an archive member as archive!member)."""
    origin = getattr(source, "origin", None)
    return f"{origin}!{path.name}" if origin is not None else str(path)


def calibration_settings(options: FitsOptions, config: dict) -> dict:
    """The FITS options' calibration settings, or the old ``[calibrate]`` section's."""
    old = config.get("calibrate") or {}
    old = old if isinstance(old, dict) else {}
    return {"enabled": bool(options.calibrate or old.get("enabled")),
            **{k: getattr(options, k) or old.get(k) or "" for k in ("bias", "dark", "flat")}}


def _open(source, *, options, context):
    options = options or FitsOptions()
    files = _source_files(source)
    workdir = context.workdir
    infos = []
    for i, path in enumerate(files):
        infos.append(scan_file(path, options, workdir=workdir, name=_display(path, source)))
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
            raise InputError(f"{info.name}: frame size {info.width}x{info.height} differs from "
                             f"{first.name} ({first.width}x{first.height})")
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
    calibrator = calibration.build(groups, calibration_settings(options, context.config),
                                   lambda path: scan_file(path, options, workdir=workdir),
                                   _read_planes, source.display_name)
    if calibrator is not None:
        dtype = np.dtype(np.float32)
        notes.append(calibrator.note)
    elif any(groups[k] for k in ("bias", "dark", "flat")):
        notes.append("calibration frames found ({}) but read.options.fits.calibrate is not "
                     "enabled".format(
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

    n_planes = np.array([info.n_planes for info in lights], np.int64)
    cadences = np.zeros(len(lights))
    for k, info in enumerate(lights):
        if info.n_planes > 1:
            cadence = options.cadence_s or info.header.number(
                "FRM-TIME", info.name, lo=0.0, hi=MAX_CADENCE_S) or info.exposure_s
            if not cadence:
                raise InputError(f"{info.name}: cube of {info.n_planes} planes but no plane "
                                 "cadence (FRM-TIME, EXPTIME or read.options.fits.cadence_s)")
            cadences[k] = cadence
    # frames of every file, without a Python loop over planes (a cube may hold millions)
    frame_file = np.repeat(np.arange(len(lights)), n_planes)
    n = len(frame_file)
    frame_plane = np.arange(n) - np.repeat(np.cumsum(n_planes) - n_planes, n_planes)
    frame_step = frame_plane * cadences[frame_file]
    flags = np.zeros(n, np.uint32)
    file_valid = np.array([info.time_iso is not None for info in lights])
    valid = file_valid[frame_file]
    instants = {lights[k].time_instant for k in np.flatnonzero(file_valid)} or {"start"}
    sources = {lights[k].time_source for k in np.flatnonzero(file_valid)}
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
        try:
            epoch = Time(options.index_epoch or "2000-01-01T00:00:00", scale="utc")
        except Exception as exc:
            raise InputError(f"{name}: read.options.fits.index_epoch "
                             f"{options.index_epoch!r} is not a time: {exc}") from None
        offsets = np.arange(n) * options.cadence_s
        flags |= np.uint32(FrameFlag.INDEX_TIME)
        times = FrameTimes(epoch=epoch, offsets_s=offsets, instant="start", source="index",
                           note=f"index timing: frame number x {options.cadence_s} s (as requested)")
        return frame_file, frame_plane, times, flags, meta
    file_offsets = _file_offsets(lights, file_valid, name)
    epoch = file_offsets.pop("epoch")
    offsets = np.empty(n)
    offsets[valid] = file_offsets["s"][frame_file[valid]] + frame_step[valid]
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
    if (n_planes > 1).any():
        flags[frame_plane > 0] |= np.uint32(FrameFlag.INDEX_TIME)
        notes.append("cube planes timed as DATE-OBS + plane x cadence")
    end_mjd = epoch.mjd + float(offsets.max()) / 86400.0
    start_mjd = epoch.mjd + float(offsets.min()) / 86400.0
    if not (MJD_RANGE[0] <= start_mjd and end_mjd <= MJD_RANGE[1]):
        raise CorruptSource(f"{name}: frame times run from MJD {start_mjd:.1f} to {end_mjd:.1f}, "
                            f"outside the years {YEARS[0]}-{YEARS[1]} (plane cadence "
                            f"{cadences.max():g} s x {int(n_planes.max())} planes?)")
    source = "gps" if sources == {"gps"} else ("header" if "header" in sources else sources.pop())
    first_offset = float(offsets[0])
    times = FrameTimes(epoch=epoch + first_offset * u.s, offsets_s=offsets - first_offset,
                       instant=instant, source=source, note=", ".join(keys) + " header time")
    return frame_file, frame_plane, times, flags, meta


def _file_offsets(lights: list[FileInfo], file_valid: np.ndarray, name: str) -> dict:
    """Seconds of each file's time after the first valid file's (per time scale, GPS via TAI)."""
    from astropy import units as u
    from astropy.time import Time

    seconds = np.full(len(lights), np.nan)
    epoch = None
    by_scale: dict[str, list[int]] = {}
    for k in np.flatnonzero(file_valid):
        by_scale.setdefault(lights[k].time_scale, []).append(int(k))
    first = int(np.flatnonzero(file_valid)[0])
    order = sorted(by_scale, key=lambda sc: first not in by_scale[sc])
    for scale in order:
        idx = by_scale[scale]
        try:
            parsed = Time([lights[k].time_iso for k in idx],
                          scale="tai" if scale == "gps" else scale)
            if scale == "gps":
                parsed = parsed - GPS_MINUS_TAI_S * u.s
            parsed = parsed.utc
            if epoch is None:
                epoch = parsed[0]
            seconds[idx] = (parsed - epoch).to_value("s")
        except Exception as exc:      # astropy/ERFA: name the file and the stamp
            bad = _first_bad_time(lights, idx, scale)
            raise CorruptSource(f"{bad or name}: unreadable time stamp: "
                                f"{type(exc).__name__}: {exc}") from None
    return {"epoch": epoch, "s": seconds}


def _first_bad_time(lights, idx, scale) -> str | None:
    from astropy.time import Time
    for k in idx:
        try:
            _ = Time(lights[k].time_iso, scale="tai" if scale == "gps" else scale).utc
        except Exception:
            return f"{lights[k].name}: {lights[k].time_key} = {lights[k].time_iso!r}"
    return None


@hookimpl
def occcore_readers():
    yield ReaderSpec(name="fits", summary="FITS frames, cubes, directories and globs",
                     patterns=PATTERNS, identify=_identify, open=_open, options=FitsOptions,
                     inputs=("file", "dir", "files"))
