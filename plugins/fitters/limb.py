"""Limb fitters: an ellipse (centre f0, g0; equatorial radius a; oblateness e; position angle P)
and a circle, fitted to the chord end points on the sky plane.

* The residual is SORA's radial one: r_i - r_model(theta_i) along the line from the centre,
  with r_model(theta) = a b / sqrt((a sin(theta + P))^2 + (b cos(theta + P))^2), b = a(1 - e),
  weighted by sigma_i^2 + sigma_model^2 (SORA's sigma_result / ellipse_error term), and
  minimised as a true weighted least-squares problem (residuals, not their squares).
* Negative chords constrain the fit: every sampled point of a negative chord's observed path
  that would fall inside the limb adds a steep penalty, so such limbs are excluded during
  the fit, not filtered afterwards.
* Error bars are two-sided, from the profile likelihood (delta chi2 = 1, 4, 9): each
  parameter is moved and all the others re-fitted.
* Parameters can be fixed; the first guess is automatic (several starts).
* One positive chord with a fixed size has two solutions (the body north or south of the
  chord): both are reported, with the negative chords that rule one out.
"""
from __future__ import annotations

import math

import attrs
import numpy as np

from occcore.model import LIMB_PARAMS as PARAMS
from occcore.model import LimbFit, ellipse_radius_km
from occcore.plugin import LimbFitterSpec, NotApplicable, hookimpl

NEGATIVE_SIGMA_KM = 0.05      # steepness of the negative-chord penalty
LEVELS = {1.0: "1sigma", 4.0: "2sigma", 9.0: "3sigma"}


@attrs.frozen(kw_only=True)
class LimbOptions:
    fixed: dict = attrs.field(factory=dict)        # parameter -> value
    guess: dict = attrs.field(factory=dict)        # parameter -> first guess
    sigma_model_km: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    # "radial": a timing error moves a point along its chord, so its effect on the radial
    # residual is err |cos(chord, radius)| (floored at 0.2 for grazing points); "sora": the
    # whole error taken as radial, as SORA does (for like-for-like comparisons)
    error_projection: str = attrs.field(default="radial", validator=attrs.validators.in_(
        ("radial", "sora")))
    errors: bool = True
    levels: tuple = attrs.field(default=(1.0,), converter=tuple)   # delta chi2: (1.0, 9.0) adds 3 sigma


@attrs.frozen
class _Data:
    f: np.ndarray
    g: np.ndarray
    sigma: np.ndarray          # along the chord
    direction: np.ndarray      # (n, 2) unit vector of each point's chord
    sigma_model: float
    projection: str
    names: tuple
    neg_f: np.ndarray
    neg_g: np.ndarray
    neg_names: tuple

    def radial_sigma(self, f0: float, g0: float) -> np.ndarray:
        if self.projection == "sora":
            factor = 1.0
        else:
            radius = np.stack([self.f - f0, self.g - g0], axis=1)
            radius /= np.maximum(np.linalg.norm(radius, axis=1, keepdims=True), 1e-12)
            factor = np.maximum(np.abs(np.sum(radius * self.direction, axis=1)), 0.2)
        return np.sqrt((self.sigma * factor) ** 2 + self.sigma_model ** 2)


def _collect(chords, sigma_model_km, projection="radial") -> _Data:
    f, g, s, dirs, names, nf, ng, nn = [], [], [], [], [], [], [], []
    for chord in chords:
        if chord.f_km is None or chord.g_km is None:
            continue
        if chord.positive:
            err = chord.err_km if chord.err_km is not None else np.zeros(len(chord.f_km))
            f.extend(chord.f_km)
            g.extend(chord.g_km)
            s.extend(np.asarray(err, float))
            d = np.array([chord.f_km[-1] - chord.f_km[0], chord.g_km[-1] - chord.g_km[0]])
            if chord.vf_kms is not None and chord.vg_kms is not None:
                d = np.array([np.mean(chord.vf_kms), np.mean(chord.vg_kms)])
            d = d / (np.linalg.norm(d) or 1.0)
            dirs.extend([d] * len(chord.f_km))
            names.extend([chord.name] * len(chord.f_km))
        else:
            nf.extend(chord.f_km)
            ng.extend(chord.g_km)
            nn.extend([chord.name] * len(chord.f_km))
    s = np.array(s, float)
    nf, ng, nn = np.array(nf, float), np.array(ng, float), tuple(nn)
    if len(nf) and len(f):
        # path points far from every positive chord cannot touch any limb that fits them
        centre = np.array([np.mean(f), np.mean(g)])
        reach = 3 * max(float(np.max(np.hypot(np.array(f) - centre[0],
                                              np.array(g) - centre[1]))), 1.0)
        near = np.hypot(nf - centre[0], ng - centre[1]) < reach
        nf, ng, nn = nf[near], ng[near], tuple(np.array(nn, object)[near])
    if len(s) and np.any(np.sqrt(s ** 2 + sigma_model_km ** 2) <= 0):
        raise NotApplicable("a chord point has no error; give its timing error or set "
                            "sigma_model_km")
    return _Data(np.array(f, float), np.array(g, float), s, np.array(dirs, float).reshape(-1, 2),
                 float(sigma_model_km), projection, tuple(names), nf, ng, nn)


class _Problem:
    def __init__(self, data: _Data, fixed: dict):
        self.data = data
        self.fixed = {k: float(v) for k, v in fixed.items()}
        self.free = [p for p in PARAMS if p not in self.fixed]

    def full(self, x) -> np.ndarray:
        values = dict(self.fixed)
        values.update(zip(self.free, x, strict=True))
        return np.array([values[p] for p in PARAMS])

    def batch(self, xs: np.ndarray) -> np.ndarray:
        """Residual vectors for many parameter sets at once: (m, n_free) -> (m, n)."""
        xs = np.atleast_2d(xs)
        full = np.empty((len(xs), len(PARAMS)))
        for k, p in enumerate(PARAMS):
            full[:, k] = self.fixed[p] if p in self.fixed else xs[:, self.free.index(p)]
        f0, g0, a, e, pa = (full[:, k:k + 1] for k in range(5))
        d = self.data
        df, dg = d.f[None, :] - f0, d.g[None, :] - g0
        r = np.hypot(df, dg)
        model = ellipse_radius_km(np.arctan2(dg, df), a, e, pa)
        if d.projection == "sora":
            factor = 1.0
        else:
            safe = np.maximum(r, 1e-12)
            factor = np.maximum(np.abs(df / safe * d.direction[:, 0]
                                       + dg / safe * d.direction[:, 1]), 0.2)
        sigma = np.sqrt((d.sigma * factor) ** 2 + d.sigma_model ** 2)
        res = (r - model) / sigma
        if len(d.neg_f):
            nf, ng = d.neg_f[None, :] - f0, d.neg_g[None, :] - g0
            model_n = ellipse_radius_km(np.arctan2(ng, nf), a, e, pa)
            inside = model_n - np.hypot(nf, ng)
            res = np.concatenate([res, np.clip(inside, 0, None) / NEGATIVE_SIGMA_KM], axis=1)
        return res

    def residuals(self, x) -> np.ndarray:
        return self.batch(np.asarray(x, float)[None, :])[0]

    def chi2(self, x) -> float:
        r = self.residuals(x)
        return float(r @ r)

    def bounds(self):
        lo = {"center_f_km": -np.inf, "center_g_km": -np.inf, "equatorial_radius_km": 1e-6,
              "oblateness": 0.0, "position_angle_deg": -np.inf}
        hi = {"center_f_km": np.inf, "center_g_km": np.inf, "equatorial_radius_km": np.inf,
              "oblateness": 0.99, "position_angle_deg": np.inf}
        return [lo[p] for p in self.free], [hi[p] for p in self.free]

    def solve(self, x0, max_iter: int = 100) -> tuple[np.ndarray, float]:
        """Levenberg-Marquardt on the (small) weighted residual vector, bounds by projection.

        The problems here have at most five parameters and tens of residuals, where scipy's
        general solvers spend their time in overhead; this loop costs microseconds."""
        if not self.free:
            return np.array([]), self.chi2(np.array([]))
        lo, hi = (np.array(b, float) for b in self.bounds())
        x = np.clip(np.asarray(x0, float), lo, hi)
        r = self.residuals(x)
        cost = float(r @ r)
        lam = 1e-3
        for _ in range(max_iter):
            step = 1e-6 * np.maximum(np.abs(x), 1.0)
            jac = ((self.batch(x[None, :] + np.diag(step)) - r[None, :]) / step[:, None]).T
            jtj = jac.T @ jac
            grad = jac.T @ r
            # a parameter held at a bound by its gradient stays out of the step; clipping
            # a step into the bound instead makes LM crawl along it
            moving = ~(((x <= lo) & (grad > 0)) | ((x >= hi) & (grad < 0)))
            if not moving.any():
                break
            jtj_m, grad_m = jtj[np.ix_(moving, moving)], grad[moving]
            damping = np.diag(np.diag(jtj_m) + 1e-12)
            improved = False
            for _ in range(12):
                delta = np.zeros_like(x)
                try:
                    delta[moving] = -np.linalg.solve(jtj_m + lam * damping, grad_m)
                except np.linalg.LinAlgError:
                    lam *= 10
                    continue
                x_new = np.clip(x + delta, lo, hi)
                r_new = self.residuals(x_new)
                cost_new = float(r_new @ r_new)
                if cost_new < cost:
                    # chi2 to 1e-7 is far finer than any use of it (profile crossings
                    # are located to 1e-4 in sqrt(delta chi2))
                    converged = (cost - cost_new < 1e-8 * cost + 1e-7
                                 or np.all(np.abs(x_new - x) < 1e-9 * (np.abs(x) + 1)))
                    x, r, cost = x_new, r_new, cost_new
                    lam = max(lam / 5, 1e-12)
                    improved = True
                    break
                lam *= 5
            if not improved or converged:
                break
        return x, cost


def _starts(data: _Data, problem: _Problem, guess: dict, two_sided: bool):
    """First guesses: the points' centre (and, for one chord, both sides of it), several
    position angles and oblatenesses."""
    f0 = guess.get("center_f_km", float(np.mean(data.f)))
    g0 = guess.get("center_g_km", float(np.mean(data.g)))
    a0 = guess.get("equatorial_radius_km",
                   float(np.max(np.hypot(data.f - f0, data.g - g0))) or 1.0)
    centres = [(f0, g0)]
    if two_sided:
        direction = np.array([data.f[-1] - data.f[0], data.g[-1] - data.g[0]])
        normal = np.array([-direction[1], direction[0]]) / (np.linalg.norm(direction) or 1)
        a_fix = problem.fixed.get("equatorial_radius_km", a0)
        half = 0.5 * np.linalg.norm(direction)
        h = math.sqrt(max(a_fix ** 2 - half ** 2, 0.0)) or 0.5 * a_fix
        centres = [(f0 + s * h * normal[0], g0 + s * h * normal[1]) for s in (1, -1)]
    starts = []
    for cf, cg in centres:
        for pa in ([guess["position_angle_deg"]] if "position_angle_deg" in guess
                   else (0.0, 45.0, 90.0, 135.0)):
            for e in ([guess["oblateness"]] if "oblateness" in guess else (0.05, 0.25)):
                values = {"center_f_km": cf, "center_g_km": cg, "equatorial_radius_km": a0,
                          "oblateness": e, "position_angle_deg": pa}
                starts.append(np.array([values[p] for p in problem.free]))
    return starts, centres


def _crossing(profile, x0: float, direction: int, h: float, level: float, valid) -> float:
    """Distance from x0 where profile(x) - profile(x0) reaches ``level``: bracket by doubling
    steps, then secant steps in sqrt(delta chi2), which is linear near a minimum."""
    lo_x, lo_s = x0, 0.0
    x = x0
    for _ in range(40):
        x = x0 + direction * h
        if not valid(x):
            return math.inf
        s = math.sqrt(max(profile(x), 0.0))
        if s * s >= level:
            hi_x, hi_s = x, s
            target = math.sqrt(level)
            for _ in range(4):
                if hi_s == lo_s:
                    break
                mid = lo_x + (target - lo_s) * (hi_x - lo_x) / (hi_s - lo_s)
                s_mid = math.sqrt(max(profile(mid), 0.0))
                if abs(s_mid - target) < 1e-4:
                    return abs(mid - x0)
                if s_mid < target:
                    lo_x, lo_s = mid, s_mid
                else:
                    hi_x, hi_s = mid, s_mid
            return abs(lo_x + (target - lo_s) * (hi_x - lo_x) / (hi_s - lo_s) - x0) \
                if hi_s != lo_s else abs(hi_x - x0)
        lo_x, lo_s = x, s
        h *= 2
    return math.inf


def _profile_errors(problem: _Problem, best: np.ndarray, chi2_min: float, scales: dict,
                    levels=(1.0,)):
    """Two-sided intervals of every free parameter where the profile rises by each level."""
    out = {}
    for j, name in enumerate(problem.free):
        others = [p for p in problem.free if p != name]
        sub = _Problem(problem.data, {**problem.fixed, name: 0.0})
        sub.free = others

        state = {"x": np.delete(best, j)}

        def profile(value, name=name, sub=sub, state=state, others=others):
            # continuation: start from the nuisance parameters of the previous point
            sub.fixed[name] = value
            if not others:
                return sub.chi2(np.array([]))
            state["x"], c = sub.solve(state["x"])
            return c

        def delta(value, profile=profile):
            return profile(value) - chi2_min

        def valid(value, name=name):
            if name == "oblateness":
                return 0 <= value <= 0.99
            if name == "equatorial_radius_km":
                return value > 0
            return True

        def side(direction, level, j=j, state=state, delta=delta, valid=valid, name=name):
            state["x"] = np.delete(best, j)
            return _crossing(delta, best[j], direction, scales[name], level, valid)

        intervals = {LEVELS[level]: [side(d, level) for d in (-1, 1)] for level in levels}
        out[name] = intervals
    return out


def _fit(chords, *, options, context, circle: bool):
    options = options or LimbOptions()
    chords = tuple(chords)
    data = _collect(chords, options.sigma_model_km, options.error_projection)
    fixed = dict(options.fixed)
    if circle:
        fixed.update({"oblateness": 0.0, "position_angle_deg": 0.0})
    unknown = set(fixed) - set(PARAMS)
    if unknown:
        raise ValueError(f"unknown fixed parameter(s) {sorted(unknown)}; use {PARAMS}")
    problem = _Problem(data, fixed)
    n_points = len(data.f)
    if n_points < max(2, len(problem.free)):
        raise NotApplicable(f"{n_points} chord points for {len(problem.free)} free parameters")
    positive_chords = {n for n in data.names}
    two_sided = len(positive_chords) == 1
    starts, centres = _starts(data, problem, options.guess, two_sided)
    solutions = []
    for x0 in starts:
        x, c = problem.solve(x0)
        solutions.append((c, x))
    solutions.sort(key=lambda s: s[0])
    chi2_min, best = solutions[0]
    alternatives = []
    if two_sided:
        # the best solution on each side of the chord
        mid = np.array([np.mean(data.f), np.mean(data.g)])
        direction = np.array([data.f[-1] - data.f[0], data.g[-1] - data.g[0]])
        for c, x in solutions:
            full = problem.full(x)
            offset = full[:2] - mid
            side = np.sign(direction[0] * offset[1] - direction[1] * offset[0])
            if not any(s == side for s, _, _ in alternatives):
                alternatives.append((side, c, x))
    a_scale = max(1.0, float(problem.full(best)[2]))
    scales = {"center_f_km": 0.02 * a_scale, "center_g_km": 0.02 * a_scale,
              "equatorial_radius_km": 0.02 * a_scale, "oblateness": 0.01,
              "position_angle_deg": 2.0}
    levels = tuple(options.levels) if options.errors else ()
    errors = _profile_errors(problem, best, chi2_min, scales, levels) if levels else {}
    full = problem.full(best)
    theta = np.arctan2(data.g - full[1], data.f - full[0])
    residual = np.hypot(data.f - full[0], data.g - full[1]) - ellipse_radius_km(theta, full[2],
                                                                             full[3], full[4])
    crossing = _negative_crossings(data, full)
    per_chord = {}
    for name, res in zip(data.names, residual, strict=True):
        per_chord.setdefault(name, []).append(float(res))
    params = {
        "errors_2sigma": {k: v["2sigma"] for k, v in errors.items() if "2sigma" in v},
        "n_points": n_points, "sigma_model_km": options.sigma_model_km,
        "points": {"f_km": data.f.tolist(), "g_km": data.g.tolist(),
                   "sigma_km": data.radial_sigma(full[0], full[1]).tolist(),
                   "chord": list(data.names)},
        "error_projection": options.error_projection,
    }
    solutions = []
    if two_sided and len(alternatives) > 1:
        for _side, c, x in alternatives:
            values = problem.full(x)
            crossed = _negative_crossings(data, values, include_penalised=True)
            solutions.append({
                "side": "north" if _northern(values, data) else "south",
                **dict(zip(PARAMS, map(float, values), strict=True)), "chi2": c,
                "excluded_by": crossed})
    return LimbFit(model="circle" if circle else "ellipse", center_f_km=float(full[0]),
                   center_g_km=float(full[1]), equatorial_radius_km=float(full[2]),
                   oblateness=float(full[3]),
                   position_angle_deg=float(full[4] % 180.0),
                   errors={k: tuple(v["1sigma"]) for k, v in errors.items()},
                   errors_3sigma={k: v["3sigma"] for k, v in errors.items() if "3sigma" in v},
                   fixed=fixed, chi2=chi2_min, dof=int(n_points - len(problem.free)),
                   residuals_km=per_chord, negative_chords_crossed=crossing,
                   solutions=solutions, chords=chords, params=params)


def _northern(values, data) -> bool:
    return float(values[1]) > float(np.mean(data.g))


def _negative_crossings(data: _Data, values, include_penalised: bool = False) -> list[str]:
    """Names of negative chords whose path points fall inside this limb."""
    if not len(data.neg_f):
        return []
    f0, g0, a, e, pa = values
    theta = np.arctan2(data.neg_g - g0, data.neg_f - f0)
    inside = np.hypot(data.neg_f - f0, data.neg_g - g0) < ellipse_radius_km(theta, a, e, pa) - \
        (0.0 if include_penalised else 3 * NEGATIVE_SIGMA_KM)
    return sorted({n for n, hit in zip(data.neg_names, inside, strict=True) if hit})


@hookimpl
def occcore_limb_fitters():
    yield LimbFitterSpec(name="ellipse", summary="ellipse by weighted least squares on radial "
                         "residuals, negative chords as constraints, profile-likelihood errors",
                         fit=lambda chords, *, options, context: _fit(
                             chords, options=options, context=context, circle=False),
                         options=LimbOptions)
    yield LimbFitterSpec(name="circle", summary="circle (oblateness 0) by the same method",
                         fit=lambda chords, *, options, context: _fit(
                             chords, options=options, context=context, circle=True),
                         options=LimbOptions)
