"""``occcore fit``: time the immersion and emersion of a light curve.

Reads any light-curve file the ``lightcurve-reader`` plugins know, optionally cuts a window,
runs the ``[timing] chain`` of fitters (or the one ``--model``), and writes
``timing.json`` and ``timing.png``. The fitters' own options come from
``[timing.options.<name>]``; the command-line physics (velocity, distance ...) override
them for the fitters that have such options.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
from astropy import units as u
from astropy.time import Time

from occcore import __version__
from occcore.api import Session, jsonable, versions
from occcore.chain import ChainExhausted
from occcore.errors import InputError, UsageError
from occcore.model import LightCurve, StepProvenance, TimingReadings, TimingResult
from occcore.results import check_timing_result
from occcore.output import OutputSet, write_json
from occcore.plotting import draw_timing, new_figure, save_figure

# command-line option -> fitter option field
PHYSICS = {"velocity": "velocity_kms", "distance": "distance_au",
           "star_diameter": "star_diameter_km", "wavelength": "wavelength_um",
           "bandwidth": "bandwidth_um", "immersion_velocity": "immersion_velocity_kms",
           "emersion_velocity": "emersion_velocity_kms"}


@attrs.frozen
class FitOutcome:
    result: TimingResult
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


def _with_reading_notes(result: TimingResult, lc: LightCurve, read_provenance):
    """What the reader found about the time stamps and the date goes with the result."""
    extra = dict(result.diagnostics.extra)
    notes = list(result.diagnostics.notes)
    quality = lc.meta.get("timestamp_quality")
    if quality is not None:
        extra["timestamp_quality"] = quality
        if quality.get("frames") and quality["frames"] != "no timestamp problem found":
            notes.append(f"timestamps: {lc.meta.get('timestamp_summary', quality['frames'])}")
    for key in ("date_source", "dialect", "observer", "site", "object", "telescope", "camera"):
        if key in lc.meta:
            extra[key] = lc.meta[key]
    provenance = result.provenance if read_provenance is None else \
        (read_provenance, *result.provenance)
    return attrs.evolve(result, provenance=provenance,
                        diagnostics=attrs.evolve(result.diagnostics, extra=extra, notes=notes))


def _with_readings(result: TimingResult, lc: LightCurve) -> TimingResult:
    """The result with readings to draw: a fitter that gave none (a third-party one may
    fill only the edges) is drawn over the light curve itself, normalised by its median."""
    if result.readings is not None:
        return result
    exposure = lc.exposure_s or float(np.median(np.diff(lc.times.offsets_s)))
    start = lc.times.as_instant("start", exposure).offsets_s
    flux = np.asarray(lc.flux, float)
    scale = float(np.nanmedian(flux)) or 1.0
    return attrs.evolve(result, readings=TimingReadings(
        epoch=lc.times.epoch, start_s=start, end_s=start + exposure, flux=flux / scale))


def _no_result(exc: ChainExhausted, source: str, lc: LightCurve) -> TimingResult:
    """Every fitter declined: the curve could not be analysed (an analysed curve without a
    significant event is a fitter's *negative* result, never this)."""
    reason = "; ".join(f"{a.implementation}: {a.reason}" for a in exc.attempts) or \
        "no timing fitter was tried"
    return TimingResult(model="none", outcome="undetermined", reason=reason, source=source,
                        column=lc.meta.get("column"))


def fit_lightcurve(session: Session, source, *, outdir=None, column: str | None = None,
                   model: str | None = None, exposure_s: float | None = None,
                   dead_time_s: float | None = None, window: str | None = None,
                   tref: str | None = None, date: str | None = None,
                   physics: dict[str, float] | None = None, plot: bool = True,
                   reader: str | None = None, reading: dict[str, Any] | None = None
                   ) -> FitOutcome:
    """Fit one light curve (a path or a LightCurve); write timing.json/png into ``outdir``.

    ``reader`` picks the light-curve reader (default: identified); ``reading`` holds more
    of its options (``frame_rate_hz``, ``cadence_s``, ``start_utc``, ``timestamps``,
    ``time_column`` ...)."""
    read_provenance = None
    if isinstance(source, LightCurve):
        lc, name = source, source.name
    else:
        wanted = {"column": column, "exposure_s": exposure_s, "date": date, "tref": tref,
                  **(reading or {})}
        lc, read_provenance = session.read_lightcurve(
            source, reader, {k: v for k, v in wanted.items() if v is not None})
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
    try:
        chained = session.run_step(
            "timing", candidates, lambda reg, opt: reg.spec.fit(lc, options=opt, context=context),
            gate=check_timing_result, source=name, overrides=overrides)
    except ChainExhausted as exc:
        if not (exc.attempts and all(a.status == "declined" for a in exc.attempts)):
            raise
        result = attrs.evolve(_no_result(exc, name, lc), provenance=(StepProvenance(
            step="timing", implementation="none", provider="", attempts=exc.attempts),))
    else:
        result = attrs.evolve(chained.value, source=name, column=lc.meta.get("column"),
                              provenance=(chained.provenance("timing"),))
    result = _with_reading_notes(result, lc, read_provenance)
    files: list[Path] = []
    if outdir is not None:
        outdir = Path(outdir)
        with OutputSet(outdir) as out:      # timing.json and its plot appear together
            write_json(out.path("timing.json"), {**result.to_json(),
                                                  "occcore_version": __version__,
                                                  "versions": versions()})
            if plot and result.outcome != "undetermined":
                plot_timing(_with_readings(result, lc), out.path("timing.png"), name)
            files += out.commit()
        from occcore.steps.report import report_after_step
        files += report_after_step(session, outdir)
    return FitOutcome(result=result, summary=jsonable(result.to_json()), files=tuple(files))


def plot_timing(result: TimingResult, path: Path, title: str) -> Path:
    """timing.png: data, model and residuals, each edge with its 1 and 3 sigma bands."""
    fig = new_figure(12, 6.5)
    draw_timing(fig, result, Path(title).name)
    return save_figure(fig, path)
