"""The plots a person looks at first, drawn from the JSON summaries the steps write.

They draw the typed results (:class:`~occcore.model.TimingResult`,
:class:`~occcore.model.LimbFit`), which ``timing.json`` / ``limb.json`` read back into,
so the commands and the ``plots`` reporter draw the same figures from a finished run. matplotlib
is imported only when a figure is made, with the Agg canvas (no display needed).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from occcore.model import LIMB_PARAMS, LimbFit, TimingResult, ellipse_radius_km, iso_utc
from occcore.output import atomic_path



def new_figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | Path, fmt: str = "png") -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format=fmt)
    return Path(path)


def draw_timing(fig, result: TimingResult, title: str) -> None:
    """Data, model and residuals; the edges with their 1 and 3 sigma bands (an open side
    drawn to the edge of the panel); the whole curve and a zoom on each edge."""
    readings = result.readings
    if readings is None:
        raise ValueError("the timing result holds no readings to draw")
    start, end = readings.start_s, readings.end_s
    mid = readings.mid_s
    flux = readings.flux
    model = readings.model if readings.model is not None else np.full_like(flux, np.nan)
    chi2_text = f"χ² {result.chi2:.1f} / {result.dof}, " if math.isfinite(result.chi2) else ""
    snr_text = f"SNR {result.snr:.1f}" if math.isfinite(result.snr) else ""
    edges = [(name, e.offset_s(readings.epoch), e) for name, e in result.edges]
    t0 = edges[0][1] if edges else mid[0]
    grid = fig.add_gridspec(2, 1 + len(edges), height_ratios=(3, 1), hspace=0.08, wspace=0.25)
    columns = [(None, "whole light curve")] + [(e, e[0]) for e in edges]
    span = float(end[-1] - start[0])
    for col, (edge, label) in enumerate(columns):
        top = fig.add_subplot(grid[0, col])
        bottom = fig.add_subplot(grid[1, col], sharex=top)
        x = mid - t0
        top.plot(x, flux, ".", ms=3, color="0.3", label="data (normalised)")
        top.step(x, model, where="mid", color="tab:red", lw=1.2, label=f"{result.model} model")
        bottom.plot(x, flux - model, ".", ms=3, color="0.3")
        bottom.axhline(0, color="tab:red", lw=0.8)
        for _name, t, e in edges:
            for ax in (top, bottom):
                ax.axvline(t - t0, color="tab:blue", lw=1)
                for sigma, alpha in ((3, 0.12), (1, 0.3)):
                    interval = e.err(sigma)
                    if interval is None:
                        continue
                    minus, plus = (min(v, 2 * span) for v in interval)   # open: off the panel
                    ax.axvspan(t - t0 - minus, t - t0 + plus, color="tab:blue", alpha=alpha)
        if edge is not None:
            e = edge[2]
            width3 = sum(v for v in (e.err(3) or (0, 0)) if math.isfinite(v))
            scale = max(width3, 8 * float((end - start).mean()))
            top.set_xlim(edge[1] - t0 - 2 * scale, edge[1] - t0 + 2 * scale)
            top.set_title(f"{label} {iso_utc(e.time)[11:]} UTC\n"
                          f"{e.err_text(1)} s (1σ, dark band; 3σ light)", fontsize=8)
        else:
            top.set_title(f"{title}\n{result.outcome}: {result.model} model, {chi2_text}"
                          f"{snr_text}".rstrip(", "), fontsize=8)
            top.legend(fontsize=7, loc="lower left")
        top.tick_params(labelbottom=False)
        bottom.set_xlabel(f"s after {'immersion' if edges else 'start'}", fontsize=8)
        if col == 0:
            top.set_ylabel("normalised flux")
            bottom.set_ylabel("residual")
        top.grid(alpha=0.3)
        bottom.grid(alpha=0.3)


def ellipse_points(f0, g0, a, e, pa_deg, n=721):
    """(f, g) around the limb, with SORA's radial parametrisation."""
    theta = np.linspace(0, 2 * np.pi, n)
    r = ellipse_radius_km(theta, a, e, pa_deg)
    return f0 + r * np.cos(theta), g0 + r * np.sin(theta)


def _limb_band(ax, values: dict, errors: dict) -> None:
    """The envelope of the limbs whose parameters are each moved to the ends of their
    1-sigma intervals."""
    theta = np.linspace(0, 2 * np.pi, 721)
    radii = []
    for p in LIMB_PARAMS:
        err = errors.get(p)
        if not err:
            continue
        for sign, e in ((-1, err[0]), (1, err[1])):
            if e is None or not np.isfinite(e):
                continue
            moved = dict(values)
            moved[p] = values[p] + sign * e
            f, g = ellipse_points(*[moved[k] for k in LIMB_PARAMS])
            radii.append(np.hypot(f - values["center_f_km"], g - values["center_g_km"]))
    if not radii:
        return
    r = np.array(radii)
    lo, hi = r.min(axis=0), r.max(axis=0)
    f0, g0 = values["center_f_km"], values["center_g_km"]
    ax.fill(np.concatenate([f0 + hi * np.cos(theta), f0 + lo[::-1] * np.cos(theta[::-1])]),
            np.concatenate([g0 + hi * np.sin(theta), g0 + lo[::-1] * np.sin(theta[::-1])]),
            color="tab:red", alpha=0.2, lw=0, label="1σ band")


def draw_limb(ax, fit: LimbFit, title: str) -> None:
    """Chords (with their 1-sigma timing error bars), negative chord paths, the fitted limb
    and its 1-sigma band (an open error side draws no band on that side)."""
    values = {p: fit.value(p) for p in LIMB_PARAMS}
    _limb_band(ax, values, dict(fit.errors))
    f, g = ellipse_points(*[values[k] for k in LIMB_PARAMS])
    ax.plot(f, g, color="tab:red", lw=1.5, label=f"{fit.model} fit")
    for c in fit.chords:
        if c.f_km is None:
            continue
        cf, cg = c.f_km, c.g_km
        if c.positive:
            ax.plot(cf, cg, "-", color="tab:blue", lw=1)
            if c.err_km is not None:
                direction = np.array([cf[-1] - cf[0], cg[-1] - cg[0]])
                direction = direction / (np.linalg.norm(direction) or 1)
                for fi, gi, ei in zip(cf, cg, c.err_km, strict=True):
                    ax.plot([fi - ei * direction[0], fi + ei * direction[0]],
                            [gi - ei * direction[1], gi + ei * direction[1]], color="tab:orange",
                            lw=2.5)
            ax.annotate(c.name, (cf[-1], cg[-1]), fontsize=7, xytext=(4, 2),
                        textcoords="offset points")
        else:
            ax.plot(cf, cg, ".", ms=1.5, color="0.4")
            # label the path where it passes the body, not at its far end off the plot
            k = int(np.argmin(np.hypot(cf - values["center_f_km"], cg - values["center_g_km"])))
            ax.annotate(f"{c.name} (negative)", (cf[k], cg[k]), fontsize=7, color="0.4",
                        xytext=(4, 3), textcoords="offset points")
    ax.plot([], [], "-", color="tab:blue", label="positive chords (orange: ±1σ)")
    ax.plot([], [], ".", color="0.4", label="negative chord paths")
    ax.set_aspect("equal")
    span = 1.6 * values["equatorial_radius_km"]
    ax.set_xlim(values["center_f_km"] + span, values["center_f_km"] - span)   # east left
    ax.set_ylim(values["center_g_km"] - span, values["center_g_km"] + span)
    ax.set_xlabel("f (km, east ←)")
    ax.set_ylabel("g (km, north ↑)")
    err = fit.errors.get("equatorial_radius_km") or (np.nan, np.nan)
    ax.set_title(f"{title}\n"
                 f"a = {values['equatorial_radius_km']:.1f} -{err[0]:.1f}/+{err[1]:.1f} km, "
                 f"ε = {values['oblateness']:.3f}, PA = {values['position_angle_deg']:.1f}°, "
                 f"χ² = {fit.chi2:.3g}/{fit.dof}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
