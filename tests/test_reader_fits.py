import json

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.time import Time

from occcore.api import Session
from occcore.cli import main
from occcore.config import load_config
from occcore.errors import InputError
from occcore.model import FrameFlag
from occcore.synthetic import write_fits_cube, write_fits_series

EPOCH = Time("2024-06-01T22:10:05.123456", scale="utc")


def session(tmp_path, *sets):
    return Session(config=load_config(cwd=tmp_path, sets=sets), no_plugins=True)


def raw_fits(path, cards, data):
    """A FITS file written card by card, so that invalid headers can be made on purpose."""
    def card(key, value):
        if value is None:
            return f"{key:<8}".ljust(80)
        if isinstance(value, bool):
            value = f"{'T' if value else 'F':>20}"
        text = value if isinstance(value, str) else f"{value:>20}"
        return f"{key:<8}= {text}".ljust(80)[:80]
    data = np.asarray(data)
    header = [card("SIMPLE", True), card("BITPIX", 16), card("NAXIS", 2),
              card("NAXIS1", data.shape[1]), card("NAXIS2", data.shape[0]),
              card("BZERO", 32768), card("BSCALE", 1)]
    header += [card(k, v) for k, v in cards] + ["END".ljust(80)]
    text = "".join(header)
    text += " " * (-len(text) % 2880)
    body = (data.astype(np.int32) - 32768).astype(">i2").tobytes()
    body += b"\0" * (-len(body) % 2880)
    path.write_bytes(text.encode("ascii") + body)
    return path


def info_json(capsys, *args):
    code = main(["--no-plugins", "info", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def frames(n=5, value=1000):
    rng = np.random.default_rng(3)
    return rng.integers(0, 65535, (n, 12, 16)).astype(np.uint16)


def test_series_directory_info(tmp_path, capsys):
    data = frames()
    times = EPOCH + np.arange(5) * 0.033 * u.s
    write_fits_series(tmp_path / "run", data, times, exposure_s=0.033)
    info = info_json(capsys, tmp_path / "run")
    assert (info["n_frames"], info["width"], info["height"], info["bit_depth"]) == (5, 16, 12, 16)
    assert info["start_utc"] == "2024-06-01T22:10:05.123456"
    assert info["end_utc"] == "2024-06-01T22:10:05.255456"
    assert info["exposure_s"] == 0.033
    assert (info["time_instant"], info["time_source"]) == ("start", "header")
    with session(tmp_path).open(tmp_path / "run") as series:
        assert np.array_equal(series.batch(0, 5), data)      # BZERO fast path is exact
        assert series.dtype == np.uint16


def test_glob_and_list_sources(tmp_path, capsys):
    paths = write_fits_series(tmp_path, frames(3), EPOCH + np.arange(3) * u.s, exposure_s=1.0)
    assert info_json(capsys, str(tmp_path / "*.fits"))["n_frames"] == 3
    assert info_json(capsys, paths[0], paths[2])["n_frames"] == 2


def test_cube_planes_are_timed_by_frame_time(tmp_path, capsys):
    data = frames(4)
    write_fits_cube(tmp_path / "cube.fits", data, EPOCH, exposure_s=0.02, frame_time_s=0.025)
    info = info_json(capsys, tmp_path / "cube.fits")
    assert info["n_frames"] == 4 and info["format"] == "fits-cube"
    assert info["end_utc"] == "2024-06-01T22:10:05.198456"
    with session(tmp_path).open(tmp_path / "cube.fits") as series:
        assert np.array_equal(series.batch(0, 4), data)
        assert series.frame_flags[1] & FrameFlag.INDEX_TIME


def test_frames_are_ordered_by_time_and_problems_reported(tmp_path, caplog):
    data = frames(4)
    # file names in one order, times in another, and one duplicated stamp
    stamps = EPOCH + np.array([0.2, 0.0, 0.1, 0.1]) * u.s
    write_fits_series(tmp_path, data, stamps, exposure_s=0.1)
    with session(tmp_path).open(tmp_path) as series:
        assert np.allclose(series.times.offsets_s, [0, 0.1, 0.1, 0.2])
        assert np.array_equal(series[0], data[1])
        assert np.array_equal(series[3], data[0])
        assert series.frame_flags[2] & FrameFlag.DUPLICATE_TIME
        assert series.meta["reordered_frames"] > 0
        assert series.meta["duplicate_times"] == 1
    assert "out of file-name order" in caplog.text


def test_split_date_and_time_obs_and_timesys(tmp_path):
    raw_fits(tmp_path / "a.fits", [("DATE-OBS", "'2024-06-01'"), ("TIME-OBS", "'22:10:05.5'"),
                                   ("EXPTIME", 0.5)], np.zeros((4, 4)))
    with session(tmp_path).open(tmp_path / "a.fits") as series:
        assert series.start_utc().isot == "2024-06-01T22:10:05.500"
    raw_fits(tmp_path / "tt.fits", [("DATE-OBS", "'2024-06-01T00:01:09.184'"), ("TIMESYS", "'TT'"),
                                    ("EXPTIME", 1.0)], np.zeros((4, 4)))
    with session(tmp_path).open(tmp_path / "tt.fits") as series:
        # TT - UTC = 69.184 s in 2024
        assert series.start_utc().isot == "2024-06-01T00:00:00.000"


def test_unquoted_nina_date_is_repaired(tmp_path):
    raw_fits(tmp_path / "nina.fits", [("DATE-OBS", "2024-06-01T22:10:05.1234567"),
                                      ("EXPTIME", 0.1)], np.zeros((4, 4)))
    with pytest.raises(fits.VerifyError):
        fits.getheader(tmp_path / "nina.fits")["DATE-OBS"]   # astropy refuses the card
    with session(tmp_path).open(tmp_path / "nina.fits") as series:
        assert abs((series.start_utc() - Time("2024-06-01T22:10:05.1234567")).to_value("s")) < 1e-7


def test_iota_inserted_date_obs_wins_and_is_gps(tmp_path):
    raw_fits(tmp_path / "iota.fits", [
        ("DATE-OBS", "'2024-06-01T22:10:05.0123' / GPS time inserted by IOTA utilities"),
        ("OBS-DATE", "'2024-06-01T22:10:04.9'"),
        ("DATE-OBS", "'2024-06-01T22:10:04.9'"),
        ("EXPTIME", 0.1)], np.zeros((4, 4)))
    with session(tmp_path).open(tmp_path / "iota.fits") as series:
        assert series.start_utc().isot == "2024-06-01T22:10:05.012"
        assert series.times.source == "gps"


def test_nina_gps_keys(tmp_path):
    raw_fits(tmp_path / "gps.fits", [("DATE-OBS", "'2024-06-01T22:10:05.9'"),
                                     ("GPS_SUTC", "'2024-06-01T22:10:05.000250'"),
                                     ("GPS_SFLG", 3), ("EXPTIME", 0.1)], np.zeros((4, 4)))
    with session(tmp_path).open(tmp_path / "gps.fits") as series:
        assert series.times.source == "gps"
        assert abs((series.start_utc() - Time("2024-06-01T22:10:05.000250")).to_value("s")) < 1e-9
    raw_fits(tmp_path / "nolock.fits", [("DATE-OBS", "'2024-06-01T22:10:05.9'"),
                                        ("GPS_SUTC", "'2024-06-01T22:10:05.000250'"),
                                        ("GPS_SFLG", 1), ("EXPTIME", 0.1)], np.zeros((4, 4)))
    with session(tmp_path).open(tmp_path / "nolock.fits") as series:
        assert series.times.source == "header"
        assert series.start_utc().isot == "2024-06-01T22:10:05.900"


def test_year_one_is_bad_time(tmp_path, caplog):
    for k, stamp in enumerate(["'2024-06-01T22:10:05.0'", "'0001-01-01T00:00:00.0000000'",
                               "'2024-06-01T22:10:05.2'"]):
        raw_fits(tmp_path / f"f{k}.fits", [("DATE-OBS", stamp), ("EXPTIME", 0.1)], np.zeros((4, 4)))
    with session(tmp_path).open(tmp_path) as series:
        assert series.frame_flags[1] & FrameFlag.BAD_TIME
        assert series.times.offsets_s[1] == pytest.approx(0.1)
    assert "no usable time" in caplog.text


def test_no_time_is_an_error_unless_index_timing_is_allowed(tmp_path):
    raw_fits(tmp_path / "a.fits", [("EXPTIME", 0.1)], np.zeros((4, 4)))
    raw_fits(tmp_path / "b.fits", [("EXPTIME", 0.1)], np.zeros((4, 4)))
    with pytest.raises(InputError, match="allow_index_time") as err:
        session(tmp_path).open(tmp_path)
    assert str(tmp_path) in str(err.value)
    s = session(tmp_path, "read.options.fits.allow_index_time=true",
                "read.options.fits.cadence_s=0.5")
    with s.open(tmp_path) as series:
        assert series.times.source == "index"
        assert np.all(series.frame_flags & FrameFlag.INDEX_TIME)
        assert np.allclose(series.times.offsets_s, [0, 0.5])


def test_time_key_and_instant_are_configurable_per_writer(tmp_path):
    raw_fits(tmp_path / "a.fits", [("DATE-OBS", "'2024-06-01T22:10:05.0'"),
                                   ("DATE-AVG", "'2024-06-01T22:10:05.05'"),
                                   ("SWCREATE", "'SharpCap 4.1'"), ("EXPTIME", 0.1)], np.zeros((4, 4)))
    with session(tmp_path).open(tmp_path / "a.fits") as series:
        assert series.times.instant == "start"
    s = session(tmp_path, 'read.options.fits.writers={"sharpcap" = {time_key = "DATE-AVG"}}')
    with s.open(tmp_path / "a.fits") as series:
        assert series.times.instant == "mid"
        assert series.start_utc().isot == "2024-06-01T22:10:05.050"
    s = session(tmp_path, 'read.options.fits.time_instant="mid"')
    with s.open(tmp_path / "a.fits") as series:
        assert series.times.instant == "mid"


def test_calibration_frames_are_split_and_applied(tmp_path):
    rng = np.random.default_rng(5)
    sky = rng.uniform(500, 1500, (8, 10))
    bias = np.full((8, 10), 100.0)
    dark_rate = rng.uniform(1, 5, (8, 10))              # ADU per second
    flat = rng.uniform(0.8, 1.2, (8, 10))
    t0 = Time("2024-01-01T00:00:00", scale="utc")

    def put(name, image, kind, exposure, k):
        hdr = {"IMAGETYP": kind}
        write_fits_series(tmp_path / "obs", np.rint(image)[None].astype(np.uint16),
                          Time([t0 + k * u.s]), exposure_s=exposure, extra=hdr, names=[name])

    for k in range(3):
        put(f"light{k}.fits", sky * flat + bias + dark_rate * 2.0, "Light Frame", 2.0, k)
    for k in range(3):
        put(f"bias{k}.fits", bias, "Bias Frame", 0.0, 10 + k)
        put(f"dark{k}.fits", bias + dark_rate * 10.0, "Dark Frame", 10.0, 20 + k)
        put(f"flat{k}.fits", 20000 * flat + bias, "Flat Field", 0.0, 30 + k)
    with session(tmp_path).open(tmp_path / "obs") as series:
        assert len(series) == 3                               # lights only
        assert any("not enabled" in n for n in series.meta["notes"])
    with session(tmp_path, "calibrate.enabled=true").open(tmp_path / "obs") as series:
        assert series.dtype == np.float32
        calibrated = series[0]
    expected = sky * np.median(flat)          # the master flat is normalised to a median of 1
    assert np.allclose(calibrated, expected, rtol=2e-3, atol=1.0)
    raw = np.asarray(fits.getdata(tmp_path / "obs" / "light0.fits"), float)
    assert np.allclose(raw, np.rint(sky * flat + bias + dark_rate * 2.0))   # inputs untouched


def test_real_astrid_frames(shared_fixtures, capsys):
    """Ground truth from fixtures/fits/PROVENANCE.md."""
    folder = shared_fixtures / "fits" / "astrid_polar_align"
    info = info_json(capsys, folder)
    assert (info["n_frames"], info["width"], info["height"], info["bit_depth"]) == (3, 1456, 1088, 16)
    assert info["start_utc"] == "2023-08-06T06:52:40.000000"
    assert info["end_utc"] == "2023-08-06T06:53:24.000000"
    assert info["exposure_s"] == 4.99994
    assert info["metadata"]["imagetyp"] == ["PolarAlign"]
    expected = {"PA_0002.fit": (67, 1023, 85.9045), "PA_0003.fit": (68, 1023, 86.0793),
                "PA_0004.fit": (70, 1023, 86.1197)}
    for name, (lo, hi, mean) in expected.items():
        with Session(no_plugins=True).open(folder / name) as series:
            frame = series[0]
            assert (frame.min(), frame.max()) == (lo, hi)
            assert frame.mean() == pytest.approx(mean, abs=5e-5)
            assert np.array_equal(frame, fits.getdata(folder / name))


# -- bad input (issue 14) ------------------------------------------------------------------------

def test_timesys_gps_is_converted(tmp_path):
    # GPS = TAI - 19 s and TAI - UTC = 37 s since 2017, so GPS - UTC = 18 s
    raw_fits(tmp_path / "gps.fits", [("DATE-OBS", "'2024-06-01T00:00:18.000'"),
                                     ("TIMESYS", "'GPS'"), ("EXPTIME", 1.0)], np.zeros((4, 4)))
    with session(tmp_path).open(tmp_path / "gps.fits") as series:
        assert series.start_utc().isot == "2024-06-01T00:00:00.000"


def test_unknown_timesys_and_far_years_are_clear_errors(tmp_path):
    raw_fits(tmp_path / "x.fits", [("DATE-OBS", "'2024-06-01T00:00:18'"), ("TIMESYS", "'XYZ'")],
             np.zeros((4, 4)))
    with pytest.raises(InputError, match="TIMESYS 'XYZ' is not supported") as err:
        session(tmp_path).open(tmp_path / "x.fits")
    assert "x.fits" in str(err.value)
    raw_fits(tmp_path / "old.fits", [("DATE-OBS", "'1850-06-01T00:00:00'")], np.zeros((4, 4)))
    with pytest.raises(InputError, match="year 1850 is outside 1900-2200"):
        session(tmp_path).open(tmp_path / "old.fits")


def test_absurd_cube_size_is_refused_at_once(tmp_path):
    import time
    path = write_fits_cube(tmp_path / "c.fits", frames(3), EPOCH, exposure_s=0.1, frame_time_s=0.1)
    data = bytearray(path.read_bytes())
    at = data.index(b"NAXIS3  =")
    data[at:at + 30] = f"{'NAXIS3':<8}= {2147483647:>20}".encode()
    path.write_bytes(bytes(data))
    started = time.perf_counter()
    with pytest.raises(InputError, match="but the file has") as err:
        session(tmp_path).open(path)
    assert time.perf_counter() - started < 2.0
    assert "c.fits" in str(err.value)


def test_calibration_settings_come_from_the_fits_options(tmp_path):
    t0 = Time("2024-01-01T00:00:00", scale="utc")
    light = np.full((1, 6, 8), 1100, np.uint16)
    bias = np.full((1, 6, 8), 100, np.uint16)
    write_fits_series(tmp_path / "obs", light, Time([t0]), exposure_s=1.0, names=["l.fits"])
    write_fits_series(tmp_path / "cal", bias, Time([t0]), exposure_s=0.0, names=["b.fits"],
                      extra={"IMAGETYP": "Bias Frame"})
    sets = ("read.options.fits.calibrate=true", f"read.options.fits.bias={tmp_path / 'cal' / '*.fits'}")
    with session(tmp_path, *sets).open(tmp_path / "obs") as series:
        assert np.allclose(series[0], 1000.0)
    with session(tmp_path).open(tmp_path / "obs") as series:
        assert np.array_equal(series[0], light[0])


def _mutated(tmp_path, recipe, target="fits-single"):
    from occcore.testing import fuzz
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir(exist_ok=True)
    seed = fuzz.TARGETS[target].make_seeds(seed_dir)[0]
    return fuzz.make_case(seed, recipe, tmp_path / f"case{len(list(tmp_path.iterdir()))}")


@pytest.mark.parametrize("target,recipe,words", [
    ("fits-single", [("fits_card", {"key": "NAXIS2", "value": "'T'"})], "NAXIS2 = 'T' is not an integer"),
    ("fits-single", [("fits_card", {"key": "BZERO", "value": "'abc'"})], "BZERO = 'abc' is not a number"),
    ("fits-single", [("fits_card", {"key": "NAXIS1", "value": "1000000000000"})], "NAXIS1"),
    ("fits-single", [("fits_card", {"key": "DATE-OBS", "value": "'99999-01-01T00:00:00'"})],
     "not an ISO date-time"),
    ("fits-cube", [("fits_card", {"key": "NAXIS3", "value": "2147483647"})], "but the file has"),
    ("fits-cube", [("fits_card", {"key": "FRM-TIME", "value": "'2024-05-05T01:02:03'"})],
     "FRM-TIME = '2024-05-05T01:02:03' is not a number"),
    ("ser-trailer", [("int_field", {"offset": 26, "width": 4, "value": 2 ** 31 - 1})], "byte 26"),
    ("zip-fits", [("archive_member", {"fmt": "zip", "member": 0, "recipe": [
        ["fits_card", {"key": "BZERO", "value": "(1, 2)"}]]})], "frames.zip!frames/"),
])
def test_cli_exits_2_naming_the_file_without_a_traceback(tmp_path, capsys, target, recipe, words):
    path = _mutated(tmp_path, recipe, target)
    code = main(["--no-plugins", "info", str(path)])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert path.name in err and words in err
    assert "Traceback" not in err and "Traceback" not in out
