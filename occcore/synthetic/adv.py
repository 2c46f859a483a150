"""Writers of ADV v1/v2 and AAV v1/v2 files for tests, with QuickLZ-1 and LAGARITH16
encoders, all written from the format description (``shared/design/formats.md`` §1).

``write_adv(path, frames, times, ...)`` writes one file with one image layout; every
layout and codec the readers know can be chosen, so each is tested by round trip.
Output is deterministic (no clocks, no randomness). The encoders are compiled with
numba when it is installed (imported lazily) and run as plain Python otherwise.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

FRAME_MAGIC = b"\xff\x22\x01\xee"
EPOCH_2010 = np.datetime64("2010-01-01T00:00:00", "ns")
QLZ_TAIL_BYTES = 10


# -- QuickLZ level 1 ---------------------------------------------------------------------------

def _qlz1_encode_kernel(src, out, table):
    """Body of a QuickLZ-1 block (control words + literals + matches); returns its length.

    The hash table is kept exactly as a level-1 decoder rebuilds it (every position up to
    three bytes before the current one, match starts, nothing inside a match), so every
    back-reference the decoder looks up is the one chosen here.
    """
    n = src.shape[0]
    for i in range(4096):
        table[i] = -1
    last_hashed = -1
    last_matchstart = n - 1 - QLZ_TAIL_BYTES
    cword_at = 0
    o = 4
    flags = 0
    nflags = 0
    s = 0
    while s < n:
        if nflags == 31:
            word = flags | (1 << 31)
            for b in range(4):
                out[cword_at + b] = (word >> (8 * b)) & 0xFF
            cword_at = o
            o += 4
            flags = 0
            nflags = 0
        length = 0
        h = 0
        if s <= last_matchstart:
            while last_hashed < s - 3:
                last_hashed += 1
                p = last_hashed
                v = np.int64(src[p]) | (np.int64(src[p + 1]) << 8) | (np.int64(src[p + 2]) << 16)
                table[((v >> 12) ^ v) & 0xFFF] = p
            v = np.int64(src[s]) | (np.int64(src[s + 1]) << 8) | (np.int64(src[s + 2]) << 16)
            h = ((v >> 12) ^ v) & 0xFFF
            cand = table[h]
            if cand >= 0 and s - cand >= 3:
                most = min(255, n - 4 - s)
                while length < most and src[cand + length] == src[s + length]:
                    length += 1
        if length >= 3:
            flags |= 1 << nflags
            nflags += 1
            if length <= 17:
                code = (h << 4) | (length - 2)
                out[o] = code & 0xFF
                out[o + 1] = code >> 8
                o += 2
            else:
                code = h << 4
                out[o] = code & 0xFF
                out[o + 1] = code >> 8
                out[o + 2] = length
                o += 3
            while last_hashed < s:
                last_hashed += 1
                p = last_hashed
                v = np.int64(src[p]) | (np.int64(src[p + 1]) << 8) | (np.int64(src[p + 2]) << 16)
                table[((v >> 12) ^ v) & 0xFFF] = p
            s += length
            last_hashed = s - 1
        else:
            out[o] = src[s]
            o += 1
            s += 1
            nflags += 1
    word = flags | (1 << 31)
    for b in range(4):
        out[cword_at + b] = (word >> (8 * b)) & 0xFF
    return o


def qlz1_compress(raw: bytes) -> bytes:
    """One QuickLZ 1.5.0 level-1, non-streaming block (stored raw when it does not shrink)."""
    src = np.frombuffer(raw, np.uint8)
    n = len(src)
    header = 3 if n < 216 else 9
    out = np.zeros(n + n // 4 + 64, np.uint8)     # literals + a control word per 31
    body = int(_kernels()[0](src, out, np.empty(4096, np.int64))) if n else 0
    compressed = n > 0 and body < n
    payload = out[:body].tobytes() if compressed else bytes(raw)
    csize = header + len(payload)
    flags = 0x40 | (1 << 2) | (2 if header == 9 else 0) | (1 if compressed else 0)
    if header == 9:
        head = struct.pack("<BII", flags, csize, n)
    else:
        head = struct.pack("<BBB", flags, csize, n)
    return head + payload


# -- LAGARITH16 ---------------------------------------------------------------------------------

def _lag16_encode_kernel(codes, cum, prob, out):
    """Range-code symbol indices ``codes`` (table order) into ``out``; returns bytes used."""
    low = 0
    rng = 1 << 31
    o = 0
    for i in range(codes.shape[0]):
        x = codes[i]
        r = rng >> 20
        low += cum[x] * r
        rng = prob[x] * r
        if low >= (1 << 32):
            low -= 1 << 32
            j = o - 1
            while out[j] == 255:
                out[j] = 0
                j -= 1
            out[j] += 1
        while rng <= (1 << 23):
            out[o] = (low >> 24) & 0xFF
            o += 1
            low = (low << 8) & 0xFFFFFFFF
            rng <<= 8
    for b in range(4):
        out[o] = (low >> (24 - 8 * b)) & 0xFF
        o += 1
    return o


def _probabilities(counts: np.ndarray) -> np.ndarray:
    """Scale counts to integers >= 1 summing to 2^20 (counts sorted by falling frequency)."""
    total = 1 << 20
    prob = np.maximum(1, np.floor(counts * total / counts.sum() + 0.5)).astype(np.int64)
    prob[0] += total - prob.sum()
    while prob[0] < 1:              # many rare symbols: take from the larger ones
        k = int(np.argmax(prob[1:])) + 1
        prob[k] -= 1
        prob[0] += 1
    return prob


def lag16_compress(raw: bytes) -> bytes:
    """LAGARITH16: the bytes as LE uint16 symbols, a static model and a range coder."""
    if len(raw) % 2:
        raise ValueError("LAGARITH16 needs an even number of bytes")
    symbols = np.frombuffer(raw, "<u2")
    values, inverse, counts = np.unique(symbols, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    values, counts = values[order], counts[order]
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    head = struct.pack("<H", len(values) - 1) + values.astype("<u2").tobytes()
    if len(values) == 1:
        return head
    prob = _probabilities(counts.astype(np.int64))
    order = np.argsort(-prob, kind="stable")          # the table must fall monotonically
    values, prob = values[order], prob[order]
    rerank = np.empty(len(order), np.int64)
    rerank[order] = np.arange(len(order))
    codes = rerank[rank[inverse.reshape(-1)]]
    head = struct.pack("<H", len(values) - 1) + values.astype("<u2").tobytes()
    bits = []
    max_val = 1 << 19
    for v in prob.tolist():
        if max_val <= 1:
            continue
        new_max, a = 0, 1
        while a <= max_val:
            bits.append(1 if v & a else 0)
            if v & a:
                new_max = a
            a <<= 1
        max_val = new_max
    table = np.packbits(np.array(bits, np.uint8), bitorder="little").tobytes()
    cum = np.concatenate([[0], np.cumsum(prob)]).astype(np.int64)
    out = np.zeros(3 * len(symbols) + 64, np.uint8)   # rare symbols cost up to 20 bits
    used = int(_kernels()[1](codes.astype(np.int64), cum, prob, out))
    stream = head + table + out[:used].tobytes()
    if len(stream) >= len(raw):
        return b"\0" * 8 + bytes(raw)          # incompressible: stored raw
    return stream


_KERNELS: list = []


def _kernels():
    if not _KERNELS:
        try:
            import numba
            jit = numba.njit(cache=True)
            _KERNELS.extend([jit(_qlz1_encode_kernel), jit(_lag16_encode_kernel)])
        except ImportError:
            _KERNELS.extend([_qlz1_encode_kernel, _lag16_encode_kernel])
    return _KERNELS


# -- pixel layouts ------------------------------------------------------------------------------

def pack12(values: np.ndarray) -> bytes:
    v = np.asarray(values, np.uint16).reshape(-1, 2)
    out = np.empty((len(v), 3), np.uint8)
    out[:, 0] = v[:, 0] >> 4
    out[:, 1] = ((v[:, 0] & 0x0F) << 4) | (v[:, 1] >> 8)
    out[:, 2] = v[:, 1] & 0xFF
    return out.tobytes()


def _pixel_bytes(frame: np.ndarray, bpp: int, order: str) -> bytes:
    if bpp == 16:
        return np.asarray(frame, np.uint16).astype(order + "u2").tobytes()
    if bpp == 12:
        return pack12(frame)
    return np.asarray(frame, np.uint8).tobytes()


def _string(text: str, width: int) -> bytes:
    raw = str(text).encode("utf-8")
    return (struct.pack("<B", len(raw)) if width == 1 else struct.pack("<H", len(raw))) + raw


def _tags(tags: dict, count_fmt: str, width: int) -> bytes:
    return struct.pack("<" + count_fmt, len(tags)) + b"".join(
        _string(k, width) + _string(v, width) for k, v in tags.items())


def _status_value(code: int, value, version: int) -> bytes:
    fixed = ({0: "<B", 1: "<H", 2: "<I", 3: "<q", 4: "<f"} if version == 2 else
             {0: "<B", 1: "<H", 2: "<I", 3: "<Q", 4: "<f"})
    if code in fixed:
        return struct.pack(fixed[code], value)
    if code == 5:
        return _string(value, 2 if version == 2 else 1)
    if code == 6 and version == 1:
        items = list(value)
        return struct.pack("<B", len(items)) + b"".join(_string(s, 1) for s in items)
    raise ValueError(f"status type {code} is not defined for ADV v{version}")


def _mid_stamps(times, n: int, version: int):
    """Mid-exposure stamps as calendar counts since 2010 (ns for v2, ms for v1)."""
    ns = (np.asarray(times.utc.datetime64, "datetime64[ns]") - EPOCH_2010).astype(np.int64)
    ns = np.broadcast_to(ns, (n,))
    return ns if version == 2 else np.round(ns / 1e6).astype(np.int64)


def write_adv(path, frames, times=None, *, version: int = 2, container: str = "adv",
              layout: str = "FULL-IMAGE-RAW", bpp: int | None = None,
              data_bpp: int | None = None, compression: str = "UNCOMPRESSED",
              base_frame: str = "KEY-FRAME", key_frame_every: int = 4,
              exposure_s: float = 0.04, stamps=None, status: dict | None = None,
              system_tags: dict | None = None, user_tags: dict | None = None,
              image_tags: dict | None = None, stream_tags: dict | None = None,
              timestamp_accuracy_ns: int = 1_000_000, clock_hz: int = 10_000_000,
              byte_order: str = "LITTLE-ENDIAN", crc_slot: bool = True,
              crc32: bool = False) -> Path:
    """Write ``frames`` (n, h, w) as an ADV/AAV file.

    ``times`` are astropy Times of mid-exposure (or ``stamps``: raw integer stamps, ns for
    v2 and ms for v1, since 2010-01-01 calendar time). ``status`` maps a status tag name
    to ``(type code, per-frame values)`` (a value None leaves the tag out of that frame).
    ``container="aav"`` writes the AAV tags (v1: ``FSTF-TYPE=AAV``; v2: ``AAV-VERSION=2``)
    and, for v1 difference layouts, OccuRec's layout data (mode byte, sign bits, CRC).
    ``crc32=True`` sets ``SECTION-DATA-REDUNDANCY-CHECK=CRC32`` and writes AdvLib's CRC
    of each frame's pixels (16-bit LE words) in a 4-byte slot after the pixels (not in
    LAGARITH16 frames, which hold the pixels only, nor in AAV v1 difference layouts).
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    n, height, width = frames.shape
    if bpp is None:
        bpp = 12 if layout == "12BIT-IMAGE-PACKED" else (8 if frames.dtype == np.uint8 else 16)
    data_bpp = data_bpp or (8 if bpp == 8 else bpp)
    order = ">" if byte_order == "BIG-ENDIAN" else "<"
    aav = container == "aav"
    diff = layout.startswith("FULL-IMAGE-DIFFERENTIAL-CODING")
    if diff and version == 2:
        raise ValueError("ADV v2 has no difference-coded layouts")
    if aav and diff and layout.endswith("CODING") and (width * height) % 8:
        raise ValueError("AAV signed difference frames need a pixel count divisible by 8")
    if stamps is None:
        stamps = _mid_stamps(times, n, version)
    stamps = np.asarray(stamps, np.int64)
    width_s = 2 if version == 2 else 1
    system = dict(system_tags or {})
    if aav:
        system.setdefault("FSTF-TYPE", "AAV" if version == 1 else "ADV")
        system.setdefault("AAV-VERSION", str(version))
        system.setdefault("RECORDER-SOFTWARE", "occcore synthetic AAV")
    else:
        system.setdefault("FSTF-TYPE", "ADV")
        system.setdefault("RECORDER-SOFTWARE", "occcore synthetic ADV")
    system.setdefault("ADV-VERSION", str(version))
    system.setdefault("WIDTH", str(width))
    system.setdefault("HEIGHT", str(height))
    system.setdefault("BITPIX", str(data_bpp))
    layout_tags = {"DATA-LAYOUT": layout, "SECTION-DATA-COMPRESSION": compression}
    if diff:
        layout_tags["DIFFCODE-BASE-FRAME"] = base_frame
        layout_tags["DIFFCODE-KEY-FRAME-FREQUENCY"] = str(key_frame_every)
    images = dict(image_tags or {})
    images.setdefault("IMAGE-BYTE-ORDER", byte_order)
    if crc32:
        images["SECTION-DATA-REDUNDANCY-CHECK"] = "CRC32"
    status = dict(status or {})
    status_decl = [(name, code) for name, (code, _) in status.items()]

    # sections
    layout_version = 2 if version == 2 else 1
    image_section = (struct.pack("<BIIBB", layout_version, width, height, data_bpp, 1)
                     + struct.pack("<BBBB", 0, layout_version, bpp, len(layout_tags))
                     + b"".join(_string(k, width_s) + _string(v, width_s)
                                for k, v in layout_tags.items())
                     + struct.pack("<B", len(images))
                     + b"".join(_string(k, width_s) + _string(v, width_s)
                                for k, v in images.items()))
    if version == 2:
        status_section = struct.pack("<BqB", 2, timestamp_accuracy_ns, len(status_decl))
    else:
        status_section = struct.pack("<BB", 1, len(status_decl))
    status_section += b"".join(_string(k, width_s) + struct.pack("<B", c)
                               for k, c in status_decl)

    # frames
    exposure = (int(round(exposure_s * 1e9)) if version == 2 else int(round(exposure_s * 1e4)))
    period_ticks = int(round(exposure_s * clock_hz))
    base = None
    blobs = []
    for k in range(n):
        frame = frames[k]
        mode = 0
        if diff:
            mode = 1 if k % key_frame_every == 0 else 2
        data = _layout_data(frame, base, mode, layout, bpp, order, aav, version, crc_slot,
                            crc32)
        if diff and (mode == 1 or base_frame == "PREV-FRAME"):
            base = frame
        if compression == "QUICKLZ":
            data = qlz1_compress(data)
        elif compression == "LAGARITH16":
            if aav and diff:
                raise ValueError("LAGARITH16 on AAV difference layouts is not supported")
            data = lag16_compress(data[:len(_pixel_bytes(frame, bpp, order))])
        image = struct.pack("<IBB", len(data) + 2, 0, mode) + data
        entries = b""
        count = 0
        for index, (_name, (code, values)) in enumerate(status.items()):
            if values[k] is None:
                continue
            entries += struct.pack("<B", index) + _status_value(code, values[k], version)
            count += 1
        if version == 2:
            body = struct.pack("<qIB", int(stamps[k]), exposure, count) + entries
            head = struct.pack("<Bqq", 0, k * period_ticks, (k + 1) * period_ticks)
            image = head + image
        else:
            body = struct.pack("<B", count) + entries
            image = struct.pack("<qI", int(stamps[k]), exposure) + image
        blobs.append(FRAME_MAGIC + image + struct.pack("<I", len(body)) + body)

    if version == 2:
        return _assemble_v2(path, blobs, image_section, status_section, system,
                            dict(user_tags or {}), dict(stream_tags or {}), clock_hz,
                            period_ticks)
    return _assemble_v1(path, blobs, image_section, status_section, system,
                        dict(user_tags or {}), stamps)


def advlib_crc32(data: bytes) -> int:
    """AdvLib's frame CRC, computed literally as defined (slow; for writing test files):
    MSB-first CRC-32, polynomial 0x04C11DB7, the register starting as the complement of
    the first 4 bytes, then ``r = (r << 8 | byte) ^ table[r >> 24]`` for each later
    byte, complemented at the end."""
    table = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if c & 0x80000000 else (c << 1) & 0xFFFFFFFF
        table.append(c)
    r = ~int.from_bytes(data[:4], "big") & 0xFFFFFFFF
    for byte in data[4:]:
        r = ((r << 8 | byte) & 0xFFFFFFFF) ^ table[r >> 24]
    return ~r & 0xFFFFFFFF


def _layout_data(frame, base, mode, layout, bpp, order, aav, version, crc_slot,
                 crc32=False) -> bytes:
    crc = b"\0\0\0\0"
    if aav and version == 1 and layout.startswith("FULL-IMAGE-DIFFERENTIAL-CODING"):
        # OccuRec's layout data: mode byte, [sign bits], bytes, CRC (and for NOSIGNS a copy
        # of the undifferenced frame)
        pixels = np.asarray(frame, np.uint8).reshape(-1)
        if mode == 1:
            tail = pixels.tobytes() if layout.endswith("NOSIGNS") else b""
            return bytes([1]) + pixels.tobytes() + crc + tail
        prev = np.asarray(base, np.uint8).reshape(-1).astype(np.int16)
        now = pixels.astype(np.int16)
        if layout.endswith("NOSIGNS"):
            return bytes([2]) + ((now - prev) & 0xFF).astype(np.uint8).tobytes() + crc + \
                pixels.tobytes()
        negative = now <= prev
        signs = np.packbits(negative.astype(np.uint8), bitorder="little")[:len(now) // 8]
        return bytes([2]) + signs.tobytes() + np.abs(now - prev).astype(np.uint8).tobytes() + crc
    if crc32:
        pixels = np.ascontiguousarray(frame, "<u2").tobytes()
        crc = struct.pack("<I", advlib_crc32(pixels))
    if mode == 2:
        modulus = 1 << bpp
        frame = ((np.asarray(frame, np.int64) - np.asarray(base, np.int64)) % modulus)
    data = _pixel_bytes(frame, bpp, order)
    if crc32 or (bpp == 12 and version == 2 and crc_slot):
        data += crc          # AdvLib appends a CRC slot to packed 12-bit frames
    return data


def _assemble_v2(path, blobs, image_section, status_section, system, user, stream_tags,
                 clock_hz, period_ticks) -> Path:
    main_tags = _tags(stream_tags, "B", 2)
    cal_tags = _tags({}, "B", 2)

    def file_header(index_at, system_at, user_at, main_at, cal_at, image_at, status_at):
        return (b"FSTF" + struct.pack("<BIqqqB", 2, 0, index_at, system_at, user_at, 2)
                + _string("MAIN", 2) + struct.pack("<IqIq", len(blobs), clock_hz, 1, main_at)
                + _string("CALIBRATION", 2) + struct.pack("<IqIq", 0, clock_hz, 1, cal_at)
                + struct.pack("<B", 2) + _string("IMAGE", 2) + struct.pack("<q", image_at)
                + _string("STATUS", 2) + struct.pack("<q", status_at))

    head_len = len(file_header(0, 0, 0, 0, 0, 0, 0))
    main_at = head_len
    cal_at = main_at + len(main_tags)
    image_at = cal_at + len(cal_tags)
    status_at = image_at + len(image_section)
    system_blob = _tags(system, "I", 2)
    system_at = status_at + len(status_section)
    frames_at = system_at + len(system_blob)
    offsets = frames_at + np.concatenate([[0], np.cumsum([len(b) for b in blobs])[:-1]])
    index_at = frames_at + sum(len(b) for b in blobs)
    entries = b"".join(struct.pack("<qqI", k * period_ticks, int(offsets[k]), len(b) - 4)
                       for k, b in enumerate(blobs))
    index = struct.pack("<BII", 2, 9, 13 + len(entries)) + struct.pack("<I", len(blobs)) + \
        entries + struct.pack("<I", 0)
    user_at = index_at + len(index)
    with open(path, "wb") as fh:
        fh.write(file_header(index_at, system_at, user_at, main_at, cal_at, image_at,
                             status_at))
        fh.write(main_tags + cal_tags + image_section + status_section + system_blob)
        for blob in blobs:
            fh.write(blob)
        fh.write(index + _tags(user, "I", 2))
    return path


def _assemble_v1(path, blobs, image_section, status_section, system, user, stamps) -> Path:
    def file_header(index_at, system_at, user_at, image_at, status_at):
        return (b"FSTF" + struct.pack("<BIqqqB", 1, len(blobs), index_at, system_at, user_at, 2)
                + _string("IMAGE", 1) + struct.pack("<q", image_at)
                + _string("STATUS", 1) + struct.pack("<q", status_at))

    image_at = len(file_header(0, 0, 0, 0, 0))
    status_at = image_at + len(image_section)
    frames_at = status_at + len(status_section)
    offsets = frames_at + np.concatenate([[0], np.cumsum([len(b) for b in blobs])[:-1]])
    index_at = frames_at + sum(len(b) for b in blobs)
    elapsed = stamps - stamps[0]
    index = struct.pack("<I", len(blobs)) + b"".join(
        struct.pack("<IqI", int(elapsed[k]), int(offsets[k]), len(b) - 4)
        for k, b in enumerate(blobs))
    system_blob = _tags(system, "I", 1)
    system_at = index_at + len(index)
    user_at = system_at + len(system_blob)
    with open(path, "wb") as fh:
        fh.write(file_header(index_at, system_at, user_at, image_at, status_at))
        fh.write(image_section + status_section)
        for blob in blobs:
            fh.write(blob)
        fh.write(index + system_blob + _tags(user, "I", 1))
    return path
