import json

import numpy as np
import pytest
from astropy import units as u
from astropy.time import Time

from occcore.api import Session
from occcore.cli import main
from occcore.config import load_config
from occcore.errors import CorruptSource, InputError
from occcore.model import FrameFlag
from occcore.synthetic import star_field, write_ser

START = Time("2025-02-03T04:05:06.1234567", scale="utc")


def times(n, step=0.02):
    return START + np.arange(n) * step * u.s


def session(tmp_path, *sets):
    return Session(config=load_config(cwd=tmp_path, sets=sets), no_plugins=True)


def field(n=6, depth=12):
    frames, _ = star_field(n_frames=n, height=20, width=30,
                           stars=((8.0, 9.0, 30000.0), (20.0, 12.0, 60000.0)),
                           names=("target", "reference"), seed=2)
    return np.minimum(frames, (1 << depth) - 1).astype(np.uint16)


@pytest.mark.parametrize("flag", [0, 1])
@pytest.mark.parametrize("big", [False, True])
def test_endianness_is_decided_from_the_data(tmp_path, flag, big):
    data = field()
    path = write_ser(tmp_path / "a.ser", data, times(6), depth=12, endian_flag=flag,
                     big_endian_data=big)
    with session(tmp_path).open(path) as series:
        assert np.array_equal(series.batch(0, 6), data)
        assert series.dtype == np.uint16
        note = series.meta["byte_order"]
        assert ("contradicts" in note) == (big != (flag == 1))


def test_endianness_override(tmp_path):
    data = field(depth=16)
    path = write_ser(tmp_path / "a.ser", data, times(6), depth=16, endian_flag=0,
                     big_endian_data=True)
    with session(tmp_path, "read.options.ser.endianness='big'").open(path) as series:
        assert np.array_equal(series[3], data[3])
        assert "forced" in series.meta["byte_order"]
    with session(tmp_path, "read.options.ser.endianness='flag-common'").open(path) as series:
        assert not np.array_equal(series[3], data[3])   # the flag lies; forcing it reads garbage


def test_eight_bit_mono_is_a_zero_copy_memmap(tmp_path):
    data = (field() // 16).astype(np.uint8)
    path = write_ser(tmp_path / "a.ser", data, times(6))
    with session(tmp_path).open(path) as series:
        block = series.batch(0, 6)
        assert block.dtype == np.uint8 and np.array_equal(block, data)
        base = block
        while base is not None and not isinstance(base, np.memmap):
            base = base.base
        assert base is not None, "frames are copied instead of served from the memmap"


def test_trailer_times_to_the_tick(tmp_path, capsys):
    path = write_ser(tmp_path / "a.ser", field(), times(6), depth=12, trailer_kind_bits=1)
    code = main(["--no-plugins", "info", str(path), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (info["n_frames"], info["width"], info["height"], info["bit_depth"]) == (6, 30, 20, 12)
    assert info["start_utc"] == "2025-02-03T04:05:06.123457"
    assert info["end_utc"] == "2025-02-03T04:05:06.223457"
    assert info["time_source"] == "pc-clock" and info["time_instant"] == "start"
    assert info["exposure_s"] == pytest.approx(0.02)
    with session(tmp_path).open(path) as series:
        delta = (series.times.utc() - times(6)).to_value("s")
        assert np.max(np.abs(delta)) < 1e-7                  # 100 ns ticks


def test_missing_trailer_needs_a_frame_rate(tmp_path):
    path = write_ser(tmp_path / "a.ser", field(), None, start_utc=START)
    with pytest.raises(InputError, match="frame_rate_hz") as err:
        session(tmp_path).open(path)
    assert str(path) in str(err.value)
    with session(tmp_path, "read.options.ser.frame_rate_hz=25").open(path) as series:
        assert series.times.source == "index"
        assert np.all(series.frame_flags & FrameFlag.INDEX_TIME)
        assert series.times.offsets_s[-1] == pytest.approx(5 / 25)
        assert abs((series.start_utc() - START).to_value("s")) < 1e-7


def test_header_frame_count_larger_than_file(tmp_path, caplog):
    data = field()
    path = write_ser(tmp_path / "a.ser", data, None, header_frame_count=10, start_utc=START)
    with pytest.raises(CorruptSource, match="10 frames but the file holds only 6") as err:
        session(tmp_path, "read.options.ser.frame_rate_hz=25").open(path)
    assert str(path) in str(err.value)
    s = session(tmp_path, "read.options.ser.frame_rate_hz=25", "read.options.ser.allow_truncated=true")
    with s.open(path) as series:
        assert len(series) == 6 and np.array_equal(series[5], data[5])
    assert "truncated" in caplog.text


def test_partial_last_frame_is_cut(tmp_path):
    path = write_ser(tmp_path / "a.ser", field(), times(6), truncate_bytes=48 + 100)
    with pytest.raises(CorruptSource, match="holds only 5"):
        session(tmp_path).open(path)


def test_bayer_and_rgb_become_luminance(tmp_path):
    rng = np.random.default_rng(0)
    mosaic = rng.integers(0, 4000, (3, 6, 8)).astype(np.uint16)
    path = write_ser(tmp_path / "bayer.ser", mosaic, times(3), depth=12, color_id=8)
    with session(tmp_path).open(path) as series:
        lum = series[1]
        assert lum.dtype == np.float32 and lum.shape == (6, 8)
        assert lum[2, 3] == pytest.approx(mosaic[1, 2:4, 3:5].mean())
    rgb = rng.integers(0, 255, (2, 4, 5, 3)).astype(np.uint8)
    path = write_ser(tmp_path / "rgb.ser", rgb, times(2), color_id=100)
    with session(tmp_path).open(path) as series:
        expected = rgb[1].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        assert np.allclose(series[1], expected, atol=1e-3)
    path = write_ser(tmp_path / "bgr.ser", rgb[..., ::-1], times(2), color_id=101)
    with session(tmp_path).open(path) as series:
        assert np.allclose(series[1], expected, atol=1e-3)


def test_garbage_header_values(tmp_path):
    path = write_ser(tmp_path / "a.ser", field(), times(6), color_id=55)
    with pytest.raises(CorruptSource, match="ColorID 55"):
        session(tmp_path).open(path, reader="ser")


def test_damaged_trailer_stamp_is_interpolated_and_flagged(tmp_path):
    times_ = times(6)
    path = write_ser(tmp_path / "a.ser", field(), times_)
    data = bytearray(path.read_bytes())
    at = len(data) - 8 * 6 + 8 * 3                           # frame 3's stamp
    data[at:at + 8] = np.array([2 ** 62 - 1], "<i8").tobytes()   # year ~14600 once masked
    path.write_bytes(bytes(data))
    with session(tmp_path).open(path) as series:
        flags = series.frame_flags
        assert flags[3] & FrameFlag.BAD_TIME and not flags[2] & FrameFlag.BAD_TIME
        assert series.times.offsets_s[3] == pytest.approx(3 * 0.02, abs=1e-7)
        assert abs((series.start_utc() - times_[0]).to_value("s")) < 1e-7


@pytest.mark.parametrize("offset,value,words", [
    (26, 2 ** 31 - 1, "at byte 26 is not within"),                 # width
    (38, 2 ** 31 - 1, "header says 2147483647 frames"),           # frame count
])
def test_absurd_header_sizes_are_refused_before_allocation(tmp_path, offset, value, words):
    path = write_ser(tmp_path / "a.ser", field(), times(6))
    data = bytearray(path.read_bytes())
    data[offset:offset + 4] = np.array([value], "<i4").tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSource, match=words) as err:
        session(tmp_path).open(path)
    assert str(path) in str(err.value)


def test_header_date_outside_1900_2200_is_a_clear_error(tmp_path):
    path = write_ser(tmp_path / "a.ser", field(), None, start_utc=START)
    data = bytearray(path.read_bytes())
    data[170:178] = np.array([2 ** 62 - 1], "<i8").tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="between 1900 and 2200") as err:
        session(tmp_path, "read.options.ser.frame_rate_hz=25").open(path)
    assert str(path) in str(err.value)
