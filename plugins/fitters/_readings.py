"""Readings: the light curve as exposure windows [start, end) in seconds after its epoch,
and camera integration (blocks of repeated readings)."""
from __future__ import annotations

import math

import attrs
import numpy as np


@attrs.frozen
class Readings:
    """Exposure windows and values, in seconds after the light curve's epoch."""

    start: np.ndarray
    end: np.ndarray
    y: np.ndarray
    sigma: np.ndarray | None
    frame: np.ndarray

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.start + self.end)

    @property
    def exposure(self) -> float:
        return float(np.median(self.end - self.start))

    @property
    def cycle(self) -> float:
        return float(np.median(np.diff(self.start))) if len(self.start) > 1 else self.exposure

    def take(self, keep) -> Readings:
        return Readings(self.start[keep], self.end[keep], self.y[keep],
                        None if self.sigma is None else self.sigma[keep], self.frame[keep])


def readings_of(lc, exposure_s: float | None = None, dead_time_s: float | None = None) -> Readings:
    """The light curve's exposure windows, whatever instant its stamps mean."""
    offsets = np.asarray(lc.times.offsets_s, float)
    cycle = float(np.median(np.diff(offsets))) if len(offsets) > 1 else None
    exposure = exposure_s if exposure_s is not None else lc.exposure_s
    if exposure is None and cycle is not None:
        exposure = cycle - (dead_time_s or lc.dead_time_s or 0.0)
    if exposure is None or exposure <= 0:
        raise ValueError("the exposure time is unknown; give it (--exposure)")
    shift = {"start": 0.0, "mid": 0.5, "end": 1.0}[lc.times.instant] * exposure
    start = offsets - shift
    y = np.asarray(lc.flux, float)
    keep = np.isfinite(y) & np.isfinite(start)
    sigma = None if lc.flux_err is None else np.asarray(lc.flux_err, float)
    frame = np.arange(len(y)) if lc.frame is None else np.asarray(lc.frame)
    r = Readings(start, start + exposure, y, sigma, frame)
    return r.take(keep)


# -- camera integration --------------------------------------------------------------------------


def block_integration(y: np.ndarray, sizes=(2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64)):
    """(block size, offset) of repeated readings, or None.

    An integrating camera repeats one value over a block of readings: the scatter inside the
    blocks (median of their standard deviations) is then far below the jumps at the block
    boundaries (robust sigma of the differences across boundaries). Accepted below 0.2."""
    n = len(y)
    step = np.abs(np.diff(y))
    spread = 1.4826 * float(np.median(np.abs(y - np.median(y))))
    if n < 20 or not spread > 0 or np.percentile(step, 30) > 0.15 * spread:
        return None          # neighbours differ like independent readings: no integration
    found = None
    for k in sizes:
        if 10 * k > n:       # at least ten blocks, so that an event edge is not a block jump
            break
        for offset in range(k):
            m = (n - offset) // k
            if m < 10:
                continue
            blocks = y[offset:offset + m * k].reshape(m, k)
            within = float(np.median(np.std(blocks, axis=1)))
            jumps = blocks[1:, 0] - blocks[:-1, -1]
            across = 1.4826 * float(np.median(np.abs(jumps - np.median(jumps)))) / math.sqrt(2)
            # the true block size has only real jumps at its boundaries; half of it has many
            # zero jumps and a multiple of it has jumps inside: the smallest ratio wins
            if across > 0 and within < 0.2 * across and \
                    (found is None or within / across < found[2]):
                found = (k, offset, within / across)
    return None if found is None else (found[0], found[1])


def integrate_blocks(r: Readings, size: int, offset: int) -> Readings:
    """Average each block; its window runs from its first reading's start over ``size`` cycles."""
    m = (len(r.y) - offset) // size
    sl = slice(offset, offset + m * size)
    start = r.start[sl].reshape(m, size)[:, 0]
    end = r.end[sl].reshape(m, size)[:, -1]
    y = r.y[sl].reshape(m, size).mean(axis=1)
    sigma = None if r.sigma is None else np.sqrt((r.sigma[sl].reshape(m, size) ** 2).sum(1)) / size
    return Readings(start, end, y, sigma, r.frame[sl].reshape(m, size)[:, 0])
