"""Open an ADV v1/v2 or AAV v1/v2 file as a lazy FrameSeries.

The header, tag tables and index are read once, then one vectorised pass reads every
frame's fixed header and status section (times, status tags). Pixels are decoded only
when a batch is asked for: uncompressed raw frames straight from a read-only memmap,
QuickLZ/LAGARITH16 frames through the codec kernels, difference-coded frames from their
key (or previous) frame, which is cached so that sequential batches decode each frame
once.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np

from occcore.model import FrameFlag, FrameSeries, FrameTimes
from occcore.plugin import CorruptSource, InputError

from . import _adv_codecs as codecs
from ._adv_format import UNSUPPORTED_LAYOUTS, AdvHeader, FrameTable, parse_header, scan_frames

log = logging.getLogger("occcore.adv")

EPOCH_2010 = np.datetime64("2010-01-01T00:00:00", "ns")
DAY_NS = 86_400 * 10**9
# 64-bit status tags that hold times, and the units writers are known to use for them
TIME_UNITS_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3}
FILETIME_1601_TO_2010_S = 12_937_766_400      # Windows FILETIME epoch (1601) to 2010
DOTNET_0001_TO_2010_S = 63_397_900_800        # .NET ticks epoch (0001) to 2010
DESCRIPTIVE_TAGS = {"observer": ("OBSERVER",), "telescope": ("TELESCOP", "TELESCOPE"),
                    "camera": ("CAMERA-MODEL", "CAMERA"), "object": ("OBJECT", "OBJNAME"),
                    "ra": ("RA_OBJ", "RA"), "dec": ("DEC_OBJ", "DEC"),
                    "longitude": ("LONGITUDE", "LONGITUDE-WGS84"),
                    "latitude": ("LATITUDE", "LATITUDE-WGS84"),
                    "altitude": ("ALTITUDE", "ALTITUDE-MSL"),
                    "recorder": ("RECORDER-SOFTWARE", "RECORDER", "AAVR-SOFTWARE-VERSION"),
                    "recorder_version": ("RECORDER-SOFTWARE-VERSION",),
                    "advlib_version": ("ADVLIB-VERSION",), "grabber": ("GRABBER",),
                    "video_mode": ("VIDEO-MODE", "NATIVE-VIDEO-STANDARD")}
GAIN_TAGS = ("EGAIN", "GAIN-E-PER-ADU", "CAMERA-E-PER-ADU", "E-PER-ADU")


def open_adv(path: Path, *, use_numba: bool | None = None) -> FrameSeries:
    name = str(path)
    data = np.memmap(path, np.uint8, "r")
    header = parse_header(data, name)
    if header.header_frame_count != len(header.index_offsets):
        raise CorruptSource(f"{name}: the header declares {header.header_frame_count} frames "
                            f"but the index lists {len(header.index_offsets)}")
    if len(header.index_offsets) == 0:
        raise InputError(f"{name}: the file holds no (MAIN stream) frame")
    table = scan_frames(data, header, name)
    _refuse_unsupported(header, table, name)
    decoder = FrameDecoder(data, header, table, name, use_numba)
    times, flags, time_meta = _frame_times(header, table, name)
    frame_meta, status_meta = _frame_meta(header, table, times, time_meta)
    meta = _file_meta(header, table, name, frame_meta)
    meta.update(time_meta["meta"])
    meta.update(status_meta)
    if decoder.crc_bytes:
        meta["crc32"] = ("SECTION-DATA-REDUNDANCY-CHECK = CRC32: each frame's CRC slot is "
                         "checked when the frame is read (a zero slot counts as not filled)")
    exposure = frame_meta["exposure_s"]
    exposure_s = float(np.median(exposure)) if np.all(exposure > 0) else None
    fmt = "aav" if header.is_aav else "adv"

    def on_close():
        decoder.close()

    return FrameSeries(n_frames=len(table.layout_id), height=header.height,
                       width=header.width, dtype=decoder.dtype, bit_depth=decoder.bit_depth,
                       times=times, exposure_s=exposure_s, read_batch=decoder.read_batch,
                       format=fmt, reader=fmt, source_name=name, meta=meta,
                       frame_meta=frame_meta, flags=flags,
                       gain_e_per_adu=_gain(header), on_close=on_close)


def _refuse_unsupported(header: AdvHeader, table: FrameTable, name: str):
    for layout_id in np.unique(table.layout_id):
        layout = header.layouts[int(layout_id)]
        first = int(np.flatnonzero(table.layout_id == layout_id)[0])
        kind = layout.data_layout
        if kind in UNSUPPORTED_LAYOUTS:
            raise InputError(f"{name}: frame {first} uses image layout {int(layout_id)} "
                             f"DATA-LAYOUT={kind} ({UNSUPPORTED_LAYOUTS[kind]}), which occcore "
                             "recognises but cannot read")
        if kind == "STATUS-CHANNEL-ONLY":
            raise InputError(f"{name}: frame {first} is STATUS-CHANNEL-ONLY (an AAV recording "
                             "of status data without images): there are no frames to reduce")
        if kind not in ("FULL-IMAGE-RAW", "12BIT-IMAGE-PACKED", "FULL-IMAGE-DIFFERENTIAL-CODING",
                        "FULL-IMAGE-DIFFERENTIAL-CODING-NOSIGNS"):
            raise InputError(f"{name}: frame {first}: unknown DATA-LAYOUT {kind!r}")
        if layout.compression not in ("UNCOMPRESSED", "QUICKLZ", "LAGARITH16"):
            raise InputError(f"{name}: frame {first}: unknown SECTION-DATA-COMPRESSION "
                             f"{layout.compression!r}")
        if layout.bpp not in (8, 12, 16):
            raise InputError(f"{name}: frame {first}: layout bit depth {layout.bpp} is not "
                             "8, 12 or 16")
        if layout.bpp == 12 and header.byte_order == ">":
            raise InputError(f"{name}: big-endian 12-bit packed ADV frames are not supported")
    if header.width * header.height % 2 and np.any(
            [header.layouts[int(k)].bpp == 12 for k in np.unique(table.layout_id)]):
        raise CorruptSource(f"{name}: 12-bit packed frames need an even pixel count, the "
                            f"image is {header.width}x{header.height}")


class FrameDecoder:
    """Decodes frames on demand; remembers the last decoded frame for difference coding."""

    def __init__(self, data, header: AdvHeader, table: FrameTable, name: str, use_numba):
        self.data = data
        self.header = header
        self.table = table
        self.name = name
        self.use_numba = use_numba
        self.bit_depth = header.data_bpp
        self.dtype = np.dtype(np.uint8 if header.data_bpp <= 8 else np.uint16)
        self.shape = (header.height, header.width)
        self.npix = header.height * header.width
        self.aav_v1 = header.version == 1 and header.is_aav
        dynabits = header.image_tags.get("IMAGE-DYNABITS", "")
        self.shift = (16 - header.data_bpp if dynabits.strip() == "16" and header.data_bpp < 16
                      else 0)
        self.crc_bytes = 4 if header.image_tags.get(
            "SECTION-DATA-REDUNDANCY-CHECK", "").upper() == "CRC32" else 0
        self.crc_unfilled = 0      # frames whose CRC slot is zero (reserved, not filled)
        self.cache: dict[int, np.ndarray] = {}
        diff = np.array([header.layouts[int(k)].is_diff for k in table.layout_id])
        self.needs_base = diff & (table.byte_mode == 2)
        starts = np.where(self.needs_base, -1, np.arange(len(diff)))
        self.chain_start = np.maximum.accumulate(starts)
        if np.any(self.chain_start < 0):
            k = int(np.flatnonzero(self.chain_start < 0)[0])
            raise CorruptSource(f"{name}: frame {k} is a difference frame with no key frame "
                                "before it")
        if header.data_bpp <= 8 and any(header.layouts[int(k)].bpp > 8
                                        for k in np.unique(table.layout_id)):
            self.dtype = np.dtype(np.uint16)
            self.bit_depth = 16
        self.direct = {int(k): self._direct_layout(header.layouts[int(k)])
                       for k in np.unique(table.layout_id)}

    def close(self):
        self.cache.clear()
        self.data = None

    def where(self, k: int) -> str:
        return f"{self.name}: frame {k}"

    # -- batches ---------------------------------------------------------------------------
    def read_batch(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start,) + self.shape, self.dtype)
        k = start
        while k < stop:
            if k + 1 < stop and self._lag16_pair(k):
                # two independent LAGARITH16 frames: one interleaved decoding loop
                self._decode_lag16_pair(k, out[k - start], out[k + 1 - start])
                k += 2
                continue
            if self.direct[int(self.table.layout_id[k])]:
                self._decode_direct(k, out[k - start])
            else:
                out[k - start] = self.frame(k)
            k += 1
        return out

    def _direct_layout(self, layout) -> bool:
        """Whether a layout's decompressed bytes are the output pixels as they are (no
        difference coding, byte swap, bit shift or CRC slot): those frames are decoded
        straight into the batch, with no per-frame allocation or copy."""
        if layout.is_diff or layout.compression not in ("QUICKLZ", "LAGARITH16"):
            return False
        if self.crc_bytes or sys.byteorder != "little":
            return False
        if layout.bpp == 16:
            return (self.header.byte_order == "<" and not self.shift
                    and self.dtype == np.uint16)
        return layout.bpp == 8 and self.dtype == np.uint8

    def _decode_direct(self, k: int, into: np.ndarray):
        """Decode frame k's layout bytes into ``into`` (one frame of the batch)."""
        layout = self.header.layouts[int(self.table.layout_id[k])]
        pixel_bytes = self._pixel_bytes(layout)
        flat = into.reshape(-1).view(np.uint8)
        if layout.compression == "QUICKLZ":
            raw = codecs.qlz_decompress(self._payload(k), pixel_bytes, self.where(k),
                                        self.use_numba, most=pixel_bytes + 64, out=flat)
        else:
            flat = flat.view(np.uint16)
            raw = codecs.lag16_decompress(self._payload(k), pixel_bytes, self.where(k),
                                          self.use_numba, out=flat)
        if raw is not flat:     # stored raw, or with trailing bytes: one copy
            into[...] = self._pixels(k, raw)

    def _decode_lag16_pair(self, k: int, into_a: np.ndarray, into_b: np.ndarray):
        layout = self.header.layouts[int(self.table.layout_id[k])]
        outs = None
        if self.direct[int(self.table.layout_id[k])]:
            outs = (into_a.reshape(-1).view(np.uint16), into_b.reshape(-1).view(np.uint16))
        raws = codecs.lag16_decompress_pair(
            self._payload(k), self._payload(k + 1), self._pixel_bytes(layout),
            self.where(k), self.where(k + 1), self.use_numba, outs=outs)
        if outs is None or raws[0] is not outs[0]:
            into_a[...] = self._pixels(k, raws[0])
            into_b[...] = self._pixels(k + 1, raws[1])

    def _lag16_pair(self, k: int) -> bool:
        ids = self.table.layout_id
        if ids[k] != ids[k + 1]:
            return False
        layout = self.header.layouts[int(ids[k])]
        return layout.compression == "LAGARITH16" and not layout.is_diff

    def _payload(self, k: int) -> np.ndarray:
        at = int(self.table.payload_at[k])
        return np.asarray(self.data[at:at + int(self.table.payload_len[k])])

    def frame(self, k: int) -> np.ndarray:
        if not self.needs_base[k]:
            return self._decode_plain(k)
        layout = self.header.layouts[int(self.table.layout_id[k])]
        key = int(self.chain_start[k])
        if layout.base_frame == "PREV-FRAME":
            base_index = k - 1
            if base_index not in self.cache:
                # walk forward from the key frame, keeping only the latest frame
                self.cache.clear()
                frame = self._decode_plain(key)
                for j in range(key + 1, k):
                    frame = self._apply_diff(j, frame)
                self.cache[base_index] = frame
            base = self.cache[base_index]
        else:
            if key not in self.cache:
                self.cache.clear()
                self.cache[key] = self._decode_plain(key)
            base = self.cache[key]
        return self._apply_diff(k, base)

    def _decode_plain(self, k: int) -> np.ndarray:
        """A frame that needs no base: raw, or a key frame (remembered for its followers)."""
        frame = self._pixels(k, self._layout_bytes(k))
        if self.header.layouts[int(self.table.layout_id[k])].is_diff:
            self.cache = {k: frame}
        return frame

    def _apply_diff(self, k: int, base: np.ndarray) -> np.ndarray:
        frame = self._pixels(k, self._layout_bytes(k), base)
        layout = self.header.layouts[int(self.table.layout_id[k])]
        if layout.base_frame == "PREV-FRAME":
            self.cache = {k: frame}
        return frame

    # -- one frame ---------------------------------------------------------------------------
    def _layout_bytes(self, k: int) -> np.ndarray:
        """The frame's layout bytes (decompressed), as a uint8 array."""
        layout = self.header.layouts[int(self.table.layout_id[k])]
        at = int(self.table.payload_at[k])
        payload = self.data[at:at + int(self.table.payload_len[k])]
        pixel_bytes = self._pixel_bytes(layout)
        if layout.compression == "UNCOMPRESSED":
            return payload
        if layout.compression == "QUICKLZ":
            most = 2 * pixel_bytes + self.npix // 8 + 64     # AAV difference data + extras
            return codecs.qlz_decompress(np.asarray(payload), pixel_bytes, self.where(k),
                                         self.use_numba, most=most)
        return codecs.lag16_decompress(np.asarray(payload), pixel_bytes, self.where(k),
                                       self.use_numba)

    def _pixel_bytes(self, layout) -> int:
        if layout.bpp == 16:
            return 2 * self.npix
        if layout.bpp == 12:
            return 3 * self.npix // 2
        return self.npix

    def _pixels(self, k: int, raw: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        layout = self.header.layouts[int(self.table.layout_id[k])]
        if self.aav_v1 and layout.is_diff:
            return self._aav_diff_pixels(k, raw, layout, base)
        need = self._pixel_bytes(layout)
        if len(raw) < need:
            raise CorruptSource(f"{self.where(k)}: {len(raw)} image bytes, the "
                                f"{layout.data_layout} {layout.bpp}-bit layout needs {need}")
        slot = raw[need:need + 4] if self.crc_bytes and len(raw) >= need + 4 else None
        raw = raw[:need]
        if layout.bpp == 16:
            values = np.frombuffer(raw, self.header.byte_order + "u2")
            if self.shift:
                values = values >> self.shift
        elif layout.bpp == 12:
            values = unpack12(raw)
        else:
            values = np.frombuffer(raw, np.uint8)
        values = values.reshape(self.shape)
        if base is None:
            frame = values.astype(self.dtype, copy=False)
        else:
            # ADV v1 difference frames: stored value = pixel - base, modulo the bit depth
            modulus = 1 << (12 if layout.bpp == 12 else layout.bpp)
            if self.shift:
                modulus = 1 << self.header.data_bpp
            frame = ((base.astype(np.int64) + values) % modulus).astype(self.dtype)
        if slot is not None:
            self._check_crc(k, slot, frame, raw)
        return frame

    def _check_crc(self, k: int, slot, frame: np.ndarray, stored: np.ndarray):
        """SECTION-DATA-REDUNDANCY-CHECK = CRC32: the 4 bytes after the pixels (LE) hold
        AdvLib's CRC of the frame's pixels as 16-bit little-endian words. A zero slot is
        a writer that reserved it without filling it (AdvLib with CRC off does that);
        the CRC of the stored layout bytes is accepted too (writers differ on which
        bytes they sum), anything else is damage."""
        expected = int.from_bytes(np.asarray(slot).tobytes(), "little")
        if expected == 0:
            self.crc_unfilled += 1
            return
        words = np.ascontiguousarray(frame, "<u2").reshape(-1).view(np.uint8)
        if codecs.adv_crc32(words) == expected:
            return
        if codecs.adv_crc32(np.asarray(stored)) == expected:
            return
        raise CorruptSource(f"{self.where(k)}: CRC32 check failed: the frame stores "
                            f"0x{expected:08x}, its pixels give "
                            f"0x{codecs.adv_crc32(words):08x} (the image data are damaged)")

    def _aav_diff_pixels(self, k, raw, layout, base):
        """AAV v1 difference layouts (OccuRec): mode byte, [sign bits], bytes, CRC."""
        n = self.npix
        if len(raw) < 1 + n:
            raise CorruptSource(f"{self.where(k)}: {len(raw)} bytes in an AAV difference "
                                f"frame of {n} pixels")
        mode = int(raw[0])
        if base is None or mode != 2:
            if base is not None:
                raise CorruptSource(f"{self.where(k)}: byte mode 2 in the frame header but "
                                    f"{mode} in the AAV layout data")
            return np.asarray(raw[1:1 + n]).reshape(self.shape).astype(self.dtype)
        if layout.data_layout.endswith("NOSIGNS"):
            delta = np.asarray(raw[1:1 + n])
            return ((base.reshape(-1) + delta.astype(base.dtype)) & 0xFF).reshape(
                self.shape).astype(self.dtype)
        sign_bytes = n // 8
        if len(raw) < 1 + sign_bytes + n:
            raise CorruptSource(f"{self.where(k)}: AAV signed difference frame cut short")
        signs = np.unpackbits(np.asarray(raw[1:1 + sign_bytes]), bitorder="little")
        signs = np.concatenate([signs, np.zeros(n - len(signs), np.uint8)])
        magnitude = np.asarray(raw[1 + sign_bytes:1 + sign_bytes + n]).astype(np.int64)
        values = base.reshape(-1).astype(np.int64) + np.where(signs == 1, -magnitude, magnitude)
        return (values & 0xFF).reshape(self.shape).astype(self.dtype)


def unpack12(raw) -> np.ndarray:
    """12-bit packed pixels: 3 bytes hold p1 bits 11..4 | p1 3..0, p2 11..8 | p2 7..0."""
    b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.uint16)
    out = np.empty((len(b), 2), np.uint16)
    out[:, 0] = (b[:, 0] << 4) | (b[:, 1] >> 4)
    out[:, 1] = ((b[:, 1] & 0x0F) << 8) | b[:, 2]
    return out.reshape(-1)


# -- times ------------------------------------------------------------------------------------

def _frame_times(header: AdvHeader, table: FrameTable, name: str):

    if header.version == 2:
        stamp_ns = table.stamp.astype(np.int64)
        exposure_s = table.exposure * 1e-9
        unit = "ns"
    else:
        stamp_ns = table.stamp.astype(np.int64) * 1_000_000
        exposure_s = table.exposure * 1e-4
        unit = "ms"
    n = len(stamp_ns)
    flags = np.zeros(n, np.uint32)
    valid = stamp_ns > 0
    if not np.any(valid):
        raise InputError(f"{name}: no frame carries a time stamp (all are zero): the file was "
                         "written with time stamps disabled")
    if not np.all(valid):
        flags[~valid] |= np.uint32(FrameFlag.BAD_TIME)
        # keep the series ordered: a frame without a stamp borrows the previous one
        index = np.maximum.accumulate(np.where(valid, np.arange(n), -1))
        first = int(np.flatnonzero(valid)[0])
        index[index < 0] = first
        stamp_ns = stamp_ns[index]
        log.warning("%s: %d frames have no time stamp (flagged BAD_TIME)", name,
                    int(np.sum(~valid)))
    steps = np.diff(stamp_ns)
    flags[1:][(steps == 0) & valid[1:]] |= np.uint32(FrameFlag.DUPLICATE_TIME)
    flags[1:][steps < 0] |= np.uint32(FrameFlag.NON_MONOTONIC)
    # the counts since 2010 are calendar time (no leap seconds): convert as calendar time
    utc = _calendar_ns_to_utc(stamp_ns)
    date_known = bool(stamp_ns[0] >= DAY_NS)
    notes = []
    if header.is_aav:
        has_ntp = any(tag.startswith("NTP") for tag, _ in header.status_tags)
        source = "ntp" if has_ntp else "pc-clock"
        notes.append(f"AAV container time ({'NTP-corrected' if has_ntp else 'PC clock'}), "
                     "(start+end)/2 of the integration: low trust; authoritative times are "
                     "the IOTA-VTI OSD (OCR) strings")
        uncertainty = None
    else:
        source = "header"
        notes.append("ADV container time stamps, mid-exposure, " +
                     ("ns since 2010-01-01 UTC" if header.version == 2 else
                      "ms since 2010-01-01 UTC (exposure in 0.1 ms)") +
                     ", calendar counts without leap seconds")
        uncertainty = (header.timestamp_accuracy_ns * 1e-9
                       if header.timestamp_accuracy_ns else None)
        writer = header.system_tags.get("RECORDER-SOFTWARE") or header.system_tags.get(
            "RECORDER")
        if writer:
            notes.append(f"written by {writer}")
    if not date_known:
        notes.append("time of day only: the container's date is 2010-01-01 (the ADV epoch), "
                     "so the real date is unknown; give it from elsewhere")
    if np.any(flags):
        notes.append(f"{int(np.count_nonzero(flags))} frames flagged (missing, duplicate or "
                     "non-monotonic stamps)")
    if isinstance(utc, tuple):
        epoch, offsets_s = utc
        times = FrameTimes(epoch=epoch, offsets_s=offsets_s, instant="mid", source=source,
                           uncertainty_s=uncertainty, note="; ".join(notes))
    else:
        times = FrameTimes.from_time(utc, instant="mid", source=source,
                                     uncertainty_s=uncertainty, note="; ".join(notes))
    meta = {"time_meaning": ("UTC mid-exposure " + ("ns" if unit == "ns" else "ms")
                             + " since 2010-01-01 without leap seconds, plus exposure"),
            "time_unit": unit, "date_known": date_known}
    if not date_known:
        meta["date_note"] = ("time of day only (container date 2010-01-01); the date must come "
                             "from the observer, the file name or other tags")
    return times, flags, {"meta": meta, "stamp_ns": stamp_ns, "exposure_s": exposure_s}


def _calendar_ns_to_utc(stamp_ns: np.ndarray):
    """(epoch Time, offsets_s) of calendar ns counts since 2010, or a Time array.

    An astropy Time array of every frame costs about a millisecond per frame (most of
    ``occcore info``'s time on a long file); the offsets are plain differences of the
    counts unless a leap second falls inside the recording, which two scalar Times show.
    """
    from astropy.time import Time

    first, low, high = (Time(EPOCH_2010 + np.timedelta64(int(v), "ns"), scale="utc")
                        for v in (stamp_ns[0], stamp_ns.min(), stamp_ns.max()))
    calendar_span_s = (int(stamp_ns.max()) - int(stamp_ns.min())) * 1e-9
    if abs((high - low).to_value("s") - calendar_span_s) < 1e-6:
        return first, (stamp_ns - stamp_ns[0]) * 1e-9
    return Time(EPOCH_2010 + stamp_ns.astype("timedelta64[ns]"), scale="utc")


def _detect_time_unit(values: np.ndarray, stamp_ns: np.ndarray):
    """Which unit makes a 64-bit time tag agree with the frame stamps (within a day)."""
    ok = values > 0
    if not np.any(ok):
        return None, None
    frame_s = stamp_ns * 1e-9
    best = None
    candidates = [(unit, scale, 0.0) for unit, scale in TIME_UNITS_S.items()]
    candidates += [("windows-filetime", 1e-7, -FILETIME_1601_TO_2010_S),
                   ("dotnet-ticks", 1e-7, -DOTNET_0001_TO_2010_S)]
    for unit, scale, shift in candidates:
        since_2010_s = values.astype(np.float64) * scale + shift
        error = float(np.median(np.abs(since_2010_s[ok] - frame_s[ok])))
        if error < 86_400 and (best is None or error < best[2]):
            best = (unit, since_2010_s - frame_s, error)
    if best is None:
        return None, None
    return best[0], np.where(ok, best[1], np.nan)


def _frame_meta(header: AdvHeader, table: FrameTable, times, time_meta):
    stamp_ns = time_meta["stamp_ns"]
    frame_meta = {"exposure_s": np.asarray(time_meta["exposure_s"], np.float64),
                  "stamp_" + time_meta["meta"]["time_unit"] + "_since_2010":
                      table.stamp.astype(np.int64),
                  "layout_id": table.layout_id, "byte_mode": table.byte_mode}
    if table.start_ticks is not None:
        frame_meta["start_ticks"] = table.start_ticks
        frame_meta["end_ticks"] = table.end_ticks
        frame_meta["index_elapsed_ticks"] = header.index_elapsed
    else:
        frame_meta["index_elapsed_ms"] = header.index_elapsed
    units = {}
    types = dict(header.status_tags)
    for tag, values in table.status.items():
        present = [v is not None for v in values]
        if all(present):
            array = np.asarray(values)
            if array.dtype.kind == "U":
                array = np.asarray(values, dtype=object)
        else:
            array = np.asarray(values, dtype=object)
        frame_meta[tag] = array
        is_64 = types[tag] == 3
        if is_64 and any(present) and ("time" in tag.lower()):
            numbers = np.array([v if v is not None else 0 for v in values], np.float64)
            unit, offset_s = _detect_time_unit(numbers, stamp_ns)
            units[tag] = unit or "unknown (agrees with the frame stamps in no known unit)"
            if unit is not None:
                frame_meta[f"{tag}_minus_frame_s"] = offset_s
    return frame_meta, {"status_time_units": units}


# -- file metadata -----------------------------------------------------------------------------

def _number(text):
    try:
        return float(str(text).strip().replace(",", "."))
    except (TypeError, ValueError):
        return None


def _gain(header: AdvHeader):
    for key in GAIN_TAGS:
        value = _number(header.system_tags.get(key) or header.user_tags.get(key))
        if value is not None and value > 0:
            return value
    return None


def _file_meta(header: AdvHeader, table: FrameTable, name: str, frame_meta) -> dict:
    tags = {**header.system_tags, **header.user_tags}
    meta = {key: next((tags[k] for k in names if k in tags), None)
            for key, names in DESCRIPTIVE_TAGS.items()}
    meta = {k: v for k, v in meta.items() if v is not None}
    meta.update({
        "adv_version": header.version,
        "container": ("AAV" if header.is_aav else "ADV") + f" v{header.version}",
        "image_bit_depth": header.data_bpp,
        "byte_order": "big-endian" if header.byte_order == ">" else "little-endian",
        "layouts": {str(k): {"data_layout": v.data_layout, "compression": v.compression,
                             "bpp": v.bpp, "tags": dict(v.tags)}
                    for k, v in header.layouts.items()},
        "layouts_used": sorted({int(k) for k in table.layout_id}),
        "system_tags": dict(header.system_tags),
        "user_tags": dict(header.user_tags),
        "image_tags": dict(header.image_tags),
        "status_tags": {tag: _type_name(header, code) for tag, code in header.status_tags},
        "calibration_frames": header.calibration_frames,
    })
    if header.streams:
        meta["streams"] = [{k: v for k, v in s.items()} for s in header.streams]
        meta["clock_hz"] = header.streams[0]["clock_hz"]
    if header.timestamp_accuracy_ns is not None:
        meta["timestamp_accuracy_s"] = header.timestamp_accuracy_ns * 1e-9
    if header.calibration_frames:
        meta["notes"] = [f"{header.calibration_frames} CALIBRATION-stream frames are not part "
                         "of the series"]
    if header.is_aav:
        meta.update(_aav_meta(header, name, frame_meta))
    return meta


def _type_name(header, code):
    from ._adv_format import V1_TYPES, V2_TYPES
    return (V2_TYPES if header.version == 2 else V1_TYPES).get(code, f"unknown type {code}")


def _aav_meta(header: AdvHeader, name: str, frame_meta) -> dict:
    tags = header.system_tags
    out = {"aav_version": tags.get("AAV-VERSION", "1" if header.version == 1 else None),
           "frame_combining": tags.get("FRAME-COMBINING")}
    native = _number(tags.get("NATIVE-FRAME-RATE"))
    effective = _number(tags.get("EFFECTIVE-FRAME-RATE"))
    integration = {"native_fps": native, "effective_fps": effective, "factor": None}
    if native and effective:
        integration["factor"] = int(round(native / effective))
    stacking = _number(tags.get("FRAME-STACKING-RATE"))
    if stacking:
        integration["stacking_rate"] = stacking
    for first_key, last_key in (("StartFrame", "EndFrame"),):
        if first_key in frame_meta and last_key in frame_meta:
            first, last = frame_meta[first_key], frame_meta[last_key]
            try:
                fields = np.asarray(last, np.float64) - np.asarray(first, np.float64) + 1
            except (TypeError, ValueError):
                continue
            out["osd_fields"] = {"first": first[0], "last": last[0],
                                 "fields_per_frame_median": float(np.median(fields))}
            integration["fields_per_frame"] = float(np.median(fields))
    out["integration"] = integration
    first, last = _number(tags.get("OSD-FIRST-LINE")), _number(tags.get("OSD-LAST-LINE"))
    if first is not None and last is not None:
        rows = [int(first), int(last)]
        if rows[1] > header.height - 1:
            out["osd_last_line_in_file"] = rows[1]
            out["osd_rows_note"] = (f"OSD-LAST-LINE {rows[1]} exceeds the image height "
                                    f"{header.height}; clipped to {header.height - 1}")
            rows[1] = header.height - 1
        rows[0] = max(0, min(rows[0], header.height - 1))
        out["osd_rows"] = rows
    return out
