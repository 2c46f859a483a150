"""Seeded noise for light curves, the kinds real recordings show, and light curves with and
without an event built on them (for the significance tests and benchmarks of the timing
fitters).

* :func:`white`, :func:`autoregressive` (AR(1-3), unit variance), :func:`outliers`;
* :func:`polynomial_trend`, :func:`sinusoid_trend` (multiplicative, slow);
* :func:`scintillation` (multiplicative, red: an AR(1) with a correlation time of many
  readings, log-normal so that the flux stays positive);
* :func:`noisy_lightcurve`: a flat curve, a square-well event (from
  :func:`occcore.synthetic.square_well_lightcurve`) or a diffraction event (from
  :func:`occcore.synthetic.diffraction_lightcurve`), times the trend and scintillation, plus
  additive noise and outliers.

Every function takes a ``numpy.random.Generator`` or a seed and is reproducible.
"""
from __future__ import annotations

import math

import attrs
import numpy as np

NOISE_KINDS = ("white", "ar1", "ar2", "ar3", "trend", "scintillation", "outliers", "comparison")

# stationary AR coefficients of the kinds above (roots well inside the unit circle)
AR_COEFFICIENTS = {"ar1": (0.6,), "ar2": (0.5, 0.25), "ar3": (0.4, 0.2, 0.15)}


def _rng(rng_or_seed) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def white(n: int, sigma: float, rng) -> np.ndarray:
    return _rng(rng).normal(0.0, sigma, n)


def autoregressive(n: int, coefficients, sigma: float, rng, burn: int = 200) -> np.ndarray:
    """x_t = sum a_k x_{t-k} + e_t, scaled to standard deviation ``sigma`` (exactly, from the
    model's variance, not the sample's)."""
    a = np.asarray(coefficients, float)
    roots = np.roots(np.concatenate([[1.0], -a]))
    if np.any(np.abs(roots) >= 1):
        raise ValueError(f"AR coefficients {tuple(a)} are not stationary")
    from scipy.signal import lfilter
    denominator = np.concatenate([[1.0], -a])
    x = lfilter([1.0], denominator, _rng(rng).standard_normal(n + burn))[burn:]
    # variance of the AR process from its impulse response
    impulse = np.zeros(4000)
    impulse[0] = 1.0
    h = lfilter([1.0], denominator, impulse)
    return x * (sigma / math.sqrt(float(h @ h)))


def polynomial_trend(t: np.ndarray, coefficients) -> np.ndarray:
    """1 + c1 x + c2 x^2 + ... with x = (t - t0) / span in [0, 1] (multiplicative)."""
    t = np.asarray(t, float)
    x = (t - t.min()) / max(float(np.ptp(t)), 1e-12)
    return 1.0 + sum(c * x ** (k + 1) for k, c in enumerate(coefficients))


def sinusoid_trend(t: np.ndarray, amplitude: float, period_s: float, phase: float = 0.0):
    return 1.0 + amplitude * np.sin(2 * np.pi * np.asarray(t, float) / period_s + phase)


def scintillation(n: int, sigma_relative: float, correlation_readings: float, rng) -> np.ndarray:
    """Multiplicative red noise: exp of an AR(1) with lag-1 correlation exp(-1/tau), so that
    its relative standard deviation is about ``sigma_relative``."""
    rho = math.exp(-1.0 / max(correlation_readings, 1e-6))
    log = autoregressive(n, (rho,), sigma_relative, rng)
    return np.exp(log - 0.5 * sigma_relative ** 2)


def outliers(n: int, rate: float, amplitude: float, rng) -> np.ndarray:
    """Sparse spikes (cosmic rays, hot pixels, a satellite, a dropped field): a fraction
    ``rate`` of readings moved by +-amplitude times an exponential factor (mostly upwards:
    two in three)."""
    g = _rng(rng)
    hit = g.random(n) < rate
    sign = np.where(g.random(n) < 2 / 3, 1.0, -1.0)
    return np.where(hit, sign * amplitude * (1 + g.exponential(1.0, n)), 0.0)


@attrs.frozen(kw_only=True)
class NoisyTruth:
    kind: str
    event: bool
    immersion_s: float | None
    emersion_s: float | None
    sigma: float                  # additive noise of the baseline (before scintillation)
    drop: float                   # event depth as a fraction of the baseline (0: no event)
    seed: int
    extra: dict = attrs.field(factory=dict)   # the generator's parameters


def noise_for(kind: str, t: np.ndarray, sigma: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(multiplicative factor, additive noise) of one noise kind on times ``t``."""
    g = _rng(rng)
    n = len(t)
    ones = np.ones(n)
    if kind == "white":
        return ones, white(n, sigma, g)
    if kind in AR_COEFFICIENTS:
        return ones, autoregressive(n, AR_COEFFICIENTS[kind], sigma, g)
    if kind == "trend":
        # airmass, sky and seeing: up to +-30 % over the curve, a bend and a slow wave
        c1 = g.uniform(-0.3, 0.3)
        c2 = g.uniform(-0.15, 0.15)
        factor = polynomial_trend(t, (c1, c2)) * sinusoid_trend(
            t, g.uniform(0, 0.05), float(np.ptp(t)) * g.uniform(0.7, 2), g.uniform(0, 2 * np.pi))
        return factor, white(n, sigma, g)
    if kind == "scintillation":
        return scintillation(n, sigma, g.uniform(5, 20), g), white(n, 0.5 * sigma, g)
    if kind == "outliers":
        return ones, white(n, sigma, g) + outliers(n, 0.01, 3 * sigma, g)
    if kind == "comparison":
        # a comparison star of a real recording: slow drift, scintillation, correlated
        # read/sky noise and a few outliers, all at once
        factor = polynomial_trend(t, g.uniform(-0.3, 0.3, 2)) * scintillation(
            n, 0.6 * sigma, g.uniform(5, 15), g)
        additive = autoregressive(n, AR_COEFFICIENTS["ar1"], 0.7 * sigma, g) + \
            outliers(n, 0.005, 3 * sigma, g)
        return factor, additive
    raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(NOISE_KINDS)}")


def noisy_lightcurve(kind: str = "white", *, event: str | None = "square", n_points: int = 500,
                     cadence_s: float = 0.1, exposure_s: float | None = None,
                     sigma: float = 0.1, drop: float = 0.8, event_readings: int = 30,
                     seed: int = 0, diffraction: dict | None = None):
    """(LightCurve, NoisyTruth): a curve with noise ``kind`` and an event (``"square"``,
    ``"diffraction"``) or none (``None``). The event's position is random; a diffraction
    event uses ``diffraction`` (velocity_kms, distance_au, star_diameter_km, wavelength_um,
    bandwidth_um) with ``drop`` = 1 - bottom."""
    from occcore.model import LightCurve
    from occcore.synthetic import diffraction_lightcurve, square_well_lightcurve
    g = np.random.default_rng(seed)
    exposure_s = cadence_s if exposure_s is None else exposure_s
    imm = em = None
    if event == "diffraction":
        p = {"velocity_kms": 20.0, "distance_au": 15.0, "star_diameter_km": 0.0,
             "wavelength_um": 0.7, "bandwidth_um": 0.3, **(diffraction or {})}
        before = int(g.integers(n_points // 5, max(n_points // 5 + 1,
                                                   n_points - event_readings - n_points // 5)))
        clean, truth = diffraction_lightcurve(
            n_before=before, n_event=event_readings, n_after=n_points - before - event_readings,
            exposure_s=exposure_s, cycle_s=cadence_s, snr=1e12, bottom=1.0 - drop,
            seed=int(g.integers(1 << 31)), time_instant="mid", **p)
        # the truth is on the epoch's clock, like the stamps (mid-exposure)
        imm, em = truth.immersion_s, truth.emersion_s
        flux0, times = clean.flux, clean.times
    else:
        span = n_points * cadence_s
        if event == "square":
            width = event_readings * cadence_s
            imm = float(g.uniform(0.2 * span, 0.8 * span - width))
            em = imm + width
        elif event is not None:
            raise ValueError(f"unknown event {event!r}: square, diffraction or None")
        clean, _ = square_well_lightcurve(
            n_points=n_points, cadence_s=cadence_s, exposure_s=exposure_s,
            immersion_s=imm if imm is not None else 2 * span,
            emersion_s=em if em is not None else 2 * span + 1,
            baseline=1.0, bottom=1.0 - drop, sigma=0.0, time_instant="start",
            seed=int(g.integers(1 << 31)))
        flux0, times = clean.flux, clean.times
    factor, additive = noise_for(kind, times.offsets_s, sigma, g)
    flux = flux0 * factor + additive
    lc = LightCurve(times=times, exposure_s=exposure_s, flux=flux, name=f"synthetic-{kind}",
                    frame=np.arange(len(flux)))
    return lc, NoisyTruth(kind=kind, event=event is not None, immersion_s=imm, emersion_s=em,
                          sigma=sigma, drop=drop if event else 0.0, seed=seed,
                          extra={"event_readings": event_readings, "cadence_s": cadence_s,
                                 **({"diffraction": p} if event == "diffraction" else {})})
