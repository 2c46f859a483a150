"""``plots``: PNG and PDF figures of a run.

* ``<stem>_lightcurve.png/.pdf``: the analysed light curve with the fitted model and its
  residuals, the edges with their 1 and 3 sigma bands, zooms on each edge; without an
  event, the light curve with the reason none was found. Below: every aperture's flux.
* ``<stem>_chords.png/.pdf``: the chords on the sky plane with their 1-sigma timing error
  bars, negative chord paths, the fitted limb and its 1-sigma band.
"""
from __future__ import annotations

from pathlib import Path

import attrs

from occcore.model import ReportInput
from occcore.plugin import (NotApplicable, ReporterSpec, draw_limb, draw_timing, hookimpl,
                            new_figure, save_figure)
from occplugins.reporters import _common


@attrs.frozen
class PlotsOptions:
    formats: tuple = attrs.field(default=("png", "pdf"), converter=tuple,
                                 validator=attrs.validators.deep_iterable(
                                     attrs.validators.in_(("png", "pdf", "svg"))))


def _apertures(ax, run: ReportInput) -> None:
    for name, lc in run.apertures.items():
        ax.plot(lc.times.offsets_s, lc.flux, ".", ms=1.5, label=name)
    ax.set_xlabel(f"s after {run.lightcurve.times.epoch.utc.isot[:23]} UTC" if run.lightcurve
                  else "s")
    ax.set_ylabel("net flux (ADU)")
    ax.legend(fontsize=7, markerscale=4, loc="upper right")
    ax.grid(alpha=0.3)


def lightcurve_figure(run: ReportInput):
    lc = _common.require_lightcurve(run)
    title = f"{_common.file_stem(run)} — {lc.meta.get('column', lc.name)}"
    has_apertures = bool(run.apertures)
    fig = new_figure(12, 9 if has_apertures else 6.5)
    timing = run.timing
    if timing is not None and timing.outcome == "positive" and timing.readings is not None:
        sub = fig.add_subfigure(fig.add_gridspec(2 if has_apertures else 1, 1,
                                                 height_ratios=(2.2, 1) if has_apertures
                                                 else None)[0])
        draw_timing(sub, timing, title)
    else:
        rows = 2 if has_apertures else 1
        ax = fig.add_subplot(rows, 1, 1)
        ax.plot(lc.times.offsets_s, lc.flux, ".", ms=2, color="0.3")
        reason = f"{timing.outcome}: {timing.reason}" if timing is not None else \
            "no timing fit in this run"
        ax.set_title(f"{title}\n{reason}"[:300], fontsize=8)
        ax.set_ylabel("signal")
        ax.grid(alpha=0.3)
    if has_apertures:
        ax = fig.add_subplot(fig.add_gridspec(2, 1, height_ratios=(2.2, 1), hspace=0.3)[1])
        _apertures(ax, run)
    fig.text(0.01, 0.005, f"produced by {run.produced_by()}"[:220], fontsize=6, color="0.4")
    return fig


def chords_figure(run: ReportInput):
    limb = run.limb
    fig = new_figure(7.5, 7.8)
    title = limb.event.get("name") or _common.file_stem(run)
    draw_limb(fig.add_subplot(1, 1, 1), limb, title)
    fig.text(0.01, 0.005, f"produced by {run.produced_by()}"[:140], fontsize=6, color="0.4")
    return fig


def _write(run: ReportInput, destination, *, options, context):
    options = options or PlotsOptions()
    destination = Path(destination)
    stem = _common.file_stem(run)
    figures = []
    if run.lightcurve is not None:
        figures.append(("lightcurve", lightcurve_figure(run)))
    if run.limb is not None:
        figures.append(("chords", chords_figure(run)))
    if not figures:
        raise NotApplicable("nothing to plot: no light curve and no limb fit")
    return [save_figure(fig, destination / f"{stem}_{what}.{fmt}", fmt)
            for what, fig in figures for fmt in options.formats]


@hookimpl
def occcore_reporters():
    yield ReporterSpec(name="plots", summary="light curve with model and residuals; chords "
                       "with the limb and its error band (PNG and PDF)", options=PlotsOptions,
                       write=_write, requires=("matplotlib",))
