"""Edge fit: least squares on the edge times with baseline and bottom solved exactly (they
enter linearly), then the profile likelihood of each edge: the 1, 2 and 3 sigma intervals are
where the profile rises by 1, 4 and 9; Monte-Carlo intervals as an alternative."""
from __future__ import annotations

import math

import attrs
import numpy as np
from scipy import optimize

from occplugins.fitters._noise import Noise, correlated_noise
from occplugins.fitters._readings import Readings

LEVELS = (1.0, 4.0, 9.0)      # delta chi-square of the 1, 2, 3 sigma intervals of one parameter



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
    return levels_from_sums(sw, swy, swyy, wi.sum(), wi @ intensity, wi @ y)


def levels_from_sums(sw, swy, swyy, swi, swii, swiy):
    """``solve_levels`` from the weighted sums of 1, y, y^2, I, I^2 and I y."""
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
    """chi2(D, R) with B and A solved exactly; counts model evaluations.

    A model with a ``departures`` method (see ``_models._Departures``) is evaluated only at
    the readings near its edges: the sums over the readings at full light come from running
    sums of the weights."""

    def __init__(self, model_fn, r: Readings, sigma: np.ndarray, edges: str, far: float):
        self.model_fn = model_fn
        self.r = r
        self.w = _weights(sigma)
        self.sums = (self.w.sum(), self.w @ r.y, self.w @ (r.y * r.y))
        self.wy = self.w * r.y
        self.cum_w = np.concatenate([[0.0], np.cumsum(self.w)]).tolist()
        self.cum_wy = np.concatenate([[0.0], np.cumsum(self.wy)]).tolist()
        departures = getattr(model_fn, "departures", None)
        self.departures = departures if departures is not None and \
            len(getattr(model_fn, "a", ())) == len(r.y) else None
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
        found = self.departures(d, r) if self.departures is not None else None
        if found is None:
            b, a, c = solve_levels(self.model_fn(d, r), self.r.y, self.w, self.sums)
        else:
            first, last, where, values = found
            cw, cwy = self.cum_w, self.cum_wy
            full_light = cw[first] + cw[-1] - cw[last]       # there I = I^2 = 1
            wv = self.w[where] * values
            b, a, c = levels_from_sums(*self.sums, full_light + wv.sum(),
                                       full_light + wv @ values,
                                       cwy[first] + cwy[-1] - cwy[last] + self.wy[where] @ values)
        if not b > a:
            c = c + 1e6 * (1 + abs(a - b))     # a flash is not an occultation
        return c, (b, a)

    def intensity(self, d, r) -> np.ndarray:
        """The model at every reading (with an absent edge put outside the data)."""
        return self.model_fn(*self.edges_of(d, r))


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
    chi2_min, (b, a) = problem.chi2(d, r)
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
                chi2_min, (b, a) = c_trial, levels
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
    model = a + (b - a) * problem.intensity(d, r)
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
    slope = (-hdr / hrr if hrr > 0 else 0.0) if which == 0 else (-hdr / hdd if hdd > 0 else 0.0)
    # a flat or penalised valley (chi2 of 1e300 beyond the allowed edges) has no slope
    return slope if math.isfinite(slope) and abs(slope) < 1e6 else 0.0


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
