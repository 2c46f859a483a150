"""``occcore reduce``: frames in, light curve out.

read (reader chain) -> reference frame (best seeing, via sep) -> star positions snapped
to their centroids on it -> alignment chain -> photometry chain -> normalised light curves
(the Occultation Portal's equations 1-3) -> ``lightcurve.ecsv``, ``run.json`` and
``lightcurve.png`` in OUTDIR, each written atomically.

Star positions are 0-based numpy pixel coordinates (x = column, y = row) on the reference
frame; ``one_based`` accepts DS9/JS9 coordinates.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from occcore import __version__
from occcore.api import Session, jsonable, versions
from occcore.errors import InputError, UsageError
from occcore.lightcurve import build_table
from occcore.model import (AlignRequest, Aperture, FrameFlag, FrameSeries, Photometry,
                           PhotometryRequest, Provenance, Track, iso_utc)
from occcore.output import OutputSet, atomic_path, write_json
from occcore.results import check_photometry, check_track

log = logging.getLogger("occcore")


@attrs.frozen
class StarSpec:
    name: str
    role: str
    x: float
    y: float


@attrs.frozen
class ReduceResult:
    outdir: Path
    table: Any
    track: Track
    photometry: Photometry
    provenance: Provenance
    summary: dict
    files: tuple[Path, ...]


def parse_xy(text: str, what: str) -> tuple[float, float]:
    """'X,Y' -> (x, y) floats, with a usage error naming the option."""
    parts = str(text).replace(" ", "").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise UsageError(f"{what}: expected X,Y (two numbers), got {text!r}") from None


def star_specs(target, references, guide=None) -> list[StarSpec]:
    """Names: target, reference, reference2 ..., guide."""
    if target is None:
        raise UsageError("--target X,Y is required")
    if not references:
        raise UsageError("at least one --reference X,Y is required")
    stars = [StarSpec("target", "target", *target)]
    for k, ref in enumerate(references):
        stars.append(StarSpec("reference" if k == 0 else f"reference{k + 1}", "reference", *ref))
    if guide is not None:
        stars.append(StarSpec("guide", "guide", *guide))
    return stars


# -- reference frame, FWHM and snapping (sep) ---------------------------------------------------


def _background_subtracted(frame: np.ndarray):
    import sep
    data = np.ascontiguousarray(frame, dtype=np.float64)
    background = sep.Background(data)
    return data - background.back(), background.globalrms


def frame_fwhm_px(frame: np.ndarray) -> float:
    """Median FWHM of the sources sep detects (5 sigma); NaN when none."""
    import sep
    data, rms = _background_subtracted(frame)
    try:
        sources = sep.extract(data, 5.0, err=rms, minarea=5)
    except Exception:   # sep's "object buffer full" on noisy frames: treat as bad seeing
        return float("nan")
    good = sources[(sources["flag"] == 0) & (sources["a"] > 0)]
    if len(good) == 0:
        return float("nan")
    return float(np.median(2.3548 * np.sqrt((good["a"] ** 2 + good["b"] ** 2) / 2)))


def choose_reference(series: FrameSeries, search_frames: int) -> tuple[int, float, dict]:
    n = min(len(series), search_frames)
    fwhm = np.array([frame_fwhm_px(series[k]) for k in range(n)])
    if not np.isfinite(fwhm).any():
        raise InputError(f"{series.source_name}: no star detected in the first {n} frames")
    best = int(np.nanargmin(fwhm))
    return best, float(fwhm[best]), {"searched_frames": n,
                                     "fwhm_px": [None if not np.isfinite(f) else round(float(f), 3)
                                                 for f in fwhm]}


def snap_positions(frame: np.ndarray, stars: list[StarSpec], fwhm_px: float, limit_px: float):
    """Move each position to its star's windowed centroid (sep.winpos) when within limit_px."""
    import sep
    if limit_px <= 0:
        return stars, {}
    data, _ = _background_subtracted(frame)
    sigma = max(fwhm_px / 2.3548, 0.5)
    x = np.array([s.x for s in stars])
    y = np.array([s.y for s in stars])
    wx, wy, flags = sep.winpos(data, x, y, sigma)
    out, moves = [], {}
    for s, nx, ny, flag in zip(stars, wx, wy, flags, strict=True):
        move = float(np.hypot(nx - s.x, ny - s.y))
        if flag == 0 and np.isfinite(move) and move <= limit_px:
            out.append(attrs.evolve(s, x=float(nx), y=float(ny)))
            moves[s.name] = round(move, 3)
        else:
            log.warning("%s: no star centroid within %.1f px of (%.2f, %.2f); position kept",
                        s.name, limit_px, s.x, s.y)
            out.append(s)
            moves[s.name] = None
    return out, moves


# -- checks ------------------------------------------------------------------------------------


def check_positions(series: FrameSeries, stars: list[StarSpec]) -> None:
    name = series.source_name
    for s in stars:
        if not (0 <= s.x <= series.width - 1 and 0 <= s.y <= series.height - 1):
            raise InputError(f"{name}: {s.name} at ({s.x}, {s.y}) is outside the "
                             f"{series.width}x{series.height} frame (0-based x = column, "
                             "y = row; use --one-based for DS9/JS9 coordinates)")
    for i, a in enumerate(stars):
        for b in stars[i + 1:]:
            if np.hypot(a.x - b.x, a.y - b.y) < 1.0:
                raise InputError(f"{a.name} and {b.name} are at the same position")


def check_apertures(series: FrameSeries, radius: float, annulus) -> None:
    inner, outer = annulus
    if not 0 < radius <= inner < outer:
        raise InputError(f"aperture {radius} px and annulus {inner},{outer} px must satisfy "
                         "0 < radius <= inner < outer")
    if 2 * outer + 1 > min(series.height, series.width):
        raise InputError(f"{series.source_name}: the sky annulus (outer radius {outer} px) does "
                         f"not fit in the {series.width}x{series.height} frame")


def _gain(series: FrameSeries, configured: float) -> tuple[float, str]:
    if configured > 0:
        return float(configured), "config"
    if series.gain_e_per_adu is not None and series.gain_e_per_adu > 0:
        return float(series.gain_e_per_adu), f"{series.format or 'the'} file"
    header = series.meta.get("header", {}) if isinstance(series.meta, dict) else {}
    value = header.get("EGAIN")
    if isinstance(value, (int, float)) and value > 0:
        return float(value), "header EGAIN"
    return 1.0, "default (1 e-/ADU; set photometry.gain_e_per_adu)"


# -- the run -----------------------------------------------------------------------------------


def reduce(session: Session, source, outdir, *, target, references, guide=None,
           aperture_px: float | None = None, annulus_px=None, reference_frame: int | None = None,
           one_based: bool = False, reader=None, plot: bool = True) -> ReduceResult:
    """Reduce one observation into OUTDIR. Positions are (x, y) tuples."""
    started = dt.datetime.now(dt.timezone.utc)
    stars = star_specs(target, references, guide)
    if one_based:
        stars = [attrs.evolve(s, x=s.x - 1, y=s.y - 1) for s in stars]
    cfg = session.config
    opened, read_provenance = session.open_with_provenance(source, reader)
    with opened:
        series, time_provenance, time_report = session.stamp(opened)
        if len(series) < 2:
            raise InputError(f"{series.source_name}: a light curve needs at least 2 frames; the "
                             f"source has {len(series)}")
        check_positions(series, stars)   # before any heavy work
        ref_index = reference_frame if reference_frame is not None else cfg.get("align.reference_frame")
        if ref_index is not None and ref_index >= 0:
            if ref_index >= len(series):
                raise InputError(f"--reference-frame {ref_index}: the source has {len(series)} frames")
            fwhm = frame_fwhm_px(series[ref_index])
            ref_info = {"chosen_by": "user"}
            if not np.isfinite(fwhm):
                fwhm = 3.0
        else:
            ref_index, fwhm, ref_info = choose_reference(series, cfg.get("align.reference_search_frames"))
            ref_info["chosen_by"] = "best seeing (smallest median FWHM, sep)"
        radius = aperture_px or cfg.get("photometry.aperture_px") or round(max(2.0, 1.6 * fwhm), 2)
        annulus = tuple(annulus_px or cfg.get("photometry.annulus_px") or
                        (round(radius + max(2.0, fwhm), 2), round(radius + max(2.0, fwhm) + 5.0, 2)))
        if len(annulus) != 2:
            raise UsageError(f"annulus must be two radii INNER,OUTER, got {annulus}")
        check_apertures(series, radius, annulus)
        stars, snaps = snap_positions(series[ref_index], stars, fwhm, cfg.get("align.snap_px"))
        check_positions(series, stars)
        apertures = tuple(Aperture(name=s.name, role=s.role, x=s.x, y=s.y, radius_px=radius,
                                   annulus_px=annulus) for s in stars)

        align = session.run_step(
            "align", [session.registry.get("aligner", n) for n in cfg.chain("align")],
            lambda reg, opt: reg.spec.align(
                AlignRequest(series=series, apertures=apertures, reference_index=ref_index,
                             fwhm_px=fwhm), options=opt, context=session.context("align")),
            gate=lambda track: check_track(track, len(series), len(apertures),
                                           cfg.get("align.min_aligned_fraction")),
            source=series.source_name)
        track = align.value

        gain, gain_source = _gain(series, cfg.get("photometry.gain_e_per_adu"))
        request = PhotometryRequest(series=series, track=track, apertures=apertures,
                                    gain_e_per_adu=gain,
                                    read_noise_e=cfg.get("photometry.read_noise_e"),
                                    sky_method=cfg.get("photometry.sky"))
        phot_step = session.run_step(
            "photometry", [session.registry.get("photometry", n) for n in cfg.chain("photometry")],
            lambda reg, opt: reg.spec.measure(request, options=opt,
                                              context=session.context("photometry")),
            gate=lambda phot: check_photometry(phot, len(series), [a.name for a in apertures]),
            source=series.source_name)
        phot = phot_step.value

        provenance = Provenance(steps=(read_provenance, time_provenance, align.provenance("align"),
                                       phot_step.provenance("photometry")))
        flags = series.frame_flags | track.flags | phot.flags
        times = series.times
        note = ""
        if times.instant != "mid" and series.exposure_s is not None:
            times = times.as_instant("mid", series.exposure_s)
        elif times.instant != "mid":
            note = f"stamps mean the {times.instant} of exposure; no exposure known to convert"
        time_mid = times.utc()
        roles = {s.name: s.role for s in stars}
        meta = {
            "occcore_version": __version__,
            "source": series.source_name,
            "format": series.format,
            "reader": read_provenance.implementation,
            "time_instant": times.instant,
            "time_instant_of_source": series.times.instant,
            "time_source": series.times.source,
            "time_uncertainty_s": series.times.uncertainty_s,
            "time_stamped_by": time_provenance.implementation,
            "time_report": time_report,
            "time_note": "; ".join(x for x in (series.times.note, note) if x),
            "exposure_s": series.exposure_s,
            "reference_frame": ref_index,
            "fwhm_px": round(fwhm, 3),
            "gain_e_per_adu": gain,
            "gain_source": gain_source,
            "sky_method": request.sky_method,
            "apertures": [attrs.asdict(a) for a in apertures],
            "position_snaps_px": snaps,
            "flag_bits": {f.name: int(f.value) for f in FrameFlag if f.value},
            "provenance": provenance.to_dict(),
        }
        table = build_table(series, track, phot, roles, time_mid, flags, jsonable(meta))
        summary = _summary(series, table, track, phot, provenance, ref_index, fwhm, radius, annulus)

    outdir = Path(outdir)
    names = ["lightcurve.ecsv", "run.json"] + (["lightcurve.png"] if plot else [])
    with OutputSet(outdir) as out:        # all of them appear, or none
        table.write(out.path("lightcurve.ecsv"), format="ascii.ecsv", overwrite=True)
        if plot:
            plot_lightcurve(table, out.path("lightcurve.png"))
        run = {"occcore": __version__, "versions": versions(),
               "started_utc": started.isoformat(),
               "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(),
               "source": series.source_name, "config": session.config.data,
               "config_files": list(session.config.files),
               "config_overrides": list(session.config.overrides), "metadata": meta,
               "summary": summary, "outputs": names}
        write_json(out.path("run.json"), run)
        out.commit()
    files = [outdir / n for n in names]
    from occcore.steps.report import report_after_step
    files += report_after_step(session, outdir)
    return ReduceResult(outdir=outdir, table=table, track=track, photometry=phot,
                        provenance=provenance, summary=summary, files=tuple(files))


def _summary(series, table, track, phot, provenance, ref_index, fwhm, radius, annulus) -> dict:
    ratio = np.asarray(table["ratio"], float)
    finite = np.isfinite(ratio)
    deepest = int(np.nanargmin(ratio)) if finite.any() else None
    return {
        "source": series.source_name,
        "n_frames": len(series),
        "start_utc": iso_utc(table["time"][0]),
        "end_utc": iso_utc(table["time"][-1]),
        "reference_frame": ref_index,
        "fwhm_px": round(fwhm, 3),
        "aperture_px": radius,
        "annulus_px": list(annulus),
        "time_source": provenance.steps[1].implementation,
        "aligner": provenance.steps[2].implementation,
        "photometry": provenance.steps[3].implementation,
        "attempts": {s.step: [f"{a.implementation}: {a.status}" for a in s.attempts]
                     for s in provenance.steps},
        "flagged_frames": int(np.count_nonzero(np.asarray(table["flag"]))),
        "align_uncertain_frames": int(np.count_nonzero(track.flags & FrameFlag.ALIGN_UNCERTAIN)),
        "ratio_median": float(np.nanmedian(ratio)) if finite.any() else None,
        "ratio_min": float(ratio[deepest]) if deepest is not None else None,
        "ratio_min_frame": deepest,
    }


def plot_lightcurve(table, path: Path) -> Path:
    """The three curves of the Portal's Fig. A3: target, reference and their ratio."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = table["time"]
    seconds = (t - t[0]).to_value("s")
    flagged = np.asarray(table["flag"]) != 0
    fig = Figure(figsize=(10, 7.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.95, bottom=0.07, hspace=0.08)
    curves = (("norm_target", "target / median", "tab:red"),
              ("norm_reference", "reference / median", "tab:blue"),
              ("ratio", "target / reference", "black"))
    for ax, (column, label, color) in zip(axes, curves, strict=True):
        y = np.asarray(table[column], float)
        ax.plot(seconds, y, ".", ms=2, color=color, label=label)
        if flagged.any():
            ax.plot(seconds[flagged], y[flagged], "x", ms=4, color="orange", label="flagged")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    axes[-1].set_xlabel(f"seconds after {iso_utc(t[0])} UTC (mid-exposure)")
    axes[0].set_title(f"{table.meta.get('source', '')} ({len(table)} frames)", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
