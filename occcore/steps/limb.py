"""``occcore limb``: fit the limb of the occulting body to the chords of a TOML file and write
``limb.json`` and ``limb.png``."""
from __future__ import annotations

from pathlib import Path

import attrs

from occcore import __version__
from occcore.api import Session, jsonable, versions
from occcore.chords import ChordFile, derived, fit_options_table, load_chords
from occcore.model import LIMB_PARAMS as PARAMS  # noqa: F401  (re-exported for the CLI)
from occcore.model import LimbFit
from occcore.output import OutputSet, write_json
from occcore.plotting import draw_limb, new_figure, save_figure
from occcore.results import check_limb_fit


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
    context = session.context("limb")
    result = session.run_step(
        "limb", candidates,
        lambda reg, opt: reg.spec.fit(chord_file.chords, options=opt, context=context),
        gate=check_limb_fit, source=str(chord_file.path), extra=table,
        where=f"{chord_file.path} [fit]")
    fit = result.value
    fit = attrs.evolve(fit, chords=fit.chords or chord_file.chords,
                       derived=derived(fit, chord_file), event=chord_file.event,
                       notes=(*fit.notes, *chord_file.notes),
                       time_shifts_s=chord_file.time_shifts,
                       provenance=(result.provenance("limb"),))
    summary = jsonable(fit.to_json())
    files: list[Path] = []
    if outdir is not None:
        outdir = Path(outdir)
        with OutputSet(outdir) as out:      # limb.json and its plot appear together
            write_json(out.path("limb.json"), {**summary, "occcore_version": __version__,
                                               "versions": versions()})
            if plot:
                plot_limb(fit, out.path("limb.png"),
                          chord_file.event.get("name", chord_file.path.name))
            files += out.commit()
        from occcore.steps.report import report_after_step
        files += report_after_step(session, outdir)
    return LimbOutcome(fit=fit, chords=chord_file, summary=summary, files=tuple(files))


def plot_limb(fit: LimbFit, path: Path, title: str) -> Path:
    """limb.png: chords, negative chords, the limb and its 1-sigma band."""
    fig = new_figure(7.5, 7.5)
    draw_limb(fig.add_subplot(1, 1, 1), fit, title)
    return save_figure(fig, path)
