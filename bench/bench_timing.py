"""A diffraction timing fit with error bars on SORA's lc_example.dat: occcore against SORA's
own occ_lcfit on the same file and parameters (Example 1a), measured in the same run.

SORA runs in its own virtual environment through shared/tools/sora_ref.py:

    python -m venv sora-venv && sora-venv/bin/pip install sora-astro
    python bench/bench_timing.py --sora-python sora-venv/bin/python [--loops 1000 10000]

Both solutions are then scored with one chi-square (occcore's model, data and noise model
over the whole curve), so "equal or better chi-square" compares like with like; SORA's own
chi2_min (its window, its fixed baseline and sigma) is printed too.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from astropy.time import Time

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LIGHTCURVE = SHARED / "fixtures/lightcurves/sora/lc_example.dat"
CASE = SHARED / "tools/sora_cases/example1a_auto.json"
TREF = Time("2017-06-22 00:00", scale="utc")
PHYSICS = dict(velocity=22.0, distance=15.0, star_diameter=0.2, wavelength=0.7, bandwidth=0.3)


def run_occcore(repeat: int):
    from occcore.api import Session
    from occcore.config import load_config
    from occcore.steps.timing import fit_lightcurve
    times = []
    outcome = None
    with Session(config=load_config(cwd=Path("/nonexistent")), no_plugins=True) as session:
        for _ in range(repeat):
            t = time.perf_counter()
            outcome = fit_lightcurve(session, LIGHTCURVE, model="diffraction", exposure_s=0.1,
                                     physics=PHYSICS)
            times.append(time.perf_counter() - t)
    return outcome.result, statistics.median(times)


def chi2_scorer(result):
    """chi2(D, R) with occcore's model, readings and noise model of ``result``."""
    from occplugins.fitters import _timing as tm
    from occplugins.fitters._models import DiffractionModel, Optics, fresnel_scale_km
    p = result.diagnostics.physics
    readings = result.readings
    start, end = np.asarray(readings.start_s), np.asarray(readings.end_s)
    flux, model = np.asarray(readings.flux), np.asarray(readings.model)
    fresnel = np.array([fresnel_scale_km(w, p["distance_au"]) for w in p["wavelengths_um"]])
    optics = Optics(velocity_kms=p["velocity_kms"], fresnel_km=fresnel,
                    star_diameter_km=p["star_diameter_km"])
    bar = DiffractionModel(start, end, optics, optics)
    level = np.clip((model - result.bottom) / (result.baseline - result.bottom), 0, 1)
    sb, sa = result.diagnostics.sigma_baseline, result.diagnostics.sigma_bottom
    sigma = np.sqrt(sa ** 2 + (sb ** 2 - sa ** 2) * level)
    problem = tm.Problem(bar, tm.Readings(start, end, flux, None, np.arange(len(flux))), sigma,
                         "both", 100.0)
    epoch_s = float((readings.epoch - TREF).to_value("s"))
    return lambda d, r: problem.chi2(d - epoch_s, r - epoch_s)[0]


def baseline_engine(ref: str):
    """The fitters' package as it is at git ``ref`` (e.g. ``main`` before this branch's
    change), imported under another name from a temporary folder, for a same-run baseline.
    None when git or the ref is not there."""
    import importlib
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="occ-baseline-"))
    package = root / "occbaseline" / "fitters"
    package.mkdir(parents=True)
    (root / "occbaseline" / "__init__.py").write_text("")
    listing = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", ref,
                              "plugins/fitters/"], capture_output=True, text=True)
    if listing.returncode != 0 or not listing.stdout.strip():
        return None
    for name in listing.stdout.split():
        text = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:{name}"],
                              capture_output=True, text=True).stdout
        (package / Path(name).name).write_text(text.replace("occplugins.fitters",
                                                            "occbaseline.fitters"))
    sys.path.insert(0, str(root))
    return importlib.import_module("occbaseline.fitters.square")


def time_square(module, curves, repeat: int) -> list[float]:
    """Median seconds of one square fit per curve (the module's ``_fit``)."""
    from occcore.plugin import StepContext
    out = []
    for lc in curves:
        times = []
        for k in range(repeat):
            t = time.perf_counter()
            module._fit(lc, options=module.SquareOptions(),
                        context=StepContext(rng=np.random.default_rng(k)))
            times.append(time.perf_counter() - t)
        out.append(statistics.median(times))
    return out


def long_curves():
    """10 000-reading curves: white noise with an event, a trended comparison star."""
    from occcore.synthetic.noise import noisy_lightcurve
    with_event, _ = noisy_lightcurve("white", event="square", n_points=10_000, cadence_s=0.02,
                                     sigma=0.1, drop=0.6, event_readings=150, seed=1)
    without, _ = noisy_lightcurve("comparison", event=None, n_points=10_000, cadence_s=0.02,
                                  sigma=0.1, seed=2)
    return {"10k readings, event": with_event, "10k readings, comparison star": without}


def run_occcore_command(repeat: int) -> float:
    """Median wall time of the whole ``occcore fit`` command a user types (start-up,
    reading, fit, JSON out; no plot), in a fresh process each time."""
    p = PHYSICS
    command = [sys.executable, "-m", "occcore", "fit", str(LIGHTCURVE), "--model", "diffraction",
               "--exposure", "0.1", "--velocity", str(p["velocity"]), "--distance",
               str(p["distance"]), "--star-diameter", str(p["star_diameter"]),
               "--wavelength", str(p["wavelength"]), "--bandwidth", str(p["bandwidth"]),
               "--no-plugins", "--json"]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, cwd="/")
        times.append(time.perf_counter() - t)
        if out.returncode != 0:
            raise SystemExit(f"occcore fit failed:\n{out.stderr[-2000:]}")
    return statistics.median(times)


def run_sora(python: str, loops: int) -> dict:
    params = json.loads(CASE.read_text())
    params["loop"] = loops
    out = subprocess.run([python, str(SHARED / "tools/sora_ref.py"), str(LIGHTCURVE),
                          json.dumps(params)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"sora_ref.py failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sora-python", default=os.environ.get("SORA_PYTHON"),
                        help="python of a virtual environment with sora-astro installed")
    parser.add_argument("--loops", type=int, nargs="+", default=[1000],
                        help="SORA Monte-Carlo trials (the notebook's Example 1a uses 1000)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline-ref", default=None,
                        help="git ref (e.g. the commit before a change) of the fitters timed "
                             "as the same-run baseline of the square fits")
    args = parser.parse_args()
    from occplugins.fitters import square
    curves = long_curves()
    now = time_square(square, curves.values(), 3)
    old = baseline_engine(args.baseline_ref) if args.baseline_ref else None
    before = time_square(old, curves.values(), 3) if old is not None else None
    for k, name in enumerate(curves):
        line = f"square fit, {name}: {now[k] * 1000:.0f} ms"
        if before is not None:
            line += (f"  (fitters at {args.baseline_ref}: {before[k] * 1000:.0f} ms, ratio "
                     f"{now[k] / before[k]:.2f})")
        else:
            line += "  (--baseline-ref REF: against the fitters at REF, same run)"
        print(line)
    if not LIGHTCURVE.exists():
        raise SystemExit(f"{LIGHTCURVE} not found (the shared fixtures are needed)")
    result, t_occ = run_occcore(args.repeat)
    score = chi2_scorer(result)
    d = result.immersion.offset_s(TREF)
    r = result.emersion.offset_s(TREF)
    print(f"occcore diffraction fit + profile-likelihood 1/2/3-sigma errors + significance: "
          f"{t_occ * 1000:.0f} ms (median of {args.repeat})")
    print(f"  immersion {d:.4f} {result.immersion.err_text(1)}"
          f"   emersion {r:.4f} {result.emersion.err_text(1)}"
          f"   chi2 {score(d, r):.2f} / {result.dof}")
    if not args.sora_python:
        print("SORA: skipped (give --sora-python or SORA_PYTHON)")
        return
    for loops in args.loops:
        sora = run_sora(args.sora_python, loops)
        t_sora = sora["runtime_s"]["fit"]
        sd, sr = sora["immersion"]["value"], sora["emersion"]["value"]
        bd, br = sora["immersion"]["best_sample"], sora["emersion"]["best_sample"]
        print(f"SORA {sora['sora_version']} occ_lcfit (chisqr, loop={loops}): {t_sora:.2f} s")
        print(f"  immersion {sd:.4f} +-{sora['immersion']['err']:.4f}   emersion {sr:.4f} "
              f"+-{sora['emersion']['err']:.4f}   SORA's chi2_min {sora['chi2_min']:.2f} / "
              f"{sora['npts_fit']} pts, {sora['n_within_sigma_result']} samples inside 1 sigma")
        print(f"  scored like occcore: chi2 at SORA's value {score(sd, sr):.2f}, at its best "
              f"sample {score(bd, br):.2f} (occcore {score(d, r):.2f})")
        better = score(d, r) <= min(score(sd, sr), score(bd, br)) + 1e-6
        print(f"  occcore is {t_sora / t_occ:.0f}x faster (goal >= 100x) at "
              f"{'equal or better' if better else 'WORSE'} chi2")
        total = sora["runtime_s"]["total"]
        t_command = run_occcore_command(3)
        print(f"  the whole command, start-up included: `occcore fit --json` {t_command:.2f} s "
              f"(median of 3), SORA's script (import {sora['runtime_s']['import']:.2f} s, "
              f"load {sora['runtime_s']['load_and_normalize']:.2f} s, fit) {total:.2f} s: "
              f"{total / t_command:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
