"""An ellipse fit with error bars, occcore against SORA's fit_ellipse, on the same points.

The points are the Chariklo 2017-06-22 chords of tests/data/chariklo.toml (SORA's notebook),
projected by occcore. SORA's call is the notebook's: least squares then uniform sampling,
loop=100000, dchi_min=10, number_chi=20000 (its defaults return zero 1-sigma errors, see
sora.md section 8). occcore's errors are two-sided profile-likelihood intervals; both are
scored with SORA's metric (errors not projected) for like-for-like chi2.

Run: python bench/bench_limb.py --sora-python sora-venv/bin/python [--repeat 9]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path


from occcore.chords import load_chords
from occcore.plugin import StepContext
from occplugins.fitters import limb

HERE = Path(__file__).resolve().parent
CHORDS = HERE.parent / "tests" / "data" / "chariklo.toml"
SORA_KWARGS = dict(center_f=-15.046, center_g=-2.495, dcenter_f=10, dcenter_g=20,
                   equatorial_radius=138, dequatorial_radius=50, oblateness=0.093,
                   doblateness=0.2, position_angle=90, dposition_angle=90, loop=100000,
                   dchi_min=10, number_chi=20000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sora-python", default=os.environ.get("SORA_PYTHON"))
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    chord_file = load_chords(CHORDS)
    positives = [c for c in chord_file.chords if c.positive]
    options = limb.LimbOptions(error_projection="sora")
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        fit = limb._fit(positives, options=options, context=StepContext(), circle=False)
        times.append(time.perf_counter() - t)
    t_occ = statistics.median(times)
    print(f"occcore ellipse fit + two-sided profile-likelihood 1-sigma errors: "
          f"{t_occ * 1000:.1f} ms (median of {args.repeat})")
    for p in limb.PARAMS:
        e = fit.errors[p]
        print(f"  {p:<22} {getattr(fit, p):9.3f}  -{e[0]:.3f} +{e[1]:.3f}")
    print(f"  chi2 {fit.chi2:.4f} / {fit.dof}")
    if not args.sora_python:
        print("SORA: skipped (give --sora-python or SORA_PYTHON)")
        return
    points = []
    for c in positives:
        for k, _edge in enumerate(("immersion", "emersion")):
            points.append([c.name, float(c.f_km[k]), float(c.g_km[k]), c.meta["vf_kms"][k],
                           c.meta["vg_kms"][k], c.meta["time_err_s"][k]])
    request = json.dumps({"points": points, "kwargs": SORA_KWARGS, "seed": 1})
    run = subprocess.run([args.sora_python, str(HERE / "sora_fit_ellipse.py")], input=request,
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"SORA failed:\n{run.stderr[-2000:]}")
    sora = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"SORA fit_ellipse (least squares + {SORA_KWARGS['loop']} samples per batch, "
          f"{sora['n_samples']} kept, {sora['n_within_1sigma']} inside 1 sigma): "
          f"{sora['seconds']:.2f} s")
    names = {"center_f": "center_f_km", "center_g": "center_g_km",
             "equatorial_radius": "equatorial_radius_km", "oblateness": "oblateness",
             "position_angle": "position_angle_deg"}
    for key, (value, err) in sora["fitted"].items():
        print(f"  {names[key]:<22} {value:9.3f}  +-{err:.3f}")
    print(f"  chi2_min {sora['chi2_min']:.4f}")
    print(f"occcore is {sora['seconds'] / t_occ:.0f}x faster (goal >= 30x, <= 0.1 s) at "
          f"chi2 {fit.chi2:.4f} vs SORA's {sora['chi2_min']:.4f}")


if __name__ == "__main__":
    main()
