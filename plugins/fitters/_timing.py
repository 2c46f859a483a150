"""Shared machinery of the in-tree timing fitters.

* ``Readings``: the light curve as exposure windows [start, end) in seconds after its epoch.
* ``detect``: PyOTE's square-wave maximum-likelihood search over every (D, R) pair, made
  fast with running sums; the best event and the runners-up.
* ``normalise``: a polynomial baseline fitted outside the event (degree by BIC).
* ``block_integration``: finds blocks of repeated readings (integrating video cameras).
* ``fit_edges``: least squares on the edge times with baseline and bottom solved exactly
  (they enter linearly), then the profile likelihood of each edge: the 1, 2 and 3 sigma
  intervals are where the profile rises by 1, 4 and 9.
* ``noise_model`` / ``correlated_noise``: baseline sigma and an AR model of its
  autocorrelation, for the Monte-Carlo error bars and the noise-induced-event test.
* ``false_positive_probability``: how often noise alone makes a drop this deep and long.

A model function maps (D, R) to the normalised intensity I of every reading, 1 outside the
event and 0 deep inside; the reading is ``m = A + (B - A) I`` with baseline B and bottom A.
"""
from __future__ import annotations

import math

import attrs
import numpy as np
from scipy import linalg, optimize, signal

LEVELS = (1.0, 4.0, 9.0)      # delta chi-square of the 1, 2, 3 sigma intervals of one parameter


@attrs.frozen
class Readings:
    """Exposure windows and values, in seconds after the light curve's epoch."""

    start: np.ndarray
    end: np.ndarray
    y: np.ndarray
    sigma: np.ndarray | None
    frame: np.ndarray

    @property
    def mid(self) -> np.ndarray:
        return 0.5 * (self.start + self.end)

    @property
    def exposure(self) -> float:
        return float(np.median(self.end - self.start))

    @property
    def cycle(self) -> float:
        return float(np.median(np.diff(self.start))) if len(self.start) > 1 else self.exposure

    def take(self, keep) -> Readings:
        return Readings(self.start[keep], self.end[keep], self.y[keep],
                        None if self.sigma is None else self.sigma[keep], self.frame[keep])


def readings_of(lc, exposure_s: float | None = None, dead_time_s: float | None = None) -> Readings:
    """The light curve's exposure windows, whatever instant its stamps mean."""
    offsets = np.asarray(lc.times.offsets_s, float)
    cycle = float(np.median(np.diff(offsets))) if len(offsets) > 1 else None
    exposure = exposure_s if exposure_s is not None else lc.exposure_s
    if exposure is None and cycle is not None:
        exposure = cycle - (dead_time_s or lc.dead_time_s or 0.0)
    if exposure is None or exposure <= 0:
        raise ValueError("the exposure time is unknown; give it (--exposure)")
    shift = {"start": 0.0, "mid": 0.5, "end": 1.0}[lc.times.instant] * exposure
    start = offsets - shift
    y = np.asarray(lc.flux, float)
    keep = np.isfinite(y) & np.isfinite(start)
    sigma = None if lc.flux_err is None else np.asarray(lc.flux_err, float)
    frame = np.arange(len(y)) if lc.frame is None else np.asarray(lc.frame)
    r = Readings(start, start + exposure, y, sigma, frame)
    return r.take(keep)


# -- camera integration --------------------------------------------------------------------------


def block_integration(y: np.ndarray, sizes=(2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64)):
    """(block size, offset) of repeated readings, or None.

    An integrating camera repeats one value over a block of readings: the scatter inside the
    blocks (median of their standard deviations) is then far below the jumps at the block
    boundaries (robust sigma of the differences across boundaries). Accepted below 0.2."""
    n = len(y)
    step = np.abs(np.diff(y))
    spread = 1.4826 * float(np.median(np.abs(y - np.median(y))))
    if n < 20 or not spread > 0 or np.percentile(step, 30) > 0.15 * spread:
        return None          # neighbours differ like independent readings: no integration
    found = None
    for k in sizes:
        if 10 * k > n:       # at least ten blocks, so that an event edge is not a block jump
            break
        for offset in range(k):
            m = (n - offset) // k
            if m < 10:
                continue
            blocks = y[offset:offset + m * k].reshape(m, k)
            within = float(np.median(np.std(blocks, axis=1)))
            jumps = blocks[1:, 0] - blocks[:-1, -1]
            across = 1.4826 * float(np.median(np.abs(jumps - np.median(jumps)))) / math.sqrt(2)
            # the true block size has only real jumps at its boundaries; half of it has many
            # zero jumps and a multiple of it has jumps inside: the smallest ratio wins
            if across > 0 and within < 0.2 * across and \
                    (found is None or within / across < found[2]):
                found = (k, offset, within / across)
    return None if found is None else (found[0], found[1])


def integrate_blocks(r: Readings, size: int, offset: int) -> Readings:
    """Average each block; its window runs from its first reading's start over ``size`` cycles."""
    m = (len(r.y) - offset) // size
    sl = slice(offset, offset + m * size)
    start = r.start[sl].reshape(m, size)[:, 0]
    end = r.end[sl].reshape(m, size)[:, -1]
    y = r.y[sl].reshape(m, size).mean(axis=1)
    sigma = None if r.sigma is None else np.sqrt((r.sigma[sl].reshape(m, size) ** 2).sum(1)) / size
    return Readings(start, end, y, sigma, r.frame[sl].reshape(m, size)[:, 0])


# -- detection -----------------------------------------------------------------------------------


@attrs.frozen
class Candidate:
    d_index: int        # first reading inside the event
    r_index: int        # first reading after the event (len(y) when it runs to the end)
    score: float        # log-likelihood of the square wave
    relative_likelihood_flat: float   # exp(-dAICc/2) of a flat line against it
    drop: float

    def to_candidate(self, r: Readings):
        from occcore.model import EventCandidate
        n = len(r.start)
        return EventCandidate(
            immersion_s=float(r.start[self.d_index]) if self.d_index > 0 else None,
            emersion_s=float(r.start[self.r_index]) if self.r_index < n else None,
            readings=int(self.r_index - self.d_index), log_likelihood=float(self.score),
            relative_likelihood_flat=float(self.relative_likelihood_flat),
            drop=float(self.drop))


def _aicc(log_l: float, k: int, n: int) -> float:
    return 2 * k - 2 * log_l + (2 * k * (k + 1) / max(n - k - 1, 1))


def detect(y: np.ndarray, min_readings: int = 1, max_readings: int | None = None,
           edges: str = "both", n_best: int = 5) -> list[Candidate]:
    """Every event position and size scored by the two-level Gaussian likelihood.

    ``edges``: ``both`` (the event lies inside the data), ``immersion`` (it runs to the end),
    ``emersion`` (it starts before the data) or ``any``.
    """
    y = np.asarray(y, float)
    n = len(y)
    if n < 5:
        return []
    floor = 1e-12 * max(np.var(y), 1e-300)
    c1 = np.concatenate([[0.0], np.cumsum(y)])
    c2 = np.concatenate([[0.0], np.cumsum(y * y)])
    total1, total2 = c1[-1], c2[-1]
    max_readings = min(max_readings or n - 2, n - 2)
    best: list[tuple[float, int, int, float]] = []
    if edges in ("immersion", "emersion"):
        w = np.arange(max(1, min_readings), max_readings + 1)
        d = n - w if edges == "immersion" else np.zeros_like(w)
        widths_at_once = [(w, d, d + w)]
    else:
        widths_at_once = []
    for w_all, d_all, r_all in widths_at_once:
        s1 = c1[r_all] - c1[d_all]
        s2 = c2[r_all] - c2[d_all]
        nb = n - w_all
        mean_a, mean_b = s1 / w_all, (total1 - s1) / nb
        var_a = np.maximum(s2 / w_all - mean_a ** 2, floor)
        var_b = np.maximum((total2 - s2) / nb - mean_b ** 2, floor)
        score = np.where(mean_b > mean_a, -0.5 * (nb * np.log(var_b) + w_all * np.log(var_a)),
                         -np.inf)
        for k in np.argsort(-score)[:50]:
            if np.isfinite(score[k]):
                best.append((float(score[k]), int(d_all[k]), int(r_all[k]),
                             float(mean_b[k] - mean_a[k])))
    if edges == "any":
        found = [c for mode in ("both", "immersion", "emersion")
                 for c in detect(y, min_readings, max_readings, mode, n_best)]
        return sorted(found, key=lambda c: -c.score)[:n_best]
    for w in range(max(1, min_readings), max_readings + 1) if not widths_at_once else ():
        d = np.arange(0, n - w + 1)
        r = d + w
        allowed = np.ones_like(d, bool)
        if edges == "both":
            allowed = (d > 0) & (r < n)
        elif edges == "immersion":
            allowed = (d > 0) & (r == n)
        elif edges == "emersion":
            allowed = (d == 0) & (r < n)
        if not allowed.any():
            continue
        d, r = d[allowed], r[allowed]
        s1 = c1[r] - c1[d]
        s2 = c2[r] - c2[d]
        nb = n - w
        mean_a = s1 / w
        mean_b = (total1 - s1) / nb
        var_a = np.maximum(s2 / w - mean_a ** 2, floor)
        var_b = np.maximum((total2 - s2) / nb - mean_b ** 2, floor)
        score = -0.5 * (nb * np.log(var_b) + w * np.log(var_a))
        score = np.where(mean_b > mean_a, score, -np.inf)
        k = int(np.argmax(score))     # other dips are found by runners_up (masking)
        if np.isfinite(score[k]):
            best.append((float(score[k]), int(d[k]), int(r[k]), float(mean_b[k] - mean_a[k])))
    if not best:
        return []
    var = max(np.var(y), floor)
    flat = -0.5 * n * math.log(var)
    out = []
    for score, d, r, drop in sorted(best, reverse=True):
        if any(not (r <= c.d_index or d >= c.r_index) for c in out):
            continue    # overlaps a better candidate: the same event at another size
        rel = math.exp(-0.5 * max(_aicc(flat, 2, n) - _aicc(score, 6, n), -700)) \
            if score > flat else 1.0
        rel = min(rel, 1.0) if _aicc(score, 6, n) < _aicc(flat, 2, n) else 1.0
        out.append(Candidate(d, r, score, rel, drop))
        if len(out) >= n_best:
            break
    return out


def detect_long(y: np.ndarray, edges: str = "both", target: int = 500):
    """Detection on long curves: block-average to about ``target`` readings, then refine the
    edges at full resolution around the block positions."""
    n = len(y)
    factor = max(1, int(math.ceil(n / target)))
    if factor == 1:
        return detect(y, edges=edges)
    m = n // factor
    coarse = detect(y[:m * factor].reshape(m, factor).mean(axis=1), edges=edges)
    out = []
    c1 = np.concatenate([[0.0], np.cumsum(y)])
    c2 = np.concatenate([[0.0], np.cumsum(y * y)])
    for c in coarse:
        ds = np.arange(max(0, (c.d_index - 1) * factor), min(n, (c.d_index + 1) * factor) + 1)
        rs = np.arange(max(0, (c.r_index - 1) * factor), min(n, (c.r_index + 1) * factor) + 1)
        dd, rr = np.meshgrid(ds, rs, indexing="ij")
        ok = (rr > dd) & (rr - dd < n)
        if not ok.any():
            continue
        dd, rr = dd[ok], rr[ok]
        w = rr - dd
        s1, s2 = c1[rr] - c1[dd], c2[rr] - c2[dd]
        nb = n - w
        mean_a, mean_b = s1 / w, (c1[-1] - s1) / nb
        var_a = np.maximum(s2 / w - mean_a ** 2, 1e-300)
        var_b = np.maximum((c2[-1] - s2) / nb - mean_b ** 2, 1e-300)
        score = -0.5 * (nb * np.log(var_b) + w * np.log(var_a))
        k = int(np.argmax(score))
        out.append(Candidate(int(dd[k]), int(rr[k]), float(score[k]), c.relative_likelihood_flat,
                             float(mean_b[k] - mean_a[k])))
    return out


def runners_up(y: np.ndarray, best: Candidate, edges: str, n: int = 2) -> list[Candidate]:
    """Other events: the best one's readings removed, the search run again (n times)."""
    keep = np.ones(len(y), bool)
    keep[best.d_index:best.r_index] = False
    out = []
    for _ in range(n):
        index = np.flatnonzero(keep)
        if len(index) < 10:
            break
        found = detect_long(y[index], edges="both")
        found = [c for c in found if c.relative_likelihood_flat < 0.1]
        if not found:
            break
        c = found[0]
        d, r = int(index[c.d_index]), int(index[min(c.r_index, len(index) - 1)])
        r = r + 1 if c.r_index >= len(index) else r
        out.append(Candidate(d, r, c.score, c.relative_likelihood_flat, c.drop))
        keep[d:r] = False
    return out


# -- baseline normalisation -----------------------------------------------------------------


def normalise(t: np.ndarray, y: np.ndarray, outside: np.ndarray, degree: int | None,
              max_degree: int = 5):
    """Fit a polynomial to the readings marked ``outside`` and divide by it.

    ``degree`` None chooses 0..max_degree by the Bayesian information criterion.
    Returns (normalised y, divisor, chosen degree).
    """
    tt = t[outside]
    if len(tt) < 3:
        return y, np.ones_like(y), 0
    span = max(t.max() - t.min(), 1e-9)
    x = (t - t.min()) / span
    xo = x[outside]
    yo = y[outside]
    degrees = [degree] if degree is not None else range(0, max_degree + 1)
    best = None
    for k in degrees:
        if len(tt) <= k + 2:
            break
        coef = np.polynomial.polynomial.polyfit(xo, yo, k)
        resid = yo - np.polynomial.polynomial.polyval(xo, coef)
        rss = max(float(resid @ resid), 1e-300)
        bic = len(yo) * math.log(rss / len(yo)) + (k + 1) * math.log(len(yo))
        if best is None or bic < best[0] - (0 if degree is not None else 2.0):
            best = (bic, k, coef)
    _, k, coef = best
    # never extrapolate a polynomial: beyond the baseline readings it stays at its end value
    divisor = np.polynomial.polynomial.polyval(np.clip(x, xo.min(), xo.max()), coef)
    if np.any(divisor <= 0):
        return y, np.ones_like(y), 0
    return y / divisor, divisor, k


# -- noise ---------------------------------------------------------------------------------------


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
    out = signal.lfilter([1.0], np.concatenate([[1.0], -ar]), white, axis=-1)[..., burn:]
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


# -- the fit -------------------------------------------------------------------------------------


@attrs.frozen
class EdgeFit:
    immersion: float | None
    emersion: float | None
    baseline: float
    bottom: float
    chi2: float
    intervals: dict          # edge -> {level: (minus, plus)}
    model: np.ndarray
    evaluations: int


def _weights(sigma: np.ndarray) -> np.ndarray:
    return 1.0 / np.maximum(sigma, 1e-300) ** 2


def solve_levels(intensity: np.ndarray, y: np.ndarray, w: np.ndarray, sums=None):
    """Baseline B and bottom A minimising sum w (y - A - (B - A) I)^2, and the chi-square.

    ``sums`` = (sum w, sum w y, sum w y^2) can be passed in: the rest takes three dot
    products, so a model evaluation costs O(n) with small constants."""
    sw, swy, swyy = sums if sums is not None else (w.sum(), w @ y, w @ (y * y))
    wi = w * intensity
    swi, swii, swiy = wi.sum(), wi @ intensity, wi @ y
    suu, suv, svv = swii, swi - swii, sw - 2 * swi + swii
    suy, svy = swiy, swy - swiy
    det = suu * svv - suv * suv
    if det <= 1e-12 * max(suu * svv, 1e-300):
        b = suy / suu if suu > 0 else swy / sw
        a = b
    else:
        b = (suy * svv - svy * suv) / det
        a = (svy * suu - suy * suv) / det
    d = b - a
    chi2 = (swyy - 2 * a * swy - 2 * d * swiy + a * a * sw + 2 * a * d * swi + d * d * swii)
    return b, a, float(max(chi2, 0.0))


class Problem:
    """chi2(D, R) with B and A solved exactly; counts model evaluations."""

    def __init__(self, model_fn, r: Readings, sigma: np.ndarray, edges: str, far: float):
        self.model_fn = model_fn
        self.r = r
        self.w = _weights(sigma)
        self.sums = (self.w.sum(), self.w @ r.y, self.w @ (r.y * r.y))
        self.edges = edges
        self.far = far          # where an absent edge is put (outside the data)
        self.evaluations = 0
        self.lo = float(r.start[0]) - 2 * far   # edges are searched within these limits
        self.hi = float(r.end[-1]) + 2 * far

    def limit(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def edges_of(self, d, r):
        if self.edges == "immersion":
            r = self.r.end[-1] + self.far
        elif self.edges == "emersion":
            d = self.r.start[0] - self.far
        return d, r

    def chi2(self, d, r):
        d, r = self.edges_of(d, r)
        if r <= d or not (self.lo <= d <= self.hi and self.lo <= r <= self.hi):
            return 1e300, None
        self.evaluations += 1
        intensity = self.model_fn(d, r)
        b, a, c = solve_levels(intensity, self.r.y, self.w, self.sums)
        if not b > a:
            c = c + 1e6 * (1 + abs(a - b))     # a flash is not an occultation
        return c, (b, a, intensity)


def _scan(problem: Problem, fixed, which: int, center: float, step: float, lo: float, hi: float,
          level_max: float, chi2_min: float, reach: float = 0.0):
    """Profile of one edge from ``center`` outwards until delta-chi2 has stayed above
    ``level_max`` over a distance ``reach`` (a low-SNR profile can dip again further out)."""
    points = {center: chi2_min}
    for direction in (-1, 1):
        x = center
        h = step
        above_since = None
        for k in range(600):
            x = x + direction * h
            if x < lo or x > hi:
                break
            pair = (x, fixed) if which == 0 else (fixed, x)
            c, _ = problem.chi2(*pair)
            points[x] = c
            if c - chi2_min > level_max:
                if above_since is None:
                    above_since = x
                if abs(x - above_since) >= reach:
                    break
            else:
                above_since = None
            if k >= 10:
                h = min(h * 1.25, max(reach / 4, step))
    xs = np.array(sorted(points))
    cs = np.array([points[x] for x in xs])
    return xs, cs


def _crossings(xs, cs, chi2_min, center, level, profile=None):
    """(minus, plus) distances from ``center`` where the profile passes chi2_min + level.

    The scan brackets each crossing; ``profile(x)`` then pins it down with Brent's method
    (a straight line between scan points would cut a parabola short)."""
    above = cs - chi2_min - level
    out = []
    for side in (-1, 1):
        idx = np.flatnonzero(xs < center)[::-1] if side < 0 else np.flatnonzero(xs > center)
        # a profile with several valleys (low SNR): the interval reaches the outermost point
        # of the scan still below the level, then the crossing just beyond it
        below = [j for j, i in enumerate(idx) if above[i] < 0]
        start = below[-1] + 1 if below else 0
        prev_x, prev_a = (xs[idx[start - 1]], above[idx[start - 1]]) if start > 0 \
            else (center, -level)
        idx = idx[start:]
        found = None
        for i in idx:
            if above[i] >= 0:
                if profile is not None:
                    try:
                        found = optimize.brentq(lambda x: profile(x) - chi2_min - level,
                                                prev_x, xs[i], xtol=1e-7 * max(1.0, abs(center)),
                                                rtol=1e-10, maxiter=60)
                    except (ValueError, RuntimeError):
                        found = None
                if found is None:   # parabola through the bracket, in sqrt(delta chi2)
                    ra = math.sqrt(max(prev_a + level, 0.0))
                    rb = math.sqrt(max(above[i] + level, 0.0))
                    target = math.sqrt(level)
                    frac = (target - ra) / (rb - ra) if rb != ra else 0.0
                    found = prev_x + frac * (xs[i] - prev_x)
                break
            prev_x, prev_a = xs[i], above[i]
        if found is None:
            found = -np.inf if side < 0 else np.inf
        out.append(abs(found - center))
    return tuple(out)


def fit_edges(problem: Problem, d0: float | None, r0: float | None, step: float,
              coupled_distance: float, scan: bool = True, intervals: bool = True) -> EdgeFit:
    """Best (D, R) by local scans and a simplex search, then (with ``intervals``) the
    1/2/3-sigma profile-likelihood intervals, re-centring if the profile finds a lower chi2."""
    rd = problem.r
    lo, hi = rd.start[0] - 0.5 * step, rd.end[-1] + 0.5 * step
    d = d0 if d0 is not None else lo
    r = r0 if r0 is not None else hi
    edges = [k for k, v in ((0, d0), (1, r0)) if v is not None]

    def objective(x):
        dd, rr = d, r
        if 0 in edges:
            dd = x[edges.index(0)]
        if 1 in edges:
            rr = x[edges.index(1)]
        c, _ = problem.chi2(dd, rr)
        return c

    # local scans around the detection, then a bounded minimisation polish
    for _ in range(1 if scan else 0):
        for k in edges:
            center = d if k == 0 else r
            grid = center + step * np.linspace(-1.5, 1.5, 25)
            values = [problem.chi2(g, r)[0] if k == 0 else problem.chi2(d, g)[0] for g in grid]
            g = float(grid[int(np.argmin(values))])
            if k == 0:
                d = g
            else:
                r = g
    x0 = np.array([d if k == 0 else r for k in edges])
    window = 2 * step + 2 * float(np.median(rd.end - rd.start))
    saved = (problem.lo, problem.hi)
    problem.limit(min(x0) - window, max(x0) + window)
    result = optimize.minimize(objective, x0, method="Nelder-Mead",
                               options={"xatol": step * 1e-4, "fatol": 1e-6,
                                        "initial_simplex": np.vstack([x0] + [
                                            x0 + step * 0.2 * np.eye(len(x0))[i]
                                            for i in range(len(x0))])})
    problem.limit(*saved)
    if result.fun < objective(x0) and result.fun < 1e299:
        for i, k in enumerate(edges):
            if k == 0:
                d = float(result.x[i])
            else:
                r = float(result.x[i])
    chi2_min, (b, a, intensity) = problem.chi2(d, r)
    found_intervals = {}
    for attempt in range(4 if intervals else 0):
        found_intervals = {}
        improved = False
        for k in edges:
            center = d if k == 0 else r
            other = r if k == 0 else d
            xs, cs = _scan(problem, other, k, center, step / 20, lo - 10 * step, hi + 10 * step,
                           9.5, chi2_min, reach=3 * step)
            if abs(r - d) < coupled_distance and len(edges) == 2:
                slope = _conditional_slope(problem, d, r, k, step)
                cs = np.array([_profile_other(problem, x, other, k, step, chi2,
                                              other + slope * (x - center))
                               for x, chi2 in zip(xs, cs, strict=True)])
            j = int(np.argmin(cs))
            trial = (float(xs[j]), r) if k == 0 else (d, float(xs[j]))
            c_trial, levels = problem.chi2(*trial) if cs[j] < chi2_min - 1e-6 else (None, None)
            if levels is not None and c_trial < chi2_min - 1e-6 and attempt < 3:
                d, r = trial
                chi2_min, (b, a, intensity) = c_trial, levels
                improved = True
                break
            if abs(r - d) < coupled_distance and len(edges) == 2:
                profile = None   # nested minimisations are costly: sqrt(delta chi2) interpolation
            else:
                def profile(x, k=k, other=other):
                    return problem.chi2(*((x, other) if k == 0 else (other, x)))[0]
            found_intervals["immersion" if k == 0 else "emersion"] = {
                level: _crossings(xs, cs, chi2_min, center, level, profile) for level in LEVELS}
        if not improved:
            break
    dd, rr = problem.edges_of(d, r)
    model = a + (b - a) * intensity
    return EdgeFit(immersion=d if 0 in edges else None, emersion=r if 1 in edges else None,
                   baseline=float(b), bottom=float(a), chi2=float(chi2_min),
                   intervals=found_intervals,
                   model=model, evaluations=problem.evaluations)


def _conditional_slope(problem, d, r, which, step):
    """d(other edge)/d(this edge) along the valley of chi2, from a finite-difference Hessian."""
    h = step / 10
    f = problem.chi2
    c0 = f(d, r)[0]
    hdd = (f(d + h, r)[0] - 2 * c0 + f(d - h, r)[0]) / h ** 2
    hrr = (f(d, r + h)[0] - 2 * c0 + f(d, r - h)[0]) / h ** 2
    hdr = (f(d + h, r + h)[0] - f(d + h, r - h)[0] - f(d - h, r + h)[0]
           + f(d - h, r - h)[0]) / (4 * h * h)
    if which == 0:
        return -hdr / hrr if hrr > 0 else 0.0
    return -hdr / hdd if hdd > 0 else 0.0


def _profile_other(problem, x, other, which, step, chi2_at_fixed, guess=None):
    """chi2 minimised over the other edge (for events short enough that the edges interact):
    a parabola through three points around the valley's predicted position."""
    guess = other if guess is None else guess
    h = step / 4

    def f(o):
        pair = (x, o) if which == 0 else (o, x)
        return problem.chi2(*pair)[0]

    c = [f(guess - h), f(guess), f(guess + h)]
    curvature = c[0] - 2 * c[1] + c[2]
    best = c[1]
    if curvature > 0:
        shift = 0.5 * h * (c[0] - c[2]) / curvature
        if abs(shift) <= 2 * h:
            best = min(best, f(guess + shift))
    return min(best, min(c), chi2_at_fixed)


def monte_carlo_errors(problem: Problem, fit: EdgeFit, noise: Noise, step: float,
                       rng: np.random.Generator, trials: int = 200) -> dict:
    """Refit synthetic curves (best model + correlated noise) from the best fit; percentile
    intervals of the edge errors at 1, 2 and 3 sigma."""
    base_y = problem.r.y
    sigma = np.sqrt(1.0 / problem.w)
    found = {"immersion": [], "emersion": []}
    d0 = fit.immersion
    r0 = fit.emersion
    for _ in range(trials):
        noise_draw = correlated_noise(rng, (len(base_y),), noise.ar) * sigma
        synthetic = Readings(problem.r.start, problem.r.end, fit.model + noise_draw,
                             problem.r.sigma, problem.r.frame)
        p = Problem(problem.model_fn, synthetic, sigma, problem.edges, problem.far)

        def objective(x, p=p):
            dd = x[0] if d0 is not None else None
            rr = x[-1] if r0 is not None else None
            return p.chi2(dd if dd is not None else problem.r.start[0],
                          rr if rr is not None else problem.r.end[-1])[0]

        x0 = np.array([v for v in (d0, r0) if v is not None])
        res = optimize.minimize(objective, x0, method="Nelder-Mead",
                                options={"xatol": step * 1e-3, "fatol": 1e-6,
                                         "initial_simplex": np.vstack(
                                             [x0] + [x0 + step * 0.3 * np.eye(len(x0))[i]
                                                     for i in range(len(x0))])})
        if d0 is not None:
            found["immersion"].append(res.x[0] - d0)
        if r0 is not None:
            found["emersion"].append(res.x[-1] - r0)
    out = {}
    for edge, values in found.items():
        if not values:
            continue
        v = np.array(values)
        out[edge] = {}
        for level, (lo_q, hi_q) in zip(LEVELS, ((15.865, 84.135), (2.275, 97.725),
                                               (0.135, 99.865)), strict=True):
            q = np.percentile(v, [lo_q, hi_q])
            out[edge][level] = (float(-q[0]), float(q[1]))
    return out
