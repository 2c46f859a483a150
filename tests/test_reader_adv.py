"""ADV v1/v2 and AAV v1/v2 readers: the real codec fixture, round trips of every layout
and codec through our own writers, damaged files, times and status metadata, the CLI
and a full reduction."""
import hashlib
import json
import logging
import struct
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.time import Time

from occcore.api import Session
from occcore.cli import main
from occcore.config import load_config
from occcore.identify import identify, resolve_source
from occcore.model import FrameFlag
from occcore.plugin import CorruptSource, InputError
from occcore.synthetic.adv import write_adv

T0 = Time("2021-06-01T01:02:03.25", scale="utc")
FIXTURE_ROWS = """\
############
#....#....##
#....#...#.#
#....#..#..#
#....#.#...#
#######....#
#....##....#
#...#..#...#
#..#....#..#
#.#......#.#
##........##
############"""
FIXTURE_SHA = "92f664826fe7048a87b8d1aec80d280c441a367ea996e1cbacaf4beb978297c2"
FIXTURE_LAYOUTS = [("FULL-IMAGE-RAW", "UNCOMPRESSED"), ("FULL-IMAGE-RAW", "LAGARITH16"),
                   ("FULL-IMAGE-RAW", "QUICKLZ"), ("12BIT-IMAGE-PACKED", "UNCOMPRESSED"),
                   ("12BIT-IMAGE-PACKED", "LAGARITH16"), ("12BIT-IMAGE-PACKED", "QUICKLZ")]


@pytest.fixture(scope="module")
def session():
    with Session(config=load_config(cwd="/nonexistent"), no_plugins=True) as s:
        yield s


def open_file(path, **kw):
    from occplugins.readers._adv_reader import open_adv
    return open_adv(path, **kw)


def moving_frames(n, h, w, bits, seed=3):
    """Frames that change from one to the next (so difference coding is exercised)."""
    rng = np.random.default_rng(seed)
    top = 1 << bits
    base = rng.integers(0, top, (h, w))
    out = [(base + rng.integers(-40, 40, (h, w)) * (k % 3) + 7 * k) % top for k in range(n)]
    return np.array(out, np.uint8 if bits == 8 else np.uint16)


# -- the real fixture -------------------------------------------------------------------------

@pytest.fixture
def unit_sample(shared_fixtures):
    return shared_fixtures / "adv" / "UnitTestSample.adv"


@pytest.mark.parametrize("use_numba", [True, False], ids=["numba", "pure-python"])
def test_unit_sample_frames_are_pixel_exact(unit_sample, use_numba):
    expected = np.array([[4095 if c == "#" else 0 for c in row]
                         for row in FIXTURE_ROWS.splitlines()], np.uint16)
    with open_file(unit_sample, use_numba=use_numba) as series:
        frames = series.batch(0, 6)
        assert (series.n_frames, series.height, series.width) == (6, 12, 12)
        assert series.bit_depth == 12 and series.dtype == np.uint16
        for i in range(6):
            assert np.array_equal(frames[i], expected), f"frame {i}"
            assert hashlib.sha256(frames[i].astype("<u2").tobytes()).hexdigest() == FIXTURE_SHA
            assert int(frames[i].sum()) == 278_460
        assert list(series.frame_meta["layout_id"]) == list(range(6))
        used = [(series.meta["layouts"][str(i)]["data_layout"],
                 series.meta["layouts"][str(i)]["compression"]) for i in range(6)]
        assert used == FIXTURE_LAYOUTS


def test_unit_sample_times_and_metadata(unit_sample):
    with open_file(unit_sample) as series:
        # stored mid-exposure: 2020-01-02T03:04:05.5 + i s (calendar time, no leap seconds)
        expected = Time("2020-01-02T03:04:05.5", scale="utc") + np.arange(6) * u.s
        assert np.allclose((series.times.utc() - expected).to_value("s"), 0, atol=1e-9)
        assert series.times.instant == "mid" and series.times.source == "header"
        assert series.times.uncertainty_s == pytest.approx(0.005)
        assert series.exposure_s == pytest.approx(1.0)
        assert np.allclose(series.frame_meta["exposure_s"], 1.0)
        assert list(series.frame_meta["stamp_ns_since_2010"]) == [
            315630245500000000 + i * 10**9 for i in range(6)]
        assert list(series.frame_meta["start_ticks"]) == [76900 * i for i in range(6)]
        assert list(series.frame_meta["end_ticks"]) == [76900 * (i + 1) for i in range(6)]
        meta = series.meta
        main_stream, cal_stream = meta["streams"]
        assert (main_stream["name"], main_stream["frames"]) == ("MAIN", 6)
        assert (cal_stream["name"], cal_stream["frames"]) == ("CALIBRATION", 0)
        assert main_stream["clock_hz"] == 76900 and main_stream["accuracy_ticks"] == 77
        assert main_stream["tags"] == {"Name1": "Христо", "Name2": "Frédéric"}
        assert cal_stream["tags"] == {"Name1": "好的茶"}
        assert meta["system_tags"] == {"BITPIX": "12", "WIDTH": "12", "HEIGHT": "12"}
        assert meta["user_tags"] == {"Example": "Value"}
        assert meta["date_known"] is True and series.format == "adv"


def test_draft_2016_is_refused_by_name_but_claimed(shared_fixtures, session):
    draft = shared_fixtures / "adv" / "legacy_draft_2016" / "TestFile.Ubuntu32.GNU.adv"
    found = identify(resolve_source(draft), session.registry)
    assert found.winner is not None and found.winner.reader.name == "adv"
    with pytest.raises(InputError, match="unsupported draft ADV v2") as err:
        session.open(draft)
    assert draft.name in str(err.value)


# -- round trips ------------------------------------------------------------------------------

def _cases():
    cases = []
    for version in (1, 2):
        packed = "12BIT-IMAGE-PACKED" if version == 2 else "FULL-IMAGE-RAW"
        for layout, bpp in (("FULL-IMAGE-RAW", 16), ("FULL-IMAGE-RAW", 8), (packed, 12)):
            for codec in ("UNCOMPRESSED", "QUICKLZ", "LAGARITH16"):
                cases.append(dict(version=version, layout=layout, bpp=bpp, compression=codec))
    for bpp in (8, 12, 16):
        for base in ("KEY-FRAME", "PREV-FRAME"):
            for codec in ("UNCOMPRESSED", "QUICKLZ", "LAGARITH16"):
                cases.append(dict(version=1, layout="FULL-IMAGE-DIFFERENTIAL-CODING", bpp=bpp,
                                  compression=codec, base_frame=base))
    for layout in ("FULL-IMAGE-DIFFERENTIAL-CODING", "FULL-IMAGE-DIFFERENTIAL-CODING-NOSIGNS"):
        for codec in ("UNCOMPRESSED", "QUICKLZ"):
            for base in ("KEY-FRAME", "PREV-FRAME"):
                cases.append(dict(version=1, container="aav", layout=layout, bpp=8,
                                  compression=codec, base_frame=base))
    for version in (1, 2):
        for bpp in (8, 16):
            for codec in ("UNCOMPRESSED", "QUICKLZ", "LAGARITH16"):
                cases.append(dict(version=version, container="aav", layout="FULL-IMAGE-RAW",
                                  bpp=bpp, compression=codec))
    return cases


def _case_id(case):
    return "-".join(str(case.get(k, "")) for k in ("container", "version", "layout", "bpp",
                                                   "compression", "base_frame")).strip("-")


@pytest.mark.parametrize("case", _cases(), ids=_case_id)
def test_round_trip_12x12(tmp_path, case):
    frames = moving_frames(9, 12, 12, case["bpp"])
    times = T0 + np.arange(9) * 0.04 * u.s
    path = write_adv(tmp_path / "rt.adv", frames, times, key_frame_every=4, **case)
    with open_file(path) as series:
        assert np.array_equal(series.batch(0, 9), frames)
        # random access into a difference chain, and batches that start mid-chain
        assert np.array_equal(series[6], frames[6])
        assert np.array_equal(series.batch(2, 7), frames[2:7])
        assert np.array_equal(series[1], frames[1])
        tolerance = 1e-9 if case["version"] == 2 else 1e-3      # v1 stamps are whole ms
        assert np.allclose((series.times.utc() - times).to_value("s"), 0, atol=tolerance)
        assert series.format == case.get("container", "adv")
        assert series.exposure_s == pytest.approx(0.04)


LARGE_CASES = [dict(version=2, bpp=16, compression="QUICKLZ"),
               dict(version=2, bpp=16, compression="LAGARITH16"),
               dict(version=2, layout="12BIT-IMAGE-PACKED", bpp=12, compression="QUICKLZ"),
               dict(version=1, layout="FULL-IMAGE-DIFFERENTIAL-CODING", bpp=12,
                    compression="QUICKLZ", base_frame="PREV-FRAME"),
               dict(version=1, container="aav", layout="FULL-IMAGE-DIFFERENTIAL-CODING",
                    bpp=8, compression="QUICKLZ", base_frame="PREV-FRAME"),
               dict(version=2, container="aav", bpp=8, compression="LAGARITH16")]


@pytest.mark.parametrize("case", LARGE_CASES, ids=_case_id)
def test_round_trip_640x480(tmp_path, case):
    frames = moving_frames(3, 480, 640, case["bpp"], seed=11)
    path = write_adv(tmp_path / "big.adv", frames, T0 + np.arange(3) * 0.1 * u.s,
                     exposure_s=0.1, key_frame_every=8, **case)
    with open_file(path) as series:
        assert np.array_equal(series.batch(0, 3), frames)


def test_pure_python_path_and_missing_numba_warning(tmp_path, monkeypatch, caplog):
    from occplugins.readers import _adv_codecs
    # smooth frames, so that both codecs really compress (random pixels are stored raw)
    frames = (np.arange(144).reshape(1, 12, 12) // 12 + 100 * np.arange(3)[:, None, None])
    frames = frames.astype(np.uint16)
    paths = [write_adv(tmp_path / f"{c}.adv", frames, T0 + np.arange(3) * u.s, compression=c)
             for c in ("QUICKLZ", "LAGARITH16")]
    monkeypatch.setitem(sys.modules, "numba", None)          # "import numba" fails
    monkeypatch.setattr(_adv_codecs, "_KERNELS", {})
    # the CLI stops occcore's log records at its own handler; let caplog see them here
    monkeypatch.setattr(logging.getLogger("occcore"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="occcore.adv"):
        for path in paths:
            with open_file(path) as series:
                assert np.array_equal(series.batch(0, 3), frames)
    warnings = [r for r in caplog.records if "numba is not installed" in r.getMessage()]
    assert len(warnings) == 1


# -- damaged and unsupported files -------------------------------------------------------------

@pytest.fixture
def good_file(tmp_path):
    frames = moving_frames(5, 12, 12, 16)
    return write_adv(tmp_path / "good.adv", frames, T0 + np.arange(5) * 0.04 * u.s,
                     compression="QUICKLZ", status={"Gain": (4, [1.5] * 5)})


def _index_entries(path):
    """(offset of the index MAIN entries, entries) of a v2 file written by write_adv."""
    data = path.read_bytes()
    index_at = struct.unpack_from("<q", data, 9)[0]
    count = struct.unpack_from("<I", data, index_at + 9)[0]
    at = index_at + 13
    return at, [struct.unpack_from("<qqI", data, at + 20 * k) for k in range(count)]


def test_truncated_last_frame(good_file, tmp_path):
    data = good_file.read_bytes()
    _, entries = _index_entries(good_file)
    last_offset = entries[-1][1]
    bad = tmp_path / "cut.adv"
    bad.write_bytes(data[:last_offset + 30])
    with pytest.raises(CorruptSource, match="cut.adv") as err:
        open_file(bad)
    assert "index" in str(err.value)


def test_frame_without_magic_names_the_frame(good_file, tmp_path):
    data = bytearray(good_file.read_bytes())
    _, entries = _index_entries(good_file)
    data[entries[2][1]] = 0x00
    bad = tmp_path / "magic.adv"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptSource, match=r"magic\.adv: frame 2: no frame magic"):
        open_file(bad)


def test_bad_index_entry_names_the_frame(good_file, tmp_path):
    data = bytearray(good_file.read_bytes())
    at, entries = _index_entries(good_file)
    struct.pack_into("<q", data, at + 20 * 1 + 8, entries[1][1] + 7)     # frame 1 moved
    bad = tmp_path / "index.adv"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptSource, match=r"index\.adv: frame 1"):
        open_file(bad)


def test_sizes_beyond_the_file_are_refused_before_allocation(good_file, tmp_path):
    data = bytearray(good_file.read_bytes())
    at, _ = _index_entries(good_file)
    struct.pack_into("<I", data, at - 4, 2_000_000_000)                   # frame count
    bad = tmp_path / "count.adv"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptSource, match=r"count\.adv: .*2000000000 frames"):
        open_file(bad)
    data = bytearray(good_file.read_bytes())
    struct.pack_into("<q", data, 9, 10**12)                               # index offset
    bad = tmp_path / "offset.adv"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptSource, match=r"offset\.adv: index offset"):
        open_file(bad)
    data = bytearray(good_file.read_bytes())
    image_at = data.index(b"\x05\x00IMAGE") + 7
    image_at = struct.unpack_from("<q", data, image_at)[0]
    struct.pack_into("<I", data, image_at + 1, 3_000_000)                 # width
    bad = tmp_path / "width.adv"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptSource, match=r"width\.adv: image size 3000000x12"):
        open_file(bad)


def test_unknown_status_type_names_the_frame(good_file, tmp_path):
    data = bytearray(good_file.read_bytes())
    decl = data.index(b"\x04\x00Gain")
    data[decl + 6] = 9                                                    # type code 4 -> 9
    bad = tmp_path / "status.adv"
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptSource, match=r"status\.adv.*frame 0: status tag 'Gain' has "
                                            r"unknown type code 9"):
        open_file(bad)


@pytest.mark.parametrize("layout", ["8BIT-COLOR-IMAGE", "IMAGE-ROIS"])
def test_unsupported_layouts_are_refused_by_name(tmp_path, session, layout):
    path = write_adv(tmp_path / "colour.adv", moving_frames(2, 12, 12, 8), T0 + [0, 1] * u.s,
                     layout=layout, bpp=8)
    found = identify(resolve_source(path), session.registry)
    assert found.winner.reader.name == "adv"
    with pytest.raises(InputError, match=f"colour.adv: frame 0 .*DATA-LAYOUT={layout}"):
        session.open(path)


# -- times, status tags, AAV metadata -----------------------------------------------------------

def test_v2_status_tags_units_and_missing_values(tmp_path):
    n = 6
    times = Time("2023-03-04T05:06:07.5", scale="utc") + np.arange(n) * 0.5 * u.s
    mid_ns = (np.asarray(times.datetime64, "datetime64[ns]")
              - np.datetime64("2010-01-01T00:00:00", "ns")).astype(np.int64)
    status = {"GPSFixStatus": (0, [3] * n), "GPSTrackedSatellites": (0, [9, 9, 8, None, 9, 9]),
              "Gamma": (4, [0.45] * n), "Temperature": (4, [-12.5] * n),
              "SystemTime": (3, [int(v // 10**6) + 20 for v in mid_ns]),        # ms, +20 ms
              "NTPStartTimestamp": (3, [int(v) - 3_000_000 for v in mid_ns]),   # ns, -3 ms
              "CameraExposure": (5, ["x4"] * n)}
    path = write_adv(tmp_path / "tags.adv", moving_frames(n, 12, 12, 16), times, status=status,
                     exposure_s=0.5, system_tags={"OBSERVER": "A. Observer", "TELESCOP": "C11",
                                                  "OBJECT": "(87) Sylvia", "RA_OBJ": "12.5",
                                                  "DEC_OBJ": "-3.25", "CAMERA-MODEL": "QHY174M",
                                                  "EGAIN": "0.45"})
    with open_file(path) as series:
        meta, fm = series.meta, series.frame_meta
        assert (meta["observer"], meta["telescope"], meta["object"], meta["camera"]) == (
            "A. Observer", "C11", "(87) Sylvia", "QHY174M")
        assert (meta["ra"], meta["dec"]) == ("12.5", "-3.25")
        assert series.gain_e_per_adu == pytest.approx(0.45)
        assert list(fm["GPSFixStatus"]) == [3] * n
        assert list(fm["GPSTrackedSatellites"]) == [9, 9, 8, None, 9, 9]
        assert np.allclose(fm["Temperature"], -12.5)
        assert list(fm["CameraExposure"]) == ["x4"] * n
        assert meta["status_time_units"] == {"SystemTime": "ms", "NTPStartTimestamp": "ns"}
        assert np.allclose(fm["SystemTime_minus_frame_s"], 0.020, atol=1e-3)
        assert np.allclose(fm["NTPStartTimestamp_minus_frame_s"], -0.003, atol=1e-6)
        # 2023 is after the 2016 leap second: calendar conversion, not SI seconds
        assert np.allclose((series.times.utc() - times).to_value("s"), 0, atol=1e-9)


def test_v1_times_are_ms_mid_exposure_with_tenth_ms_exposure(tmp_path):
    stamps_ms = 410_000_000_000 + np.arange(4) * 40          # 2022-12-28 ...
    path = write_adv(tmp_path / "v1.adv", moving_frames(4, 12, 12, 16), version=1,
                     stamps=stamps_ms, exposure_s=0.0337)
    with open_file(path) as series:
        days, rest_ms = divmod(int(stamps_ms[0]), 86_400_000)
        expected = Time(np.datetime64("2010-01-01", "D") + np.timedelta64(days, "D"),
                        scale="utc") + rest_ms * 1e-3 * u.s
        assert abs((series.start_utc() - expected).to_value("s")) < 1e-6
        assert series.exposure_s == pytest.approx(0.0337)
        assert series.meta["time_unit"] == "ms" and series.times.instant == "mid"


def test_aav_time_of_day_integration_and_osd(tmp_path):
    n = 8
    stamps_ns = (20 * 3600 + 49 * 60 + 56.5209) * 1e9 + np.arange(n) * 0.32e9
    status = {"StartFrame": (3, [224737 + 32 * k for k in range(n)]),
              "EndFrame": (3, [224768 + 32 * k for k in range(n)]),
              "StartFrameTimestamp": (5, [f"20:49:56.{k:04d}" for k in range(n)]),
              "IntegratedFrames": (1, [16] * n)}
    tags = {"NATIVE-FRAME-RATE": "25.0", "EFFECTIVE-FRAME-RATE": "3.12500",
            "OSD-FIRST-LINE": "489", "OSD-LAST-LINE": "644", "FRAME-COMBINING": "Binning"}
    path = write_adv(tmp_path / "tod.aav", moving_frames(n, 576 // 8, 720 // 8, 8), version=2,
                     container="aav", stamps=stamps_ns.astype(np.int64), status=status,
                     system_tags=tags, exposure_s=0.32)
    with open_file(path) as series:
        meta = series.meta
        assert series.format == "aav" and series.times.source == "pc-clock"
        assert "low trust" in series.times.note
        assert meta["date_known"] is False and "time of day only" in series.times.note
        assert meta["integration"]["factor"] == 8
        assert meta["integration"]["native_fps"] == 25.0
        assert meta["integration"]["effective_fps"] == 3.125
        assert meta["integration"]["fields_per_frame"] == 32
        assert meta["osd_fields"]["first"] == 224737 and meta["osd_fields"]["last"] == 224768
        assert meta["osd_rows"] == [72 - 1, 72 - 1] and meta["osd_last_line_in_file"] == 644
        assert list(series.frame_meta["StartFrameTimestamp"])[:2] == ["20:49:56.0000",
                                                                      "20:49:56.0001"]


def test_aav_with_ntp_tags_is_ntp_sourced(tmp_path):
    times = T0 + np.arange(3) * u.s
    path = write_adv(tmp_path / "ntp.aav", moving_frames(3, 16, 16, 8), times, version=1,
                     container="aav", status={"NTPStartTimestamp": (3, [1, 2, 3])})
    with open_file(path) as series:
        assert series.times.source == "ntp" and series.format == "aav"
        assert series.meta["status_time_units"]["NTPStartTimestamp"].startswith("unknown")


def test_duplicate_stamps_are_flagged(tmp_path):
    times = T0 + np.array([0, 1, 1, 2]) * u.s
    path = write_adv(tmp_path / "dup.adv", moving_frames(4, 12, 12, 16), times)
    with open_file(path) as series:
        assert series.frame_flags[2] & FrameFlag.DUPLICATE_TIME
        assert not series.frame_flags[1]


# -- CLI and reduction --------------------------------------------------------------------------

def test_cli_info_json(tmp_path, capsys):
    path = write_adv(tmp_path / "cli.adv", moving_frames(5, 20, 30, 12), T0 + np.arange(5) * 0.1 * u.s,
                     layout="12BIT-IMAGE-PACKED", compression="LAGARITH16", exposure_s=0.1)
    assert main(["--no-plugins", "info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["format"], info["reader"], info["n_frames"]) == ("adv", "adv", 5)
    assert (info["width"], info["height"], info["bit_depth"]) == (30, 20, 12)
    assert info["start_utc"] == "2021-06-01T01:02:03.250000"
    assert info["end_utc"] == "2021-06-01T01:02:03.650000"
    assert info["time_instant"] == "mid" and info["exposure_s"] == pytest.approx(0.1)
    assert "mid-exposure" in info["metadata"]["time_meaning"]


def test_reduce_recovers_an_occultation_from_adv(tmp_path):
    from test_reduce import check_truth, observation, run_reduce
    frames, truth = observation(n=300)
    mid = truth.times.utc() + 0.01 * u.s             # the ADV stamps mean mid-exposure
    path = write_adv(tmp_path / "obs.adv", frames, mid, compression="QUICKLZ", exposure_s=0.02,
                     data_bpp=16)
    result = run_reduce(tmp_path, path)
    check_truth(result, truth)


@pytest.mark.parametrize("use_numba", [True, False])
def test_lagarith16_pairs_decode_exactly_and_name_a_corrupt_frame(tmp_path, use_numba):
    """Batches decode LAGARITH16 frames two at a time; a corrupt one is still named."""
    frames = moving_frames(4, 6, 8, 16)
    path = write_adv(tmp_path / "lag.adv", frames, T0 + np.arange(4) * 0.1 * u.s,
                     exposure_s=0.1, compression="LAGARITH16")
    with open_file(path, use_numba=use_numba) as series:
        assert np.array_equal(series.batch(0, 4), frames)
        assert np.array_equal(series.batch(1, 3), frames[1:3])
    data = bytearray(path.read_bytes())
    _, entries = _index_entries(path)
    # frame 1's payload starts 27 bytes into the frame (magic, ids, ticks, lengths):
    # zero its symbol count and values so the probability table no longer sums to 2^20
    first_payload = entries[1][1] + 4 + 1 + 8 + 8 + 4 + 2
    data[first_payload + 2:first_payload + 12] = bytes(10)
    data[first_payload] = 0xFF
    bad = tmp_path / "lagbad.adv"
    bad.write_bytes(bytes(data))
    with open_file(bad, use_numba=use_numba) as series:
        assert np.array_equal(series.batch(0, 1), frames[:1])
        with pytest.raises(CorruptSource, match=r"lagbad\.adv: frame 1: LAGARITH16"):
            series.batch(0, 2)


def test_quicklz_fast_path_agrees_with_checked_python_on_damaged_blocks():
    """The compiled kernel skips end-of-input checks inside a control word when the
    whole word's items fit: on seeded damaged blocks (flipped bytes, cut ends) it must
    return the same code and bytes as the interpreted kernel, which checks every item."""
    from occplugins.readers import _adv_codecs as codecs
    from occcore.synthetic.adv import qlz1_compress

    rng = np.random.default_rng(17)
    # a sky of low noise: matches and literals both occur
    frame = (1000 + rng.integers(0, 6, (24, 32)) + np.arange(32) // 8).astype(np.uint16)
    block = np.frombuffer(qlz1_compress(frame.astype("<u2").tobytes()), np.uint8)
    head, _, dsize, compressed = codecs.qlz_sizes(block, "test")
    assert compressed
    fast, slow = codecs.kernels(True).qlz1, codecs.kernels(False).qlz1
    out_fast, out_slow = np.empty(dsize, np.uint8), np.empty(dsize, np.uint8)
    assert fast(block, head, out_fast, np.empty(4096, np.int32)) == dsize
    assert np.array_equal(out_fast.view("<u2"), frame.reshape(-1))
    codes = set()
    for trial in range(24):
        bad = block.copy()
        if trial % 3 == 0:
            bad = bad[:int(rng.integers(head + 1, len(bad)))]      # cut short
        else:
            at = rng.integers(head, len(bad), 3)
            bad[at] ^= rng.integers(1, 256, 3).astype(np.uint8)
        got_fast = fast(bad, head, out_fast, np.empty(4096, np.int32))
        got_slow = slow(bad, head, out_slow, np.empty(4096, np.int32))
        assert got_fast == got_slow
        if got_fast == dsize:
            assert np.array_equal(out_fast, out_slow)
        codes.add(int(got_fast))
    assert codes & {-1, -2, -3}          # the damage was seen, not only decoded through


@pytest.mark.parametrize("compression", ["QUICKLZ", "LAGARITH16"])
def test_frames_decoded_into_the_batch_are_independent_arrays(tmp_path, compression):
    """Compressed frames are decoded straight into the batch array: every batch is its
    own memory (no batch is a view of a decoder buffer), right in any order of reads."""
    rng = np.random.default_rng(8)
    frames = (500 + rng.integers(0, 4, (5, 12, 12))).astype(np.uint16)    # compressible
    path = write_adv(tmp_path / "d.adv", frames, T0 + np.arange(5) * u.s,
                     compression=compression)
    with open_file(path) as series:
        first = series.batch(0, 5)
        second = series.batch(1, 4)
        again = series.batch(0, 5)
        assert not np.shares_memory(first, second) and not np.shares_memory(first, again)
        assert np.array_equal(second, frames[1:4])
        assert np.array_equal(first, frames) and np.array_equal(again, frames)
        assert np.array_equal(series[4], frames[4])


def test_advlib_crc_fast_form_equals_the_definition():
    """The reader's CRC (zlib on bit-reversed bytes) against the writer's literal
    byte-by-byte AdvLib definition, on seeded data of odd and even lengths."""
    from occplugins.readers._adv_codecs import adv_crc32
    from occcore.synthetic.adv import advlib_crc32

    rng = np.random.default_rng(21)
    for n in (4, 5, 6, 37, 288, 1001):
        data = rng.integers(0, 256, n).astype(np.uint8)
        assert adv_crc32(data) == advlib_crc32(data.tobytes()), n
    assert advlib_crc32(b"\0\0\0\0") == 0     # ~(~0) : the register's start and end


CRC_CASES = [dict(version=2, bpp=16, compression="UNCOMPRESSED"),
             dict(version=2, bpp=16, compression="QUICKLZ"),
             dict(version=2, layout="12BIT-IMAGE-PACKED", bpp=12, compression="UNCOMPRESSED"),
             dict(version=1, layout="FULL-IMAGE-DIFFERENTIAL-CODING", bpp=16,
                  compression="QUICKLZ", base_frame="PREV-FRAME"),
             dict(version=2, bpp=8, compression="QUICKLZ")]


@pytest.mark.parametrize("case", CRC_CASES, ids=_case_id)
def test_crc32_frames_read_exactly(tmp_path, monkeypatch, case):
    """Every layout with a CRC slot reads exactly, and every frame's CRC is computed."""
    from occplugins.readers import _adv_codecs
    checked = []
    original = _adv_codecs.adv_crc32
    monkeypatch.setattr(_adv_codecs, "adv_crc32",
                        lambda data: (checked.append(len(data)), original(data))[1])
    frames = moving_frames(5, 12, 12, case["bpp"], seed=4)
    path = write_adv(tmp_path / "crc.adv", frames, T0 + np.arange(5) * 0.04 * u.s,
                     crc32=True, **case)
    with open_file(path) as series:
        assert "crc32" in series.meta
        assert np.array_equal(series.batch(0, 5), frames)
    assert checked == [2 * 144] * 5


def test_crc32_mismatch_names_the_frame(tmp_path):
    """One flipped pixel byte in frame 2 of an uncompressed CRC32 file: reading frame 2
    fails naming it; the other frames still read; without the CRC tag the same damage
    would pass unseen (the check is what finds it)."""
    frames = moving_frames(4, 12, 12, 16, seed=6)
    times = T0 + np.arange(4) * 0.04 * u.s
    for crc in (True, False):
        path = write_adv(tmp_path / f"c{crc}.adv", frames, times, crc32=crc)
        data = bytearray(path.read_bytes())
        _, entries = _index_entries(path)
        payload = entries[2][1] + 4 + 1 + 8 + 8 + 4 + 2      # magic .. byte mode
        data[payload + 17] ^= 0x40
        bad = tmp_path / f"bad{crc}.adv"
        bad.write_bytes(bytes(data))
        with open_file(bad) as series:
            assert np.array_equal(series.batch(0, 2), frames[:2])
            assert np.array_equal(series[3], frames[3])
            if crc:
                with pytest.raises(CorruptSource, match=r"badTrue\.adv: frame 2: CRC32"):
                    series[2]
            else:
                assert not np.array_equal(series[2], frames[2])
