"""``occcore demo``: a synthetic SER observation with a known occultation, reduced and timed,
and a synthetic campaign of chords across a known ellipse, fitted; what was recovered is
printed next to the truth, and the reports (SORA, IOTA-ES, PyMovie CSV, VizieR, plots) are
written for a demo observer.

Everything is generated here with a fixed seed; nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy import units as u

from occcore.api import Session
from occcore.model import iso_utc
from occcore.steps.reduce import reduce
from occcore.steps.timing import fit_lightcurve
from occcore.steps.limb import PARAMS, fit_limb
from occcore.steps.report import load_run, raise_failures, write_reports
from occcore.synthetic import ellipse_chords, star_field, write_ser

STARS = ((100.0, 80.0, 25000.0), (170.0, 60.0, 40000.0), (60.0, 130.0, 60000.0),
         (200.0, 140.0, 8000.0), (30.0, 40.0, 5000.0))
NAMES = ("target", "reference", "guide", "field1", "field2")
EXPOSURE_S = 0.04


def make_observation(path: Path, n_frames: int = 1500, seed: int = 2024):
    """Write the demo SER; returns the truth (positions, fluxes, event times)."""
    duration = n_frames * EXPOSURE_S
    immersion = round(0.41 * duration, 4) + 0.0137
    emersion = immersion + 0.09 * duration + 0.0211
    frames, truth = star_field(n_frames=n_frames, height=180, width=240, stars=STARS,
                               names=NAMES, fwhm_px=3.2, sky_e=150.0, read_noise_e=6.0,
                               drift_px_per_frame=(0.012, -0.008), walk_px=0.08,
                               jumps=((int(n_frames * 0.6), 13.0, -8.0),),
                               occultation=(0, immersion, emersion, 0.05),
                               exposure_s=EXPOSURE_S, epoch="2025-09-14T22:41:07.250", seed=seed)
    times = truth.times.utc()
    write_ser(path, frames, times, depth=16, observer="occcore demo",
              instrument="synthetic camera")
    return truth


CAMPAIGN = dict(center_f_km=12.0, center_g_km=-20.0, equatorial_radius_km=64.0, oblateness=0.15,
                position_angle_deg=35.0)
DEMO_PROFILE = """# a demo observer (occcore demo); copy and edit for your own reports
[observer]
name = "Demo Observer"
email = "demo@example.org"
[site]
nearest_city = "Auckland"
country_code = "NZ"
latitude = "-36 50 41.3"
longitude = "+174 45 55.8"
altitude_m = 81
datum = "WGS84"
[equipment]
telescope = "SCT"
aperture_cm = 28
focal_length_cm = 280
camera = "synthetic camera"
time_source = "GPS"
method = "video"
[event]
asteroid = "Demo"
asteroid_number = 99999
star = "UCAC4 361-199861"
predicted_utc = "2025-09-14T22:41:35"
[conditions]
wind = 1
temperature_c = 15
transparency = 1
stability = 1
comments = "synthetic demo data"
"""
REPORTS = ("sora", "iota-es", "pymovie-csv", "vizier", "plots")


def write_campaign(path: Path, seed: int = 7) -> dict:
    """A chords file: seven chords across a known ellipse (Gaussian timing errors) and one
    negative chord just outside it, on the sky plane. Returns the truth."""
    chords, truth = ellipse_chords(n_chords=7, err_km=(0.4, 2.0), n_negative=1, seed=seed,
                                   **CAMPAIGN)
    lines = ["# occcore demo: a synthetic campaign across a known ellipse", "[event]",
             'name = "occcore demo campaign (synthetic)"', ""]
    for c in chords:
        lines += ["[[chord]]", f'name = "{c.name}"', f"positive = {str(c.positive).lower()}",
                  "f_km = [" + ", ".join(f"{v:.4f}" for v in c.f_km) + "]",
                  "g_km = [" + ", ".join(f"{v:.4f}" for v in c.g_km) + "]"]
        if c.err_km is not None:
            lines.append("err_km = [" + ", ".join(f"{v:.4f}" for v in c.err_km) + "]")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return truth


def run_demo(session: Session, outdir, n_frames: int = 1500) -> dict:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ser = outdir / "demo.ser"
    truth = make_observation(ser, n_frames)
    result = reduce(session, ser, outdir / "reduction", target=STARS[0][:2],
                    references=[STARS[1][:2]], guide=STARS[2][:2])
    track = result.track
    rms = np.sqrt(np.mean((track.x - truth.x[:, :3]) ** 2 + (track.y - truth.y[:, :3]) ** 2, axis=0))
    ratio = np.asarray(result.table["ratio"], float)
    low = np.flatnonzero(ratio < 0.5)
    epoch = truth.times.epoch
    # the truth is on the start-of-exposure clock of the frames
    true_d = epoch + truth.immersion_s * u.s
    true_r = epoch + truth.emersion_s * u.s
    report = {
        "outdir": str(outdir),
        "source": str(ser),
        "frames": n_frames,
        "tracking_rms_px": {n: round(float(r), 4) for n, r in zip(NAMES, rms, strict=False)},
        "aligner": result.summary["aligner"],
        "photometry": result.summary["photometry"],
        "true_immersion_utc": iso_utc(true_d),
        "true_emersion_utc": iso_utc(true_r),
        "drop_frames": [int(low[0]), int(low[-1])] if len(low) else None,
        "true_drop_frames": [int(np.floor(truth.immersion_s / EXPOSURE_S)),
                             int(np.floor(truth.emersion_s / EXPOSURE_S))],
        "files": [str(f) for f in result.files],
    }
    # the demo event has sharp edges (no diffraction): the square-well fitter
    timing = fit_lightcurve(session, outdir / "reduction" / "lightcurve.ecsv",
                            outdir=outdir / "reduction", model="square")
    report["files"] += [str(f) for f in timing.files]
    fitted = timing.result
    report["fit"] = timing.summary
    for edge, true_t in (("immersion", true_d), ("emersion", true_r)):
        found = getattr(fitted, edge)
        if found is not None:
            delta = float((found.time - true_t).to_value("s"))
            minus, plus = found.err1_s
            report[f"{edge}_minus_truth_s"] = delta
            report[f"{edge}_within_1sigma"] = -minus <= -delta <= plus
    lines = [f"demo observation: {ser} ({n_frames} frames, 240x180, 16-bit, jump at frame "
             f"{int(n_frames * 0.6)})",
             f"reduced with {report['aligner']} + {report['photometry']}; tracking rms (px): "
             + ", ".join(f"{k} {v}" for k, v in report["tracking_rms_px"].items()),
             f"ratio below 0.5 in frames {report['drop_frames']} "
             f"(truth: event starts in frame {report['true_drop_frames'][0]}, "
             f"ends in frame {report['true_drop_frames'][1]})",
             f"true immersion {report['true_immersion_utc']} UTC, "
             f"true emersion {report['true_emersion_utc']} UTC"]
    for edge_name, found in fitted.edges:
        lines.append(f"fitted {edge_name:<9} {iso_utc(found.time)} UTC {found.err_text(1)} s "
                     f"(1 sigma); fitted - true = "
                     f"{report[edge_name + '_minus_truth_s'] * 1000:+.1f} ms")
    if fitted.outcome != "positive":
        lines.append(f"timing {fitted.outcome}: {fitted.reason}")
    chords_file = outdir / "campaign" / "chords.toml"
    shape = write_campaign(chords_file)
    limb = fit_limb(session, chords_file, outdir=outdir / "limb")
    report["files"] += [str(chords_file)] + [str(f) for f in limb.files]
    report["limb"] = {p: {"true": shape[p], "fitted": limb.fit.value(p),
                          "err": list(limb.fit.errors[p])} for p in PARAMS}
    lines.append(f"limb of a synthetic campaign (7 chords, 1 negative), {limb.fit.model}"
                 f" fit, chi2 {limb.fit.chi2:.2f} / {limb.fit.dof}:")
    for p, v in report["limb"].items():
        lines.append(f"  {p:<22} true {v['true']:8.3f}  fitted {v['fitted']:8.3f} "
                     f"-{v['err'][0]:.3f} +{v['err'][1]:.3f}")
    profile = outdir / "observer.toml"
    profile.write_text(DEMO_PROFILE)
    reports = write_reports(session, load_run(outdir, [profile], session), REPORTS, outdir / "reports")
    raise_failures(reports)
    report["files"] += [str(profile)] + [str(f) for f in reports.files]
    lines += [f"wrote {f}" for f in report["files"]]
    report["text"] = "\n".join(lines)
    return report
