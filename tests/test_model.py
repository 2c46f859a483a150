import attrs
import numpy as np
import pytest
from astropy import units as u
from astropy.time import Time

from occcore.model import Aperture, FrameSeries, FrameTimes, LightCurve, iso_utc


def test_frame_times_keep_microseconds_far_from_the_epoch():
    # a float JD cannot hold 1 microsecond; epoch + float64 offsets must
    epoch = Time("2017-06-22T21:00:00", scale="utc")
    times = FrameTimes(epoch=epoch, offsets_s=[0.0, 1234.567891, 86399.000001],
                       instant="mid", source="gps")
    assert iso_utc(times.utc(1)) == "2017-06-22T21:20:34.567891"
    assert iso_utc(times.utc(2)) == "2017-06-23T20:59:59.000001"


def test_from_time_round_trips_and_converts_scale():
    t = Time(["2020-01-01T00:00:00.000001", "2020-01-01T00:00:01.5"], scale="tai")
    times = FrameTimes.from_time(t, instant="start")
    assert times.epoch.scale == "utc"
    assert np.allclose((times.utc() - t).to_value("s"), 0, atol=1e-9)
    assert times.offsets_s[1] == pytest.approx(1.499999, abs=1e-9)


def test_instant_conversion():
    times = FrameTimes(epoch=Time("2020-01-01", scale="utc"), offsets_s=[0, 1], instant="start")
    mid = times.as_instant("mid", 0.4)
    assert mid.instant == "mid"
    assert np.allclose(mid.offsets_s, [0.2, 1.2])
    assert np.allclose(times.mid_exposure_offsets_s(0.4), [0.2, 1.2])
    with pytest.raises(ValueError, match="exposure"):
        times.as_instant("end", None)


def test_offsets_must_be_finite_and_instant_known():
    with pytest.raises(ValueError):
        FrameTimes(epoch=Time("2020-01-01", scale="utc"), offsets_s=[0, np.nan], instant="mid")
    with pytest.raises(ValueError):
        FrameTimes(epoch=Time("2020-01-01", scale="utc"), offsets_s=[0], instant="middle")


def test_from_arrays_is_lazy_indexable_and_read_only():
    frames = np.arange(5 * 4 * 3, dtype=np.uint16).reshape(5, 4, 3)
    epoch = Time("2021-05-05T05:05:05", scale="utc")
    series = FrameSeries.from_arrays(frames, times=epoch, offsets_s=np.arange(5) * 0.1,
                                     exposure_s=0.1, time_instant="start")
    assert len(series) == 5 and (series.height, series.width) == (4, 3)
    assert np.array_equal(series[2], frames[2])
    assert np.array_equal(series[-1], frames[4])
    assert np.array_equal(series[1:3], frames[1:3])
    assert np.array_equal(series[::2], frames[::2])
    assert np.array_equal(np.stack(list(series)), frames)
    with pytest.raises(ValueError):
        series[0][0, 0] = 1
    with pytest.raises(IndexError, match="out of range"):
        series[5]
    frames[0, 0, 0] = 999   # the series holds a view, not a copy ...
    assert series[0][0, 0] == 999


def test_from_arrays_with_time_array():
    t = Time("2021-05-05T05:05:05", scale="utc") + np.arange(3) * 0.5 * u.s
    series = FrameSeries.from_arrays(np.zeros((3, 2, 2)), times=t, exposure_s=0.5,
                                     time_instant="mid", time_source="gps")
    assert series.times.source == "gps"
    assert np.allclose(series.times.offsets_s, [0, 0.5, 1.0])


def test_closed_series_refuses_reads_and_close_is_idempotent():
    series = FrameSeries.from_arrays(np.zeros((2, 2, 2)), times=Time("2020-01-01", scale="utc"),
                                     offsets_s=[0, 1], exposure_s=1.0, time_instant="start")
    with series:
        pass
    series.close()
    assert series.closed
    with pytest.raises(ValueError, match="closed"):
        series[0]


def test_array_fields_compare_with_array_equal():
    t = FrameTimes(epoch=Time("2020-01-01", scale="utc"), offsets_s=[0, 1, 2], instant="mid")
    a = LightCurve(times=t, exposure_s=1.0, flux=[1.0, 2.0, 3.0])
    b = LightCurve(times=t, exposure_s=1.0, flux=[1.0, 2.0, 3.0])
    c = attrs.evolve(b, flux=[1.0, 2.0, 4.0])
    assert a == b
    assert a != c
    with pytest.raises(ValueError, match="shape"):
        LightCurve(times=t, exposure_s=1.0, flux=[1.0, 2.0])


def test_aperture_validates_geometry():
    Aperture(name="target", role="target", x=1, y=2, radius_px=3, annulus_px=(5, 8))
    with pytest.raises(ValueError, match="annulus"):
        Aperture(name="target", role="target", x=1, y=2, radius_px=6, annulus_px=(5, 8))
