"""Decode speed of the ADV reader per codec, 640x480 frames, one core (run by hand).

    .venv/bin/python bench/bench_adv.py [--frames 200] [--python-frames 3]

For each codec: frames/s through the reader with numba, with the pure-Python kernels,
and a plain numpy memmap pass over the same file bytes (the floor), with ratios. Then
one whole command: ``occcore info`` on a 500-frame QuickLZ file (start-up included).
Goal: QuickLZ and LAGARITH16 >= 500 frames/s for 16-bit 640x480 with numba.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.time import Time

from occcore.synthetic import star_field
from occcore.synthetic.adv import write_adv

CASES = [("uncompressed 16-bit", dict(bpp=16, compression="UNCOMPRESSED")),
         ("QuickLZ 16-bit", dict(bpp=16, compression="QUICKLZ")),
         ("LAGARITH16 16-bit", dict(bpp=16, compression="LAGARITH16")),
         ("uncompressed 8-bit", dict(bpp=8, compression="UNCOMPRESSED")),
         ("QuickLZ 8-bit", dict(bpp=8, compression="QUICKLZ")),
         ("12-bit packed", dict(layout="12BIT-IMAGE-PACKED", bpp=12, compression="UNCOMPRESSED")),
         ("12-bit packed LAGARITH16", dict(layout="12BIT-IMAGE-PACKED", bpp=12,
                                           compression="LAGARITH16"))]


def sky_frames(n: int, bits: int) -> np.ndarray:
    """A realistic star field: sky + noise, so the codecs see real entropy."""
    distinct = min(n, 16)
    frames, _ = star_field(n_frames=distinct, height=480, width=640,
                           stars=((200.0, 150.0, 40000.0), (420.0, 300.0, 60000.0)),
                           names=("target", "reference"), seed=4, dtype=np.float64)
    scale = {16: 1.0, 12: 1 / 16, 8: 1 / 256}[bits]
    frames = np.clip(frames * scale, 0, (1 << bits) - 1)
    frames = frames.astype(np.uint8 if bits == 8 else np.uint16)
    return frames[np.arange(n) % distinct]


def rate(series, n: int) -> float:
    started = time.perf_counter()
    for start in range(0, n, 64):
        series.batch(start, min(n, start + 64))
    return n / (time.perf_counter() - started)


def memmap_rate(path: Path, n: int) -> float:
    """The floor: touch the same bytes with a memmap and copy them out."""
    started = time.perf_counter()
    data = np.memmap(path, np.uint8, "r")
    step = len(data) // n
    total = 0
    for k in range(n):
        total += int(np.array(data[k * step:(k + 1) * step])[::4096].sum())
    return n / (time.perf_counter() - started)


def main():
    from occplugins.readers._adv_reader import open_adv

    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--python-frames", type=int, default=2)
    args = parser.parse_args()
    n = args.frames
    t0 = Time("2024-01-01T00:00:00", scale="utc")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"{'codec':<26} {'MB/frame':>8} {'memmap f/s':>11} {'numba f/s':>10} "
              f"{'python f/s':>10} {'numba/memmap':>12} {'numba/python':>12}")
        for label, case in CASES:
            frames = sky_frames(n, case["bpp"])
            path = write_adv(tmp / "bench.adv", frames, t0 + np.arange(n) * 0.02 * u.s,
                             exposure_s=0.02, **case)
            floor = memmap_rate(path, n)
            with open_adv(path, use_numba=True) as series:
                series.batch(0, 1)                         # compile / load the kernels
                fast = rate(series, n)
                assert np.array_equal(series.batch(0, 2), frames[:2])
            with open_adv(path, use_numba=False) as series:
                slow = rate(series, min(n, args.python_frames))
            mb = path.stat().st_size / n / 1e6
            print(f"{label:<26} {mb:8.3f} {floor:11.0f} {fast:10.0f} {slow:10.2f} "
                  f"{fast / floor:12.3f} {fast / slow:12.0f}")
        frames = sky_frames(500, 16)
        path = write_adv(tmp / "info500.adv", frames, t0 + np.arange(500) * 0.02 * u.s,
                         exposure_s=0.02, compression="QUICKLZ")
        cmd = [sys.executable, "-m", "occcore.cli", "info", str(path)]
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        info_s = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import occcore.cli"], check=True)
        import_s = time.perf_counter() - started
        print(f"\nocccore info on a 500-frame 640x480 QuickLZ ADV: {info_s:.2f} s whole command "
              f"(python + import occcore.cli alone: {import_s:.2f} s; ratio {info_s / import_s:.1f})")


if __name__ == "__main__":
    main()
