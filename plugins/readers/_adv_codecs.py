"""The two ADV compression codecs, decoders only: QuickLZ 1.5.0 level 1 and LAGARITH16.

Written from the format description in ``shared/design/formats.md`` §1.5 (not from
QuickLZ's or AdvLib's code). Both decoders are sequential byte/symbol loops; the same
kernel source runs compiled by numba when it is installed (fast) or interpreted by
CPython (slow, about a second per 640x480 frame). Kernels return a negative code on
corrupt input instead of raising, so the compiled and interpreted paths behave the same;
the wrappers turn codes into :class:`CorruptSource` naming the file and frame.
"""
from __future__ import annotations

import logging

import numpy as np

from occcore.plugin import CorruptSource

log = logging.getLogger("occcore.adv")

QLZ_HASH_SIZE = 4096
# Decoding switches to byte-by-byte literals in the last bytes of a block: the
# compressor never starts a match after (last byte - 6 - 4).
QLZ_TAIL_BYTES = 10
LAG_FRACTION_BITS = 20
LAG_LOOKUP_BITS = 16


def qlz1_kernel(src, start, dst, table):
    """Decode one QuickLZ level-1 block body ``src[start:]`` into ``dst`` (uint8).

    ``table`` is a 4096-entry int32 scratch array (the hash -> position table the
    compressor kept; a level-1 decoder rebuilds it in lock-step). Returns the number of
    bytes written, or -1 (input ends early), -2 (back-reference to nowhere), -3 (bad
    match length).
    """
    n = dst.shape[0]
    srclen = src.shape[0]
    for i in range(QLZ_HASH_SIZE):
        table[i] = -1
    last_hashed = -1
    last_matchstart = n - 1 - QLZ_TAIL_BYTES
    cword = 1
    s = start
    d = 0
    while True:
        if cword == 1:
            if s + 4 > srclen:
                return -1
            cword = (np.int64(src[s]) | (np.int64(src[s + 1]) << 8) | (np.int64(src[s + 2]) << 16)
                     | (np.int64(src[s + 3]) << 24))
            s += 4
        if cword & 1:
            cword >>= 1
            if s + 2 > srclen:
                return -1
            f0 = np.int64(src[s])
            f1 = np.int64(src[s + 1])
            h = (f0 >> 4) | (f1 << 4)
            code = f0 & 0xF
            if code != 0:
                mlen = code + 2
                s += 2
            else:
                if s + 3 > srclen:
                    return -1
                mlen = np.int64(src[s + 2])
                s += 3
            o = table[h]
            if mlen < 3 or d + mlen > n:
                return -3
            if o < 0 or o >= d:
                return -2
            for i in range(mlen):       # forward copy: overlapping runs repeat bytes
                dst[d + i] = dst[o + i]
            # hash every position up to the match start, none inside the match
            while last_hashed < d:
                last_hashed += 1
                p = last_hashed
                v = np.int64(dst[p]) | (np.int64(dst[p + 1]) << 8) | (np.int64(dst[p + 2]) << 16)
                table[((v >> 12) ^ v) & 0xFFF] = p
            d += mlen
            last_hashed = d - 1
        elif d < last_matchstart:
            low = cword & 0xF
            if low == 0:
                nlit = 4
            elif low & 1:
                nlit = 0                # unreachable: bit 0 is clear here
            elif low & 2:
                nlit = 1
            elif low & 4:
                nlit = 2
            else:
                nlit = 3
            if s + nlit > srclen:
                return -1
            for i in range(nlit):
                dst[d + i] = src[s + i]
            cword >>= nlit
            d += nlit
            s += nlit
            if last_hashed < d - 3:
                # rolling 24-bit window: one new byte per hashed position
                p = last_hashed + 1
                v = np.int64(dst[p]) | (np.int64(dst[p + 1]) << 8)
                while p <= d - 3:
                    v = (v & 0xFFFF) | (np.int64(dst[p + 2]) << 16)
                    table[((v >> 12) ^ v) & 0xFFF] = p
                    v >>= 8
                    p += 1
                last_hashed = d - 3
        else:
            while d < n:
                if cword == 1:
                    s += 4              # a control word whose bits the tail ignores
                    cword = 1 << 31
                if s >= srclen:
                    return -1
                dst[d] = src[s]
                d += 1
                s += 1
                cword >>= 1
            return d


def lag16_kernel(src, start, end, out):
    """Decode a LAGARITH16 stream ``src[start:end]`` into ``out`` (uint16 symbols).

    Returns the number of symbols, or -1 (input ends early), -4 (bad probability
    table), -5 (code value outside the range: corrupt data).
    """
    n = out.shape[0]
    p = start
    if p + 2 > end:
        return -1
    nsym = (np.int64(src[p]) | (np.int64(src[p + 1]) << 8)) + 1
    p += 2
    if p + 2 * nsym > end:
        return -1
    values = np.empty(nsym, np.int64)
    for k in range(nsym):
        values[k] = np.int64(src[p + 2 * k]) | (np.int64(src[p + 2 * k + 1]) << 8)
    p += 2 * nsym
    if nsym == 1:
        for i in range(n):
            out[i] = values[0]
        return n
    # probabilities: LSB-first bit stream; each value takes as many bits as the highest
    # set bit of the one before (they fall), starting from 2^19
    cum = np.zeros(nsym + 1, np.int64)
    bitpos = 0
    max_val = 1 << (LAG_FRACTION_BITS - 1)
    total = 0
    for k in range(nsym):
        if max_val <= 1:
            v = 1
        else:
            v = 0
            new_max = 0
            a = 1
            while a <= max_val:
                byte_at = p + (bitpos >> 3)
                if byte_at >= end:
                    return -1
                if (np.int64(src[byte_at]) >> (bitpos & 7)) & 1:
                    v += a
                    new_max = a
                bitpos += 1
                a <<= 1
            max_val = new_max
        if v == 0:
            return -4
        total += v
        cum[k + 1] = total
    if total != (1 << LAG_FRACTION_BITS):
        return -4
    p += (bitpos + 7) >> 3
    # start of the symbol search for each 2^-16 slice of the cumulative range
    lookup = np.empty(1 << LAG_LOOKUP_BITS, np.int64)
    h = 1
    for a in range(1 << LAG_LOOKUP_BITS):
        while h < nsym and cum[h] <= (a << (LAG_FRACTION_BITS - LAG_LOOKUP_BITS)):
            h += 1
        lookup[a] = h - 1
    if p + 4 > end:
        return -1
    low = ((np.int64(src[p]) << 24) | (np.int64(src[p + 1]) << 16) | (np.int64(src[p + 2]) << 8)
           | np.int64(src[p + 3]))
    p += 4
    rng = 1 << 31
    for i in range(n):
        while rng <= (1 << 23):
            if p >= end:
                return -1
            rng <<= 8
            low = ((low << 8) | np.int64(src[p])) & 0xFFFFFFFF
            p += 1
        help_ = rng >> LAG_FRACTION_BITS
        q = low // help_
        if q >= (1 << LAG_FRACTION_BITS):
            return -5
        x = lookup[q >> (LAG_FRACTION_BITS - LAG_LOOKUP_BITS)]
        while cum[x + 1] * help_ <= low:
            x += 1
        low -= cum[x] * help_
        out[i] = values[x]
        rng = (cum[x + 1] - cum[x]) * help_
    return n


_KERNELS: dict = {}


def kernels(use_numba: bool | None = None):
    """(qlz1, lag16) kernels: numba-compiled when available (or asked), else plain."""
    key = "numba" if use_numba is not False else "python"
    if key in _KERNELS:
        return _KERNELS[key]
    if key == "numba":
        try:
            import numba
        except ImportError:
            if use_numba:
                raise
            log.warning("numba is not installed: ADV QuickLZ/LAGARITH16 frames are decoded "
                        "by the slow pure-Python path (pip install numba)")
            _KERNELS["numba"] = kernels(False)
            return _KERNELS["numba"]
        jit = numba.njit(cache=True, nogil=True)
        _KERNELS[key] = (jit(qlz1_kernel), jit(lag16_kernel))
    else:
        _KERNELS[key] = (qlz1_kernel, lag16_kernel)
    return _KERNELS[key]


QLZ_ERRORS = {-1: "the compressed data end early", -2: "a back-reference points outside "
              "the decoded data", -3: "a match length is invalid"}
LAG_ERRORS = {-1: "the compressed data end early", -4: "the probability table is invalid",
              -5: "a code value is outside the coder range"}


def qlz_sizes(block: np.ndarray, where: str) -> tuple[int, int, int, bool]:
    """(header bytes, compressed size, decompressed size, compressed?) of a QuickLZ block."""
    if len(block) < 3:
        raise CorruptSource(f"{where}: QuickLZ block of {len(block)} bytes has no header")
    flags = int(block[0])
    if (flags >> 2) & 3 != 1 or (flags >> 4) & 3 != 0 or not flags & 0x40:
        raise CorruptSource(f"{where}: QuickLZ header byte 0x{flags:02x} is not a level-1, "
                            "non-streaming block")
    if flags & 2:
        if len(block) < 9:
            raise CorruptSource(f"{where}: QuickLZ long header cut short")
        csize = int(np.frombuffer(block[1:5].tobytes(), "<u4")[0])
        dsize = int(np.frombuffer(block[5:9].tobytes(), "<u4")[0])
        header = 9
    else:
        csize, dsize, header = int(block[1]), int(block[2]), 3
    return header, csize, dsize, bool(flags & 1)


def qlz_decompress(block: np.ndarray, expected: int, where: str, use_numba=None,
                   most: int | None = None) -> np.ndarray:
    """Decompress a QuickLZ-1 block (uint8 array) into at least ``expected`` bytes.

    Writers may append a CRC slot (or, in AAV, other data) to the pixels, so up to
    ``most`` bytes are accepted; the size is checked before anything is allocated.
    """
    header, csize, dsize, compressed = qlz_sizes(block, where)
    most = expected + 64 if most is None else most
    if not expected <= dsize <= most:
        raise CorruptSource(f"{where}: QuickLZ block decompresses to {dsize} bytes, the "
                            f"layout needs {expected}")
    if csize > len(block):
        raise CorruptSource(f"{where}: QuickLZ block says {csize} bytes, the frame holds "
                            f"{len(block)}")
    if not compressed:
        if header + dsize > len(block):
            raise CorruptSource(f"{where}: stored QuickLZ block cut short")
        return np.array(block[header:header + dsize])
    out = np.empty(dsize, np.uint8)
    qlz1, _ = kernels(use_numba)
    got = qlz1(np.ascontiguousarray(block[:csize]), header, out,
               np.empty(QLZ_HASH_SIZE, np.int32))
    if got != dsize:
        raise CorruptSource(f"{where}: QuickLZ data are corrupt "
                            f"({QLZ_ERRORS.get(got, f'{got} of {dsize} bytes decoded')})")
    return out


def lag16_decompress(block: np.ndarray, expected: int, where: str, use_numba=None) -> np.ndarray:
    """Decompress a LAGARITH16 block (uint8 array) into ``expected`` bytes."""
    if expected % 2:
        raise CorruptSource(f"{where}: LAGARITH16 needs an even byte count, the layout has "
                            f"{expected}")
    if len(block) >= 8 and not np.any(block[:8]):
        # eight zero bytes: the frame did not compress and is stored raw
        if 8 + expected > len(block):
            raise CorruptSource(f"{where}: raw LAGARITH16 frame cut short")
        return np.array(block[8:8 + expected])
    out = np.empty(expected // 2, np.uint16)
    _, lag16 = kernels(use_numba)
    got = lag16(np.ascontiguousarray(block), 0, len(block), out)
    if got != expected // 2:
        raise CorruptSource(f"{where}: LAGARITH16 data are corrupt "
                            f"({LAG_ERRORS.get(got, f'{got} symbols decoded')})")
    return out.astype("<u2", copy=False).view(np.uint8)
