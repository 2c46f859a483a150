"""``occcore limb``: fit the limb of the occulting body to the chords of a TOML file and write
``limb.json`` and ``limb.png``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

from occcore import __version__
from occcore.api import Session, jsonable, versions
from occcore.chain import run_chain
from occcore.chords import ChordFile, derived, fit_options_table, load_chords
from occcore.validate import make_options
from occcore.model import LIMB_PARAMS as PARAMS
from occcore.model import LimbFit
from occcore.output import write_json
from occcore.plotting import draw_limb, new_figure, save_figure



@attrs.frozen
class LimbOutcome:
    fit: LimbFit
    chords: ChordFile
    summary: dict
    files: tuple[Path, ...] = ()


def fit_limb(session: Session, path, outdir=None, model: str | None = None,
             plot: bool = True) -> LimbOutcome:
    chord_file = load_chords(path)
    file_model, table = fit_options_table(chord_file)
    names = [model or file_model] if (model or file_model) else session.config.chain("limb")
    candidates = [session.registry.get("limb-fitter", n) for n in names]
    pairs = []
    for c in candidates:
        merged = {**session.config.options_table("limb", c.name), **table}
        pairs.append((c, make_options(c.spec, merged, f"{chord_file.path} [fit]")))
    context = session.context("limb")

    def gate(fit):
        if not isinstance(fit, LimbFit):
            return f"returned {type(fit).__name__}, not a LimbFit"
        if not (fit.equatorial_radius_km > 0 and np.isfinite(fit.chi2)):
            return "radius not positive or chi2 not finite"
        return None

    result = run_chain("limb", pairs, lambda reg, opt: reg.spec.fit(
        chord_file.chords, options=opt, context=context), gate=gate, strict=session.strict,
        source=str(chord_file.path), emit=session.emit)
    fit = attrs.evolve(result.value, provenance=(result.provenance("limb"),))
    summary = summarise(fit, chord_file)
    files: list[Path] = []
    if outdir is not None:
        outdir = Path(outdir)
        files.append(write_json(outdir / "limb.json", {**summary, "versions": versions()}))
        if plot:
            files.append(plot_limb(jsonable(summary), outdir / "limb.png",
                                    chord_file.event.get("name", chord_file.path.name)))
        from occcore.steps.report import report_after_step
        files += report_after_step(session, outdir)
    return LimbOutcome(fit=fit, chords=chord_file, summary=jsonable(summary), files=tuple(files))


def summarise(fit: LimbFit, chord_file: ChordFile) -> dict[str, Any]:
    out: dict[str, Any] = {"model": fit.model}
    for p in PARAMS:
        out[p] = getattr(fit, p)
        out[f"{p}_err"] = list(fit.errors[p]) if p in fit.errors else None
    out.update({
        "chi2": fit.chi2, "dof": fit.dof,
        "residuals_km": fit.residuals_km,
        "errors_3sigma": fit.params.get("errors_3sigma"),
        "fixed": fit.params.get("fixed"),
        "negative_chords_crossed": fit.params.get("negative_chords_crossed"),
        "solutions": fit.params.get("solutions"),
        "time_shifts_s": chord_file.time_shifts or None,
        "derived": derived(fit, chord_file),
        "chords": [{"name": c.name, "positive": c.positive,
                    "f_km": None if c.f_km is None else c.f_km.tolist(),
                    "g_km": None if c.g_km is None else c.g_km.tolist(),
                    "err_km": None if c.err_km is None else c.err_km.tolist(),
                    "site": None if c.site is None else {
                        "latitude_deg": c.site.latitude_deg, "longitude_deg": c.site.longitude_deg,
                        "height_m": c.site.height_m},
                    **{k: v for k, v in c.meta.items() if k in (
                        "times_utc", "time_err_s", "vf_kms", "vg_kms", "clock_offset_s",
                        "time_shift_s", "start_utc", "end_utc")}}
                   for c in chord_file.chords],
        "notes": list(chord_file.notes),
        "event": chord_file.event,
        "provenance": [s.to_dict() for s in fit.provenance],
        "occcore_version": __version__,
    })
    return out


def plot_limb(summary: dict[str, Any], path: Path, title: str) -> Path:
    """limb.png: chords, negative chords, the limb and its 1-sigma band."""
    fig = new_figure(7.5, 7.5)
    draw_limb(fig.add_subplot(1, 1, 1), summary, title)
    return save_figure(fig, path)
