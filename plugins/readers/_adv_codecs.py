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
import sys
from typing import Callable, NamedTuple

import numpy as np

from occcore.plugin import CorruptSource

log = logging.getLogger("occcore.adv")

QLZ_HASH_SIZE = 4096
# Decoding switches to byte-by-byte literals in the last bytes of a block: the
# compressor never starts a match after (last byte - 6 - 4).
QLZ_TAIL_BYTES = 10
# source bytes one control word's 31 items can use at most (3 per match, 1 per literal)
QLZ_WORD_SPAN = 31 * 3
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
    cword = np.int64(1)
    safe = False
    s = start
    d = 0
    while True:
        if cword == 1:
            if s + 4 > srclen:
                return -1
            cword = (np.int64(src[s]) | (np.int64(src[s + 1]) << 8) | (np.int64(src[s + 2]) << 16)
                     | (np.int64(src[s + 3]) << 24))
            s += 4
            # a control word with its end marker (bit 31) covers 31 items of at most 3
            # source bytes per bit: when they all fit, skip the per-item end-of-input checks
            safe = (cword >> 31) == 1 and s + QLZ_WORD_SPAN <= srclen
        if cword & 1:
            cword >>= 1
            if not safe and (s + 2 > srclen or ((src[s] & 0xF) == 0 and s + 3 > srclen)):
                return -1
            f0 = np.int64(src[s])
            f1 = np.int64(src[s + 1])
            h = (f0 >> 4) | (f1 << 4)
            code = f0 & 0xF
            if code != 0:
                mlen = code + 2
                s += 2
            else:
                mlen = np.int64(src[s + 2])
                s += 3
            o = np.int64(table[h])
            if mlen < 3 or d + mlen > n:
                return -3
            if o < 0 or o >= d:
                return -2
            # forward copy, byte by byte (overlapping runs repeat bytes); a match is at
            # least 3 bytes long, so those are unrolled
            dst[d] = dst[o]
            dst[d + 1] = dst[o + 1]
            dst[d + 2] = dst[o + 2]
            for i in range(3, mlen):
                dst[d + i] = dst[o + i]
            # hash every position up to the match start, none inside the match
            p = last_hashed + 1
            if p <= d:
                v = np.int64(dst[p]) | (np.int64(dst[p + 1]) << 8)
                while p <= d:
                    v = (v & 0xFFFF) | (np.int64(dst[p + 2]) << 16)
                    table[((v >> 12) ^ v) & 0xFFF] = p
                    v >>= 8
                    p += 1
            d += mlen
            last_hashed = d - 1
        elif d < last_matchstart:
            low = cword & 0xF
            if low == 0:
                nlit = 4
            elif low & 2:
                nlit = 1
            elif low & 4:
                nlit = 2
            else:
                nlit = 3
            if not safe and s + nlit > srclen:
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


def lag16_model(src, start, end):
    """Parse the static model of a LAGARITH16 stream ``src[start:end]``.

    Returns (code, values, cum, prob, lookup, shift, buf): code 0 = a coded stream,
    1 = every symbol is ``values[0]``, or -1 (input ends early), -4 (bad probability
    table). ``buf`` is a zero-padded copy of the coded bytes, so that renormalisation
    can read 3 bytes ahead without branches.
    """
    values = np.empty(0, np.uint16)
    cum = np.zeros(1, np.int64)
    prob = np.zeros(0, np.int64)
    lookup = np.zeros(0, np.uint16)
    buf = np.zeros(0, np.uint8)
    p = start
    if p + 2 > end:
        return -1, values, cum, prob, lookup, 0, buf
    nsym = (np.int64(src[p]) | (np.int64(src[p + 1]) << 8)) + 1
    p += 2
    if p + 2 * nsym > end:
        return -1, values, cum, prob, lookup, 0, buf
    values = np.empty(nsym, np.uint16)
    for k in range(nsym):
        values[k] = np.int64(src[p + 2 * k]) | (np.int64(src[p + 2 * k + 1]) << 8)
    p += 2 * nsym
    if nsym == 1:
        return 1, values, cum, prob, lookup, 0, buf
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
                    return -1, values, cum, prob, lookup, 0, buf
                if (np.int64(src[byte_at]) >> (bitpos & 7)) & 1:
                    v += a
                    new_max = a
                bitpos += 1
                a <<= 1
            max_val = new_max
        if v == 0:
            return -4, values, cum, prob, lookup, 0, buf
        total += v
        cum[k + 1] = total
    if total != (1 << LAG_FRACTION_BITS):
        return -4, values, cum, prob, lookup, 0, buf
    p += (bitpos + 7) >> 3
    # where the symbol search starts for each slice of the cumulative range; a table
    # small enough for the L1 cache matters more than a few extra search steps
    bits = 13 if nsym <= 1024 else LAG_LOOKUP_BITS
    shift = LAG_FRACTION_BITS - bits
    lookup = np.empty(1 << bits, np.uint16)
    h = 1
    for a in range(1 << bits):
        while h < nsym and cum[h] <= (a << shift):
            h += 1
        lookup[a] = h - 1
    prob = np.empty(nsym, np.int64)
    for k in range(nsym):
        prob[k] = cum[k + 1] - cum[k]
    if p + 4 > end:
        return -1, values, cum, prob, lookup, shift, buf
    avail = end - p
    buf = np.zeros(avail + 8, np.uint8)
    buf[:avail] = src[p:end]
    return 0, values, cum, prob, lookup, shift, buf


def lag16_reciprocals():
    """floor(2^32 / r) for r < 2^12: floor(low / r) is (low * recip[r]) >> 32 or one
    less (low < 2^32), a lower bound is all the symbol search needs, and a multiply is
    much cheaper than a division."""
    recip = np.empty(1 << 12, np.uint32)
    recip[0] = 0
    for r in range(1, 1 << 12):
        recip[r] = (np.int64(1) << 32) // r
    return recip


def lag16_kernel(buf, values, cum, prob, lookup, shift, recip, out):
    """Range-decode ``out.shape[0]`` symbols with a model from :func:`lag16_model`.

    Returns the number of symbols, or -1 (input ends early), -5 (code value outside the
    range: corrupt data).
    """
    n = out.shape[0]
    avail = buf.shape[0] - 8
    low = ((np.int64(buf[0]) << 24) | (np.int64(buf[1]) << 16) | (np.int64(buf[2]) << 8)
           | np.int64(buf[3]))
    b = 4
    rng = np.int64(1) << 31
    for i in range(n):
        # shift in as many bytes as range <= 2^23 needs (0-3), without a data-dependent
        # branch: the loop form mispredicts about every other symbol
        nb = (np.int64(rng <= (1 << 23)) + np.int64(rng <= (1 << 15))
              + np.int64(rng <= (1 << 7)))
        sh = 8 * nb
        w = (np.int64(buf[b]) << 16) | (np.int64(buf[b + 1]) << 8) | np.int64(buf[b + 2])
        low = ((low << sh) | (w >> (24 - sh))) & 0xFFFFFFFF
        rng <<= sh
        b += nb
        if b > avail:
            return -1
        help_ = rng >> LAG_FRACTION_BITS
        if low >= (help_ << LAG_FRACTION_BITS):     # low // help_ >= 2^20
            return -5
        x = np.int64(lookup[((low * np.int64(recip[help_])) >> 32) >> shift])
        while cum[x + 1] * help_ <= low:
            x += 1
        low -= cum[x] * help_
        out[i] = values[x]
        rng = prob[x] * help_
    return n


def lag16_pair_kernel(buf_a, values_a, cum_a, prob_a, lookup_a, shift_a,
                      buf_b, values_b, cum_b, prob_b, lookup_b, shift_b, recip, out_a, out_b):
    """:func:`lag16_kernel` for two streams of the same length in one interleaved loop.

    One stream is a chain of dependent loads and multiplies (some 40 cycles a symbol);
    two independent chains in one loop let the CPU overlap them. Returns 0, or a
    negative code when either stream is corrupt (the caller then decodes each alone,
    to say which and why).
    """
    n = out_a.shape[0]
    if out_b.shape[0] != n:
        return -9
    avail_a = buf_a.shape[0] - 8
    avail_b = buf_b.shape[0] - 8
    low_a = ((np.int64(buf_a[0]) << 24) | (np.int64(buf_a[1]) << 16)
             | (np.int64(buf_a[2]) << 8) | np.int64(buf_a[3]))
    low_b = ((np.int64(buf_b[0]) << 24) | (np.int64(buf_b[1]) << 16)
             | (np.int64(buf_b[2]) << 8) | np.int64(buf_b[3]))
    b_a = 4
    b_b = 4
    rng_a = np.int64(1) << 31
    rng_b = np.int64(1) << 31
    for i in range(n):
        nb = (np.int64(rng_a <= (1 << 23)) + np.int64(rng_a <= (1 << 15))
              + np.int64(rng_a <= (1 << 7)))
        sh = 8 * nb
        w = ((np.int64(buf_a[b_a]) << 16) | (np.int64(buf_a[b_a + 1]) << 8)
             | np.int64(buf_a[b_a + 2]))
        low_a = ((low_a << sh) | (w >> (24 - sh))) & 0xFFFFFFFF
        rng_a <<= sh
        b_a += nb
        nb = (np.int64(rng_b <= (1 << 23)) + np.int64(rng_b <= (1 << 15))
              + np.int64(rng_b <= (1 << 7)))
        sh = 8 * nb
        w = ((np.int64(buf_b[b_b]) << 16) | (np.int64(buf_b[b_b + 1]) << 8)
             | np.int64(buf_b[b_b + 2]))
        low_b = ((low_b << sh) | (w >> (24 - sh))) & 0xFFFFFFFF
        rng_b <<= sh
        b_b += nb
        if b_a > avail_a or b_b > avail_b:
            return -1
        help_a = rng_a >> LAG_FRACTION_BITS
        help_b = rng_b >> LAG_FRACTION_BITS
        if low_a >= (help_a << LAG_FRACTION_BITS) or low_b >= (help_b << LAG_FRACTION_BITS):
            return -5
        x_a = np.int64(lookup_a[((low_a * np.int64(recip[help_a])) >> 32) >> shift_a])
        x_b = np.int64(lookup_b[((low_b * np.int64(recip[help_b])) >> 32) >> shift_b])
        while cum_a[x_a + 1] * help_a <= low_a:
            x_a += 1
        while cum_b[x_b + 1] * help_b <= low_b:
            x_b += 1
        low_a -= cum_a[x_a] * help_a
        low_b -= cum_b[x_b] * help_b
        out_a[i] = values_a[x_a]
        out_b[i] = values_b[x_b]
        rng_a = prob_a[x_a] * help_a
        rng_b = prob_b[x_b] * help_b
    return 0


_KERNELS: dict = {}
_RECIPROCALS: list = []


class Kernels(NamedTuple):
    qlz1: Callable
    lag16_model: Callable
    lag16: Callable
    lag16_pair: Callable


def kernels(use_numba: bool | None = None) -> Kernels:
    """The decoding kernels: numba-compiled when available (or asked), else plain.

    Compiled with ``cache=True``: the machine code is kept next to this module
    (``__pycache__``), so only the first run after a change pays the compilation."""
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
        _KERNELS[key] = Kernels(jit(qlz1_kernel), jit(lag16_model), jit(lag16_kernel),
                                jit(lag16_pair_kernel))
    else:
        _KERNELS[key] = Kernels(qlz1_kernel, lag16_model, lag16_kernel, lag16_pair_kernel)
    return _KERNELS[key]


def reciprocals() -> np.ndarray:
    if not _RECIPROCALS:
        _RECIPROCALS.append(lag16_reciprocals())
    return _RECIPROCALS[0]


_REVERSED_BYTE = np.array([int(f"{b:08b}"[::-1], 2) for b in range(256)], np.uint8)
_REVERSED_WORD: list = []


def adv_crc32(data: np.ndarray) -> int:
    """AdvLib's frame CRC of ``data`` (uint8, at least 4 bytes).

    Its definition: an MSB-first CRC-32 with polynomial 0x04C11DB7 whose register starts
    as the complement of the first 4 bytes (read big-endian), then shifts in each later
    byte (``r = (r << 8 | byte) ^ table[r >> 24]``, no zero augmentation), and is
    complemented at the end. That equals the standard CRC-32/BZIP2 of all but the last
    4 bytes XOR those 4 bytes read big-endian; CRC-32/BZIP2 is zlib's (reflected)
    CRC-32 of the bit-reversed bytes, bit-reversed: one C pass, no Python loop.
    """
    import zlib

    data = np.ascontiguousarray(data, np.uint8).reshape(-1)
    if len(data) < 4:
        raise ValueError("the AdvLib CRC needs at least 4 bytes")
    head = data[:-4]
    if len(head) % 2 == 0:
        if not _REVERSED_WORD:      # bit-reverse two bytes per lookup: half the lookups
            low = _REVERSED_BYTE[np.arange(65536) & 0xFF].astype(np.uint16)
            high = _REVERSED_BYTE[np.arange(65536) >> 8].astype(np.uint16)
            word = np.empty(65536, np.uint16).view(np.uint8).reshape(-1, 2)
            word[:, 0 if sys.byteorder == "little" else 1] = low
            word[:, 1 if sys.byteorder == "little" else 0] = high
            _REVERSED_WORD.append(word.reshape(-1).view(np.uint16))
        reversed_bytes = _REVERSED_WORD[0][head.view(np.uint16)]
    else:
        reversed_bytes = _REVERSED_BYTE[head]
    reflected = zlib.crc32(reversed_bytes.tobytes())
    bzip2 = int(f"{reflected:032b}"[::-1], 2)
    return bzip2 ^ int.from_bytes(data[-4:].tobytes(), "big")


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
                   most: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Decompress a QuickLZ-1 block (uint8 array) into at least ``expected`` bytes.

    Writers may append a CRC slot (or, in AAV, other data) to the pixels, so up to
    ``most`` bytes are accepted; the size is checked before anything is allocated.
    A compressed block of exactly ``len(out)`` bytes is decoded into ``out`` (uint8),
    which is returned; otherwise a new array is.
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
    if out is None or len(out) != dsize:
        out = np.empty(dsize, np.uint8)
    got = kernels(use_numba).qlz1(np.ascontiguousarray(block[:csize]), header, out,
               np.empty(QLZ_HASH_SIZE, np.int32))
    if got != dsize:
        raise CorruptSource(f"{where}: QuickLZ data are corrupt "
                            f"({QLZ_ERRORS.get(got, f'{got} of {dsize} bytes decoded')})")
    return out


def _lag16_raw(block: np.ndarray, expected: int, where: str):
    """The frame's bytes when stored raw (eight zero bytes first), else None."""
    if expected % 2:
        raise CorruptSource(f"{where}: LAGARITH16 needs an even byte count, the layout has "
                            f"{expected}")
    if len(block) >= 8 and not np.any(block[:8]):
        # eight zero bytes: the frame did not compress and is stored raw
        if 8 + expected > len(block):
            raise CorruptSource(f"{where}: raw LAGARITH16 frame cut short")
        return np.array(block[8:8 + expected])
    return None


def _lag16_failed(got, expected: int, where: str):
    return CorruptSource(f"{where}: LAGARITH16 data are corrupt "
                         f"({LAG_ERRORS.get(got, f'{got} symbols decoded')})")


def lag16_decompress(block: np.ndarray, expected: int, where: str, use_numba=None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Decompress a LAGARITH16 block (uint8 array) into ``expected`` bytes.

    A coded block is decoded into ``out`` (``expected // 2`` native uint16 words, on a
    little-endian machine), which is returned; otherwise a new uint8 array is.
    """
    raw = _lag16_raw(block, expected, where)
    if raw is not None:
        return raw
    k = kernels(use_numba)
    code, values, cum, prob, lookup, shift, buf = k.lag16_model(block, 0, len(block))
    into = out is not None and len(out) == expected // 2 and sys.byteorder == "little"
    if not into:
        out = np.empty(expected // 2, np.uint16)
    if code == 1:
        out[:] = values[0]
        got = len(out)
    elif code < 0:
        got = code
    else:
        got = k.lag16(buf, values, cum, prob, lookup, shift, reciprocals(), out)
    if got != expected // 2:
        raise _lag16_failed(got, expected, where)
    if into:
        return out
    return out.astype("<u2", copy=False).view(np.uint8)


def lag16_decompress_pair(block_a: np.ndarray, block_b: np.ndarray, expected: int,
                          where_a: str, where_b: str, use_numba=None, outs=None):
    """Two LAGARITH16 blocks of one layout decoded in one interleaved loop (faster);
    anything unusual (raw, single-valued, corrupt) goes through :func:`lag16_decompress`.

    With ``outs`` (two uint16 arrays, as :func:`lag16_decompress`'s ``out``) the symbols
    are decoded into them and they are returned when both streams are coded."""
    k = kernels(use_numba)
    if (expected % 2 == 0 and len(block_a) >= 8 and len(block_b) >= 8
            and np.any(block_a[:8]) and np.any(block_b[:8])):
        model_a = k.lag16_model(block_a, 0, len(block_a))
        model_b = k.lag16_model(block_b, 0, len(block_b))
        if model_a[0] == 0 and model_b[0] == 0:
            into = (outs is not None and sys.byteorder == "little"
                    and all(len(o) == expected // 2 for o in outs))
            out = outs if into else np.empty((2, expected // 2), np.uint16)
            _, va, ca, pa, la, sa, ba = model_a
            _, vb, cb, pb, lb, sb, bb = model_b
            if k.lag16_pair(ba, va, ca, pa, la, sa, bb, vb, cb, pb, lb, sb, reciprocals(),
                            out[0], out[1]) == 0:
                if into:
                    return outs
                return tuple(row.astype("<u2", copy=False).view(np.uint8) for row in out)
    return (lag16_decompress(block_a, expected, where_a, use_numba),
            lag16_decompress(block_b, expected, where_b, use_numba))
