"""VTI timestamp OCR (time source ``vti-ocr``): real IOTA-VTI strips and synthetic OSDs.

Budget: under 45 s of CPU on one core (measured 34 s for the 38 tests: the fixture table
~3 s, the synthetic videos the rest; the >= 2,000-field runs per VTI type are in
bench/bench_ocr.py).
The truth of the real strips is parsed at test time from the tables of
``fixtures/avi/PROVENANCE.md`` (readings made by eye by the researcher who cut them).
"""
import re

from pathlib import Path

import numpy as np
import pytest
from astropy.time import Time

from occcore.model import FrameFlag, FrameSeries
from occcore.plugin import InputError, NotApplicable
from occcore.synthetic.osd import render_osd_video
from occplugins.timesources import vti
from occplugins.timesources._vti_api import time_text

CASES = ("001_tvsafe", "003", "004", "008", "012_tvsafe")


def provenance_truth(fixtures):
    """{case: {file: (time text, field number)}} from PROVENANCE.md's per-case tables."""
    text = (fixtures / "avi" / "PROVENANCE.md").read_text()
    truth, case = {}, None
    for line in text.splitlines():
        m = re.match(r"^### `([^`/]+)/`", line)
        if m:
            case = m.group(1)
            truth[case] = {}
            continue
        m = re.match(r"^\| (\S+\.bmp) \| \d+ \| `[0-9a-f]{64}` \| (\d\d:\d\d:\d\d\.\d{4}) \| (\d+) \|",
                     line)
        if m and case:
            truth[case][m.group(1)] = (m.group(2), int(m.group(3)))
    return truth


@pytest.fixture(scope="module")
def strip_results(request):
    # the same place as conftest's shared_fixtures (module-scoped here: read the strips once)
    SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {SHARED_FIXTURES}")
    truth = provenance_truth(SHARED_FIXTURES)
    base = SHARED_FIXTURES / "avi" / "vti_osd_field_strips"
    return truth, {case: vti.ocr_strips([base / case]) for case in CASES}


def test_truth_table_has_all_106_strips(strip_results):
    truth, _ = strip_results
    assert sorted(truth) == sorted(CASES)
    assert sum(len(v) for v in truth.values()) == 106


@pytest.mark.parametrize("case", CASES)
def test_every_strip_reads_right_or_is_flagged(strip_results, case):
    truth, results = strip_results
    recs = results[case]
    assert len(recs) == len(truth[case])
    wrong, flagged = [], []
    for r in recs:
        name = r["file"].rsplit("/", 1)[-1]
        want_time, want_n = truth[case][name]
        if r["flagged"]:
            flagged.append(name)
            assert r["time_utc"] is None and r["field_number"] is None
        elif (r["time_utc"], r["field_number"]) != (want_time, want_n):
            wrong.append((name, r["time_utc"], r["field_number"], want_time, want_n))
    assert wrong == []                       # never a wrong time
    assert len(flagged) <= 2                 # and these clean strips are read, not flagged


def test_case_008_duplicate_frame_and_reversed_field_order(strip_results):
    _, results = strip_results
    s = results["008"][0]["summary"]
    assert s["duplicated_frames"] == ["0000001"]
    assert s["field_order"] == "second-parity-first"       # -odd is the earlier field
    assert s["standard"] == "NTSC"
    dup = [r["file"].rsplit("/", 1)[-1] for r in results["008"] if r["duplicate_frame"]]
    assert sorted(dup) == ["0000001-even.bmp", "0000001-odd.bmp"]
    for case in ("001_tvsafe", "003", "004", "012_tvsafe"):
        summary = results[case][0]["summary"]
        assert summary["field_order"] == "first-parity-first"
        assert summary["duplicated_frames"] == [] and summary["dropped_frames"] == []


def test_strip_format_is_sniffed_not_taken_from_the_name(strip_results):
    # case 003 holds PNG data named .bmp; it must read like the others
    _, results = strip_results
    assert results["003"][0]["summary"]["fields_read"] == 20


# -- synthetic ----------------------------------------------------------------------
def _score(recs, truth, resolution_units):
    want = {}
    for fr in truth["fields"]:
        for t_units, n in fr:
            want[n] = time_text(t_units - t_units % resolution_units, resolution_units)
    right = wrong = flagged = 0
    for r in recs:
        if r["flagged"]:
            flagged += 1
        elif want.get(r["field_number"]) == r["time_utc"]:
            right += 1
        else:
            wrong += 1
    return right, wrong, flagged


def _series(frames, date="2024-03-05", **meta):
    return FrameSeries.from_arrays(frames, times=Time(f"{date}T00:00:00"),
                                   offsets_s=np.arange(len(frames)) * 0.04, exposure_s=0.04,
                                   time_instant="start", meta=meta, format="avi")


SYNTH = [
    dict(vti="iota-vti", standard="PAL", width=720, noise_adu=4, seed=1),
    dict(vti="iota-vti", standard="NTSC", width=640, noise_adu=10, x_offset_px=3,
         field_order="second-parity-first", seed=2),
    dict(vti="iota-vti", standard="PAL", width=768, noise_adu=16, mode="tv-safe",
         drop_before=(17,), duplicate_after=(30,), seed=3),
    dict(vti="iota-vti", standard="NTSC", width=720, noise_adu=22, version=2, blur_px=1.0,
         drop_before=(25, 40), seed=4),
    dict(vti="kiwi-osd", standard="PAL", width=720, noise_adu=8, start_time_s=3600 * 4 + 59.0,
         seed=5),
    dict(vti="kiwi-osd", standard="NTSC", width=720, noise_adu=12, duplicate_after=(12,),
         start_time_s=3600 * 5 + 120 - 0.7, seed=6),
]



def _assert_drops_and_duplicates_found(summary, truth):
    """The OCR summary names every duplicated frame and every drop the renderer made."""
    assert summary["duplicated_frames"] == truth["duplicated"]
    assert [(d["before_frame"], d["missing"]) for d in summary["dropped_frames"]] == \
        [tuple(d) for d in truth["dropped_before"]]


def _summary_of_a_right_read(recs, truth, vti_name, score, fraction=0.98):
    """The OCR summary, once the records are checked: no field silently wrong, at least
    ``fraction`` of them right (``score``: by field counter or by position, at the VTI's
    resolution) and the VTI type found."""
    resolution = 10 if vti_name in ("kiwi-osd", "ghs") else 1      # these print ms
    right, wrong, _ = score(recs, truth, resolution)
    assert wrong == 0
    assert right >= fraction * len(recs)
    summary = recs[0]["summary"]
    assert summary["vti"] == vti_name
    return summary


@pytest.mark.parametrize("kw", SYNTH, ids=lambda kw: (f"{kw['vti']}-{kw['standard']}-"
                                                     f"{kw['width']}-n{kw['noise_adu']}"))
def test_synthetic_reads_right_and_finds_drops_and_duplicates(kw):
    frames, truth = render_osd_video(n_frames=60, **kw)
    recs = vti.ocr_series(_series(frames))
    s = _summary_of_a_right_read(recs, truth, kw["vti"], _score)
    assert s["field_order"] == kw.get("field_order", "first-parity-first")
    _assert_drops_and_duplicates_found(s, truth)


def test_misread_characters_are_corrected_and_flagged_as_such():
    frames, truth = render_osd_video(n_frames=40, noise_adu=4, seed=7)
    frames = frames.copy()
    # scribble over one character of the seconds in frame 25 (both fields) and wipe the
    # whole fraction of frame 31's first field: one is correctable, one is not
    frames[25, 540:568, 4 + 10 * 24 + 2:4 + 10 * 24 + 12] = 230
    recs = vti.ocr_series(_series(frames))
    right, wrong, flagged = _score(recs, truth, 1)
    assert wrong == 0
    fixed = [r for r in recs if r["corrected"]]
    assert {r["frame"] for r in fixed} == {25}
    s = recs[0]["summary"]
    assert s["fields_corrected"] == 2


def test_unexplained_readings_are_flagged_never_guessed():
    frames, truth = render_osd_video(n_frames=40, noise_adu=4, seed=8)
    frames = frames.copy()
    frames[20, 540:568, 200:700] = 230          # most of both fields' line destroyed
    recs = vti.ocr_series(_series(frames))
    right, wrong, flagged = _score(recs, truth, 1)
    assert wrong == 0
    assert {r["frame"] for r in recs if r["flagged"]} == {20}


def test_time_source_replaces_times_and_flags():
    frames, truth = render_osd_video(n_frames=50, standard="PAL", noise_adu=6,
                                     drop_before=(20,), duplicate_after=(33,), seed=9)
    series = _series(frames)
    spec = next(s for s in _time_sources() if s.name == "vti-ocr")
    opts = spec.options(instant="mid")
    stamps = spec.stamp(series, options=opts, context=None)
    out = series.with_times(stamps.times, flags=stamps.flags)
    assert out.times.source == "ocr" and out.times.instant == "mid"
    # mid of an interlaced frame = end of its first field (the first field's print)
    utc = out.times.utc()
    for k in (0, 19, 20, 40):
        t_units = truth["fields"][k][0][0]
        want = Time("2024-03-05T00:00:00", scale="utc") + t_units / 1e4 * __import__("astropy.units").units.s
        assert abs((utc[k] - want).to_value("s")) < 1e-6
    dup_frame = truth["duplicated"][0]
    assert out.flags[dup_frame] & FrameFlag.DUPLICATE_TIME
    assert out.flags[truth["dropped_before"][0][0]] & FrameFlag.DROPPED_BEFORE
    assert stamps.report["date_known"] is True
    assert stamps.report["camera_delay_s"] == 0.0
    assert "no camera" in stamps.report["camera_delay_source"]
    assert stamps.report["duplicated_frames"] == truth["duplicated"]


def test_camera_delay_and_undated_series():
    frames, _ = render_osd_video(n_frames=30, noise_adu=4, seed=10)
    spec = next(s for s in _time_sources() if s.name == "vti-ocr")
    base = spec.stamp(_series(frames), options=spec.options(instant="start"), context=None)
    late = spec.stamp(_series(frames, date_known=False),
                      options=spec.options(instant="start", camera_delay_s=0.017), context=None)
    d = (late.times.utc(0) - base.times.utc(0)).to_value("s")
    assert abs(d + 0.017) < 1e-9
    assert late.report["date_known"] is False and late.report["date"] is None
    # no cited delay for a named camera: refused with the reason, never a silent zero
    with pytest.raises(InputError, match="no documented camera delay .*WAT-910HX.*x4"):
        spec.stamp(_series(frames), options=spec.options(camera="WAT-910HX",
                                                          integration_mode="x4"), context=None)
    # a measured delay for the named camera is applied and recorded as the user's
    given = spec.stamp(_series(frames), options=spec.options(
        instant="start", camera="WAT-910HX", camera_delay_s=0.04), context=None)
    assert given.report["camera_delay_s"] == 0.04
    assert "given by the user" in given.report["camera_delay_source"]
    assert abs((given.times.utc(0) - base.times.utc(0)).to_value("s") + 0.04) < 1e-9


def test_declines_a_series_without_an_osd():
    rng = np.random.default_rng(0)
    frames = rng.normal(40, 5, (30, 576, 720)).clip(0, 255).astype(np.uint8)
    spec = next(s for s in _time_sources() if s.name == "vti-ocr")
    with pytest.raises(NotApplicable):
        spec.stamp(_series(frames), options=spec.options(), context=None)


# -- VTIs without a field counter (BoxSprite 3, GHS) --------------------------------
def _score_by_position(recs, truth, resolution_units):
    """Right/wrong/flagged against the truth of each (frame, field): these VTIs print
    no counter, so the field number in a record is the reader's own count."""
    right = wrong = flagged = 0
    for r in recs:
        j = r["field"] if truth["field_order"] == "first-parity-first" else 1 - r["field"]
        t_units, _ = truth["fields"][r["frame"]][j]
        if r["flagged"]:
            flagged += 1
        elif r["time_utc"] == time_text(t_units - t_units % resolution_units, resolution_units):
            right += 1
        else:
            wrong += 1
    return right, wrong, flagged


CLOCK_SYNTH = [
    dict(vti="boxsprite", standard="PAL", width=720, noise_adu=6, seed=21),
    dict(vti="boxsprite", standard="NTSC", width=640, noise_adu=12, x_offset_px=2,
         field_order="second-parity-first", drop_before=(50,), seed=22),
    dict(vti="ghs", standard="NTSC", width=720, noise_adu=8, drop_before=(20,),
         duplicate_after=(40,), seed=23),
    dict(vti="ghs", standard="PAL", width=768, noise_adu=16, start_time_s=86_400 - 1.1,
         seed=24),
]


@pytest.mark.parametrize("kw", CLOCK_SYNTH,
                         ids=lambda kw: f"{kw['vti']}-{kw['standard']}-{kw['width']}")
def test_counterless_vti_learned_from_the_tenths_digit(kw):
    frames, truth = render_osd_video(n_frames=80, **kw)
    recs = vti.ocr_series(_series(frames))            # auto: IOTA and Kiwi must decline
    s = _summary_of_a_right_read(recs, truth, kw["vti"], _score_by_position, 0.97)
    assert s["standard"] == kw["standard"]
    assert s["field_order"] == kw.get("field_order", "first-parity-first")
    _assert_drops_and_duplicates_found(s, truth)


def test_counterless_misread_is_corrected_or_flagged_never_wrong():
    frames, truth = render_osd_video("boxsprite", n_frames=80, noise_adu=5, seed=25)
    frames = frames.copy()
    # smear the seconds units digit of frame 70 (beyond the calibration sample)
    frames[70, 2 * 250:2 * 250 + 28, 252 + 12:252 + 12 + 8] = 230
    recs = vti.ocr_series(_series(frames))
    right, wrong, flagged = _score_by_position(recs, truth, 1)
    assert wrong == 0
    touched = [r for r in recs if r["frame"] == 70]
    assert all(r["corrected"] or r["flagged"] for r in touched)
    assert right >= len(recs) - 2


@pytest.mark.parametrize("printed,assumed", [("boxsprite", "ghs"), ("ghs", "boxsprite"),
                                              ("iota-vti", "boxsprite"),
                                              ("gps-boxsprite", "boxsprite"),
                                              ("boxsprite", "gps-boxsprite")])
def test_a_wrong_layout_assumption_is_declined_or_flagged(printed, assumed):
    frames, truth = render_osd_video(printed, n_frames=70, noise_adu=6, seed=26)
    try:
        recs = vti.ocr_series(_series(frames), vti=assumed)
    except NotApplicable:
        return
    res = 10 if printed == "ghs" else 1
    if printed in ("iota-vti", "gps-boxsprite"):
        # whatever was read must be a time the VTI printed
        printed_times = {time_text(t, 1) for fr in truth["fields"] for t, _ in fr}
        wrong = sum(1 for r in recs if not r["flagged"] and r["time_utc"] not in printed_times)
    else:
        _, wrong, _ = _score_by_position(recs, truth, res)
    assert wrong == 0


def test_midnight_roll_over():
    frames, truth = render_osd_video(n_frames=50, start_time_s=86_400 - 0.6, noise_adu=5,
                                     seed=27)
    recs = vti.ocr_series(_series(frames))
    right, wrong, flagged = _score(recs, truth, 1)
    assert wrong == 0 and right == len(recs)
    assert recs[0]["time_utc"].startswith("23:59:59") and recs[-1]["time_utc"].startswith("00:00:01")
    spec = next(s for s in _time_sources() if s.name == "vti-ocr")
    stamps = spec.stamp(_series(frames), options=spec.options(instant="start"), context=None)
    steps = np.diff(stamps.times.offsets_s)
    assert np.allclose(steps, 0.04, atol=1e-6)        # no jump back at midnight


def _time_sources():
    return list(vti.occcore_time_sources())


# Drops and repeats inside the calibration sample (the first 64 frames): no 48-frame
# window of it is free of them, so the digits must be learned across them.
CALIBRATION_DROPS = [
    dict(vti="boxsprite", standard="PAL", width=720, noise_adu=10, drop_before=(16, 32, 48),
         duplicate_after=(35,), seed=31),
    dict(vti="ghs", standard="NTSC", width=720, noise_adu=10, drop_before=(10, 25, 40, 55),
         duplicate_after=(35,), seed=32),
    dict(vti="boxsprite", standard="NTSC", width=768, noise_adu=14, drop_before=(20, 21, 40),
         field_order="second-parity-first", seed=33),
    # 640 px with the band low in the OSD region: the band must not be cut short
    dict(vti="boxsprite", standard="PAL", width=640, noise_adu=15, x_offset_px=3.9,
         drop_before=(26, 40), start_time_s=76656.739, seed=102),
]


@pytest.mark.parametrize("kw", CALIBRATION_DROPS,
                         ids=lambda kw: f"{kw['vti']}-{kw['standard']}-{kw['drop_before']}")
def test_counterless_calibration_across_drops_and_repeats(kw):
    frames, truth = render_osd_video(n_frames=80, **kw)
    recs = vti.ocr_series(_series(frames))
    s = _summary_of_a_right_read(recs, truth, kw["vti"], _score_by_position)
    _assert_drops_and_duplicates_found(s, truth)


# -- GPS-BoxSprite: date, HH:MM:SS and two 0.1 ms values (the later one ends the field)
GPS_BOXSPRITE = [
    dict(standard="PAL", width=720, noise_adu=6, seed=41),
    dict(standard="NTSC", width=640, noise_adu=12, drop_before=(20, 40), duplicate_after=(30,),
         field_order="second-parity-first", seed=42),
    dict(standard="PAL", width=768, noise_adu=20, start_time_s=86_400 - 0.9, drop_before=(50,),
         x_offset_px=-4, seed=43),
]


@pytest.mark.parametrize("kw", GPS_BOXSPRITE, ids=lambda kw: f"{kw['standard']}-{kw['width']}")
def test_gps_boxsprite_reads_the_end_of_each_field(kw):
    frames, truth = render_osd_video("gps-boxsprite", n_frames=80, **kw)
    recs = vti.ocr_series(_series(frames))           # auto: found among the others
    s = _summary_of_a_right_read(recs, truth, "gps-boxsprite", _score_by_position)
    assert s["standard"] == kw["standard"]
    assert s["field_order"] == kw.get("field_order", "first-parity-first")
    _assert_drops_and_duplicates_found(s, truth)


def test_gps_boxsprite_end_is_the_later_value_in_either_slot():
    from occplugins.timesources._vti_decode import gps_boxsprite_end_array
    a = np.array([9900, 9700, 100, 9950, 1234])
    b = np.array([9700, 9900, 9900, 117, 1234])
    # PAL: 9900 after 9700; 0100 after 9900 (across the second); NTSC: 0117 after 9950
    assert gps_boxsprite_end_array(a, b).tolist() == [9900, 9900, 100, 117, -1]
