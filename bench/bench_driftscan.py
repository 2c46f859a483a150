"""Drift-scan timing on seeded synthetic images: how often the truth lies within the
reported 1 sigma (direct 49 % method and PSF-step fit), the error table's trend
(trail brightness x magnitude drop, as in Broughton's table), and the speed of the
analysis against reading the same FITS file (baseline measured in the same run).

    python bench/bench_driftscan.py [--images 1000] [--psf-every 5] [--table-seeds 8]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def random_scan(seed):
    from test_driftscan import _random_scan
    return _random_scan(seed)


def analyse(image, truth):
    from occplugins.readers import _driftscan as ds
    return ds.analyse(image, exposure_s=truth.exposure_s, shutter_open_utc=truth.shutter_open_utc,
                      dec_deg=truth.dec_deg, plate_scale_arcsec=truth.plate_scale_arcsec)


def coverage(n_images: int, psf_every: int):
    from occplugins.readers import _driftscan as ds
    direct, psf, square = [], [], []
    for seed in range(n_images):
        image, _, truth = random_scan(seed)
        result = analyse(image, truth)
        conv = result.conversion
        fits = None
        if psf_every and seed % psf_every == 0:
            lc = ds.trail_lightcurve(result)
            fits = (ds.fit_psf_edges(lc), ds.fit_psf_edges(lc, square_well=True))
        for edge, true_s in (("disappearance", truth.disappearance_s),
                             ("reappearance", truth.reappearance_s)):
            direct.append((conv.times_s[edge] - true_s) / conv.err_s[edge])
            if fits:
                for store, fit in zip((psf, square), fits, strict=False):
                    minus, plus = fit[f"{edge}_err_s"]
                    miss = true_s - fit[f"{edge}_s"]
                    store.append(miss / (plus if miss > 0 else minus))
    for name, pulls in (("direct 49 %", direct), ("PSF-step fit", psf), ("square well", square)):
        if pulls:
            p = np.abs(np.array(pulls))
            print(f"{name:<14} n={len(p):5d}  within 1 sigma {np.mean(p <= 1):.3f}  "
                  f"2 sigma {np.mean(p <= 2):.3f}  3 sigma {np.mean(p <= 3):.3f}  "
                  f"median pull {np.median(pulls):+.3f}")


def table(seeds: int):
    from occcore.synthetic.driftscan import drift_scan_image
    drops = (3.0, 2.0, 1.0, 0.8, 0.6, 0.4, 0.2)
    fluxes = (40000.0, 12000.0, 4000.0)
    print("\nreported 1-sigma error, s (actual rms error in brackets); rows: mag drop, "
          "columns: trail flux e-/s")
    print("drop  " + "".join(f"{f:>22.0f}" for f in fluxes))
    for drop in drops:
        cells = []
        for flux in fluxes:
            reported, actual = [], []
            for seed in range(seeds):
                image, _, truth = drift_scan_image(seed=seed, target_flux_e_per_s=flux,
                                                   remaining_fraction=10 ** (-0.4 * drop))
                try:
                    result = analyse(image, truth)
                except ValueError:
                    continue
                if not result.event_detected:
                    continue
                conv = result.conversion
                for edge, true_s in (("disappearance", truth.disappearance_s),
                                     ("reappearance", truth.reappearance_s)):
                    reported.append(conv.err_s[edge])
                    actual.append(conv.times_s[edge] - true_s)
            if reported:
                cells.append(f"{np.mean(reported):8.3f} ({np.sqrt(np.mean(np.square(actual))):.3f}) "
                             f"{len(reported) // 2:2d}/{seeds}")
            else:
                cells.append(f"{'undetected':>22}")
        print(f"{drop:4.1f}  " + "".join(f"{c:>22}" for c in cells))


def speed(repeat: int):
    from astropy.io import fits

    from occcore.synthetic.driftscan import drift_scan_image, write_drift_scan_fits
    from occplugins.readers.driftscan import analyse_file
    image, header, _ = drift_scan_image(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_drift_scan_fits(Path(tmp) / "scan.fits", image, header)
        analyse_file(path)
        t0 = time.perf_counter()
        for _ in range(repeat):
            with fits.open(path) as hdul:
                np.asarray(hdul[0].data, float)
        read_s = (time.perf_counter() - t0) / repeat
        t0 = time.perf_counter()
        for _ in range(repeat):
            analyse_file(path)
        analyse_s = (time.perf_counter() - t0) / repeat
    print(f"\n{image.shape[1]}x{image.shape[0]} image: astropy read {1e3 * read_s:.2f} ms "
          f"(baseline), read + analyse {1e3 * analyse_s:.2f} ms = {analyse_s / read_s:.1f} x baseline")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--psf-every", type=int, default=5)
    parser.add_argument("--table-seeds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    coverage(args.images, args.psf_every)
    table(args.table_seeds)
    speed(args.repeat)


if __name__ == "__main__":
    main()
