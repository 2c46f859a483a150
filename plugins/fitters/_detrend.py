"""Baseline and trend: a polynomial (degree chosen by BIC) fitted to the readings outside the
event, and the robust detrending that runs before and during detection.

Slow trends (airmass, sky, a drifting aperture) make a two-level search see a step where the
curve merely slopes, and hide a real event under it. ``detrend_and_detect`` therefore
alternates: fit the trend to every reading not yet suspected of being in an event, divide it
out, search, mask the best candidate (with a margin), refit the trend without it, and search
again until the candidate stops moving. The event never pulls the trend down, and the trend
never becomes the event.
"""
from __future__ import annotations

import math

import attrs
import numpy as np
import scipy.linalg

from occplugins.fitters._noise import integrated_time


def polynomial_trend(t: np.ndarray, y: np.ndarray, use: np.ndarray, degree: int | None,
                     max_degree: int = 5) -> tuple[np.ndarray | None, int]:
    """The polynomial fitted to ``y[use]`` evaluated at every ``t`` (held at its end values
    beyond the fitted readings: a polynomial is never extrapolated), and its degree.

    ``degree`` None chooses 0..max_degree by the Bayesian information criterion (a degree
    must lower BIC by 2 to be preferred), counting n / tau independent readings (tau: the
    integrated autocorrelation time of the straight-line residuals): correlated noise
    otherwise buys a high degree that eats the slow noise outside an event but not inside.
    None when fewer than three readings are usable."""
    if np.count_nonzero(use) < 3:
        return None, 0
    span = max(float(t.max() - t.min()), 1e-9)
    x = (t - t.min()) / span
    xo, yo = x[use], y[use]
    degrees = [degree] if degree is not None else range(0, max_degree + 1)
    degrees = [k for k in degrees if len(xo) > k + 2]
    if not degrees:
        return None, 0
    want_line = degree is None and len(xo) >= 16
    # every degree from one QR of the Vandermonde matrix: the fits are nested, so the
    # residuals of degree k are those of degree k - 1 less their part along the k-th
    # orthonormal column (one least-squares solve instead of one per degree)
    columns = max(max(degrees), 1 if want_line else 0) + 1
    q, r = np.linalg.qr(np.vander(xo, columns, increasing=True))
    along = q.T @ yo
    residuals = [yo - q[:, 0] * along[0]]
    for k in range(1, columns):
        residuals.append(residuals[-1] - q[:, k] * along[k])
    tau = integrated_time(residuals[1]) if want_line else 1.0
    n_eff = len(yo) / tau
    best = None
    for k in degrees:
        rss = max(float(residuals[k] @ residuals[k]), 1e-300)
        bic = n_eff * math.log(rss / len(yo)) + (k + 1) * math.log(n_eff)
        if best is None or bic < best[0] - (0 if degree is not None else 2.0):
            best = (bic, k)
    _, k = best
    coef = scipy.linalg.solve_triangular(r[:k + 1, :k + 1], along[:k + 1])
    return np.polynomial.polynomial.polyval(np.clip(x, xo.min(), xo.max()), coef), k


def normalise(t: np.ndarray, y: np.ndarray, outside: np.ndarray, degree: int | None,
              max_degree: int = 5):
    """Fit a polynomial to the readings marked ``outside`` and divide by it.

    Returns (normalised y, divisor, chosen degree); a trend that is not positive everywhere
    (a curve around zero) leaves the readings as they are."""
    trend, k = polynomial_trend(t, y, outside, degree, max_degree)
    if trend is None or np.any(trend <= 0):
        return y, np.ones_like(y), 0
    return y / trend, trend, k


@attrs.frozen
class Detrended:
    """What detection saw: the trend divided out, the mode and candidates found on the
    detrended readings, the readings kept out of the trend fit, and the iterations taken."""

    trend: np.ndarray
    degree: int
    mode: str
    candidates: list
    masked: np.ndarray
    iterations: int


def gap_degree(max_degree: int, masked: np.ndarray, mode: str = "both") -> int:
    """Highest trend degree that can be trusted across the masked readings: a polynomial
    bridging a gap of a third of the curve or more is an interpolation of its ends only."""
    if mode != "both":
        return min(max_degree, 1)
    fraction = float(np.mean(masked)) if len(masked) else 0.0
    return min(max_degree, 5 if fraction < 0.3 else 2 if fraction < 0.5 else 1)


def _event_mask(n: int, candidate, mode: str, margin: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    lo = 0 if mode == "emersion" else max(0, candidate.d_index - margin)
    hi = n if mode == "immersion" else min(n, candidate.r_index + margin)
    mask[lo:hi] = True
    return mask


def detrend_and_detect(t: np.ndarray, y: np.ndarray, search, *, degree: int | None = None,
                       max_degree: int = 5, margin: int = 2, iterations: int = 5) -> Detrended:
    """Alternate trend fit and detection (see the module docstring).

    ``search(y_detrended)`` returns (mode, candidates) with candidates best first. The trend is
    refitted without the best candidate's readings (and ``margin`` readings each side) until
    the candidate repeats; one-sided events (immersion/emersion modes) allow at most a
    straight line, since a baseline on one side of an event cannot tell its curvature."""
    n = len(y)
    masked = np.zeros(n, bool)
    trend = np.ones(n)
    k = 0
    mode, candidates = "both", []
    seen = []
    done = 0
    for done in range(1, iterations + 1):
        # first a straight line through everything (a free polynomial would fit the event
        # itself), then the degree the data choose with the candidate masked
        top = gap_degree(max_degree, masked, mode) if done > 1 else min(max_degree, 1)
        fitted, k_fit = polynomial_trend(t, y, ~masked, degree, top)
        if fitted is not None and np.all(fitted > 0):
            trend, k = fitted, k_fit
        mode, candidates = search(y / trend)
        if not candidates:
            break
        best = candidates[0]
        key = (mode, best.d_index, best.r_index)
        if key in seen:               # converged (or cycling between two masks): stop
            break
        seen.append(key)
        masked = _event_mask(n, best, mode, margin)
        if np.count_nonzero(~masked) < max(5, n // 10):
            break                     # the 'event' is nearly the whole curve: keep the trend
    return Detrended(trend=trend, degree=k, mode=mode, candidates=candidates, masked=masked,
                     iterations=done)


@attrs.frozen
class SmoothAlternative:
    """The square event against a smooth trend alone: the BIC of both (counting n / tau
    independent readings) and the polynomial degree of the best smooth trend."""

    event_bic: float
    smooth_bic: float
    smooth_degree: int

    def event_preferred(self, margin: float = 10.0) -> bool:
        """The event's BIC lower by ``margin`` (10: "very strong" evidence, Kass and Raftery
        1995)."""
        return self.event_bic < self.smooth_bic - margin


def smooth_alternative(t: np.ndarray, y: np.ndarray, event_model: np.ndarray,
                       event_parameters: int, max_degree: int = 8) -> SmoothAlternative:
    """Is the dip an occultation's (sharp edges) or a slow wander that a smooth trend explains
    as well? ``event_model``: the fitted trend times the square event, on the raw readings
    ``y``, with ``event_parameters`` free parameters (trend coefficients, edges, bottom).
    Smooth trends are polynomials of every degree up to ``max_degree`` fitted to every
    reading; the comparison is by BIC with n / tau readings (tau from the event fit's
    residuals), so that correlated noise does not buy either model extra weight."""
    n = len(y)
    resid = y - event_model
    n_eff = max(n / integrated_time(resid), 2.0)

    def bic(rss: float, k: int) -> float:
        return n_eff * math.log(max(rss, 1e-300) / n) + k * math.log(n_eff)

    span = max(float(t.max() - t.min()), 1e-9)
    x = 2 * (t - t.min()) / span - 1          # Chebyshev basis on [-1, 1]: well conditioned
    best = (math.inf, 0)
    for degree in range(0, min(max_degree, n - 3) + 1):
        coef = np.polynomial.chebyshev.chebfit(x, y, degree)
        r = y - np.polynomial.chebyshev.chebval(x, coef)
        best = min(best, (bic(float(r @ r), degree + 1), degree))
    return SmoothAlternative(event_bic=bic(float(resid @ resid), event_parameters),
                             smooth_bic=best[0], smooth_degree=best[1])
