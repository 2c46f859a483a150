"""The pieces of the timing significance that keep slow noise from being called an event:
the AR model's long means, the whiteness test, the dip put back into the noise model, the
coefficient draws of the resampled curves, the bound and the shape test for long events.
Seeded; each truth comes from a closed form or from how the data were made."""
from __future__ import annotations

import math

import numpy as np
import pytest

from occcore.synthetic.noise import autoregressive
from occplugins.fitters import _detrend as dt
from occplugins.fitters import _significance as sg


@pytest.mark.parametrize("rho, width", [(0.6, 30), (0.9, 100), (0.3, 5)])
def test_sd_of_mean_matches_the_ar1_closed_form(rho, width):
    # Var(mean of w) of a unit-variance AR(1): [(1 + r) / (1 - r) - 2 r (1 - r^w) /
    # (w (1 - r)^2)] / w
    factor = (1 + rho) / (1 - rho) - 2 * rho * (1 - rho ** width) / (width * (1 - rho) ** 2)
    assert sg.sd_of_mean(np.array([rho]), 1.0, width) == pytest.approx(
        math.sqrt(factor / width), rel=1e-6)
    assert sg.sd_of_mean(np.array([]), 2.0, 4) == pytest.approx(1.0)


def test_whiteness_test_rejects_about_one_percent_of_white_curves_and_every_ar2():
    g = np.random.default_rng(5)
    white = np.mean([sg.looks_white(g.standard_normal(400)) for _ in range(1000)])
    assert 0.97 <= white <= 1.0
    assert not any(sg.looks_white(autoregressive(400, (0.5, 0.25), 1.0, g))
                   for _ in range(50))


def test_partial_dip_puts_back_at_most_the_drop_and_nothing_in_white_noise():
    g = np.random.default_rng(7)
    candidate = np.zeros(400, bool)
    candidate[100:140] = True
    white = g.standard_normal(400)
    assert sg.partial_dip(white, candidate, drop=0.8) is not None
    np.testing.assert_array_equal(sg.partial_dip(white, candidate, drop=0.8), white)
    red = autoregressive(400, (0.7,), 1.0, g)
    sd = sg.sd_of_mean(sg.ar_fit(red), float(np.std(red[~candidate])), 40)
    deep = sg.partial_dip(red, candidate, drop=50.0)
    put_back = float(np.mean(red[candidate] - deep[candidate]))
    assert put_back == pytest.approx(sg.KEEP_SD * sd, rel=1e-9)
    np.testing.assert_array_equal(deep[~candidate], red[~candidate])
    shallow = sg.partial_dip(red, candidate, drop=0.01)
    assert float(np.mean(red[candidate] - shallow[candidate])) == pytest.approx(0.01)


def test_drawn_coefficients_widen_the_long_means_of_strongly_correlated_noise():
    """With a correlation of 0.95 the long-run gain is uncertain: curves recoloured with
    drawn coefficients spread more in their long means than with the point estimate, and
    the same when the covariance is zero."""
    g = np.random.default_rng(11)
    x = autoregressive(400, (0.95,), 1.0, g)
    a = sg.ar_fit(x)
    cov = sg.ar_covariance(x, a)
    assert cov.shape == (len(a), len(a)) and np.all(np.diag(cov) > 0)
    e = g.standard_normal((400, 600))
    fixed = sg.recolour(e, a, None, 200, np.random.default_rng(1))
    drawn = sg.recolour(e, a, cov, 200, np.random.default_rng(1))
    zero = sg.recolour(e, a, np.zeros_like(cov), 200, np.random.default_rng(1))
    np.testing.assert_allclose(zero, fixed, rtol=1e-9, atol=1e-12)
    assert np.std(drawn.mean(axis=1)) > 1.03 * np.std(fixed.mean(axis=1))


def test_long_event_bound_applies_only_to_long_events_in_correlated_noise():
    g = np.random.default_rng(3)
    n = 400
    long_event = np.zeros(n, bool)
    long_event[100:300] = True
    short_event = np.zeros(n, bool)
    short_event[100:130] = True
    red = autoregressive(n, (0.8,), 0.1, g)
    white = g.normal(0, 0.1, n)
    assert sg.too_long_to_calibrate(200, n) and not sg.too_long_to_calibrate(30, n)
    bound = sg.long_event_sd(red, long_event, red)
    outside = red[~long_event]
    assert bound == pytest.approx(1.4826 * np.median(np.abs(outside - np.median(outside))))
    assert sg.long_event_sd(red, short_event, red) is None
    assert sg.long_event_sd(white, long_event, white) is None


def test_a_sharp_long_dip_beats_a_smooth_trend_and_a_slow_wave_does_not():
    g = np.random.default_rng(2026)
    n = 400
    t = np.arange(n) * 0.1
    box = np.where((t >= 10) & (t < 25), 0.85, 1.0)
    y_box = box + g.normal(0, 0.1, n)
    wave = 1.0 + 0.05 * np.sin(2 * np.pi * t / 30.0)
    y_wave = wave + g.normal(0, 0.1, n)
    # the event model: a square dip on a constant (1 trend coefficient, a bottom, 2 edges)
    sharp = dt.smooth_alternative(t, y_box, box, 4)
    fitted_wave_box = np.where(wave < 1.0, 1.0 - 0.032, 1.0 + 0.032)
    smooth = dt.smooth_alternative(t, y_wave, fitted_wave_box, 4)
    assert sharp.event_preferred(), sharp
    assert not smooth.event_preferred(), smooth
