"""Noise of the baseline: sigmas and an AR model of its autocorrelation (for Monte-Carlo error
bars), and the Gaussian AR noise-induced-event probability kept for comparison (PyOTE's NIE test;
the fitters use ``_significance``, calibrated on the curve's own residuals)."""
from __future__ import annotations

import math

import attrs
import numpy as np
from scipy import linalg

from occplugins.fitters._filters import colour


@attrs.frozen
class Noise:
    sigma_baseline: float
    sigma_bottom: float
    ar: np.ndarray          # AR coefficients of the baseline noise (may be empty)
    acf: np.ndarray         # leading autocorrelation coefficients used


def noise_model(residual_baseline: np.ndarray, residual_bottom: np.ndarray,
                max_lag: int = 10) -> Noise:
    """Sigmas and an AR model (Yule-Walker) of the leading autocorrelation >= 0.05."""
    rb = residual_baseline - residual_baseline.mean()
    sigma_b = float(np.std(rb, ddof=1)) if len(rb) > 2 else float("nan")
    sigma_a = float(np.std(residual_bottom, ddof=1)) if len(residual_bottom) >= 5 else sigma_b
    acf = []
    if len(rb) >= 14 and sigma_b > 0:
        denom = float(rb @ rb)
        for lag in range(1, max_lag + 1):
            c = float(rb[:-lag] @ rb[lag:]) / denom
            if c < 0.05:
                break
            acf.append(c)
    ar = np.array([])
    if acf:
        r = np.concatenate([[1.0], acf])
        try:
            ar = linalg.solve_toeplitz(r[:-1], r[1:])
            # stationary when the roots of z^p - a1 z^(p-1) - ... - ap lie inside the unit circle
            if np.any(np.abs(np.roots(np.concatenate([[1.0], -ar]))) >= 1):
                ar = np.array([])
        except (linalg.LinAlgError, ValueError):
            ar = np.array([])
    return Noise(sigma_b, sigma_a, ar, np.array(acf))


def correlated_noise(rng: np.random.Generator, shape, ar: np.ndarray) -> np.ndarray:
    """Unit-variance noise with the AR model's correlation (white when ``ar`` is empty)."""
    white = rng.standard_normal(shape)
    if len(ar) == 0:
        return white
    burn = 20 * len(ar)
    shape_b = shape[:-1] + (shape[-1] + burn,)
    white = rng.standard_normal(shape_b)
    out = colour(white, ar)[..., burn:]
    return out / np.std(out)


def _max_drops(rng, trials, n, width, ar):
    drops = np.empty(trials)
    chunk = max(1, 2_000_000 // max(n, 1))
    for a in range(0, trials, chunk):
        b = min(trials, a + chunk)
        noise = correlated_noise(rng, (b - a, n), ar)
        c = np.concatenate([np.zeros((b - a, 1)), np.cumsum(noise, axis=1)], axis=1)
        drops[a:b] = -((c[:, width:] - c[:, :-width]) / width).min(axis=1)
    return drops


def _gumbel_tail(drops, x):
    beta = np.std(drops) * math.sqrt(6) / math.pi
    mu = np.mean(drops) - 0.5772 * beta
    z = (x - mu) / beta
    return float(max(-math.expm1(-math.exp(-z)) if z < 700 else 0.0, 1e-300))


def false_positive_probability(drop_sigma: float, width: int, n: int, ar: np.ndarray,
                               rng: np.random.Generator, trials: int = 4000) -> float:
    """Probability that noise alone makes a drop of ``drop_sigma`` (in baseline sigmas) over
    ``width`` readings somewhere in ``n`` readings (PyOTE's noise-induced-event test).

    The largest drops of noise-only curves are fitted with a Gumbel law so that probabilities
    far below 1/trials are still estimated; a clear event stops after the first 500 trials."""
    width = max(1, min(width, n - 1))
    first = min(200, trials)
    drops = _max_drops(rng, first, n, width, ar)
    if trials > first and _gumbel_tail(drops, drop_sigma) > 1e-6:
        drops = np.concatenate([drops, _max_drops(rng, trials - first, n, width, ar)])
    empirical = (np.count_nonzero(drops >= drop_sigma) + 1) / (len(drops) + 1)
    if empirical > 20 / len(drops):
        return float(empirical)
    return _gumbel_tail(drops, drop_sigma)


def integrated_time(x: np.ndarray, max_lag: int = 300) -> float:
    """Integrated autocorrelation time tau = 1 + 2 sum rho_k, summed while rho_k stays above
    the white-noise band 1.96 / sqrt(n); 1 for white noise. A mean of w readings has the
    variance of a mean of w / tau independent ones."""
    x = np.asarray(x, float) - np.mean(x)
    n = len(x)
    if n < 16:
        return 1.0
    size = 1 << int(math.ceil(math.log2(2 * n)))
    f = np.fft.rfft(x, size)
    acov = np.fft.irfft(f * np.conj(f), size)[:min(n // 4, max_lag) + 1]
    if not acov[0] > 0:
        return 1.0
    acf = acov / acov[0]
    band = 1.96 / math.sqrt(n)
    below = np.flatnonzero(acf[1:] < band)
    last = int(below[0]) if len(below) else len(acf) - 1
    tau = 1.0 + 2.0 * float(np.sum(acf[1:last + 1]))
    return tau if tau > 1.0 + 2 * band else 1.0
