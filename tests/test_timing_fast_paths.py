"""The timing engine's fast paths against the plain computations they replace: the chi-square
evaluated only near the edges, the scan statistic without its window drops, the tabulated
Fresnel integrals, the halved edge table, the sliding-window detection, the JD split.
Each reference below is written out here, not taken from the code under test."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from occplugins.fitters import _detection, _edges, _models, _significance
from occplugins.fitters._readings import Readings


def _dense_chi2(model, y, sigma, d, r):
    """chi2 with baseline and bottom solved by least squares on every reading."""
    intensity = model(d, r)
    design = np.column_stack([intensity, 1.0 - intensity]) / sigma[:, None]
    (b, a), *_ = np.linalg.lstsq(design, y / sigma, rcond=None)
    resid = (y - a - (b - a) * intensity) / sigma
    return float(resid @ resid), b, a


def _curve(seed, n=400, exposure=0.1, cycle=0.1):
    g = np.random.default_rng(seed)
    start = cycle * np.arange(n) + g.uniform(-1e-4, 1e-4, n)   # slightly irregular stamps
    end = start + exposure
    y = np.where((start > 12.0) & (start < 20.0), 0.2, 1.0) + g.normal(0, 0.05, n)
    sigma = np.full(n, 0.05) * g.uniform(0.8, 1.2, n)
    return Readings(start, end, y, None, np.arange(n)), sigma


def _diffraction_model(start, end, velocity_r=22.0, star_km=0.2):
    fresnel = np.array([_models.fresnel_scale_km(w, 15.0)
                        for w in _models.wavelengths_um(0.7, 0.3, 5)])
    optics_d = _models.Optics(velocity_kms=22.0, fresnel_km=fresnel, star_diameter_km=star_km)
    optics_r = _models.Optics(velocity_kms=velocity_r, fresnel_km=fresnel,
                              star_diameter_km=star_km)
    return _models.DiffractionModel(start, end, optics_d, optics_r)


@pytest.mark.parametrize("kind", ["square", "diffraction", "diffraction-two-speeds",
                                  "square-dead-time"])
@pytest.mark.parametrize("edges", ["both", "immersion", "emersion"])
def test_chi2_near_the_edges_equals_every_reading(kind, edges):
    readings, sigma = _curve(1, cycle=0.12 if kind == "square-dead-time" else 0.1)
    start, end = readings.start, readings.end
    model = {"square": lambda: _models.SquareModel(start, end),
             "square-dead-time": lambda: _models.SquareModel(start, end),
             "diffraction": lambda: _diffraction_model(start, end),
             "diffraction-two-speeds": lambda: _diffraction_model(start, end, velocity_r=7.0),
             }[kind]()
    far = 100.0
    problem = _edges.Problem(model, readings, sigma, edges, far)
    assert problem.departures is not None
    g = np.random.default_rng(2)
    # edges anywhere: inside, on reading boundaries, close together, near the data's ends
    # (at least a few readings inside: a sliver of one reading leaves the levels degenerate)
    pairs = [(12.0, 20.0), (float(start[120]), float(end[200])), (15.0, 15.35),
             (float(start[0]) + 0.01, float(end[-1]) - 0.01), (float(end[5]), float(start[9]))]
    for _ in range(30):
        d = float(g.uniform(start[0], end[-1] - 0.5))
        pairs.append((d, float(g.uniform(d + 0.4, end[-1]))))
    for d, r in pairs:
        fast, levels = problem.chi2(d, r)
        dd, rr = problem.edges_of(d, r)
        slow, b, a = _dense_chi2(model, readings.y, sigma, dd, rr)
        if b > a:
            assert fast == pytest.approx(slow, rel=1e-9, abs=1e-9), (d, r)
            assert levels == pytest.approx((b, a), rel=1e-9, abs=1e-12)


def test_readings_out_of_time_order_are_evaluated_whole():
    readings, sigma = _curve(3)
    order = np.random.default_rng(4).permutation(len(readings.y))
    shuffled = readings.take(order)
    model = _models.SquareModel(shuffled.start, shuffled.end)
    assert model.departures(12.0, 20.0) is None
    problem = _edges.Problem(model, shuffled, sigma[order], "both", 100.0)
    assert problem.chi2(12.0, 20.0)[0] == pytest.approx(
        _dense_chi2(model, shuffled.y, sigma[order], 12.0, 20.0)[0], rel=1e-9)


def _naive_scan(curves, widths, scales=None):
    """The statistic from every window drop, as the module docstring defines it."""
    curves = np.atleast_2d(curves)
    m, n = curves.shape
    c = np.concatenate([np.zeros((m, 1)), np.cumsum(curves, axis=1)], axis=1)
    sample = np.sort(curves[:, ::max(1, n // 512)], axis=1)
    best = np.full(m, -np.inf)
    out = np.empty((len(widths), 2))
    for i, w in enumerate(widths):
        w = int(w)
        stride = max(1, w // 4)
        level = sample[:, int(round((n + w) / (2.0 * n) * (sample.shape[1] - 1)))]
        starts = np.arange(0, n + 1 - w, stride)
        drops = level[:, None] - (c[:, starts + w] - c[:, starts]) / w
        if scales is None:
            rows = drops[:max(10, min(m, 300_000 // drops.shape[1]))]
            out[i] = rows.mean(), rows.std()
        else:
            out[i] = scales[i]
        out[i, 1] = out[i, 1] if out[i, 1] > 0 else 1e-300
        best = np.maximum(best, (drops.max(axis=1) - out[i, 0]) / out[i, 1])
    return best, out


@pytest.mark.parametrize("shape", [(200, 2000), (120, 47), (7, 300), (60, 9)])
def test_scan_equals_the_window_drops_it_does_not_form(shape):
    g = np.random.default_rng(shape[1])
    curves = 0.5 + g.normal(0, 0.1, shape)
    curves[0, shape[1] // 3:shape[1] // 2] -= 0.3              # one curve with a dip
    widths = _significance.width_grid(max(1, shape[1] - max(8, shape[1] // 10)))
    fast, scales = _significance.scan(curves, widths)
    slow, slow_scales = _naive_scan(curves, widths)
    assert scales == pytest.approx(slow_scales, rel=1e-8, abs=1e-12)
    assert fast == pytest.approx(slow, rel=1e-8, abs=1e-8)
    observed = curves[:3] + 0.01
    assert _significance.scan(observed, widths, scales)[0] == pytest.approx(
        _naive_scan(observed, widths, scales)[0], rel=1e-8, abs=1e-8)


def test_scan_of_a_constant_curve_is_zero():
    widths = _significance.width_grid(90)
    statistic, scales = _significance.scan(np.full((5, 100), 3.7), widths)
    assert np.all(statistic == 0.0)
    assert np.all(scales[:, 1] == 1e-300)


def test_tied_statistics_count_as_exceedances():
    null = np.concatenate([np.full(5, 2.0), np.linspace(0.0, 1.0, 195)])
    p, how = _significance.tail_probability(null, 2.0 + 1e-13)     # a rounding above a tie
    assert how == "empirical" or p == pytest.approx(6 / 201)
    assert p == pytest.approx(6 / 201)


@pytest.mark.parametrize("low, high", [(-30.0, 30.0), (-79.0, 79.0), (0.0, 120.0),
                                       (-300.0, -20.0)])
def test_tabulated_fresnel_integrals(low, high):
    u = np.linspace(low, high, 200_001)
    s, c = _models.fresnel_cs(u)
    s_ref, c_ref = special.fresnel(u)
    # linear interpolation: pi du^2 |u| / 8 at du = 0.0005, plus single precision
    bound = math.pi * 0.0005 ** 2 * np.minimum(np.abs(u), 80.0) / 8 + 2e-7
    assert np.all(np.abs(s - s_ref) <= bound)
    assert np.all(np.abs(c - c_ref) <= bound)


def _edge_table_direct(optics, exposure_s):
    """The immersion table with scipy's Fresnel integrals at every cell (both halves)."""
    v = optics.velocity_kms
    f_max = float(np.max(optics.fresnel_km))
    u_max = float(np.clip(math.sqrt(1000 * f_max / (v * exposure_s)), 16, 80))
    radius_s = optics.star_diameter_km / 2 / v
    half = u_max * f_max / v + radius_s
    dt = (2 / u_max) * (float(np.min(optics.fresnel_km)) / v) / 8
    if radius_s > 0:
        dt = min(dt, max(radius_s / 100, dt / 5))
    m = int(min(half / dt, 200_000))
    dt = half / m
    mid = dt * (np.arange(-m, m) + 0.5)
    intensity = np.zeros_like(mid)
    for f in optics.fresnel_km:
        s, c = special.fresnel(v * mid / f)
        intensity += (1 - 0.5 * (c + s + 1)) ** 2 + (0.5 * (c - s)) ** 2
    intensity /= len(optics.fresnel_km)
    kernel = _models.star_kernel(radius_s, dt)
    if kernel is not None:
        padded = np.pad(intensity, len(kernel), mode="edge")
        intensity = np.convolve(padded, kernel, mode="same")[len(kernel):-len(kernel)]
    deviation = intensity - np.where(mid < 0, 1.0, 0.0)
    return np.concatenate([[0.0], np.cumsum(deviation * dt)])


@pytest.mark.parametrize("velocity, distance, star_km, exposure", [
    (22.0, 15.0, 0.2, 0.1), (5.0, 40.0, 0.0, 0.02), (30.0, 2.0, 3.0, 1.0)])
def test_edge_table_against_scipy_fresnel_everywhere(velocity, distance, star_km, exposure):
    fresnel = np.array([_models.fresnel_scale_km(w, distance)
                        for w in _models.wavelengths_um(0.7, 0.3, 5)])
    optics = _models.Optics(velocity_kms=velocity, fresnel_km=fresnel,
                            star_diameter_km=star_km)
    table = _models.immersion_table(optics, exposure)
    direct = _edge_table_direct(optics, exposure)
    # the table's scale is its total; the intensity of a reading is a difference of two
    # entries over its exposure
    assert np.max(np.abs(table.cumulative - direct)) < 1e-4 * np.max(np.abs(direct))
    assert np.max(np.abs(table.cumulative - direct)) / exposure < 1e-4


def _naive_detect_scores(y):
    """Best log-likelihood of a two-level square wave over every (d, r) inside the data."""
    n = len(y)
    best = -np.inf
    where = None
    for d in range(1, n - 1):
        for r in range(d + 1, n):
            inside, outside = y[d:r], np.concatenate([y[:d], y[r:]])
            if not outside.mean() > inside.mean():
                continue
            va = max(inside.var(), 1e-12 * y.var())
            vb = max(outside.var(), 1e-12 * y.var())
            score = -0.5 * (len(outside) * math.log(vb) + len(inside) * math.log(va))
            if score > best:
                best, where = score, (d, r)
    return best, where


@pytest.mark.parametrize("seed", range(4))
def test_detection_finds_the_best_square_wave(seed):
    g = np.random.default_rng(seed)
    n = int(g.integers(20, 60))
    y = 1 + g.normal(0, 0.1, n)
    d, r = sorted(g.choice(np.arange(1, n), 2, replace=False))
    y[d:r] -= g.uniform(0.1, 0.8)
    found = _detection.detect(y)
    score, where = _naive_detect_scores(y)
    assert found[0].score == pytest.approx(score, rel=1e-9)
    assert (found[0].d_index, found[0].r_index) == where


def test_jd_split_keeps_the_digits():
    from occplugins.lightcurves.sora import _split_jd
    whole, fraction = _split_jd(["2457927.3888895399868488", "2457927", "2.4579273888e6"])
    assert whole.tolist() == [2457927.0, 2457927.0, 2457927.0]
    assert fraction[0] == 0.3888895399868488
    assert fraction[1] == 0.0
    assert fraction[2] == pytest.approx(0.3888, abs=1e-9)


@pytest.mark.parametrize("order", [0, 1, 3])
def test_ar_filters_against_lfilter(order):
    from scipy.signal import lfilter
    from occplugins.fitters import _filters
    g = np.random.default_rng(order)
    ar = np.array([0.6, -0.2, 0.1][:order])
    x = g.normal(size=(4, 300))
    denominator = np.concatenate([[1.0], -ar])
    assert _filters.whiten(x, ar) == pytest.approx(lfilter(denominator, [1.0], x, axis=-1),
                                                   abs=1e-12)
    assert _filters.colour(x, ar) == pytest.approx(lfilter([1.0], denominator, x, axis=-1),
                                                   abs=1e-12)
    assert _filters.colour(_filters.whiten(x, ar), ar) == pytest.approx(x, abs=1e-12)


@pytest.mark.parametrize("taps", [3, 119, 1001])
def test_smooth_is_a_centred_convolution_with_held_ends(taps):
    from occplugins.fitters import _filters
    g = np.random.default_rng(taps)
    kernel = g.uniform(0, 1, taps)
    kernel /= kernel.sum()
    x = g.normal(size=2000)
    half = taps // 2
    padded = np.concatenate([np.full(half, x[0]), x, np.full(half, x[-1])])
    direct = np.array([padded[i:i + taps] @ kernel[::-1] for i in range(len(x))])
    assert _filters.smooth(x, kernel) == pytest.approx(direct, abs=1e-12)


def test_a_white_noise_fit_does_not_import_scipy_signal(shared_fixtures):
    """scipy.signal (with scipy.stats) is 0.4 s of start-up, and only an AR recursion needs
    it: SORA's lc_example.dat, whose noise model is AR(0), is fitted without it."""
    import subprocess
    import sys
    path = shared_fixtures / "lightcurves/sora/lc_example.dat"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from occcore.api import Session\n"
        "from occcore.config import load_config\n"
        "with Session(config=load_config(cwd=Path('/nonexistent')), no_plugins=True) as s:\n"
        f"    r = s.fit({str(path)!r}, model='diffraction', exposure_s=0.1, plot=False,\n"
        "              physics={'velocity': 22.0, 'distance': 15.0,\n"
        "                       'star_diameter': 0.2}).result\n"
        "assert r.outcome == 'positive', r.reason\n"
        "assert r.diagnostics.significance_method.startswith('AR(0)')\n"
        "print('scipy.signal' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
