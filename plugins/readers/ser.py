"""SER video reader (planetary/occultation capture programs: SharpCap, FireCapture ...).

Layout (SER v3): a 178-byte little-endian header, the frames, then an optional
trailer of one int64 per frame: .NET ticks (100 ns since 0001-01-01 UTC, top two
bits masked off).

* Mono frames are served straight from a read-only numpy memmap (no copy).
* Bayer frames are reduced to luminance with a 2x2 box mean, which gives every
  mosaic pattern the weights R 0.25, G 0.5, B 0.25; RGB/BGR frames with Rec. 601
  weights (0.299 R + 0.587 G + 0.114 B). Colour frames are float32.
* The header's endianness flag is used inverted by almost every writer (0 means
  little-endian in practice). With ``endianness = "auto"`` the byte order is decided
  from the data (the order that makes the image smooth and within the bit depth)
  and the decision is recorded in the series metadata.
* The trailer times are PC-clock stamps whose instant the format does not define;
  ``time_instant`` (default ``start``) says what to assume. Without a trailer the
  reader refuses, unless ``frame_rate_hz`` is set: then times are the header start
  plus index / rate, flagged as index timing.
"""
from __future__ import annotations

import logging

import attrs
import numpy as np

from occcore.model import FrameFlag, FrameSeries, FrameTimes
from occcore.plugin import (CorruptSource, InputError, Match, NotApplicable, ReaderSpec,
                            hookimpl)

HEADER_BYTES = 178
MAGIC = b"LUCAM-RECORDER"
TICKS_MASK = 0x3FFF_FFFF_FFFF_FFFF
TICKS_AT_UNIX_EPOCH = 621_355_968_000_000_000
TICKS_PER_SECOND = 10_000_000
# time stamps outside 1900..2200 are refused before they reach astropy/ERFA
TICKS_MIN = 599_266_080_000_000_000      # 1900-01-01
TICKS_MAX = 693_937_152_000_000_000      # 2200-01-01
MAX_SIDE = 1 << 16                       # SER stores sizes as int32; no camera is wider

COLOR_IDS = {0: "MONO", 8: "BAYER_RGGB", 9: "BAYER_GRBG", 10: "BAYER_GBRG", 11: "BAYER_BGGR",
             16: "BAYER_CYYM", 17: "BAYER_YCMY", 18: "BAYER_YMCY", 19: "BAYER_MYYC",
             100: "RGB", 101: "BGR"}
RGB_WEIGHTS = (0.299, 0.587, 0.114)

log = logging.getLogger("occcore.ser")


@attrs.frozen(kw_only=True)
class SerOptions:
    endianness: str = attrs.field(default="auto", validator=attrs.validators.in_(
        ("auto", "little", "big", "flag-spec", "flag-common")))
    time_instant: str = attrs.field(default="start", validator=attrs.validators.in_(
        ("start", "mid", "end")))
    exposure_s: float | None = attrs.field(default=None, validator=attrs.validators.optional(
        [attrs.validators.instance_of((int, float)), attrs.validators.gt(0)]))
    frame_rate_hz: float | None = attrs.field(default=None, validator=attrs.validators.optional(
        [attrs.validators.instance_of((int, float)), attrs.validators.gt(0)]))
    allow_truncated: bool = False


@attrs.frozen
class SerHeader:
    color_id: int
    little_endian_flag: int
    width: int
    height: int
    depth: int
    frame_count: int
    observer: str
    instrument: str
    telescope: str
    date_ticks: int
    date_utc_ticks: int

    @property
    def planes(self) -> int:
        return 3 if self.color_id in (100, 101) else 1

    @property
    def bytes_per_sample(self) -> int:
        return 1 if self.depth <= 8 else 2

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * self.planes * self.bytes_per_sample


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def parse_header(raw: bytes, name: str) -> SerHeader:
    if len(raw) < HEADER_BYTES:
        raise CorruptSource(f"{name}: {len(raw)} bytes, shorter than the {HEADER_BYTES}-byte "
                            "SER header")
    ints = np.frombuffer(raw, "<i4", count=7, offset=14)
    ticks = np.frombuffer(raw, "<i8", count=2, offset=162)
    header = SerHeader(color_id=int(ints[1]), little_endian_flag=int(ints[2]),
                       width=int(ints[3]), height=int(ints[4]), depth=int(ints[5]),
                       frame_count=int(ints[6]), observer=_text(raw[42:82]),
                       instrument=_text(raw[82:122]), telescope=_text(raw[122:162]),
                       date_ticks=int(ticks[0]), date_utc_ticks=int(ticks[1]))
    if header.color_id not in COLOR_IDS:
        raise CorruptSource(f"{name}: unknown SER ColorID {header.color_id} at byte 18")
    if header.color_id in (16, 17, 18, 19):
        raise InputError(f"{name}: CMY Bayer SER ({COLOR_IDS[header.color_id]}) is not supported")
    if not (0 < header.width <= MAX_SIDE and 0 < header.height <= MAX_SIDE):
        raise CorruptSource(f"{name}: SER image size {header.width}x{header.height} at byte 26 "
                            f"is not within 1..{MAX_SIDE}")
    if not 1 <= header.depth <= 16:
        raise CorruptSource(f"{name}: SER PixelDepthPerPlane {header.depth} at byte 34 is "
                            "outside 1..16")
    if header.frame_count < 0:
        raise CorruptSource(f"{name}: negative SER FrameCount {header.frame_count} at byte 38")
    return header


def _identify(probe):
    if probe.is_dir or len(probe.head) < HEADER_BYTES:
        return None
    if not probe.head.startswith(MAGIC):
        return None
    try:
        header = parse_header(probe.head[:HEADER_BYTES], probe.name)
    except InputError:
        return Match.SIGNATURE, "LUCAM-RECORDER magic, but the header is inconsistent"
    if probe.size < HEADER_BYTES + header.frame_bytes:
        return Match.SIGNATURE, "LUCAM-RECORDER magic, but no complete frame"
    return Match.CONTENT, (f"SER {header.width}x{header.height} {COLOR_IDS[header.color_id]} "
                           f"{header.depth}-bit, {header.frame_count} frames in header")


def ticks_to_unix(ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """.NET ticks -> (whole unix seconds, fractional seconds), exactly."""
    since_unix = ticks.astype(np.int64) - TICKS_AT_UNIX_EPOCH
    whole, rest = np.divmod(since_unix, TICKS_PER_SECOND)
    return whole, rest / TICKS_PER_SECOND


def _roughness(sample: np.ndarray) -> float:
    """Mean absolute difference of neighbouring pixels, relative to the mean level."""
    s = sample.astype(np.float64)
    return float(np.mean(np.abs(np.diff(s, axis=-1)))) / (abs(float(np.mean(s))) + 1.0)


def decide_byte_order(path, header: SerHeader, n_frames: int, option: str) -> tuple[str, str]:
    """Return ('<' or '>', explanation)."""
    common = "<" if header.little_endian_flag == 0 else ">"
    spec = "<" if header.little_endian_flag == 1 else ">"
    if header.bytes_per_sample == 1:
        return "<", "8-bit data: byte order irrelevant"
    if option == "little":
        return "<", "little-endian (forced by option)"
    if option == "big":
        return ">", "big-endian (forced by option)"
    if option == "flag-spec":
        return spec, f"header flag {header.little_endian_flag} read as the spec says"
    if option == "flag-common":
        return common, f"header flag {header.little_endian_flag} read as most writers use it"
    picks = np.unique(np.linspace(0, n_frames - 1, min(n_frames, 5)).astype(int))
    raw = np.memmap(path, "<u2", "r", HEADER_BYTES,
                    (n_frames, header.frame_bytes // 2))
    sample = np.asarray(raw[picks])
    del raw
    scores = {}
    for order in "<>":
        values = sample if order == "<" else sample.byteswap()
        over = float(np.mean(values > (1 << header.depth) - 1)) if header.depth < 16 else 0.0
        scores[order] = (over, _roughness(values))
    little, big = scores["<"], scores[">"]
    if little[0] != big[0] and min(little[0], big[0]) == 0.0:
        order = "<" if little[0] == 0.0 else ">"
        why = f"only {'little' if order == '<' else 'big'}-endian keeps values within {header.depth} bits"
    elif max(little[1], big[1]) > 1.5 * min(little[1], big[1]):
        order = "<" if little[1] < big[1] else ">"
        why = (f"decided from the data: roughness little {little[1]:.3g} vs big {big[1]:.3g}")
    else:
        order = common
        why = "data inconclusive; header flag read as most writers use it (0 = little)"
    agrees = "agrees with" if order == common else "contradicts"
    return order, f"{why}; {agrees} the common reading of flag {header.little_endian_flag}"


def _open(source, *, options, context):
    options = options or SerOptions()
    if len(source.paths) != 1 or source.kind == "dir":
        raise NotApplicable("a SER source is one file")
    path = source.path
    name = str(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            header = parse_header(fh.read(HEADER_BYTES), name)
    except OSError as exc:
        raise InputError(f"{name}: cannot be read: {exc}") from None
    frame_bytes = header.frame_bytes
    fits_in_file = (size - HEADER_BYTES) // frame_bytes
    notes = []
    n_frames = header.frame_count
    if n_frames == 0:
        n_frames = fits_in_file
        notes.append(f"header FrameCount is 0; {n_frames} frames computed from the file size")
    if n_frames > fits_in_file:
        if not options.allow_truncated:
            raise CorruptSource(
                f"{name}: header says {header.frame_count} frames but the file holds only "
                f"{fits_in_file} complete frames ({size} bytes); set "
                "read.options.ser.allow_truncated = true to read those")
        log.warning("%s: truncated: header says %d frames, reading the %d complete ones",
                    name, header.frame_count, fits_in_file)
        notes.append(f"truncated: header {header.frame_count} frames, read {fits_in_file}")
        n_frames = fits_in_file
    if n_frames < 1:
        raise CorruptSource(f"{name}: no complete frame after the header ({size} bytes, "
                            f"{frame_bytes} bytes per frame)")

    order, order_note = decide_byte_order(path, header, n_frames, options.endianness)
    sample_type = np.dtype(f"{order}u{header.bytes_per_sample}")
    shape = (n_frames, header.height, header.width) + ((3,) if header.planes == 3 else ())
    kind = COLOR_IDS[header.color_id]

    def mapped(a, b):
        # A map per batch: the pages a batch touches leave memory with the batch, so the
        # resident size stays small on files larger than RAM.
        return np.memmap(path, sample_type, "r", HEADER_BYTES + a * frame_bytes,
                         (b - a,) + shape[1:])

    if kind == "MONO":
        def read_batch(a, b):
            block = mapped(a, b)
            return block if order == "<" or header.bytes_per_sample == 1 else \
                block.astype(np.uint16)
        dtype = np.uint8 if header.bytes_per_sample == 1 else np.uint16
    elif kind.startswith("BAYER"):
        def read_batch(a, b):
            block = np.asarray(mapped(a, b), np.float32)
            padded = np.pad(block, ((0, 0), (0, 1), (0, 1)), mode="edge")
            return 0.25 * (padded[:, :-1, :-1] + padded[:, 1:, :-1]
                           + padded[:, :-1, 1:] + padded[:, 1:, 1:])
        dtype = np.float32
    else:
        weights = np.array(RGB_WEIGHTS if kind == "RGB" else RGB_WEIGHTS[::-1], np.float32)

        def read_batch(a, b):
            return np.asarray(mapped(a, b), np.float32) @ weights
        dtype = np.float32

    times, flags, time_note = _frame_times(path, header, n_frames, frame_bytes, size, options)
    exposure_s = options.exposure_s
    if exposure_s is None and n_frames > 1:
        exposure_s = float(np.median(np.diff(times.offsets_s)))
        notes.append("exposure taken as the median frame interval (SER does not store it)")
    meta = {"observer": header.observer, "instrument": header.instrument,
            "telescope": header.telescope, "color": kind, "header_frame_count": header.frame_count,
            "endianness_flag": header.little_endian_flag, "byte_order": order_note,
            "notes": notes}

    return FrameSeries(n_frames=n_frames, height=header.height, width=header.width,
                       dtype=dtype, bit_depth=header.depth, times=attrs.evolve(times, note=time_note),
                       exposure_s=exposure_s, read_batch=read_batch, format="ser", reader="ser",
                       source_name=name, meta=meta, flags=flags)


def _frame_times(path, header: SerHeader, n_frames: int, frame_bytes: int, size: int,
                 options: SerOptions):
    from astropy.time import Time

    trailer_at = HEADER_BYTES + header.frame_count * frame_bytes
    has_trailer = (header.frame_count == n_frames and size >= trailer_at + 8 * n_frames)
    name = str(path)
    if has_trailer:
        ticks = np.fromfile(path, "<i8", count=n_frames, offset=trailer_at) & TICKS_MASK
        good = (ticks >= TICKS_MIN) & (ticks <= TICKS_MAX)
        if good[0] or good.mean() > 0.5:
            flags = np.zeros(n_frames, np.uint32)
            if not good.all():
                # a stamp outside 1900..2200 is damage: interpolate it by index, flag it
                index = np.arange(n_frames)
                base = ticks[good][0]      # interpolate small differences: exact to a tick
                fixed = np.interp(index, index[good], (ticks[good] - base).astype(np.float64))
                ticks = np.where(good, ticks, base + np.rint(fixed).astype(np.int64))
                flags[~good] |= np.uint32(FrameFlag.BAD_TIME | FrameFlag.INDEX_TIME)
                log.warning("%s: %d trailer time stamps outside %d..%d; interpolated and "
                            "flagged BAD_TIME", name, int((~good).sum()), 1900, 2200)
            whole, frac = ticks_to_unix(ticks)
            epoch = Time(whole[0], frac[0], format="unix", scale="utc")
            offsets = (ticks - ticks[0]) / TICKS_PER_SECOND
            steps = np.diff(ticks)
            flags[1:][steps == 0] |= np.uint32(FrameFlag.DUPLICATE_TIME)
            flags[1:][steps < 0] |= np.uint32(FrameFlag.NON_MONOTONIC)
            if np.any(steps <= 0):
                log.warning("%s: %d duplicated and %d non-monotonic trailer time stamps", name,
                            int(np.sum(steps == 0)), int(np.sum(steps < 0)))
            times = FrameTimes(epoch=epoch, offsets_s=offsets, instant=options.time_instant,
                               source="pc-clock", uncertainty_s=None)
            note = (f"SER trailer (PC clock); instant not defined by the format, "
                    f"assumed {options.time_instant} of exposure")
            return times, flags, note
    if options.frame_rate_hz is None:
        raise InputError(f"{name}: no usable per-frame timestamp trailer; to time frames from "
                         "the header start and a frame rate, set read.options.ser.frame_rate_hz")
    if not TICKS_MIN <= (header.date_utc_ticks & TICKS_MASK) <= TICKS_MAX:
        raise InputError(f"{name}: no timestamp trailer and no valid DateTime_UTC (byte 170) "
                         "in the header (expected a time between 1900 and 2200)")
    whole, frac = ticks_to_unix(np.array([header.date_utc_ticks & TICKS_MASK]))
    epoch = Time(whole[0], frac[0], format="unix", scale="utc")
    offsets = np.arange(n_frames) / options.frame_rate_hz
    flags = np.full(n_frames, FrameFlag.INDEX_TIME, np.uint32)
    times = FrameTimes(epoch=epoch, offsets_s=offsets, instant=options.time_instant,
                       source="index", uncertainty_s=None)
    note = (f"no trailer: header DateTime_UTC + index / {options.frame_rate_hz} Hz "
            "(index timing, as requested)")
    return times, flags, note


@hookimpl
def occcore_readers():
    yield ReaderSpec(name="ser", summary="SER video (LUCAM-RECORDER), 8/16-bit mono, Bayer, RGB",
                     patterns=("*.ser",), identify=_identify, open=_open, options=SerOptions)
