"""Reader throughput against plain baselines, measured in the same run.

* SER: occcore's series (memmap, batches) vs a plain numpy memmap pass over the same
  file; both touch every pixel (a per-frame sum). Goal: >= 0.8x.
* FITS: occcore's series (header scan + BZERO fast path) vs astropy.io.fits.getdata per
  file; both touch every pixel. Goal: >= 1.0x.

Run: python bench/bench_readers.py [--frames 2000] [--files 1000] [--repeat 3]
Files are written to a temporary directory (warm page cache: both sides read the same
cached bytes, so the ratio measures the code, not the disk).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.time import Time

from occcore.api import Session
from occcore.config import load_config
from occcore.synthetic import write_ser

H, W = 480, 640


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        checksum = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), checksum


def make_frames(n, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(800, 20, (H, W)).astype(np.uint16)
    return base, rng


def bench_ser(directory: Path, n: int, repeat: int):
    base, rng = make_frames(n)
    path = directory / "bench.ser"
    t0 = Time("2025-01-01T00:00:00", scale="utc")
    frames = np.empty((n, H, W), np.uint16)
    for k in range(n):
        frames[k] = base + np.uint16(k % 50)
    write_ser(path, frames, t0 + np.arange(n) * 0.01 * u.s)
    del frames

    def plain():
        mm = np.memmap(path, "<u2", "r", 178, (n, H, W))
        total = 0
        for start in range(0, n, 256):
            total += int(mm[start:start + 256].sum(dtype=np.uint64))
        return total

    session = Session(config=load_config(cwd=directory), no_plugins=True)

    def occ():
        total = 0
        with session.open(path) as series:
            for block in series.iter_batches(256):
                total += int(block.sum(dtype=np.uint64))
        return total

    plain()  # warm the page cache
    t_plain, c1 = best_of(plain, repeat)
    t_occ, c2 = best_of(occ, repeat)
    assert c1 == c2, "occcore and the plain memmap disagree"
    return n / t_plain, n / t_occ


def bench_fits(directory: Path, n: int, repeat: int):
    base, rng = make_frames(n, 1)
    folder = directory / "fits"
    folder.mkdir()
    t0 = Time("2025-01-01T00:00:00", scale="utc")
    paths = []
    for k in range(n):
        hdu = fits.PrimaryHDU(base + np.uint16(k % 50))
        hdu.header["DATE-OBS"] = Time(t0 + k * 0.01 * u.s, precision=6).isot
        hdu.header["EXPTIME"] = 0.01
        p = folder / f"f{k:05d}.fits"
        hdu.writeto(p)
        paths.append(p)

    def astropy_getdata():
        total = 0
        for p in paths:
            total += int(fits.getdata(p).sum(dtype=np.uint64))
        return total

    session = Session(config=load_config(cwd=directory), no_plugins=True)

    def occ():
        total = 0
        with session.open(folder) as series:
            for block in series.iter_batches(64):
                total += int(block.sum(dtype=np.uint64))
        return total

    astropy_getdata()
    t_astropy, c1 = best_of(astropy_getdata, repeat)
    t_occ, c2 = best_of(occ, repeat)
    assert c1 == c2, "occcore and astropy disagree"
    return n / t_astropy, n / t_occ


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="SER frames (640x480, 16-bit)")
    parser.add_argument("--files", type=int, default=1000, help="FITS files (640x480, 16-bit)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="occbench-") as tmp:
        directory = Path(tmp)
        plain, occ = bench_ser(directory, args.frames, args.repeat)
        print(f"SER  {args.frames} frames: plain memmap {plain:8.0f} fr/s   occcore {occ:8.0f} fr/s"
              f"   ratio {occ / plain:.2f} (goal >= 0.8)")
        ref, occ = bench_fits(directory, args.files, args.repeat)
        print(f"FITS {args.files} files:  astropy getdata {ref:6.0f} fr/s   occcore {occ:8.0f} fr/s"
              f"   ratio {occ / ref:.2f} (goal >= 1.0)")


if __name__ == "__main__":
    main()
