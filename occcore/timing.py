"""``occcore fit``: time the immersion and emersion of a light curve.

Reads any supported light-curve file (:mod:`occcore.lcio`), optionally cuts a window,
runs the ``[timing] chain`` of fitters (or the one ``--model``), and writes
``timing.json`` and ``timing.png``. The fitters' own options come from
``[timing.options.<name>]``; the command-line physics (velocity, distance ...) override
them for the fitters that have such options.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from astropy import units as u
from astropy.time import Time

from occcore import __version__
from occcore.api import Session, jsonable, versions
from occcore.chain import ChainExhausted
from occcore.config import make_options
from occcore.errors import InputError, UsageError
from occcore.lcio import read_lightcurve
from occcore.model import LightCurve, TimingResult, iso_utc
from occcore.output import write_json
from occcore.plotting import draw_timing, new_figure, save_figure

# command-line option -> fitter option field
PHYSICS = {"velocity": "velocity_kms", "distance": "distance_au",
           "star_diameter": "star_diameter_km", "wavelength": "wavelength_um",
           "bandwidth": "bandwidth_um"}


@attrs.frozen
class FitOutcome:
    result: TimingResult | None
    summary: dict
    files: tuple[Path, ...] = ()


def parse_window(text: str, lc: LightCurve) -> tuple[float, float]:
    """'T0,T1' as ISO times or seconds after 00:00 UTC of the light curve's first day ->
    offsets (s) after the light curve's epoch."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2:
        raise UsageError(f"--window: expected T0,T1, got {text!r}")
    day = Time(lc.times.epoch.utc.iso[:10], scale="utc")
    out = []
    for p in parts:
        try:
            t = Time(p, scale="utc") if (":" in p or "T" in p) else day + float(p) * u.s
        except ValueError:
            raise UsageError(f"--window: {p!r} is neither an ISO time nor seconds") from None
        out.append(float((t - lc.times.epoch).to_value("s")))
    if out[1] <= out[0]:
        raise UsageError(f"--window: {text!r} ends before it starts")
    return out[0], out[1]


def cut(lc: LightCurve, start_s: float, end_s: float) -> LightCurve:
    keep = (lc.times.offsets_s >= start_s) & (lc.times.offsets_s <= end_s)
    if keep.sum() < 8:
        raise InputError(f"the window holds {int(keep.sum())} readings; at least 8 are needed")
    times = attrs.evolve(lc.times, offsets_s=lc.times.offsets_s[keep])
    return attrs.evolve(lc, times=times, flux=lc.flux[keep],
                        flux_err=None if lc.flux_err is None else lc.flux_err[keep],
                        frame=None if lc.frame is None else lc.frame[keep],
                        flags=None if lc.flags is None else lc.flags[keep])


def _seconds(t: Time | None, epoch: Time) -> float | None:
    return None if t is None else float((t - epoch).to_value("s"))


def result_json(result: TimingResult, lc: LightCurve, source: str) -> dict[str, Any]:
    p = result.params
    out = {
        "model": result.model,
        "event_detected": True,
        "immersion_utc": iso_utc(result.immersion) if result.immersion is not None else None,
        "emersion_utc": iso_utc(result.emersion) if result.emersion is not None else None,
        "immersion_err_s": result.immersion_err_s,
        "emersion_err_s": result.emersion_err_s,
        "immersion_err2_s": p.get("immersion_err2_s"),
        "emersion_err2_s": p.get("emersion_err2_s"),
        "immersion_err3_s": result.immersion_err3_s,
        "emersion_err3_s": result.emersion_err3_s,
        "duration_s": (float((result.emersion - result.immersion).to_value("s"))
                       if result.immersion is not None and result.emersion is not None else None),
        "chi2": result.chi2, "dof": result.dof, "baseline": result.baseline,
        "bottom": result.bottom, "snr": result.snr,
        "false_positive_probability": result.false_positive_probability,
        "errors_method": p.get("errors_method"),
        "source": source, "column": lc.meta.get("column"),
        "time_instant_of_input": lc.times.instant, "exposure_s": p.get("exposure_s"),
        "cycle_s": p.get("cycle_s"), "n_readings": p.get("n_readings"),
        "edges": p.get("edges"), "normalisation_degree": p.get("normalisation_degree"),
        "integration": p.get("integration"), "sigma_baseline": p.get("sigma_baseline"),
        "sigma_bottom": p.get("sigma_bottom"), "candidates": p.get("candidates"),
        "physics": {k: p.get(k) for k in ("velocity_kms", "immersion_velocity_kms",
                                          "emersion_velocity_kms", "distance_au",
                                          "star_diameter_km", "wavelengths_um",
                                          "fresnel_scale_km", "fresnel_scale_s", "opacity")
                    if k in p},
        "intervals": {"profile": p.get("profile_intervals"),
                      "monte_carlo": p.get("monte_carlo_intervals")},
        # the readings as fitted (seconds after epoch_utc), for reports and plots
        "epoch_utc": p.get("epoch_utc"), "readings": p.get("readings"),
        "provenance": [s.to_dict() for s in result.provenance],
        "occcore_version": __version__,
    }
    return out


def fit_lightcurve(session: Session, source, *, outdir=None, column: str | None = None,
                   model: str | None = None, exposure_s: float | None = None,
                   dead_time_s: float | None = None, window: str | None = None,
                   tref: str | None = None, date: str | None = None,
                   physics: dict[str, float] | None = None, plot: bool = True) -> FitOutcome:
    """Fit one light curve (a path or a LightCurve); write timing.json/png into ``outdir``."""
    if isinstance(source, LightCurve):
        lc, name = source, source.name
    else:
        lc = read_lightcurve(source, column=column, exposure_s=exposure_s, date=date, tref=tref)
        name = str(source)
    if exposure_s is not None:
        lc = attrs.evolve(lc, exposure_s=exposure_s)
    if dead_time_s is not None:
        if dead_time_s < 0:
            raise UsageError("--dead-time must be >= 0")
        cycle = float(np.median(np.diff(lc.times.offsets_s)))
        lc = attrs.evolve(lc, dead_time_s=dead_time_s,
                          exposure_s=exposure_s if exposure_s is not None else cycle - dead_time_s)
        if lc.exposure_s <= 0:
            raise UsageError(f"--dead-time {dead_time_s} s is not shorter than the cycle {cycle} s")
    if window:
        lc = cut(lc, *parse_window(window, lc))
    names = [model] if model else session.config.chain("timing")
    candidates = [session.registry.get("timing-fitter", n) for n in names]
    context = session.context("timing")
    overrides = {PHYSICS[k]: v for k, v in (physics or {}).items() if v is not None}

    def options_for(registered):
        table = session.config.options_table("timing", registered.name)
        if registered.spec.options is not None:
            fields = {f.name for f in attrs.fields(registered.spec.options)}
            table.update({k: v for k, v in overrides.items() if k in fields})
        return make_options(registered.spec, table, f"[timing.options.{registered.name}]")

    pairs = [(c, options_for(c)) for c in candidates]

    def gate(result):
        if not isinstance(result, TimingResult):
            return f"returned {type(result).__name__}, not a TimingResult"
        if result.immersion is not None and result.emersion is not None and \
                not result.immersion < result.emersion:
            return "immersion is not before emersion"
        for edge in ("immersion_err_s", "emersion_err_s"):
            err = getattr(result, edge)
            if err is not None and not all(math.isfinite(e) and e > 0 for e in err):
                return f"{edge} {err} is not positive and finite"
        return None

    from occcore.chain import run_chain
    try:
        chained = run_chain("timing", pairs,
                            lambda reg, opt: reg.spec.fit(lc, options=opt, context=context),
                            gate=gate, strict=session.strict, source=name, emit=session.emit)
    except ChainExhausted as exc:
        if exc.attempts and all(a.status == "declined" for a in exc.attempts):
            summary = {"event_detected": False, "source": name, "occcore_version": __version__,
                       "reason": "; ".join(f"{a.implementation}: {a.reason}" for a in exc.attempts),
                       "attempts": [a.to_dict() for a in exc.attempts],
                       "provenance": [{"step": "timing", "implementation": "no event",
                                       "attempts": [a.to_dict() for a in exc.attempts]}]}
            files = ()
            if outdir is not None:
                from occcore.report import report_after_step
                files = (write_json(Path(outdir) / "timing.json", summary),
                         *report_after_step(session, outdir))
            return FitOutcome(result=None, summary=summary, files=files)
        raise
    result = attrs.evolve(chained.value, provenance=(chained.provenance("timing"),))
    summary = result_json(result, lc, name)
    files: list[Path] = []
    if outdir is not None:
        outdir = Path(outdir)
        files.append(write_json(outdir / "timing.json", {**summary, "versions": versions()}))
        if plot:
            files.append(plot_timing(jsonable(summary), outdir / "timing.png", name))
        from occcore.report import report_after_step
        files += report_after_step(session, outdir)
    return FitOutcome(result=result, summary=jsonable(summary), files=tuple(files))


def plot_timing(summary: dict[str, Any], path: Path, title: str) -> Path:
    """timing.png: data, model and residuals, each edge with its 1 and 3 sigma bands."""
    fig = new_figure(12, 6.5)
    draw_timing(fig, summary, Path(title).name)
    return save_figure(fig, path)
