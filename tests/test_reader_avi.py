"""The AVI reader (PyAV): exact pixels, exact counts, seeking, fields, low-trust times."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from occcore.api import Session
from occcore.cli import main
from occcore.config import load_config
from occcore.errors import InputError
from occcore.model import FrameFlag, FrameTimes
from occcore.synthetic import star_field, truncated_copy
from occcore.synthetic.avi import NTSC_RATE, interlace, write_avi

pytest.importorskip("av")

H, W = 48, 64


@pytest.fixture
def session():
    with Session(config=load_config(cwd=Path("/nonexistent")), no_plugins=True) as s:
        yield s


def open_avi(session, path, **options):
    if not options:
        return session.open(path, reader="avi")
    from occplugins.readers.avi import AviOptions
    spec = session.registry.get("reader", "avi").spec
    from occcore.plugin import Source, StepContext
    return spec.open(Source(paths=[path], kind="file", display_name=str(path)),
                     options=AviOptions(**options), context=StepContext())


def noise(n, dtype=np.uint8, seed=0):
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top + 1, (n, H, W)).astype(dtype)


def smooth(n):
    yy, xx = np.mgrid[0:H, 0:W]
    return np.array([100 + 60 * np.sin(xx / 7 + 0.3 * k) + 30 * np.cos(yy / 9)
                     for k in range(n)]).astype(np.uint8)


LOSSLESS = [("rawvideo", np.uint8, 8), ("ffv1", np.uint8, 8), ("ffv1-16", np.uint16, 16),
            ("ffvhuff", np.uint8, 8), ("ffvhuff-16", np.uint16, 16),
            ("huffyuv-yuv422", np.uint8, 8), ("rawvideo-yuyv", np.uint8, 8),
            ("rawvideo-bgr24", np.uint8, 8)]


@pytest.mark.parametrize("codec,dtype,depth", LOSSLESS)
def test_lossless_codecs_read_pixel_exact(tmp_path, session, codec, dtype, depth):
    frames = noise(9, dtype, seed=3)
    path = write_avi(tmp_path / f"{codec}.avi", frames, codec=codec, gop=4)
    with session.open(path, reader="avi") as series:
        assert (series.n_frames, series.height, series.width) == (9, H, W)
        assert series.dtype == dtype and series.bit_depth == depth
        assert np.array_equal(series.batch(0, 9), frames)
        assert series.meta["lossless_codec"] is True


def test_known_luma_comes_back_unchanged(tmp_path, session):
    """Y is read from the plane: FFmpeg's "gray" conversion would rescale limited range."""
    frames = np.full((3, H, W), 100, np.uint8)
    frames[:, :, :16] = 16
    frames[:, :, 16:32] = 235
    frames[:, :, 32:40] = 250
    for codec in ("huffyuv-yuv422", "rawvideo-yuyv"):
        path = write_avi(tmp_path / f"y_{codec}.avi", frames, codec=codec)
        with session.open(path, reader="avi") as series:
            got = series.batch(0, 3)
        assert np.array_equal(got, frames), codec
        assert got[0, 0, 50] == 100 and got[0, 0, 35] == 250


def test_lossy_codec_count_size_and_values(tmp_path, session):
    frames = smooth(20)
    path = write_avi(tmp_path / "mpeg4.avi", frames, codec="mpeg4", gop=6, bit_rate=4e6)
    with session.open(path, reader="avi") as series:
        got = series.batch(0, len(series)).astype(int)
        assert (len(series), series.height, series.width) == (20, H, W)
        assert series.meta["lossless_codec"] is False
        assert any("lossy codec mpeg4" in n for n in series.meta["notes"])
    error = np.abs(got - frames)
    assert error.mean() < 2.0 and error.max() < 25


def test_container_times_are_low_trust_and_replaceable(tmp_path, session):
    path = write_avi(tmp_path / "ntsc.avi", noise(12), codec="ffvhuff", rate=NTSC_RATE)
    with session.open(path, reader="avi") as series:
        times = series.times
        assert times.source == "pc-clock" and times.instant == "start"
        assert "not good enough for science" in times.note and "VTI" in times.note
        assert np.allclose(times.offsets_s, np.arange(12) * 1001 / 30000, atol=1e-9)
        assert np.all(series.frame_flags == 0)       # nothing that a time source must clear
        assert series.exposure_s == pytest.approx(1001 / 30000)
        vti = FrameTimes(epoch="2024-05-06T01:02:03.4", offsets_s=np.arange(12) * 0.0333667,
                         instant="mid", source="ocr", uncertainty_s=1e-4, note="VTI OCR")
        stamped = series.with_times(vti, flags=np.zeros(12, np.uint32), time_source_name="vti")
        assert stamped.times.source == "ocr" and stamped.times.instant == "mid"
        assert np.all(stamped.frame_flags & FrameFlag.INDEX_TIME == 0)
        assert np.array_equal(stamped[5], series[5])


def test_start_from_option_and_header_count_mismatch(tmp_path, session):
    path = write_avi(tmp_path / "c.avi", noise(10), codec="rawvideo")
    data = bytearray(path.read_bytes())
    at = data.find(b"strh") + 8 + 32                 # strh dwLength
    assert struct.unpack_from("<I", data, at)[0] == 10
    struct.pack_into("<I", data, at, 4)             # a header that undercounts
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, 4)
    wrong = tmp_path / "undercount.avi"
    wrong.write_bytes(bytes(data))
    with open_avi(session, wrong, start_utc="2024-01-02T03:04:05") as series:
        assert len(series) == 10                     # counted from the packets
        assert series.meta["header_frame_count"] == 4
        assert "header says 4 frames; the file holds 10 (counted)" in series.meta["notes"]
        assert series.start_utc().isot.startswith("2024-01-02T03:04:05")
        assert np.array_equal(series.batch(0, 10), noise(10))


@pytest.mark.parametrize("order", ["top-first", "bottom-first"])
def test_field_split_gives_fields_with_parity_content_and_times(tmp_path, session, order):
    n_frames = 6
    fields = np.array([np.full((H // 2, W), 10 + 7 * j, np.uint8) for j in range(2 * n_frames)])
    path = write_avi(tmp_path / f"{order}.avi", interlace(fields, order), codec="ffv1")
    with open_avi(session, path, fields="split", field_order=order) as series:
        assert (len(series), series.height, series.width) == (2 * n_frames, H // 2, W)
        got = series.batch(0, len(series))
        assert np.array_equal(got, fields)           # time-ordered fields come back in order
        first = 0 if order == "top-first" else 1
        parity = series.frame_meta["field_parity"]
        assert list(parity) == [first, 1 - first] * n_frames
        assert list(series.frame_meta["frame_index"]) == list(np.repeat(range(n_frames), 2))
        assert np.allclose(series.times.offsets_s, np.arange(2 * n_frames) * 0.02, atol=1e-9)
        assert series.exposure_s == pytest.approx(0.02)
        assert np.array_equal(series[7], fields[7]) and np.array_equal(series[2], fields[2])
        assert series.meta["field_order"] == order


def moving_bar_fields(n_fields):
    """A bright vertical bar moving 2 px per field: time order is visible in the data."""
    fields = np.full((n_fields, H // 2, W), 30, np.uint8)
    for j in range(n_fields):
        fields[j, :, 4 + j % 25 * 2: 8 + j % 25 * 2] = 220
    return fields


@pytest.mark.parametrize("order", ["top-first", "bottom-first"])
def test_auto_field_order_from_motion(tmp_path, session, order):
    fields = moving_bar_fields(40)
    path = write_avi(tmp_path / f"m_{order}.avi", interlace(fields, order), codec="ffvhuff")
    with open_avi(session, path, fields="split") as series:
        assert series.meta["field_order"] == order
        assert "decided from the data" in series.meta["field_order_decision"]
        assert np.array_equal(series.batch(0, 40), fields)


def test_auto_field_order_without_motion_is_an_assumption(tmp_path, session):
    frames = np.repeat(noise(1, seed=4), 10, axis=0)
    path = write_avi(tmp_path / "still.avi", frames, codec="ffvhuff")
    with open_avi(session, path, fields="split") as series:
        assert series.meta["field_order"] == "top-first"
        assert "assumed" in series.meta["field_order_decision"]
        assert "assumed" in series.times.note


@pytest.mark.parametrize("codec,gop", [("ffv1", 5), ("mpeg4", 7), ("rawvideo", None)])
def test_random_access_equals_sequential_pass(tmp_path, session, codec, gop):
    frames = smooth(30) if codec == "mpeg4" else noise(30, seed=5)
    path = write_avi(tmp_path / f"seek_{codec}.avi", frames, codec=codec, gop=gop,
                     bit_rate=4e6 if codec == "mpeg4" else None)
    with session.open(path, reader="avi") as series:
        sequential = np.concatenate(list(series.iter_batches(8)))
        if codec != "mpeg4":
            assert np.array_equal(sequential, frames)
        for k in (29, 3, 17, 0, 12, 13, 11, 28, 6):
            assert np.array_equal(series[k], sequential[k]), k
        assert np.array_equal(series.batch(9, 21), sequential[9:21])
        assert np.array_equal(series.take([25, 2, 24]), sequential[[25, 2, 24]])


def test_consecutive_batches_do_not_seek(tmp_path, session, monkeypatch):
    from occplugins.readers import _avi_decode
    seeks = []
    original = _avi_decode.Decoder._restart
    monkeypatch.setattr(_avi_decode.Decoder, "_restart",
                        lambda self, index: (seeks.append(index), original(self, index)))
    path = write_avi(tmp_path / "seq.avi", noise(40, seed=6), codec="ffv1", gop=10)
    with session.open(path, reader="avi") as series:
        opened = len(seeks)
        blocks = list(series.iter_batches(7))
        assert len(seeks) == opened                  # a sequential pass never re-seeks
        assert np.array_equal(np.concatenate(blocks), noise(40, seed=6))
        series[25]
        assert len(seeks) == opened + 1              # a jump back seeks once
        series[26], series[27]
        assert len(seeks) == opened + 1


def test_truncated_file_is_a_clear_error_naming_the_file(tmp_path, session):
    frames = noise(20, seed=7)
    path = write_avi(tmp_path / "full.avi", frames, codec="rawvideo")
    bad = truncated_copy(path, tmp_path, 0.5)
    with pytest.raises(InputError, match="truncated") as info:
        open_avi(session, bad, threads=True)
    assert bad.name in str(info.value)
    with open_avi(session, bad, allow_truncated=True) as series:
        assert 5 <= len(series) < 20
        assert np.array_equal(series.batch(0, len(series)), frames[:len(series)])
        assert any("truncated" in n for n in series.meta["notes"])


def test_garbage_with_avi_magic_is_a_clear_error(tmp_path, session):
    rng = np.random.default_rng(8)
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(b"RIFF\x00\x10\x00\x00AVI " + rng.integers(0, 256, 4000, np.uint8).tobytes())
    with pytest.raises(InputError) as info:
        open_avi(session, garbage)
    assert garbage.name in str(info.value)
    assert "Traceback" not in str(info.value)


def test_matroska_container_reads_exactly(tmp_path, session):
    frames = noise(6, seed=9)
    path = write_avi(tmp_path / "clip.mkv", frames, codec="ffv1", container="matroska")
    with session.open(path, reader="avi") as series:
        assert len(series) == 6 and np.array_equal(series.batch(0, 6), frames)
        assert np.allclose(np.diff(series.times.offsets_s), 0.04, atol=1e-3)


def test_info_json(tmp_path, capsys):
    path = write_avi(tmp_path / "info.avi", noise(15), codec="ffvhuff")
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["reader"] == "avi" and info["n_frames"] == 15
    assert (info["width"], info["height"], info["bit_depth"]) == (W, H, 8)
    assert info["time_source"] == "pc-clock" and info["time_instant"] == "start"
    assert "VTI" in info["time_note"]


STARS = ((70.0, 60.0, 9000.0), (130.0, 45.0, 15000.0), (45.0, 100.0, 20000.0))
IMM, EM = 3.013, 4.527


def test_reduce_recovers_an_occultation_from_an_ffv1_avi(tmp_path):
    from occcore.steps.reduce import reduce
    frames, truth = star_field(n_frames=300, height=140, width=180, stars=STARS, fwhm_px=3.0,
                               drift_px_per_frame=(0.03, 0.02), walk_px=0.1, jumps=(),
                               occultation=(0, IMM, EM, 0.0), exposure_s=0.02, sky_e=40.0,
                               bias_adu=20.0, gain_e_per_adu=12.0, seed=7, dtype=np.uint8)
    assert frames.max() < 255                        # no clipping in the 8-bit frames
    path = write_avi(tmp_path / "obs.avi", frames, codec="ffv1", rate=50)
    with Session(config=load_config(cwd=tmp_path), no_plugins=True) as s:
        result = reduce(s, path, tmp_path / "out", target=STARS[0][:2],
                        references=[STARS[1][:2]], guide=STARS[2][:2])
    ratio = np.asarray(result.table["ratio"], float)
    offsets = np.arange(300) * 0.02
    frac = np.clip((np.minimum(offsets + 0.02, EM) - np.maximum(offsets, IMM)) / 0.02, 0, 1)
    assert np.array_equal(np.flatnonzero(ratio < 0.5), np.flatnonzero(frac > 0.5))
    rms = np.sqrt(np.mean((result.track.x - truth.x) ** 2 + (result.track.y - truth.y) ** 2,
                          axis=0))
    assert np.all(rms < 0.15), rms


def _strip(path):
    from PIL import Image
    return np.asarray(Image.open(path).convert("L"))


def test_real_vti_field_strips_survive_interlace_and_split(tmp_path, session, shared_fixtures):
    """Case 008 (NTSC, the odd-row field is the earlier one): an AVI built from the real
    OSD fields splits back into exactly those fields, earlier field first."""
    strips = shared_fixtures / "avi" / "vti_osd_field_strips" / "008"
    fields = []
    for pair in range(2, 11):                # pairs 0 and 1 are the duplicated frame
        fields.append(_strip(strips / f"{pair:07d}-odd.bmp"))
        fields.append(_strip(strips / f"{pair:07d}-even.bmp"))
    fields = np.array(fields)[:, :24]        # even height for the frame
    frames = interlace(fields, "bottom-first")
    path = write_avi(tmp_path / "vti008.avi", frames, codec="ffv1", rate=NTSC_RATE)
    with open_avi(session, path, fields="split", field_order="bottom-first") as series:
        assert np.array_equal(series.batch(0, len(series)), fields)
        assert list(series.frame_meta["field_parity"][:4]) == [1, 0, 1, 0]
        assert np.allclose(np.diff(series.times.offsets_s), 1001 / 60000, atol=1e-9)
    with open_avi(session, path, fields="split") as series:
        # the OSD digits alone must not make a confident wrong call
        decision = series.meta["field_order_decision"]
        assert series.meta["field_order"] == "bottom-first" or "assumed" in decision, decision


def test_rawvideo_frames_come_straight_from_the_file_and_seek(tmp_path, session, monkeypatch):
    """rawvideo luma is copied from the file at each packet's offset, with no demuxing at
    open (the AVI index gives count and offsets) and no decoder per frame: still exact,
    sequentially and in any order."""
    from occplugins.readers import _avi_decode
    monkeypatch.setattr(_avi_decode.Decoder, "count_packets",
                        lambda self: pytest.fail("the packets were demuxed to count them"))
    frames = noise(12, seed=9)
    path = write_avi(tmp_path / "raw.avi", frames, codec="rawvideo")
    with session.open(path, reader="avi") as series:
        assert "straight from the file" in series.meta["luma"]
        assert series.meta["frames_counted_from"].startswith("the container's index")
        assert series.n_frames == 12
        assert np.array_equal(np.concatenate(list(series.iter_batches(5))), frames)
        for k in (11, 0, 7, 6, 3):
            assert np.array_equal(series[k], frames[k]), k


def test_rawvideo_frame_that_cannot_show_its_orientation_keeps_the_decoder(tmp_path,
                                                                          session):
    """Frame 0 equal to itself upside down cannot prove that the stored rows are top-down:
    the reader then decodes every frame through FFmpeg (and is still exact)."""
    frames = noise(4, seed=10)
    frames[0] = np.repeat(np.arange(W, dtype=np.uint8)[None, :], H, axis=0)   # rows equal
    path = write_avi(tmp_path / "sym.avi", frames, codec="rawvideo")
    with session.open(path, reader="avi") as series:
        assert "packets" not in series.meta["luma"] and "file" not in series.meta["luma"]
        assert np.array_equal(series.batch(0, 4), frames)


def test_index_and_demuxed_packets_agree(tmp_path, session):
    """The AVI index (used to count frames without reading them) gives the same stamps
    and key frames as demuxing every packet."""
    from occplugins.readers._avi_decode import Decoder
    path = write_avi(tmp_path / "gop.avi", noise(17, seed=11), codec="ffv1", gop=5)
    decoder = Decoder(path, str(path), threads=False)
    try:
        indexed = decoder.indexed_packets(int(decoder.stream.frames))
        demuxed = decoder.count_packets()
    finally:
        decoder.close()
    assert indexed is not None
    for a, b in zip(indexed, demuxed, strict=True):
        assert np.array_equal(a, b)
    assert indexed[1].sum() == 4                  # key frames 0, 5, 10, 15
