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
from occcore.config import make_options
from occcore.model import LimbFit
from occcore.output import atomic_path, write_json

PARAMS = ("center_f_km", "center_g_km", "equatorial_radius_km", "oblateness",
          "position_angle_deg")


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
            files.append(plot_limb(fit, chord_file, outdir / "limb.png"))
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
                    **{k: v for k, v in c.meta.items() if k in ("times_utc", "time_err_s",
                                                                "clock_offset_s",
                                                                "time_shift_s")}}
                   for c in chord_file.chords],
        "notes": list(chord_file.notes),
        "event": chord_file.event,
        "provenance": [s.to_dict() for s in fit.provenance],
        "occcore_version": __version__,
    })
    return out


def ellipse_points(f0, g0, a, e, pa_deg, n=721):
    """(f, g) around the limb, with SORA's radial parametrisation."""
    theta = np.linspace(0, 2 * np.pi, n)
    b = a * (1 - e)
    ang = theta + np.radians(pa_deg)
    r = a * b / np.sqrt((a * np.sin(ang)) ** 2 + (b * np.cos(ang)) ** 2)
    return f0 + r * np.cos(theta), g0 + r * np.sin(theta)


def plot_limb(fit: LimbFit, chord_file: ChordFile, path: Path) -> Path:
    """Chords, negative chords, the limb and its 1-sigma band (the limbs whose parameters are
    each moved to the ends of their 1-sigma intervals, the envelope shaded)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 7.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    values = {p: getattr(fit, p) for p in PARAMS}
    theta = np.linspace(0, 2 * np.pi, 721)
    radii = []
    for p in PARAMS:
        if p not in fit.errors:
            continue
        for sign, err in ((-1, fit.errors[p][0]), (1, fit.errors[p][1])):
            if not np.isfinite(err):
                continue
            moved = dict(values)
            moved[p] = values[p] + sign * err
            f, g = ellipse_points(*[moved[k] for k in PARAMS])
            radii.append(np.hypot(f - values["center_f_km"], g - values["center_g_km"]))
    if radii:
        r = np.array(radii)
        lo, hi = r.min(axis=0), r.max(axis=0)
        ax.fill(np.concatenate([values["center_f_km"] + hi * np.cos(theta),
                                values["center_f_km"] + lo[::-1] * np.cos(theta[::-1])]),
                np.concatenate([values["center_g_km"] + hi * np.sin(theta),
                                values["center_g_km"] + lo[::-1] * np.sin(theta[::-1])]),
                color="tab:red", alpha=0.2, lw=0, label="1σ band")
    f, g = ellipse_points(*[values[k] for k in PARAMS])
    ax.plot(f, g, color="tab:red", lw=1.5, label=f"{fit.model} fit")
    for c in chord_file.chords:
        if c.f_km is None:
            continue
        if c.positive:
            ax.plot(c.f_km, c.g_km, "-", color="tab:blue", lw=1)
            if c.err_km is not None:
                direction = np.array([c.f_km[-1] - c.f_km[0], c.g_km[-1] - c.g_km[0]])
                direction = direction / (np.linalg.norm(direction) or 1)
                for fi, gi, ei in zip(c.f_km, c.g_km, c.err_km, strict=True):
                    ax.plot([fi - ei * direction[0], fi + ei * direction[0]],
                            [gi - ei * direction[1], gi + ei * direction[1]], color="tab:orange",
                            lw=2.5)
            ax.annotate(c.name, (c.f_km[-1], c.g_km[-1]), fontsize=7, xytext=(4, 2),
                        textcoords="offset points")
        else:
            ax.plot(c.f_km, c.g_km, ".", ms=1.5, color="0.4")
            ax.annotate(f"{c.name} (negative)", (c.f_km[-1], c.g_km[-1]), fontsize=7,
                        color="0.4")
    ax.plot([], [], "-", color="tab:blue", label="positive chords (orange: ±1σ)")
    ax.plot([], [], ".", color="0.4", label="negative chord paths")
    ax.set_aspect("equal")
    span = 1.6 * values["equatorial_radius_km"]
    ax.set_xlim(values["center_f_km"] + span, values["center_f_km"] - span)   # east left
    ax.set_ylim(values["center_g_km"] - span, values["center_g_km"] + span)
    ax.set_xlabel("f (km, east ←)")
    ax.set_ylabel("g (km, north ↑)")
    err = fit.errors.get("equatorial_radius_km", (np.nan, np.nan))
    ax.set_title(f"{chord_file.event.get('name', chord_file.path.name)}\n"
                 f"a = {values['equatorial_radius_km']:.1f} -{err[0]:.1f}/+{err[1]:.1f} km, "
                 f"ε = {values['oblateness']:.3f}, PA = {values['position_angle_deg']:.1f}°, "
                 f"χ² = {fit.chi2:.3g}/{fit.dof}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
