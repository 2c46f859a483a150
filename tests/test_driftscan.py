"""Drift-scan timing (John Broughton's method): the worked Lutetia example, seeded
synthetic images with a known gap, the PSF-step fit, bad inputs and the CLI.

Budget: about 15 s on one core (the 200-image coverage run is most of it).
"""
import json
import math

import numpy as np
import pytest

from occcore.errors import InputError
from occcore.synthetic.driftscan import (drift_rate_px_per_s, drift_scan_image,
                                         write_drift_scan_fits)
from occplugins.readers import _driftscan as ds
from occplugins.readers.driftscan import DriftScanOptions, analyse_file, driftscan_lightcurve


def hms(text):
    h, m, s = text.split()
    return 3600 * int(h) + 60 * int(m) + float(s)


# -- the worked example (J. Broughton, "Procedures for timing minor planet occultations
#    using a CCD camera", 2003; 2003 August 24, (21) Lutetia) -------------------------------
#
# Consistency of the example's numbers (checked by hand and by the tests below):
# * consistent: the shutter times (09 02 35.52, 09 05 16.80); the RA table (X 74.47,
#   468.63, 489.36, 935.90 -> 0.00, 73.96, 77.85, 161.63 sidereal s; the start's RA is
#   the interpolation of its neighbours 56.80 and 93.12 to 0.01 s); the products with
#   0.99727 (73.76, 77.64, 161.19); the derived times 49.28, 53.16, 16.71; the final D/R
#   (49.32, 53.20) = derived + half the 0.09 s end mismatch; and the first table's
#   "simple interpolation" D/R, which are the linear conversion with the trail end at
#   X 935.90.
# * not consistent: the first table's end of trail "X 936.90". With it the linear
#   conversion gives D 09 03 49.23 and R 09 03 53.11, 0.09 s before the listed (and the
#   RA-derived) times; with X 935.90 (the RA table's value) both conversions agree with
#   the listed times to better than 0.01 s, as the text says. 936.90 is a typo of 935.90.

OPEN = hms("09 02 35.52")
CLOSE = hms("09 05 16.80")
LISTED = {"disappearance": hms("09 03 49.32"), "reappearance": hms("09 03 53.20")}
X_TRAIL = {"start": 74.47, "disappearance": 468.63, "reappearance": 489.36, "end": 935.90}
RA_S = {"start": hms("15 00 59.70"), "disappearance": hms("14 59 45.74"),
        "reappearance": hms("14 59 41.85"), "end": hms("14 58 18.07")}
ZERO = {k: 0.0 for k in X_TRAIL}


def test_lutetia_linear_conversion_reproduces_the_listed_times():
    conv = ds.linear_times(X_TRAIL, ZERO, CLOSE - OPEN)
    for edge, listed in LISTED.items():
        assert abs(OPEN + conv.times_s[edge] - listed) < 0.01, edge


def test_lutetia_sidereal_conversion_reproduces_every_table():
    offsets = {k: RA_S["start"] - v for k, v in RA_S.items()}
    # the table's sidereal seconds, and their solar equivalents (x 0.99727)
    for k, listed in (("disappearance", 73.96), ("reappearance", 77.85), ("end", 161.63)):
        assert offsets[k] == pytest.approx(listed, abs=0.005)
    for k, listed in (("disappearance", 73.76), ("reappearance", 77.64), ("end", 161.19)):
        assert ds.SIDEREAL_TO_SOLAR * offsets[k] == pytest.approx(listed, abs=0.005)
    conv = ds.sidereal_times(offsets, CLOSE - OPEN)
    # derived end of exposure 09 05 16.71 -> 0.09 s short of the measured closing
    assert OPEN + ds.SIDEREAL_TO_SOLAR * offsets["end"] == pytest.approx(hms("09 05 16.71"),
                                                                        abs=0.005)
    assert conv.mismatch_s == pytest.approx(0.09, abs=0.005)
    for edge, listed in LISTED.items():
        assert abs(OPEN + conv.times_s[edge] - listed) < 0.01, edge
    # before the half-mismatch shift: the "derived" times 49.28 and 53.16
    for edge, listed in (("disappearance", "09 03 49.28"), ("reappearance", "09 03 53.16")):
        unshifted = OPEN + conv.times_s[edge] - 0.5 * conv.mismatch_s
        assert unshifted == pytest.approx(hms(listed), abs=0.006)


def test_lutetia_simple_and_distortion_free_conversions_agree_to_0_01_s():
    linear = ds.linear_times(X_TRAIL, ZERO, CLOSE - OPEN)
    sidereal = ds.sidereal_times({k: RA_S["start"] - v for k, v in RA_S.items()}, CLOSE - OPEN)
    for edge in LISTED:
        assert abs(linear.times_s[edge] - sidereal.times_s[edge]) < 0.01, edge


def test_lutetia_start_ra_is_the_interpolation_of_its_neighbours():
    x = np.array([56.80, 93.12])
    ra = np.array([hms("15 01 03.02"), hms("15 00 56.20")])
    assert np.interp(74.47, x, ra) == pytest.approx(RA_S["start"], abs=0.005)


def test_lutetia_first_table_end_of_trail_is_inconsistent():
    wrong = dict(X_TRAIL, end=936.90)
    conv = ds.linear_times(wrong, ZERO, CLOSE - OPEN)
    for edge, listed in LISTED.items():
        assert OPEN + conv.times_s[edge] - listed == pytest.approx(-0.09, abs=0.01), edge


# -- synthetic images ----------------------------------------------------------------------


def _random_scan(seed, width=240, exposure_s=36.0, **kw):
    rng = np.random.default_rng(10_000 + seed)
    d = rng.uniform(11.0, 20.0)
    params = dict(height=32, width=width, exposure_s=exposure_s,
                  angle_deg=rng.uniform(-1.0, 1.0),
                  start_xy=(rng.uniform(18.0, 28.0), rng.uniform(13.0, 18.0)),
                  target_flux_e_per_s=rng.uniform(8000.0, 30000.0),
                  remaining_fraction=10 ** (-0.4 * rng.uniform(1.0, 3.0)),
                  disappearance_s=d, reappearance_s=d + rng.uniform(2.0, 6.0),
                  fwhm_px=rng.uniform(2.5, 3.5),
                  other_trails=((rng.uniform(20, 60), 5.5, 12000.0),
                                (rng.uniform(-150, -100), 26.0, 25000.0),
                                (rng.uniform(150, 170), 14.5, 1200.0)), seed=seed)
    params.update(kw)
    return drift_scan_image(**params)


def _analyse(image, truth, **kw):
    return ds.analyse(image, exposure_s=truth.exposure_s,
                      shutter_open_utc=truth.shutter_open_utc, dec_deg=truth.dec_deg,
                      plate_scale_arcsec=truth.plate_scale_arcsec, **kw)


def test_synthetic_truth_is_self_consistent():
    image, header, truth = drift_scan_image(seed=2)
    assert truth.rate_px_per_s == pytest.approx(15.04106 * math.cos(math.radians(20)) / 2.8,
                                                rel=1e-5)
    length = math.dist(truth.start_xy, truth.end_xy)
    assert length == pytest.approx(truth.rate_px_per_s * truth.exposure_s, rel=1e-9)
    assert header["EXPTIME"] == truth.exposure_s
    again, _, _ = drift_scan_image(seed=2)
    assert np.array_equal(image, again)


def test_recovered_times_are_within_one_sigma_68_percent_of_the_time():
    """>= 200 seeded images (trails with seeing, scintillation, noise, other trails,
    a slight tilt): D and R within the reported 1 sigma about 68 % of the time."""
    inside, total, pulls = 0, 0, []
    for seed in range(200):
        image, _, truth = _random_scan(seed)
        result = _analyse(image, truth)
        assert result.event_detected
        conv = result.conversion
        for edge, true_s in (("disappearance", truth.disappearance_s),
                             ("reappearance", truth.reappearance_s)):
            pull = (conv.times_s[edge] - true_s) / conv.err_s[edge]
            pulls.append(pull)
            inside += abs(pull) <= 1
            total += 1
    fraction = inside / total
    assert total >= 400
    assert 0.60 <= fraction <= 0.76, fraction
    assert abs(np.median(pulls)) < 0.25


def _mean_error(seeds, **kw):
    errs = []
    for seed in seeds:
        image, _, truth = drift_scan_image(seed=seed, **kw)
        result = _analyse(image, truth)
        errs += [result.conversion.err_s["disappearance"], result.conversion.err_s["reappearance"]]
    return float(np.mean(errs))


def test_uncertainty_follows_the_table_trend():
    """Broughton's table: brighter trails and deeper drops give smaller errors."""
    seeds = range(4)
    faint = _mean_error(seeds, target_flux_e_per_s=4000.0, remaining_fraction=0.1)
    bright = _mean_error(seeds, target_flux_e_per_s=40000.0, remaining_fraction=0.1)
    assert bright < 0.7 * faint
    shallow = _mean_error(seeds, target_flux_e_per_s=20000.0,
                          remaining_fraction=10 ** (-0.4 * 0.6))
    deep = _mean_error(seeds, target_flux_e_per_s=20000.0, remaining_fraction=10 ** (-0.4 * 3))
    assert deep < 0.7 * shallow


def test_linear_and_sidereal_conversions_agree_on_a_true_plate_scale():
    image, _, truth = drift_scan_image(seed=4)
    result = _analyse(image, truth)
    for edge in ("disappearance", "reappearance"):
        gap = abs(result.linear.times_s[edge] - result.sidereal.times_s[edge])
        assert gap < 2 * result.sidereal.err_s[edge]
    # the trail is as long as the rate says: the end mismatch is within its error
    assert abs(result.sidereal.mismatch_s) < 0.1
    assert result.conversion.seconds_per_px == pytest.approx(1 / truth.rate_px_per_s, rel=1e-6)


def test_steep_trail_measured_from_the_trails_and_picked_by_position():
    angle = 25.0
    rate = drift_rate_px_per_s(20.0, 2.8)
    image, _, truth = drift_scan_image(height=140, width=260, exposure_s=50.0, angle_deg=angle,
                                       start_xy=(20.0, 15.0), other_trails=(
                                           (30.0, 60.0, 20000.0),), seed=7)
    near = truth.position(10.0)
    result = _analyse(image, truth, direction_deg="auto", target_xy=near)
    assert result.angle_deg == pytest.approx(angle, abs=0.1)
    conv = result.conversion
    for edge, true_s in (("disappearance", truth.disappearance_s),
                         ("reappearance", truth.reappearance_s)):
        assert abs(conv.times_s[edge] - true_s) < 4 * conv.err_s[edge] + 0.02 / rate
    x, y = truth.disappearance_xy
    assert math.hypot(result.edges["disappearance"].x_px - x,
                      result.edges["disappearance"].y_px - y) < 0.5


def test_trail_without_a_gap_is_no_event_when_targeted():
    image, _, truth = drift_scan_image(seed=5, remaining_fraction=1.0)
    result = _analyse(image, truth, target_xy=truth.position(10.0))
    assert not result.event_detected
    assert "disappearance" not in result.edges
    assert any("no occultation detected" in n for n in result.notes)
    assert result.to_dict()["disappearance"] is None


def test_light_curve_of_the_trail():
    image, _, truth = drift_scan_image(seed=6)
    result = _analyse(image, truth)
    lc = ds.trail_lightcurve(result)
    assert lc.times.instant == "mid"
    assert lc.exposure_s == pytest.approx(1 / truth.rate_px_per_s, rel=1e-6)
    t = lc.times.offsets_s
    assert np.all(np.diff(t) > 0) and t[0] >= 0 and t[-1] <= truth.exposure_s
    gap = (t > truth.disappearance_s + 0.5) & (t < truth.reappearance_s - 0.5)
    clear = (t > 2) & (t < truth.disappearance_s - 1)
    assert np.median(lc.flux[gap]) < 0.2 * np.median(lc.flux[clear])
    meta = lc.meta["driftscan"]
    assert meta["disappearance"]["s_after_open"] == result.conversion.times_s["disappearance"]
    assert meta["psf_sigma_s"] == pytest.approx(result.psf_sigma_px / truth.rate_px_per_s)


# -- the PSF-step fit --------------------------------------------------------------------------


def test_psf_fit_agrees_with_the_direct_method_and_the_truth():
    for seed in range(5):
        image, _, truth = _random_scan(seed)
        result = _analyse(image, truth)
        fit = ds.fit_psf_edges(ds.trail_lightcurve(result))
        for edge, true_s in (("disappearance", truth.disappearance_s),
                             ("reappearance", truth.reappearance_s)):
            direct, direct_err = result.conversion.times_s[edge], result.conversion.err_s[edge]
            psf = fit[f"{edge}_s"]
            minus, plus = fit[f"{edge}_err_s"]
            assert 0 < minus < 0.5 and 0 < plus < 0.5
            assert fit[f"{edge}_err3_s"][0] > 2.5 * minus
            assert abs(psf - direct) < 2 * math.hypot(0.5 * (minus + plus), direct_err)
            lo3, hi3 = fit[f"{edge}_err3_s"]
            assert -lo3 <= true_s - psf <= hi3, (seed, edge)


def _noise_free_curve(phase_px, gap_s=3.0, fwhm_px=3.0):
    image, _, truth = drift_scan_image(seed=1, noise=False, scintillation=0.0, jitter_px=0.0,
                                       start_xy=(25.0 + phase_px, 19.6), angle_deg=0.0,
                                       disappearance_s=20.0 + phase_px / 5.05,
                                       reappearance_s=20.0 + phase_px / 5.05 + gap_s,
                                       fwhm_px=fwhm_px)
    result = _analyse(image, truth)
    return ds.trail_lightcurve(result), truth


def test_square_well_is_biased_on_psf_shaped_edges_and_the_psf_fit_is_not():
    """Noise-free drift scans at several sub-pixel phases of the edges: the PSF-step
    fit finds the edges; a plain square well (sharp step integrated over each pixel)
    misses them by a phase-dependent amount much larger than the PSF fit's errors."""
    square_errors, psf_errors = [], []
    for phase in (0.0, 0.2, 0.4, 0.6, 0.8):
        lc, truth = _noise_free_curve(phase)
        psf = ds.fit_psf_edges(lc)
        square = ds.fit_psf_edges(lc, square_well=True)
        for edge, true_s in (("disappearance", truth.disappearance_s),
                             ("reappearance", truth.reappearance_s)):
            psf_errors.append(abs(psf[f"{edge}_s"] - true_s))
            square_errors.append(abs(square[f"{edge}_s"] - true_s))
    assert max(psf_errors) < 0.01
    assert np.mean(square_errors) > 3 * max(np.mean(psf_errors), 0.002)
    assert max(square_errors) > 0.04


# -- bad inputs ----------------------------------------------------------------------------


def _write(tmp_path, name, image, header):
    return write_drift_scan_fits(tmp_path / name, image, header)


def test_no_trail_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.normal(400, 10, (40, 200)).astype(np.float32)
    path = _write(tmp_path, "sky.fits", image, {"DATE-OBS": "2024-01-01T00:00:00",
                                                 "EXPTIME": 40.0})
    with pytest.raises(InputError, match="no star trail") as info:
        analyse_file(path)
    assert str(path) in str(info.value)


def test_shutter_close_before_open_is_a_clear_error(tmp_path):
    image, header, _ = drift_scan_image(seed=1)
    path = _write(tmp_path, "scan.fits", image, header)
    options = DriftScanOptions(shutter_open_utc="2024-05-06T09:02:35.5",
                               shutter_close_utc="2024-05-06T09:01:35.5")
    with pytest.raises(InputError, match="not after shutter open") as info:
        analyse_file(path, options)
    assert str(path) in str(info.value)


def test_trail_leaving_the_frame_is_a_clear_error(tmp_path):
    image, header, _ = drift_scan_image(seed=1, start_xy=(-30.0, 19.6), other_trails=())
    path = _write(tmp_path, "cut.fits", image, header)
    with pytest.raises(InputError, match="leaves the frame") as info:
        analyse_file(path)
    assert str(path) in str(info.value)


def test_saturated_trail_is_a_clear_error(tmp_path):
    image, header, truth = drift_scan_image(seed=1, target_flux_e_per_s=3e6)
    assert truth.saturated
    path = _write(tmp_path, "bright.fits", image, header)
    with pytest.raises(InputError, match="saturated") as info:
        analyse_file(path)
    assert str(path) in str(info.value)


def test_non_image_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.fits"
    path.write_text("not an image at all\n" * 40)
    with pytest.raises(InputError) as info:
        analyse_file(path)
    assert str(path) in str(info.value)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="target"):
        DriftScanOptions(target="12")
    with pytest.raises(ValueError, match="ISO"):
        DriftScanOptions(shutter_open_utc="yesterday")
    assert DriftScanOptions(target="10.5, 20").target == (10.5, 20.0)
    assert DriftScanOptions(target=[1, 2]).target == (1.0, 2.0)
    assert DriftScanOptions(direction_deg="auto").direction_deg == "auto"


# -- reader, light-curve function and CLI ------------------------------------------------------


def test_header_times_and_explicit_shutter_times(tmp_path):
    image, header, truth = drift_scan_image(seed=8)
    path = _write(tmp_path, "scan.fits", image, header)
    result, *_ = analyse_file(path)
    assert any("DATE-OBS taken as the start" in n for n in result.notes)
    # the same exposure stated by shutter times 1.25 s later: every time moves with them
    later = DriftScanOptions(shutter_open_utc="2024-05-06T09:02:36.770",
                             shutter_close_utc="2024-05-06T09:03:26.770")
    moved, *_ = analyse_file(path, later)
    assert moved.shutter_open_utc.startswith("2024-05-06T09:02:36.77")
    assert moved.conversion.times_s == pytest.approx(result.conversion.times_s)
    lc = driftscan_lightcurve(path, later)
    assert lc.times.epoch.isot.startswith("2024-05-06T09:02:36.77")


@pytest.fixture
def driftscan_registered(monkeypatch):
    """The reader is registered as a built-in; keep the CLI test independent of that
    one line of plugins/__init__.py. ``main`` points the occcore logger at this test's
    captured stderr and stops its propagation: put it back for the tests that follow."""
    import logging

    import occplugins
    module = "occplugins.readers.driftscan"
    if module not in occplugins.BUILTIN_PLUGINS:
        monkeypatch.setattr(occplugins, "BUILTIN_PLUGINS", occplugins.BUILTIN_PLUGINS + (module,))
    log = logging.getLogger("occcore")
    saved = (list(log.handlers), log.level, log.propagate)
    yield
    log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]


def test_cli_info_shows_the_disappearance_and_reappearance(tmp_path, capsys,
                                                           driftscan_registered):
    from occcore.cli import main
    image, header, truth = drift_scan_image(seed=9)
    path = _write(tmp_path, "scan.fits", image, header)
    code = main(["info", str(path), "--reader", "driftscan", "--json",
                 "--set", "read.options.driftscan.dec_deg=20.0",
                 "--set", "read.options.driftscan.plate_scale_arcsec=2.8"])
    assert code == 0
    info = json.loads(capsys.readouterr().out)
    scan = info["metadata"]["driftscan"]
    assert info["reader"] == "driftscan" and scan["primary_conversion"] == "sidereal"
    for edge, true_s in (("disappearance", truth.disappearance_s),
                         ("reappearance", truth.reappearance_s)):
        found = scan[edge]
        assert abs(found["s_after_open"] - true_s) < 4 * found["err_s"]
        assert found["utc"].startswith("2024-05-06T09:0")
    code = main(["info", str(path), "--reader", "driftscan"])
    assert code == 0
    assert "drift scan" in capsys.readouterr().out


def test_header_wcs_gives_the_sidereal_conversion(tmp_path):
    image, header, truth = drift_scan_image(seed=10)
    scale_deg = truth.plate_scale_arcsec / 3600
    header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 160.5,
                   "CRPIX2": 20.5, "CRVAL1": 225.0, "CRVAL2": truth.dec_deg,
                   "CD1_1": -scale_deg, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": scale_deg})
    path = _write(tmp_path, "wcs.fits", image, header)
    result, *_ = analyse_file(path)
    assert result.primary == "sidereal"
    assert result.sidereal.note.startswith("WCS")
    for edge, true_s in (("disappearance", truth.disappearance_s),
                         ("reappearance", truth.reappearance_s)):
        assert abs(result.sidereal.times_s[edge] - true_s) < 4 * result.sidereal.err_s[edge]
        assert abs(result.sidereal.times_s[edge] - result.linear.times_s[edge]) < 0.02
