"""What makes a step's result good: one check per kind.

Each check returns None for a good result or the reason it is not. The runtime gates
of the fallback chains call these functions, and so do the conformance contracts
(:mod:`occcore.testing.contracts`), so "accepted by occcore" and "passes the
contract" are the same thing.
"""
from __future__ import annotations

import math

import numpy as np

from occcore.model import (SIGMA_LEVELS, FrameFlag, FrameSeries, LightCurve, LimbFit,
                           Photometry, TimeStamps, TimingResult, Track)


def _kind(value, expected: type) -> str | None:
    if not isinstance(value, expected):
        return f"returned {type(value).__name__}, not a {expected.__name__}"
    return None


def check_series(series) -> str | None:
    """A reader's result: a FrameSeries with one time per frame."""
    return _kind(series, FrameSeries)


def check_lightcurve(lc) -> str | None:
    """A light-curve reader's result: a LightCurve with at least one reading."""
    problem = _kind(lc, LightCurve)
    if problem:
        return problem
    if len(lc.flux) == 0:
        return "the light curve holds no reading"
    return None


def check_time_stamps(stamps, n_frames: int | None = None) -> str | None:
    """A time source's result: one stamp (and one flag word) per frame."""
    problem = _kind(stamps, TimeStamps)
    if problem:
        return problem
    if n_frames is not None and len(stamps.times) != n_frames:
        return f"{len(stamps.times)} stamps for {n_frames} frames"
    return None


def check_track(track, n_frames: int, n_stars: int, min_aligned_fraction: float = 0.0
                ) -> str | None:
    """An aligner's result: finite positions for every frame and star, enough of them
    aligned with confidence."""
    problem = _kind(track, Track)
    if problem:
        return problem
    if track.x.shape != (n_frames, n_stars) or track.y.shape != (n_frames, n_stars):
        return f"positions have shape {track.x.shape}, expected {(n_frames, n_stars)}"
    if not (np.all(np.isfinite(track.x)) and np.all(np.isfinite(track.y))):
        return "positions contain NaN"
    aligned = 1 - np.count_nonzero(track.flags & FrameFlag.ALIGN_UNCERTAIN) / n_frames
    if aligned < min_aligned_fraction:
        return (f"only {aligned:.0%} of frames aligned (min_aligned_fraction "
                f"{min_aligned_fraction:.0%})")
    return None


def check_photometry(phot, n_frames: int, names) -> str | None:
    """Photometry: one flux per frame and star, each star measured in some frame, every
    measured flux with a positive finite error."""
    problem = _kind(phot, Photometry)
    if problem:
        return problem
    names = tuple(names)
    if phot.flux.shape != (n_frames, len(names)):
        return f"fluxes have shape {phot.flux.shape}, expected {(n_frames, len(names))}"
    measured = np.isfinite(phot.flux)
    empty = [name for j, name in enumerate(names) if not measured[:, j].any()]
    if empty:
        return f"no finite flux for {', '.join(empty)} in any frame"
    bad = measured & ~(np.isfinite(phot.flux_err) & (phot.flux_err > 0))
    if bad.any():
        j = int(np.flatnonzero(bad.any(axis=0))[0])
        return f"{int(bad.sum())} fluxes without a positive finite error (first: {names[j]})"
    return None


def check_timing_result(result) -> str | None:
    """A timing fitter's result: a positive has at least one edge, immersion before
    emersion, and intervals that are (minus, plus) with positive sides (open allowed)."""
    problem = _kind(result, TimingResult)
    if problem:
        return problem
    if result.outcome == "positive" and not result.edges:
        return "a positive result without an immersion or an emersion"
    if result.outcome != "positive" and result.edges:
        return f"a {result.outcome} result with edge times"
    if result.immersion is not None and result.emersion is not None and \
            not result.immersion.time < result.emersion.time:
        return "immersion is not before emersion"
    for name, edge in result.edges:
        for k in SIGMA_LEVELS:
            interval = edge.err(k)
            if interval is not None and not all(v > 0 for v in interval):
                return f"{name} {k}-sigma interval {interval} is not positive"
    return None


def check_limb_fit(fit) -> str | None:
    """A limb fitter's result: a positive radius and a finite chi-square."""
    problem = _kind(fit, LimbFit)
    if problem:
        return problem
    if not (fit.equatorial_radius_km > 0 and math.isfinite(fit.chi2)):
        return "radius not positive or chi2 not finite"
    return None


def check_written(paths) -> str | None:
    """A reporter's result: the list of paths it wrote."""
    if not isinstance(paths, (list, tuple)):
        return f"returned {type(paths).__name__}, not a list of paths"
    return None
