"""What a negative could have seen: for each event duration, the shallowest drop that the
significance test (``_significance``) would have declared, at the chosen false-positive
probability and with the chosen detection probability.

Drops are injected into the curve's own resampled noise: the scan statistic of a window that
holds an injected drop ``delta`` is (delta + noise drop at that window) / s_w, linear in
``delta``; so for each resampled curve, at a random position, the drop needed to reach the
critical statistic is exact, and the detection limit is the ``probability`` quantile of those
drops (never below the SNR floor). An event shorter than a reading dims one reading by
``delta`` times the fraction of the exposure it covers.
"""
from __future__ import annotations

import math

import numpy as np

from occplugins.fitters import _significance as sg


def default_widths(n: int) -> list[int]:
    """A few event widths in readings: 1, 3, 10, 30, 100, ... up to a quarter of the curve."""
    out = [w for w in (1, 3, 10, 30, 100, 300, 1000, 3000) if w <= max(1, n // 4)]
    return out or [1]


def shallowest_drop(null: sg.NullModel, width: int, *, alpha: float, min_snr: float,
                    probability: float, rng: np.random.Generator,
                    curve: np.ndarray | None = None) -> float:
    """Drop (in units of the normalised baseline) detected with ``probability`` over
    ``width`` readings; ``curve``: the normalised readings (for the SNR floor's direct
    estimate)."""
    curves = null.curves
    m, n = curves.shape
    width = int(min(max(1, width), n - 1))
    c = sg.cumulative(curves)
    i = int(np.argmin(np.abs(null.widths - width)))
    level = sg.level_of(sg.levels(curves), width, n)
    if null.widths[i] == width:
        centre, scale = null.scales[i]
    else:
        drops = sg.window_drops(c[:100], width, level[:100])
        centre, scale = float(np.mean(drops)), float(np.std(drops))
    t_crit = sg.critical_value(null.statistics, alpha)
    start = rng.integers(0, n - width + 1, m)
    rows = np.arange(m)
    inside = c[rows, start + width] - c[rows, start]
    noise = level - inside / width
    needed = np.quantile(centre + t_crit * scale - noise, probability)
    residual = null.clean if null.clean is not None else curve
    direct = sg.direct_sd_of_mean(residual, width) if residual is not None else None
    floor = min_snr * max(scale, direct or 0.0)
    return float(max(needed, floor))


def detection_limits(null: sg.NullModel, durations_s, cycle_s: float, exposure_s: float, *,
                     alpha: float, min_snr: float, probability: float,
                     rng: np.random.Generator, curve: np.ndarray | None = None) -> list[dict]:
    """One entry per duration: its width in readings, the shallowest detectable drop as a
    fraction of the baseline and in magnitudes (None when even a total occultation of that
    duration would be missed)."""
    n = null.curves.shape[1]
    if durations_s is None or len(durations_s) == 0:
        durations_s = [w * cycle_s for w in default_widths(n)]
    out = []
    for duration in durations_s:
        duration = float(duration)
        if not duration > 0:
            continue
        width = max(1, int(round(duration / cycle_s)))
        drop = shallowest_drop(null, width, alpha=alpha, min_snr=min_snr,
                               probability=probability, rng=rng, curve=curve)
        if duration < exposure_s:           # one reading, partly covered
            drop *= exposure_s / duration
        detectable = drop < 1.0
        out.append({"duration_s": duration, "readings": width,
                    "drop_fraction": float(drop) if detectable else None,
                    "magnitude_drop": float(-2.5 * math.log10(1 - drop)) if detectable
                    else None,
                    "detection_probability": probability, "false_positive": alpha})
    return out
