"""``sora``: the files SORA reads and writes.

* ``<stem>_sora_lc.dat``: the analysed light curve as SORA's ``LightCurve(file=...)`` reads
  it: mid-exposure time in seconds after ``tref`` (00:00 UTC of the first date), flux and
  flux error. Seconds after a reference, not JD: SORA adds them to ``tref`` as an astropy
  TimeDelta, so the times arrive to the nanosecond, where a float JD column would round
  them to 20-40 microseconds. The header says how to load it (with ``usecols``, since a
  3-column numeric file is otherwise read as 2 columns by SORA).
* ``<stem>_sora_lc.log``: the timing result in the layout of SORA's ``LightCurve.to_log``.
* With a limb fit: ``occ_<body>_pos.txt``, ``_err.txt``, ``_neg.txt`` (SORA's
  ``Occultation.to_file`` layout: f, g, vf, vg, JD, point name) and ``occ_<body>_ellipse.log``
  (SORA's ``ChiSquare`` summary: the middle of each interval +/- its half-width, as SORA
  reports, and occcore's best fit with its two-sided errors).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import attrs
import numpy as np

from occcore.model import LIMB_PARAMS, LimbFit, ReportInput, iso_utc
from occcore.plugin import NotApplicable, ReporterSpec, hookimpl, write_text
from occplugins.reporters import _common

SORA_NAMES = {"center_f_km": "center_f", "center_g_km": "center_g",
              "equatorial_radius_km": "equatorial_radius", "oblateness": "oblateness",
              "position_angle_deg": "position_angle"}


@attrs.frozen
class SoraOptions:
    body: str = ""           # body name for the occ_<body>_* files (default: the event's)


def lightcurve_text(run: ReportInput, name: str) -> str:
    lc = _common.require_lightcurve(run)
    exposure = _common.exposure_s(lc)
    tref, seconds = _common.seconds_of_day(lc, _common.mid_offsets_s(lc))
    has_err = lc.flux_err is not None and np.all(np.isfinite(lc.flux_err))
    tref_text = tref.utc.iso[:10] + " 00:00:00.000"
    usecols = "[0, 1, 2]" if has_err else "[0, 1]"
    lines = [
        f"# occcore light curve for SORA: {lc.meta.get('column', lc.name)}",
        "# columns: mid-exposure time (s after tref, UTC), flux"
        + (", flux error" if has_err else ""),
        f"# tref = {tref_text} UTC",
        f"# exptime = {exposure:.9g} s",
        f"# load: LightCurve(name='{name}', file='<this file>', exptime={exposure:.9g}, "
        f"tref='{tref_text}', usecols={usecols})",
        f"# produced by: {run.produced_by()}",
    ]
    for k in range(len(seconds)):
        row = f"{seconds[k]:.9f} {lc.flux[k]:.10g}"
        if has_err:
            row += f" {lc.flux_err[k]:.10g}"
        lines.append(row)
    return "\n".join(lines) + "\n"


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if math.isfinite(value) else "(not computed)"


def _err_text(err) -> str:
    if not err:
        return "(no error)"
    if any(math.isinf(e) for e in err):
        return " ".join(f"{sign}{'open' if math.isinf(e) else f'{e:.5f}'}"
                        for sign, e in zip("-+", err, strict=True)) + " seconds"
    decimals = 3 if min(err) >= 0.01 else 5
    if abs(err[0] - err[1]) < 0.05 * max(err):
        return f"+/- {max(err):.{decimals}f} seconds"
    return f"-{err[0]:.{decimals}f} +{err[1]:.{decimals}f} seconds"


def timing_log(run: ReportInput, name: str) -> str:
    lc = _common.require_lightcurve(run)
    times = lc.times.utc()
    exposure = _common.exposure_s(lc)
    lines = [f"Light curve name: {name}",
             f"Initial time: {times[0].iso} UTC", f"End time:     {times[-1].iso} UTC",
             f"Duration: {(times[-1] - times[0]).to_value('min'):.3f} minutes",
             f"Exposure time: {exposure:.4f} seconds", f"Number of points: {len(times)}", ""]
    t = run.timing
    if t is not None and t.outcome == "positive":
        lines.append(f"Model: {t.model}; baseline {_number(t.baseline, 4)}, bottom "
                     f"{_number(t.bottom, 4)}, SNR {_number(t.snr, 1)}")
        for name, edge in t.edges:
            lines.append(f"{name.capitalize()} time: {iso_utc(edge.time).replace('T', ' ')} UTC "
                         f"{_err_text(edge.err1_s)} (1 sigma)")
        if math.isfinite(t.chi2):
            lines.append(f"Minimum chi-square: {t.chi2:.3f}, degrees of freedom: {t.dof}")
    elif t is not None:
        lines.append(f"No event ({t.outcome}): {t.reason or 'not detected'}")
    lines += ["", f"Produced by: {run.produced_by()}"]
    return "\n".join(lines) + "\n"


def _chord_rows(limb: LimbFit) -> tuple[list, list, list]:
    from astropy import units as u
    from astropy.time import Time
    pos, err, neg = [], [], []
    for c in limb.chords:
        if c.f_km is None:
            continue
        label = c.name.replace(" ", "_")
        if c.positive and len(c.times_utc) == 2:
            vf = c.vf_kms if c.vf_kms is not None else np.zeros(2)
            vg = c.vg_kms if c.vg_kms is not None else np.zeros(2)
            for k, edge in enumerate(("immersion", "emersion")):
                t = Time(c.times_utc[k], scale="utc")
                f, g = c.f_km[k], c.g_km[k]
                pos.append((f, g, vf[k], vg[k], t.jd, f"{label}_{edge}"))
                e = c.time_err_s[k] if len(c.time_err_s) == 2 else 0.0
                for sign, suffix in ((-1, "-"), (1, "+")):
                    err.append((f + sign * vf[k] * e, g + sign * vg[k] * e, vf[k], vg[k],
                                (t + sign * e * u.s).jd, f"{label}_{edge}_err{suffix}"))
        elif not c.positive and len(c.times_utc) == 2:
            start, end = (Time(t, scale="utc") for t in c.times_utc)
            span_s = max((end - start).to_value("s"), 1e-9)
            vf = (c.f_km[-1] - c.f_km[0]) / span_s
            vg = (c.g_km[-1] - c.g_km[0]) / span_s
            neg.append((c.f_km[0], c.g_km[0], vf, vg, start.jd, f"{label}_start"))
            neg.append((c.f_km[-1], c.g_km[-1], vf, vg, end.jd, f"{label}_end"))
    return pos, err, neg


def _row(values) -> str:
    return "{:10.3f} {:10.3f} {:-6.2f} {:-6.2f} {:16.8f} {}".format(*values)


def ellipse_log(limb: LimbFit) -> str:
    free = [p for p in LIMB_PARAMS if limb.errors.get(p)]
    n_points = sum(len(c.f_km) for c in limb.chords if c.positive and c.f_km is not None)
    dof = max(n_points - len(free), 1)
    lines = [f"Minimum chi-square: {limb.chi2:.3f}", f"Number of fitted points: {n_points}",
             f"Number of fitted parameters: {len(free)}",
             f"Minimum chi-square per degree of freedom: {limb.chi2 / dof:.3f}"]
    for p in free:
        value = limb.value(p)
        lines.append(f"\n{SORA_NAMES[p]}:")
        for label, err in (("1-sigma", limb.errors[p]), ("3-sigma", limb.errors_3sigma.get(p))):
            if err and all(math.isfinite(e) for e in err):
                lo, hi = value - err[0], value + err[1]
                lines.append(f"    {label}: {(lo + hi) / 2:.3f} +/- {(hi - lo) / 2:.3f}")
            elif err:
                lines.append(f"    {label}: open (the interval does not close)")
        e = limb.errors[p]
        lines.append(f"    occcore best fit: {value:.3f} -{e[0]:.3f} +{e[1]:.3f} (1 sigma, "
                     "profile likelihood)")
    return "\n".join(lines) + "\n"


def _write(run: ReportInput, destination, *, options, context):
    options = options or SoraOptions()
    destination = Path(destination)
    stem = _common.file_stem(run)
    written = []
    if run.lightcurve is not None:
        written.append(write_text(destination / f"{stem}_sora_lc.dat", lightcurve_text(run, stem)))
        written.append(write_text(destination / f"{stem}_sora_lc.log", timing_log(run, stem)))
    if run.limb is not None:
        body = options.body or run.section("event").get("asteroid") or \
            run.limb.event.get("name", "body")
        body = re.sub(r"[^A-Za-z0-9.-]+", "_", str(body)).strip("_") or "body"
        pos, err, neg = _chord_rows(run.limb)
        for suffix, rows in (("pos", pos), ("err", err), ("neg", neg)):
            if rows:
                text = "".join(_row(r) + "\n" for r in rows)
                written.append(write_text(destination / f"occ_{body}_{suffix}.txt", text))
        written.append(write_text(destination / f"occ_{body}_ellipse.log",
                                  ellipse_log(run.limb)
                                  + f"\nProduced by: {run.produced_by()}\n"))
    if not written:
        raise NotApplicable("nothing to write: the run has no light curve and no limb fit")
    return written


@hookimpl
def occcore_reporters():
    yield ReporterSpec(name="sora", summary="SORA light curve (mid-exposure, seconds after "
                       "tref), timing log, chord and ellipse files", options=SoraOptions,
                       write=_write)
