"""Significance, detrending and detection limits of the timing fitters, on seeded synthetic
curves (occcore.synthetic.noise) whose truth is known. The big runs (500 curves per kind)
are in bench/bench_significance.py; these are the reduced CI versions (budget ~40 s)."""
import math

import numpy as np
import pytest

from occcore.model import LightCurve
from occcore.plugin import StepContext
from occcore.synthetic import square_well_lightcurve
from occcore.synthetic.noise import autoregressive, noise_for, noisy_lightcurve
from occplugins.fitters import _significance as sg
from occplugins.fitters import _timing as tm
from occplugins.fitters import square


def fit(lc, seed=0, **options):
    return square._fit(lc, options=square.SquareOptions(**options),
                       context=StepContext(rng=np.random.default_rng(seed)))


# -- the phases alone -------------------------------------------------------------------------


def test_block_length_follows_the_correlation():
    rng = np.random.default_rng(1)
    assert sg.block_length(rng.normal(0, 1, 2000)) == 1.0
    red = autoregressive(2000, (0.8,), 1.0, rng)          # tau = (1 + 0.8) / (1 - 0.8) = 9
    assert 20 < sg.block_length(red) < 60


def test_stationary_bootstrap_keeps_values_and_outliers():
    rng = np.random.default_rng(2)
    pool = rng.normal(0, 1, 500)
    pool[17] = -25.0                                       # one outlier
    curves = sg.stationary_bootstrap(pool, 400, 300, 5.0, rng)
    assert curves.shape == (300, 400)
    assert np.isin(curves, pool).all()                     # only values of the pool
    assert 0.3 < np.mean((curves == -25.0).any(axis=1)) < 0.9   # the outlier survives
    # blocks: neighbours are consecutive pool readings far more often than by chance
    index = np.searchsorted(np.sort(pool), curves)
    order = np.argsort(pool)
    original = order[index]
    assert np.mean(np.diff(original, axis=1) == 1) > 0.6


def test_tail_probability_empirical_then_exponential():
    rng = np.random.default_rng(3)
    null = rng.gumbel(3.0, 0.4, 2000)
    p, how = sg.tail_probability(null, 3.0)
    assert how == "empirical" and 0.59 < p < 0.68        # 1 - exp(-1) = 0.632
    p, how = sg.tail_probability(null, 8.0)          # Gumbel tail: exp(-(8 - 3)/0.4) ~ 4e-6
    assert how.startswith("exponential") and 1e-7 < p < 1e-4
    heavy = np.concatenate([rng.normal(0, 1, 1960), rng.uniform(20, 40, 40)])
    p, how = sg.tail_probability(heavy, 100.0)
    assert how.startswith("empirical bound") and p == pytest.approx(1 / 2001)


def test_detrending_finds_the_event_under_a_strong_trend():
    lc, truth = square_well_lightcurve(n_points=1000, cadence_s=0.1, sigma=0.05, seed=11,
                                       immersion_s=40.0, emersion_s=45.0, bottom=0.4)
    t = lc.times.offsets_s
    trended = lc.flux * (1 + 1.5 * t / t.max())            # the baseline rises 2.5x
    plain = tm.detect_long(trended)
    d = tm.detrend_and_detect(t, trended, lambda y: ("both", tm.detect_long(y)))
    best = d.candidates[0]
    assert abs(t[best.d_index] - 40.0) < 0.2 and abs(t[best.r_index] - 45.0) < 0.2
    assert d.degree >= 1 and not d.masked[:300].any() and d.masked[400:450].all()
    # without detrending the two-level search does not find it (the trend wins)
    assert not (abs(t[plain[0].d_index] - 40.0) < 0.2 and abs(t[plain[0].r_index] - 45.0) < 0.2)


def test_noise_generators_are_seeded_and_scaled():
    a, _ = noisy_lightcurve("ar2", event=None, seed=5)
    b, _ = noisy_lightcurve("ar2", event=None, seed=5)
    assert np.array_equal(a.flux, b.flux)
    x = autoregressive(100_000, (0.5, 0.25), 2.0, np.random.default_rng(0))
    assert np.std(x) == pytest.approx(2.0, rel=0.05)
    with pytest.raises(ValueError, match="stationary"):
        autoregressive(10, (1.2,), 1.0, 0)
    factor, additive = noise_for("scintillation", np.arange(5000) * 0.1, 0.1,
                                 np.random.default_rng(1))
    assert factor.min() > 0 and np.corrcoef(factor[1:], factor[:-1])[0, 1] > 0.8


# -- outcomes ---------------------------------------------------------------------------------


def test_flat_and_comparison_star_curves_are_negative_with_a_detection_limit():
    for kind in ("white", "comparison"):
        lc, _ = noisy_lightcurve(kind, event=None, n_points=600, seed=7)
        r = fit(lc)
        assert r.outcome == "negative", (kind, r.reason)
        assert r.immersion is None and r.emersion is None
        assert r.reason.startswith("no significant event")
        limit = r.detection_limit
        assert limit is not None and 0 < limit.drop_fraction < 1
        assert limit.false_positive_probability == 0.0027
        limits = r.diagnostics.extra["detection_limits"]
        drops = [x["drop_fraction"] for x in limits]
        assert drops == sorted(drops, reverse=True)       # longer events: shallower limits
        assert "bootstrap" in r.diagnostics.significance_method


def test_constant_curve_is_undetermined_not_negative():
    lc, _ = noisy_lightcurve("white", event=None, n_points=100, seed=1)
    flat = LightCurve(times=lc.times, exposure_s=lc.exposure_s, flux=np.ones(100))
    from occcore.plugin import NotApplicable
    with pytest.raises(NotApplicable, match="undetermined"):
        fit(flat)


def test_detection_limit_is_what_the_fitter_detects():
    """Inject the reported shallowest drop (90 % detection) of 20 readings into fresh noise
    of the same kind: most injections are detected, half of it mostly is not."""
    lc, _ = noisy_lightcurve("white", event=None, n_points=400, seed=21)
    r = fit(lc, sensitivity_durations_s=(2.0,))
    (limit,) = r.diagnostics.extra["detection_limits"]
    assert limit["readings"] == 20
    found = {}
    for scale in (1.0, 0.5):
        hits = 0
        for k in range(12):
            trial, truth = noisy_lightcurve("white", event="square", n_points=400,
                                            seed=300 + k, drop=scale * limit["drop_fraction"],
                                            event_readings=20)
            hits += fit(trial, seed=k).outcome == "positive"
        found[scale] = hits
    assert found[1.0] >= 8, found
    assert found[0.5] <= 4, found


# -- rates over many curves (reduced; the full tables: bench/bench_significance.py) --------


NULL_BOUNDS = {"white": 1, "ar1": 2, "trend": 1, "outliers": 1, "scintillation": 3,
               "comparison": 2}


@pytest.mark.parametrize("kind", sorted(NULL_BOUNDS))
def test_event_free_curves_are_rarely_positive(kind):
    """20 event-free curves per kind: the nominal rate (0.0027) expects none. White,
    trended and outlier noise stay at <= 1; correlated noise is allowed a little more (the
    full benchmark measures it; see the module docstring of _significance)."""
    positives = sum(fit(noisy_lightcurve(kind, event=None, n_points=300, seed=40_000 + k)[0],
                        seed=k).outcome == "positive" for k in range(20))
    assert positives <= NULL_BOUNDS[kind]


def test_events_in_real_ish_noise_are_found_and_covered():
    hits = []
    detected = 0
    kinds = ("white", "ar1", "trend", "outliers", "scintillation")
    for kind in kinds:
        for k in range(8):
            lc, truth = noisy_lightcurve(kind, event="square", n_points=300,
                                         seed=50_000 + k, drop=0.7, event_readings=25)
            r = fit(lc, seed=k)
            if r.outcome != "positive":
                continue
            detected += 1
            for name, true_s in (("immersion", truth.immersion_s),
                                 ("emersion", truth.emersion_s)):
                e = getattr(r, name)
                delta = true_s - e.offset_s(lc.times.epoch)
                hits.append((-e.err1_s[0] <= delta <= e.err1_s[1],
                             -e.err3_s[0] <= delta <= e.err3_s[1]))
    assert detected >= 36                       # of 40: a 7-sigma drop over 25 readings
    within1 = np.mean([h[0] for h in hits])
    within3 = np.mean([h[1] for h in hits])
    assert 0.5 <= within1 <= 0.86, within1
    assert within3 >= 0.93, within3


def test_significance_method_and_probability_of_a_clear_event():
    lc, truth = noisy_lightcurve("white", event="square", n_points=500, seed=3, drop=0.8,
                                 event_readings=40)
    r = fit(lc)
    assert r.outcome == "positive"
    assert r.false_positive_probability <= 1e-6
    assert r.diagnostics.extra["event_snr"] > 20
    assert math.isfinite(r.diagnostics.extra["significance_statistic"])


def test_negative_that_could_see_nothing_says_so_and_writes_clean_json():
    """60 readings of sigma 1 (the baseline's own size): a 0.1 s (one reading) total
    occultation is undetectable; the negative says so instead of giving a limit."""
    import json
    lc, _ = noisy_lightcurve("white", event=None, n_points=60, sigma=1.0, seed=3)
    r = fit(lc, sensitivity_durations_s=(0.1,))
    assert r.outcome == "negative" and r.detection_limit is None
    assert "even a total occultation" in r.reason
    assert r.diagnostics.extra["detection_limits"][0]["drop_fraction"] is None
    json.dumps(r.to_json(), allow_nan=False)
