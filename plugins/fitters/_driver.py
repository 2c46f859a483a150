"""One timing fit from light curve to TimingResult, shared by the square and diffraction
fitters: camera integration, detection, baseline normalisation, noise model, edge fit with
profile-likelihood (or Monte-Carlo) intervals, SNR and the false-positive probability."""
from __future__ import annotations

import math
import time

import numpy as np

from occcore.model import Edge, TimingDiagnostics, TimingReadings, TimingResult
from occcore.plugin import NotApplicable
from occplugins.fitters import _timing as tm

from occplugins.fitters._options import EDGE_MODES, TimingOptions  # noqa: F401  (re-exported)


def _choose_mode(y, mode):
    if mode != "auto":
        found = tm.detect_long(y, edges=mode)
        return mode, found
    best = None
    n = len(y)
    both = tm.detect_long(y, edges="both")
    if both and 3 <= both[0].d_index and both[0].r_index <= n - 3:
        return "both", both       # an event well inside the data: no single-edge question
    for m, k in (("both", 6), ("immersion", 5), ("emersion", 5)):
        found = both if m == "both" else tm.detect_long(y, edges=m)
        if not found:
            continue
        aicc = tm._aicc(found[0].score, k, n)
        if best is None or aicc < best[0]:
            best = (aicc, m, found)
    return (best[1], best[2]) if best else ("both", [])


def fit_event(lc, make_model, edge_time_s: float, options: TimingOptions, context,
              model_name: str, physics: dict) -> TimingResult:
    """``make_model(start, end, width_s)`` returns a callable (D, R) -> normalised intensity;
    ``width_s`` is the detected event duration (inf for a single edge)."""
    started = time.perf_counter()
    try:
        readings = tm.readings_of(lc)
    except ValueError as exc:
        raise NotApplicable(str(exc)) from None
    if len(readings.y) < 8:
        raise NotApplicable(f"only {len(readings.y)} readings")
    integration = None
    if options.integration == 0:
        found = tm.block_integration(readings.y)
        if found:
            integration = found
    elif options.integration > 1:
        integration = (options.integration, 0)
    if integration:
        readings = tm.integrate_blocks(readings, *integration)
    y = readings.y
    mode, candidates = _choose_mode(y, options.edges)
    if not candidates:
        return _negative(model_name, "no drop in the light curve", readings, lc, started)
    best = candidates[0]
    if best.relative_likelihood_flat > options.min_flat_likelihood:
        return _negative(model_name, "a flat line is as likely as the best drop (relative "
                         f"likelihood {best.relative_likelihood_flat:.2g})", readings, lc,
                         started)
    candidates = [best] + tm.runners_up(y, best, mode)
    n = len(y)
    cycle = readings.cycle
    exposure = readings.exposure
    margin = max(2, int(math.ceil(2 * edge_time_s / cycle)) + 1)
    outside = np.ones(n, bool)
    lo = max(0, best.d_index - margin) if mode != "emersion" else 0
    hi = min(n, best.r_index + margin) if mode != "immersion" else n
    outside[lo:hi] = False
    degree = None if options.baseline_degree < 0 else options.baseline_degree
    mid = readings.mid
    # a baseline on one side of the event cannot tell its curvature under the event
    max_degree = 5 if mode == "both" else 1
    y_norm, divisor, degree_used = tm.normalise(mid, y, outside, degree, max_degree)
    inside = np.zeros(n, bool)
    inside[min(n, best.d_index + margin):max(0, best.r_index - margin)] = True
    sigma_b = float(np.std(y_norm[outside], ddof=1)) if outside.sum() > 2 else float(np.std(y_norm))
    if not sigma_b > 0:
        sigma_b = 1e-6 * max(abs(float(np.median(y_norm))), 1e-6)
    sigma_a = float(np.std(y_norm[inside], ddof=1)) if inside.sum() >= 5 else sigma_b
    sigma_a = max(sigma_a, 1e-3 * sigma_b)
    normalised = tm.Readings(readings.start, readings.end, y_norm,
                             None if readings.sigma is None else readings.sigma / divisor,
                             readings.frame)
    d0 = float(readings.start[best.d_index]) if mode != "emersion" else None
    r0 = float(readings.start[best.r_index]) if mode != "immersion" and best.r_index < n else None
    if mode == "both" and r0 is None:
        mode = "immersion"
    width_s = (r0 - d0) if (d0 is not None and r0 is not None) else float("inf")
    model = make_model(readings.start, readings.end, width_s)
    step = max(exposure, edge_time_s, 1e-6)
    far = 50 * step + (readings.end[-1] - readings.start[0])
    coupled = 2 * (edge_time_s * 25 + exposure)

    def sigmas(intensity):
        if options.sigma == "data" and normalised.sigma is not None:
            return normalised.sigma
        level = np.clip(intensity, 0, 1)
        return np.sqrt(sigma_a ** 2 + (sigma_b ** 2 - sigma_a ** 2) * level)

    start_intensity = model(d0 if d0 is not None else readings.start[0] - far,
                            r0 if r0 is not None else readings.end[-1] + far)
    fit = None
    for final in (False, True):   # fit, re-estimate both noise levels from the residuals, refit
        problem = tm.Problem(model, normalised, sigmas(start_intensity), mode, far)
        fit = tm.fit_edges(problem, d0 if fit is None else fit.immersion,
                           r0 if fit is None else fit.emersion, step, coupled,
                           scan=not final, intervals=final)
        resid = y_norm - fit.model
        level = (fit.model - fit.bottom) / max(fit.baseline - fit.bottom, 1e-300)
        out_mask = level > 0.98
        in_mask = level < 0.02
        if out_mask.sum() > 2:
            sigma_b = float(np.std(resid[out_mask], ddof=1)) or sigma_b
        if in_mask.sum() >= 5:
            sigma_a = max(float(np.std(resid[in_mask], ddof=1)), 1e-3 * sigma_b)
        start_intensity = np.clip(level, 0, 1)
    noise = tm.noise_model(resid[out_mask] if out_mask.sum() > 2 else resid,
                           resid[in_mask] if in_mask.sum() >= 5 else np.array([]))
    intervals = fit.intervals
    monte_carlo = None
    if options.errors == "montecarlo":
        monte_carlo = tm.monte_carlo_errors(problem, fit, noise, step, context.rng,
                                            options.mc_trials)
        intervals = monte_carlo
    drop = fit.baseline - fit.bottom
    snr = drop / sigma_b if sigma_b > 0 else float("inf")
    # the noise-induced-event test uses the observed drop: the readings inside the fitted event
    # against those outside it (as PyOTE does), not the fitted bottom, which an edge near the
    # end of the data can extrapolate
    d_fit = fit.immersion if fit.immersion is not None else readings.start[0] - far
    r_fit = fit.emersion if fit.emersion is not None else readings.end[-1] + far
    centre = readings.mid
    in_event = (centre >= d_fit) & (centre <= r_fit)
    if not in_event.any():          # an event shorter than a reading: its deepest reading
        in_event[int(np.argmin(level))] = True
    width = int(in_event.sum())
    if width == n:
        raise NotApplicable("no event: every reading lies inside the fitted event")
    # medians, on the normalised and on the raw readings (the smaller counts): diffraction
    # fringes of a near miss, or a baseline polynomial, must not pass for a drop
    lit = ~in_event & (level > 0.5)
    if lit.any():
        drops = [float(np.median(v[lit]) - np.median(v[in_event])) / float(np.median(v[lit]))
                 for v in (y_norm, y)]
        observed_drop = min(drops) * float(np.median(y_norm[lit]))
    else:
        observed_drop = fit.baseline - float(np.median(y_norm[in_event]))
    fpp = tm.false_positive_probability(observed_drop / sigma_b, width, n, noise.ar,
                                        context.rng, options.fpp_trials)
    if fpp > options.max_false_positive:
        return _negative(model_name, f"no significant event: noise alone makes a drop of "
                         f"{observed_drop / sigma_b:.1f} sigma over {width} readings with "
                         f"probability {fpp:.2g}", readings, lc, started, fpp=fpp)
    from astropy.time import TimeDelta
    epoch = lc.times.epoch
    n_params = 2 + sum(v is not None for v in (fit.immersion, fit.emersion))

    def edge(name, offset_s):
        if offset_s is None:
            return None
        levels = intervals.get(name, {})
        return Edge(time=epoch + TimeDelta(offset_s, format="sec"),
                    **{f"err{k}_s": levels.get(level) for k, level in zip((1, 2, 3), tm.LEVELS,
                                                                         strict=True)})

    diagnostics = TimingDiagnostics(
        errors_method=options.errors, edges_fitted=mode, n_readings=n, exposure_s=exposure,
        cycle_s=cycle, time_instant_of_input=lc.times.instant,
        normalisation_degree=degree_used,
        integration_block=integration[0] if integration else None,
        integration_offset=integration[1] if integration else None,
        sigma_baseline=sigma_b, sigma_bottom=sigma_a, noise_acf=noise.acf.tolist(),
        candidates=[c.to_candidate(readings) for c in candidates],
        profile_intervals=_jsonable_intervals(fit.intervals) or {},
        monte_carlo_intervals=_jsonable_intervals(monte_carlo) or {},
        physics=physics, model_evaluations=fit.evaluations,
        fit_seconds=time.perf_counter() - started,
        significance_method="noise-induced-event test: AR model of the baseline residuals, "
                            "Gumbel tail")
    return TimingResult(
        model=model_name, outcome="positive",
        immersion=edge("immersion", fit.immersion), emersion=edge("emersion", fit.emersion),
        chi2=fit.chi2, dof=int(n - n_params), baseline=fit.baseline, bottom=fit.bottom,
        snr=float(snr), false_positive_probability=fpp,
        readings=TimingReadings(epoch=epoch, start_s=readings.start, end_s=readings.end,
                                flux=y_norm, model=fit.model),
        diagnostics=diagnostics)


def _negative(model_name, reason, readings, lc, started, fpp=float("nan")) -> TimingResult:
    """The curve was analysed and holds no significant event."""
    return TimingResult(
        model=model_name, outcome="negative", reason=reason, false_positive_probability=fpp,
        readings=TimingReadings(epoch=lc.times.epoch, start_s=readings.start,
                                end_s=readings.end, flux=readings.y),
        diagnostics=TimingDiagnostics(n_readings=len(readings.y), exposure_s=readings.exposure,
                                      cycle_s=readings.cycle,
                                      time_instant_of_input=lc.times.instant,
                                      fit_seconds=time.perf_counter() - started))


def _jsonable_intervals(intervals):
    if not intervals:
        return None
    names = {1.0: "1sigma", 4.0: "2sigma", 9.0: "3sigma"}
    return {edge: {names[k]: list(v) for k, v in levels.items()}
            for edge, levels in intervals.items()}
