"""One timing fit from light curve to TimingResult, shared by the square and diffraction
fitters. The phases are plain functions, each testable alone:

``phase_readings`` (windows, camera integration) -> ``phase_detect`` (detrending alternating
with the square-wave search) -> ``phase_baseline`` (trend fitted outside the event) ->
``phase_edges`` (edge fit, noise levels re-estimated from the residuals) -> ``phase_noise``
(AR model, residual pool) -> ``phase_significance`` (block bootstrap of the residuals) ->
``phase_sensitivity`` (for a negative: the shallowest detectable drop).

Outcomes: a positive returns a TimingResult; an analysed curve without a significant event
returns a TimingResult with outcome "negative" (the probability, the method and the
detection limits); a curve that cannot be analysed raises :class:`Undetermined` (a
``NotApplicable``: the step's chain moves on and records the curve as undetermined).
"""
from __future__ import annotations

import math
import time

import numpy as np

from occcore.model import (DetectionLimit, Edge, TimingDiagnostics, TimingReadings,
                           TimingResult)
from occcore.plugin import NotApplicable
from occplugins.fitters import _sensitivity as sens
from occplugins.fitters import _significance as sg
from occplugins.fitters import _timing as tm
from occplugins.fitters._models import SquareModel

from occplugins.fitters._options import EDGE_MODES, TimingOptions  # noqa: F401  (re-exported)


class Undetermined(NotApplicable):
    """The curve could not be analysed (outcome "undetermined")."""

    outcome = "undetermined"

    def __init__(self, reason: str, analysis: dict | None = None):
        super().__init__(f"undetermined: {reason}")
        self.analysis = {"outcome": self.outcome, "reason": reason, **(analysis or {})}


class NoSignificantEvent(Exception):
    """Inside the fit: the curve was analysed and holds no significant event; ``fit_event``
    turns it into a TimingResult with outcome "negative". ``analysis`` has the
    probability, the method and the detection limits."""

    def __init__(self, reason: str, analysis: dict):
        super().__init__(reason)
        self.reason = reason
        self.analysis = analysis


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


# -- phases ----------------------------------------------------------------------------------


def phase_readings(lc, integration_option: int = 0):
    """Exposure windows of the light curve and the camera integration found (or None)."""
    try:
        readings = tm.readings_of(lc)
    except ValueError as exc:
        raise Undetermined(str(exc)) from None
    if len(readings.y) < 8:
        raise Undetermined(f"only {len(readings.y)} readings")
    if not np.ptp(readings.y) > 0:
        raise Undetermined(f"every reading has the value {readings.y[0]:g} (a placeholder or "
                           f"a saturated curve): no noise to judge an event against")
    integration = None
    if integration_option == 0:
        integration = tm.block_integration(readings.y)
    elif integration_option > 1:
        integration = (integration_option, 0)
    if integration:
        readings = tm.integrate_blocks(readings, *integration)
    return readings, integration


MODE_AICC_MARGIN = 10.0     # a single edge must beat the two-edge reading by this much (AICc)


def phase_detect(t: np.ndarray, y: np.ndarray, mode: str, degree: int | None, margin: int,
                 detrend: bool = True) -> tm.Detrended:
    """Detection on the detrended readings (trend fitted without the candidate event)."""
    if not detrend:
        found_mode, found = _choose_mode(y, mode)
        return tm.Detrended(trend=np.ones(len(y)), degree=0, mode=found_mode,
                            candidates=found, masked=np.zeros(len(y), bool), iterations=0)
    found = tm.detrend_and_detect(t, y, lambda v: _choose_mode(v, mode), degree=degree,
                                  margin=margin)
    if mode == "auto" and found.mode == "both" and found.degree > 0 and found.candidates:
        # a trend can bridge an event that runs off an end of the data: fitted to the
        # readings before it and to the low readings after a false emersion, it falls with
        # the step, and the dip seems to end inside. The single-edge readings compete, each
        # with its own trend, on the likelihood of the raw readings; one wins only by a
        # clear margin and with a tenth of the curve (at least 10 readings) at full light
        n = len(y)
        best = _raw_aicc(found) - MODE_AICC_MARGIN
        for single in ("immersion", "emersion"):
            alternative = tm.detrend_and_detect(
                t, y, lambda v, m=single: (m, tm.detect_long(v, edges=m)), degree=degree,
                margin=margin)
            if not alternative.candidates:
                continue
            c = alternative.candidates[0]
            outside = c.d_index if single == "immersion" else n - c.r_index
            score = _raw_aicc(alternative)
            if outside >= max(10, n // 10) and score < best:
                found, best = alternative, score
    return found


def _raw_aicc(detected: tm.Detrended) -> float:
    """AICc of the readings under trend x two-level event: the detected score is the
    log-likelihood of the detrended readings y / T, so the raw one is that less sum log T;
    the trend's degree counts among the parameters."""
    n = len(detected.trend)
    log_likelihood = detected.candidates[0].score - float(np.sum(np.log(detected.trend)))
    parameters = (6 if detected.mode == "both" else 5) + detected.degree
    return tm._aicc(log_likelihood, parameters, n)


def phase_baseline(t: np.ndarray, y: np.ndarray, best, mode: str, margin: int,
                   degree: int | None):
    """The baseline polynomial fitted outside the event (and ``margin`` readings around it):
    (normalised y, divisor, degree, outside mask, deep-inside mask)."""
    n = len(y)
    outside = np.ones(n, bool)
    lo = max(0, best.d_index - margin) if mode != "emersion" else 0
    hi = min(n, best.r_index + margin) if mode != "immersion" else n
    outside[lo:hi] = False
    # a baseline on one side of the event cannot tell its curvature under the event
    y_norm, divisor, degree_used = tm.normalise(t, y, outside, degree,
                                                tm.gap_degree(5, ~outside, mode))
    inside = np.zeros(n, bool)
    inside[min(n, best.d_index + margin):max(0, best.r_index - margin)] = True
    return y_norm, divisor, degree_used, outside, inside


def phase_edges(model, normalised: tm.Readings, mode: str, d0, r0, step: float, far: float,
                coupled: float, sigma_b: float, sigma_a: float, data_sigma: bool):
    """Fit, re-estimate both noise levels from the residuals, refit with intervals.
    Returns (fit, problem, sigma_b, sigma_a, level, sigmas function)."""
    def sigmas(intensity):
        if data_sigma and normalised.sigma is not None:
            return normalised.sigma
        level = np.clip(intensity, 0, 1)
        return np.sqrt(sigma_a ** 2 + (sigma_b ** 2 - sigma_a ** 2) * level)

    start_intensity = model(d0 if d0 is not None else normalised.start[0] - far,
                            r0 if r0 is not None else normalised.end[-1] + far)
    fit = problem = level = None
    for final in (False, True):
        problem = tm.Problem(model, normalised, sigmas(start_intensity), mode, far)
        fit = tm.fit_edges(problem, d0 if fit is None else fit.immersion,
                           r0 if fit is None else fit.emersion, step, coupled,
                           scan=not final, intervals=final)
        resid = normalised.y - fit.model
        level = (fit.model - fit.bottom) / max(fit.baseline - fit.bottom, 1e-300)
        out_mask, in_mask = level > 0.98, level < 0.02
        if out_mask.sum() > 2:
            sigma_b = float(np.std(resid[out_mask], ddof=1)) or sigma_b
        if in_mask.sum() >= 5:
            sigma_a = max(float(np.std(resid[in_mask], ddof=1)), 1e-3 * sigma_b)
        start_intensity = np.clip(level, 0, 1)
    return fit, problem, sigma_b, sigma_a, level, sigmas


def misfit_zones(resid: np.ndarray, edges, window: int = 9) -> np.ndarray:
    """Readings next to an edge where the model misfits (a gradual edge fitted by a sharp
    one): from each edge outwards while the running mean of ``window`` residuals stays beyond
    2 sigma of such a mean. Their residuals are the model's error, not noise."""
    n = len(resid)
    bad = np.zeros(n, bool)
    if n < 3 * window:
        return bad
    s = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    if not s > 0:
        return bad
    smooth = np.convolve(resid, np.ones(window) / window, mode="same")
    off = np.abs(smooth) > 2 * s / math.sqrt(window)
    for e in edges:
        if e is None or not 0 <= e < n:
            continue
        for direction in (-1, 1):
            j = e
            while 0 <= j < n and (off[j] or abs(j - e) < window // 2):
                bad[j] = True
                j += direction
    return bad


def scaled_residuals(y_norm: np.ndarray, model: np.ndarray, level: np.ndarray,
                     sigma_b: float, sigma_a: float) -> np.ndarray:
    """Residuals of the fit, those inside the event scaled to the baseline noise."""
    scale = np.sqrt(sigma_a ** 2 + (sigma_b ** 2 - sigma_a ** 2) * np.clip(level, 0, 1))
    return (y_norm - model) * (sigma_b / np.maximum(scale, 1e-300))


def residual_pool(y_norm: np.ndarray, model: np.ndarray, level: np.ndarray,
                  sigma_b: float, sigma_a: float, edges=()) -> np.ndarray:
    """The noise to resample: residuals of the whole fit, those inside the event scaled to
    the baseline noise (the bottom of a deep event is quieter: it must not thin the pool),
    without the misfit zones next to the edges (indices ``edges``)."""
    pool = scaled_residuals(y_norm, model, level, sigma_b, sigma_a)
    bad = misfit_zones(pool, edges)
    return pool[~bad] if np.count_nonzero(~bad) >= max(16, len(pool) // 4) else pool


def first_trials(n: int) -> int:
    """Resampled curves of the first batch: 200, fewer for long curves (100 at 10 000
    readings); more are added only when the probability is near the threshold."""
    return int(np.clip(1_000_000 // max(n, 1), 100, 200))


def phase_significance(y_norm: np.ndarray, clean: np.ndarray, in_event: np.ndarray,
                       drop: float, width: int, options: TimingOptions,
                       rng: np.random.Generator, residuals: np.ndarray | None = None):
    """Block-bootstrap false-positive probability of the observed curve (see _significance).
    ``residuals`` (of the event fit, every reading): the AR model is fitted to them with
    part of the dip put back (``partial_dip``) instead of to ``clean``.

    The pool is the normalised curve itself, prewhitened by an AR model of the ``clean``
    residuals (``prewhitened_null``): under the null hypothesis the candidate is noise."""
    first = options.fpp_trials or first_trials(len(y_norm))
    if residuals is not None:
        clean = sg.partial_dip(residuals, in_event, drop, otherwise=clean)
    null = sg.prewhitened_null(y_norm, clean, rng, trials=first, candidate=in_event)
    return sg.significance(y_norm, null, drop=drop, width=width,
                           alpha=options.max_false_positive, min_snr=options.min_snr,
                           rng=None if options.fpp_trials else rng, candidate=in_event)


def phase_sensitivity(null: sg.NullModel, readings: tm.Readings, options: TimingOptions,
                      rng: np.random.Generator, curve: np.ndarray | None = None) -> list[dict]:
    return sens.detection_limits(null, options.sensitivity_durations_s or None, readings.cycle,
                                 readings.exposure, alpha=options.max_false_positive,
                                 min_snr=options.min_snr,
                                 probability=options.detection_probability, rng=rng,
                                 curve=curve)


def _negative(reason: str, y_norm: np.ndarray, pool: np.ndarray, readings, options, rng,
              sig=None, null=None, extra=None):
    """Raise the negative outcome with its detection limits."""
    if null is None:
        null = sg.prewhitened_null(y_norm, pool, rng,
                                   trials=options.fpp_trials or first_trials(len(y_norm)))
    analysis = {"detection_limit": phase_sensitivity(null, readings, options, rng, y_norm),
                "false_positive_probability": sig.probability if sig else None,
                "significance_method": sig.method if sig else
                f"no candidate; limits from a stationary block bootstrap "
                f"({len(null.statistics)} curves, mean block {null.block_length:.3g})",
                "event_snr": sig.event_snr if sig else None, **(extra or {})}
    analysis.update(readings=readings, y_norm=y_norm)
    raise NoSignificantEvent(reason, analysis)


def _wavelength_shift(model_for_scale, normalised, mode, fit, step, far, coupled, sigmas,
                      level, relative: float) -> dict:
    """Largest edge shift when the Fresnel scale follows a wavelength off by +-relative."""
    shifts = {"immersion": 0.0, "emersion": 0.0}
    for scale in (1 - relative, 1 + relative):
        model = model_for_scale(scale)
        problem = tm.Problem(model, normalised, sigmas(np.clip(level, 0, 1)), mode, far)
        refit = tm.fit_edges(problem, fit.immersion, fit.emersion, step, coupled,
                             scan=False, intervals=False)
        for edge in shifts:
            a, b = getattr(fit, edge), getattr(refit, edge)
            if a is not None and b is not None:
                shifts[edge] = max(shifts[edge], abs(b - a))
    return shifts


def fit_event(lc, make_model, edge_time_s: float, options: TimingOptions, context,
              model_name: str, physics: dict, wavelength_relative_uncertainty: float = 0.0
              ) -> TimingResult:
    """A positive or negative TimingResult; raises NotApplicable (``Undetermined``) when the
    curve cannot be analysed. See ``_fit_event``."""
    started = time.perf_counter()
    try:
        return _fit_event(lc, make_model, edge_time_s, options, context, model_name, physics,
                          wavelength_relative_uncertainty)
    except NoSignificantEvent as negative:
        return _negative_result(model_name, negative, lc, options, started, physics)


def _fit_event(lc, make_model, edge_time_s: float, options: TimingOptions, context,
               model_name: str, physics: dict, wavelength_relative_uncertainty: float = 0.0
               ) -> TimingResult:
    """``make_model(start, end, width_s[, wavelength_scale])`` returns a callable (D, R) ->
    normalised intensity; ``width_s`` is the detected event duration (inf for a single edge).
    A diffraction model also takes ``wavelength_scale`` (the effective wavelength relative to
    the nominal one); with ``wavelength_relative_uncertainty`` > 0 the edges' shift between
    the two ends of that range enters their error bars, and the square model's chi-square on
    the same readings is compared."""
    started = time.perf_counter()
    rng = context.rng
    readings, integration = phase_readings(lc, options.integration)
    n = len(readings.y)
    cycle = readings.cycle
    exposure = readings.exposure
    margin = max(2, int(math.ceil(2 * edge_time_s / cycle)) + 1)
    degree = None if options.baseline_degree < 0 else options.baseline_degree
    mid = readings.mid
    detected = phase_detect(mid, readings.y, options.edges, degree, margin, options.detrend)
    mode, candidates = detected.mode, detected.candidates
    y = readings.y / detected.trend          # detrended raw readings (detection's view)
    if not candidates:
        _negative("no drop in the light curve", y, y - np.median(y), readings, options, rng)
    best = candidates[0]
    if best.relative_likelihood_flat > options.min_flat_likelihood:
        _negative(f"a flat line is as likely as the best drop (relative likelihood "
                  f"{best.relative_likelihood_flat:.2g})", y, y - np.median(y), readings,
                  options, rng)
    candidates = [best] + tm.runners_up(y, best, mode)
    y_norm, divisor, degree_used, outside, inside = phase_baseline(
        mid, readings.y, best, mode, margin, degree)
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
    fit, problem, sigma_b, sigma_a, level, sigmas = phase_edges(
        model, normalised, mode, d0, r0, step, far, coupled, sigma_b, sigma_a,
        options.sigma == "data")
    resid = y_norm - fit.model
    out_mask, in_mask = level > 0.98, level < 0.02
    noise = tm.noise_model(resid[out_mask] if out_mask.sum() > 2 else resid,
                           resid[in_mask] if in_mask.sum() >= 5 else np.array([]))
    intervals = fit.intervals
    monte_carlo = None
    if options.errors == "montecarlo":
        monte_carlo = tm.monte_carlo_errors(problem, fit, noise, step, rng, options.mc_trials)
        intervals = monte_carlo
    notes = []
    square_chi2 = None
    better_model = fit.model
    if model_name != "square":
        square = tm.Problem(SquareModel(readings.start, readings.end), normalised,
                            problem_sigma(problem), mode, far)
        # from the detected edges, not the model's: a wrong velocity can drag those far off
        square_fit = tm.fit_edges(square, d0, r0, max(exposure, 1e-6), coupled, scan=True,
                                  intervals=False)
        square_chi2 = square_fit.chi2
        if square_chi2 < fit.chi2:
            # the noise is judged on the residuals of the better model: a wrong velocity
            # must not make an event look like correlated noise
            better_model = square_fit.model
            notes.append(f"the square model fits these readings better than the {model_name} "
                         f"model (chi2 {square_chi2:.1f} < {fit.chi2:.1f}): check the "
                         f"velocity, distance and star diameter")
    wavelength_shift = None
    if wavelength_relative_uncertainty > 0:
        wavelength_shift = _wavelength_shift(
            lambda scale: make_model(readings.start, readings.end, width_s,
                                     wavelength_scale=scale),
            normalised, mode, fit, step, far, coupled, sigmas, level,
            wavelength_relative_uncertainty)
        intervals = _add_systematic(intervals, wavelength_shift)
    drop = fit.baseline - fit.bottom
    snr = drop / sigma_b if sigma_b > 0 else float("inf")
    # the significance uses the observed drop: the readings inside the fitted event against
    # those outside it (as PyOTE does), not the fitted bottom, which an edge near the end of
    # the data can extrapolate
    d_fit = fit.immersion if fit.immersion is not None else readings.start[0] - far
    r_fit = fit.emersion if fit.emersion is not None else readings.end[-1] + far
    centre = readings.mid
    in_event = (centre >= d_fit) & (centre <= r_fit)
    if not in_event.any():          # an event shorter than a reading: its deepest reading
        in_event[int(np.argmin(level))] = True
    width = int(in_event.sum())
    if width == n:
        raise Undetermined("every reading lies inside the fitted event")
    # medians, on the normalised and on the raw readings (the smaller counts): diffraction
    # fringes of a near miss, or a baseline polynomial, must not pass for a drop
    lit = ~in_event & (level > 0.5)
    if lit.any():
        drops = [float(np.median(v[lit]) - np.median(v[in_event])) / float(np.median(v[lit]))
                 for v in (y_norm, readings.y)]
        observed_drop = min(drops) * float(np.median(y_norm[lit]))
    else:
        observed_drop = fit.baseline - float(np.median(y_norm[in_event]))
    edge_index = [int(np.searchsorted(centre, e)) for e in (fit.immersion, fit.emersion)
                  if e is not None]
    pool = residual_pool(y_norm, better_model, level, sigma_b, sigma_a, edge_index)
    sig, null = phase_significance(y_norm, pool, in_event, observed_drop, width, options, rng,
                                   residuals=scaled_residuals(y_norm, better_model, level,
                                                              sigma_b, sigma_a))
    if not sig.significant:
        _negative(sig.reason, y_norm, pool, readings, options, rng, sig, null,
                  {"candidates": [c.to_candidate(readings) for c in candidates],
                   "snr": float(snr)})
    if sg.too_long_to_calibrate(width, n) and snr < options.min_snr:
        # the resampled noise cannot say how far slow noise or a left-over trend wanders
        # over this long a stretch: a dip shallower than min_snr single-reading sigmas must
        # at least have an occultation's sharp edges (a deep one cannot be a wander; and a
        # deep gradual one, a penumbral or disk-on-disk event, is an event all the same)
        n_event_params = degree_used + 2 + sum(v is not None for v in (fit.immersion,
                                                                       fit.emersion))
        smooth = tm.smooth_alternative(mid, readings.y, divisor * fit.model, n_event_params)
        if not smooth.event_preferred():
            _negative(f"the dip lasts {width} of {n} readings and a smooth trend "
                      f"(polynomial of degree {smooth.smooth_degree}) explains it nearly as "
                      f"well as an occultation with sharp edges (BIC {smooth.smooth_bic:.1f} "
                      f"against {smooth.event_bic:.1f}; very strong evidence needs 10)",
                      y_norm, pool, readings, options, rng, sig, null,
                      {"candidates": [c.to_candidate(readings) for c in candidates],
                       "snr": float(snr)})
        notes.append(f"a long dip ({width} of {n} readings): a smooth trend alone fits "
                     f"worse by BIC {smooth.smooth_bic - smooth.event_bic:.1f}")
    fpp = sig.probability
    epoch = lc.times.epoch
    n_params = 2 + sum(v is not None for v in (fit.immersion, fit.emersion))

    def edge(name, offset_s):
        if offset_s is None:
            return None
        levels = intervals.get(name, {})
        from astropy.time import TimeDelta
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
        significance_method=sig.method, notes=notes,
        extra={"event_snr": sig.event_snr, "significance_statistic": sig.statistic,
               "significance_critical_statistic": sig.critical_statistic,
               "significance_block_readings": sig.block_length,
               "detrend_degree": detected.degree, "detrend_iterations": detected.iterations,
               "square_chi2": square_chi2, "wavelength_edge_shift_s": wavelength_shift})
    return TimingResult(
        model=model_name, outcome="positive",
        immersion=edge("immersion", fit.immersion), emersion=edge("emersion", fit.emersion),
        chi2=fit.chi2, dof=int(n - n_params), baseline=fit.baseline, bottom=fit.bottom,
        snr=float(snr), false_positive_probability=fpp,
        readings=TimingReadings(epoch=epoch, start_s=readings.start, end_s=readings.end,
                                flux=y_norm, model=fit.model),
        diagnostics=diagnostics)


def _negative_result(model_name, negative: NoSignificantEvent, lc, options, started,
                     physics) -> TimingResult:
    """The curve was analysed and holds no significant event: the probability, the method,
    the shallowest detectable drop (for the longest duration tried that could be detected
    at all, as ``detection_limit``; every duration in ``diagnostics.extra
    ["detection_limits"]``, with None where even a total occultation would be missed)."""
    a = negative.analysis
    readings, y_norm = a["readings"], a["y_norm"]
    limits = a["detection_limit"]
    primary = None
    detectable = [x for x in limits or () if x["drop_fraction"] is not None]
    reason = f"no significant event: {negative.reason}"
    if limits and not detectable:
        reason += "; even a total occultation of these durations would not be detected"
    if detectable:
        chosen = detectable[-1]             # the longest duration that could be detected
        primary = DetectionLimit(
            duration_s=chosen["duration_s"], drop_fraction=chosen["drop_fraction"],
            false_positive_probability=options.max_false_positive,
            method=f"drops injected into the resampled noise, detected with probability "
                   f"{options.detection_probability:g} ({a['significance_method']})")
    fpp = a.get("false_positive_probability")
    return TimingResult(
        model=model_name, outcome="negative", reason=reason,
        false_positive_probability=float("nan") if fpp is None else fpp,
        snr=float(a.get("snr") or float("nan")),
        readings=TimingReadings(epoch=lc.times.epoch, start_s=readings.start,
                                end_s=readings.end, flux=y_norm),
        detection_limit=primary,
        diagnostics=TimingDiagnostics(
            n_readings=len(readings.y), exposure_s=readings.exposure, cycle_s=readings.cycle,
            time_instant_of_input=lc.times.instant, physics=physics,
            significance_method=a["significance_method"],
            candidates=a.get("candidates", ()),
            fit_seconds=time.perf_counter() - started,
            extra={"detection_limits": limits, "event_snr": a.get("event_snr")}))


def _jsonable_intervals(intervals):
    if not intervals:
        return None
    names = {1.0: "1sigma", 4.0: "2sigma", 9.0: "3sigma"}
    return {edge: {names[k]: list(v) for k, v in levels.items()}
            for edge, levels in intervals.items()}


def problem_sigma(problem) -> np.ndarray:
    return np.sqrt(1.0 / problem.w)


def _add_systematic(intervals: dict, shift: dict) -> dict:
    """Add an edge's systematic shift (one sigma) in quadrature, k times at k sigma."""
    out = {}
    for edge, levels in intervals.items():
        s = shift.get(edge, 0.0)
        out[edge] = {level: tuple(math.sqrt(e * e + level * s * s) if math.isfinite(e) else e
                                  for e in pair) for level, pair in levels.items()}
    return out
