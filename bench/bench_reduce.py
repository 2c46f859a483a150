"""occcore reduce against a floor and a naive pipeline, on the same SER, in one run.

1. floor  — plain numpy memmap pass + ROI centroid tracking of one star + numpy
            photometry (precomputed masks, mean annulus sky): what the hardware allows;
2. occcore — ``occcore reduce`` as a user runs it (CLI in a subprocess; its peak RSS is
            measured);
3. naive  — per frame ``astroalign.register`` + photutils aperture photometry with a median
            annulus, timed on a subset and extrapolated.

Goals (issue 4): occcore >= 0.5x the floor, >= 130x the naive pipeline, peak memory < 1 GB.

Run: python bench/bench_reduce.py [--frames 10000] [--naive-frames 60] [--keep DIR]
The 640x480 16-bit SER (6.1 GB for 10,000 frames) is written to a temporary directory
and read warm (the page cache holds it after writing), as in performance.md.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.special import erf

H, W = 480, 640
EXPOSURE_S = 0.02
STARS = ((320.0, 240.0, 40000.0), (420.0, 180.0, 80000.0), (200.0, 330.0, 150000.0),
         (500.0, 380.0, 20000.0), (120.0, 100.0, 30000.0))


def _stamp(x, y, flux, half=8, sigma=3.0 / 2.3548):
    ix, iy = int(round(x)), int(round(y))
    edges_x = np.arange(ix - half, ix + half + 2) - 0.5
    edges_y = np.arange(iy - half, iy + half + 2) - 0.5
    px = np.diff(0.5 * (1 + erf((edges_x - x) / (np.sqrt(2) * sigma))))
    py = np.diff(0.5 * (1 + erf((edges_y - y) / (np.sqrt(2) * sigma))))
    return iy - half, ix - half, flux * np.outer(py, px)


def write_observation(path: Path, n: int, seed: int = 1):
    """Sky + Gaussian noise (a pool of noise frames) + stars with drift, jumps, an occultation."""
    rng = np.random.default_rng(seed)
    pool = rng.normal(800, 28, (32, H, W)).astype(np.float32)
    steps = rng.normal(0, 0.3, (n, 2)) + (0.004, -0.003)
    steps[0] = 0
    offset = np.cumsum(steps, axis=0)
    for frame in np.linspace(0, n, 12)[1:-1].astype(int):
        offset[frame:] += rng.uniform(-20, 20, 2)
    imm, em = 0.4 * n * EXPOSURE_S + 0.0071, 0.43 * n * EXPOSURE_S + 0.0113
    start = np.arange(n) * EXPOSURE_S
    occ = np.clip((np.minimum(start + EXPOSURE_S, em) - np.maximum(start, imm)) / EXPOSURE_S, 0, 1)
    header = bytearray(178)
    header[0:14] = b"LUCAM-RECORDER"
    header[14:42] = np.array([0, 0, 0, W, H, 16, n], "<i4").tobytes()
    with open(path, "wb") as fh:
        fh.write(header)
        for k in range(n):
            frame = pool[k % 32].copy()
            for j, (x, y, flux) in enumerate(STARS):
                f = flux * (1 - 0.95 * occ[k]) if j == 0 else flux
                r0, c0, stamp = _stamp(x + offset[k, 0], y + offset[k, 1], f)
                frame[r0:r0 + stamp.shape[0], c0:c0 + stamp.shape[1]] += stamp
            fh.write(np.clip(frame, 0, 65535).astype("<u2").tobytes())
        ticks = 638_000_000_000_000_000 + (start * 1e7).astype(np.int64)
        fh.write(ticks.astype("<i8").tobytes())
    return offset


def floor_pipeline(path: Path, n: int):
    """memmap + ROI centroid on the brightest star + numpy photometry of 3 stars
    (pixel-centre masks, median annulus sky as occcore's default)."""
    data = np.memmap(path, "<u2", "r", 178, (n, H, W))
    ref = np.array(STARS)[:3, :2]
    yy, xx = np.mgrid[-12:13, -12:13]
    radius = np.hypot(xx, yy)
    aperture = radius <= 4.5
    annulus = (radius >= 8) & (radius <= 12)
    half = 15
    guide = ref[2].copy()
    flux = np.empty((n, 3))
    for k in range(n):
        gx, gy = int(round(guide[0])), int(round(guide[1]))
        box = np.asarray(data[k, gy - half:gy + half + 1, gx - half:gx + half + 1], np.float32)
        if box.shape != (2 * half + 1, 2 * half + 1) or box.max() < np.median(box) + 300:
            box = np.asarray(data[k], np.float32)              # lost: search the whole frame
            py, px = np.unravel_index(np.argmax(box), box.shape)
            guide = np.array([px, py], float)
            continue
        w = np.clip(box - np.median(box) - 100, 0, None)
        s = w.sum()
        cy = (w.sum(axis=1) * np.arange(2 * half + 1)).sum() / s - half + gy
        cx = (w.sum(axis=0) * np.arange(2 * half + 1)).sum() / s - half + gx
        shift = np.array([cx, cy]) - np.array(STARS[2][:2])
        guide = np.array([cx, cy])
        for j in range(3):
            x, y = ref[j] + shift
            ix, iy = int(round(x)), int(round(y))
            cut = np.asarray(data[k, iy - 12:iy + 13, ix - 12:ix + 13], np.float32)
            if cut.shape != aperture.shape:
                flux[k, j] = np.nan
                continue
            flux[k, j] = cut[aperture].sum() - np.median(cut[annulus]) * aperture.sum()
    return flux


def naive_pipeline(path: Path, n_total: int, n_subset: int):
    import astroalign
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture
    from photutils.aperture import aperture_photometry
    data = np.memmap(path, "<u2", "r", 178, (n_total, H, W))
    reference = np.asarray(data[0], np.float32)
    positions = np.array(STARS)[:3, :2]
    picks = np.linspace(0, n_total - 1, n_subset).astype(int)
    t0 = time.perf_counter()
    for k in picks:
        frame = np.asarray(data[k], np.float32)
        try:
            aligned, _ = astroalign.register(frame, reference)
        except Exception:
            aligned = frame
        phot = aperture_photometry(aligned, CircularAperture(positions, 4.5))
        sky = ApertureStats(aligned, CircularAnnulus(positions, 8, 12)).median
        _ = phot["aperture_sum"] - sky * np.pi * 4.5 ** 2
    return (time.perf_counter() - t0) / n_subset


def run_occcore(path: Path, outdir: Path):
    """``occcore reduce`` through its Python API (the same call the CLI makes), all outputs."""
    from occcore.api import Session
    from occcore.config import load_config
    from occcore.steps.reduce import reduce
    t = time.perf_counter()
    with Session(config=load_config(cwd=outdir.parent), no_plugins=True) as session:
        result = reduce(session, path, outdir, target=STARS[0][:2], references=[STARS[1][:2]],
                        guide=STARS[2][:2], aperture_px=4.5, annulus_px=(8, 12))
    elapsed = time.perf_counter() - t
    return elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, result.summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--naive-frames", type=int, default=60)
    parser.add_argument("--keep", help="write the SER here and keep it")
    args = parser.parse_args()
    tmp = None
    if args.keep:
        directory = Path(args.keep)
        directory.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="occbench-", dir=os.environ.get("TMPDIR"))
        directory = Path(tmp.name)
    path = directory / "bench.ser"
    n = args.frames
    if not path.exists():
        t = time.perf_counter()
        write_observation(path, n)
        print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f} s")
    import occcore.steps.reduce  # noqa: F401  (imports are not part of the run time)
    import matplotlib.figure  # noqa: F401
    t_occ, rss_mb, summary = run_occcore(path, directory / "out")   # first: peak RSS is its own
    floor_pipeline(path, min(n, 500))                      # warm-up
    t = time.perf_counter()
    floor_flux = floor_pipeline(path, n)
    t_floor = time.perf_counter() - t
    per_frame_naive = naive_pipeline(path, n, args.naive_frames)
    t_naive = per_frame_naive * n
    print(f"frames: {n} (640x480, 16-bit), tracker moved through 10 jumps")
    measured = np.isfinite(floor_flux).all(axis=1).mean()
    print(f"floor   : {n / t_floor:8.0f} fr/s  ({t_floor:6.1f} s)   [{measured:.0%} frames measured]")
    print(f"occcore : {n / t_occ:8.0f} fr/s  ({t_occ:6.1f} s)   peak RSS {rss_mb:.0f} MB, "
          f"aligner {summary['aligner']}, {summary['align_uncertain_frames']} uncertain frames")
    print(f"naive   : {1 / per_frame_naive:8.1f} fr/s  ({t_naive:6.0f} s, extrapolated from "
          f"{args.naive_frames} frames)")
    print(f"occcore / floor = {t_floor / t_occ:.2f} (goal >= 0.5);  occcore / naive = "
          f"{t_naive / t_occ:.0f}x (goal >= 130);  peak memory {rss_mb:.0f} MB (goal < 1024)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
