"""Light-curve files as users have them: dates only from the file or the user, time stamps
checked in file order (never re-sorted), curves without times, multi-column SORA text;
and the time-of-day-only AAV recording that must be dated before it becomes a light
curve."""
import json

import numpy as np
import pytest
from astropy.time import Time

from occcore.api import read_lightcurve
from occcore.cli import main
from occcore.errors import InputError
from occcore.model import FrameFlag

HEADER = "# PyMovie Version 3.7.3\n# date at frame 0: 2023-08-06\n#\n"


def _pymovie(path, seconds, flux, header=HEADER, frames=None):
    frames = range(len(seconds)) if frames is None else frames
    rows = ["FrameNum,timeInfo,signal-target"]
    for f, t, v in zip(frames, seconds, flux, strict=True):
        stamp = "" if t is None else \
            f"[{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:07.4f}]"
        rows.append(f"{f},{stamp},{v:.3f}")
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def test_date_comes_from_the_file_or_the_user_never_a_placeholder(tmp_path):
    seconds = 6 * 3600 + 52 * 60 + 40 + 0.04 * np.arange(50)
    flux = np.ones(50)
    dated = _pymovie(tmp_path / "dated.csv", seconds, flux)
    assert read_lightcurve(dated).times.utc(0).isot == "2023-08-06T06:52:40.000"
    undated = _pymovie(tmp_path / "undated.csv", seconds, flux, header="# PyMovie\n")
    with pytest.raises(InputError, match="--date"):
        read_lightcurve(undated)
    lc = read_lightcurve(undated, date="2024-02-29")
    assert lc.times.utc(0).isot == "2024-02-29T06:52:40.000"
    assert lc.meta["date_source"] == "option"


def test_dropped_frames_and_a_negative_step_are_reported_with_frame_numbers(tmp_path, caplog):
    frames = list(range(10, 30))
    seconds = [100.0 + 0.04 * (f - 10) for f in frames]
    del frames[5:7], seconds[5:7]             # frames 15 and 16 dropped
    seconds[8] = seconds[7] - 0.02            # frame 20 stamped before frame 19
    path = _pymovie(tmp_path / "gaps.csv", seconds, np.ones(len(seconds)), frames=frames)
    with pytest.raises(InputError, match=r"backwards at frame\(s\) 20"):
        read_lightcurve(path, timestamps="keep")
    with pytest.raises(InputError, match="refuse"):
        read_lightcurve(path, timestamps="refuse")
    with caplog.at_level("WARNING", logger="occcore"):
        lc = read_lightcurve(path)           # default: re-derive the isolated bad stamp
    assert "dropped frames before frame(s) 17 (2 missing)" in caplog.text
    assert "re-derived from the cadence at frame(s) 20" in caplog.text or \
        "backwards at frame(s) 20" in caplog.text
    order = np.asarray(lc.frame)
    assert list(order) == frames                                  # file order, not re-sorted
    assert np.all(np.diff(lc.times.offsets_s) > 0)
    k = frames.index(20)
    assert lc.flags[k] & FrameFlag.TIME_CORRECTED
    assert lc.times.offsets_s[k] == pytest.approx(0.04 * (20 - 10), abs=1e-9)
    assert lc.flags[frames.index(17)] & FrameFlag.DROPPED_BEFORE
    assert lc.meta["timestamps_rederived_frames"] == [20]


def test_a_curve_without_times_needs_a_cadence_and_a_start(tmp_path):
    path = _pymovie(tmp_path / "untimed.csv", [None] * 40, np.ones(40), frames=range(5, 45))
    with pytest.raises(InputError, match="--frame-rate"):
        read_lightcurve(path)
    lc = read_lightcurve(path, frame_rate_hz=25.0, start_utc="2024-05-01T01:02:03.5")
    assert len(lc.flux) == 40
    assert lc.times.utc(0).isot == "2024-05-01T01:02:03.500"
    assert lc.times.offsets_s[-1] == pytest.approx(39 / 25.0)


def test_multi_column_sora_file_reads_its_time_column(shared_fixtures, tmp_path, capsys):
    """lc_example_colunms.dat: time (JD) in column 2, flux in column 4 (SORA's usecols=[2, 4])
    — the same data as lc_example.dat."""
    folder = shared_fixtures / "lightcurves" / "sora"
    wide = read_lightcurve(folder / "lc_example_colunms.dat", column="4")
    plain = read_lightcurve(folder / "lc_example.dat")
    assert wide.meta["time_column"] == 2
    assert np.array_equal(wide.flux, plain.flux)
    # the wide file gives JD to 8 decimals (0.86 ms), the plain one to 16
    assert abs((wide.times.utc(0) - plain.times.utc(0)).to_value("s")) < 0.5e-3
    code = main(["--no-plugins", "fit", str(folder / "lc_example_colunms.dat"), "--column", "4",
                 "--model", "square", "--exposure", "0.1", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "positive"


def test_a_bad_time_cell_is_named_by_its_line(tmp_path):
    path = tmp_path / "curve.dat"
    rows = [f"{2457927.5 + k / 864000:.8f} 1.0" for k in range(20)]
    rows[6] = "2457927.5000x 1.0"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"line 7: '2457927.5000x' in column 0 is not a time"):
        read_lightcurve(path, reader="sora")


def test_bad_tref_and_times_outside_erfa_are_input_errors(shared_fixtures, tmp_path, capsys):
    folder = shared_fixtures / "lightcurves" / "sora"
    assert main(["--no-plugins", "fit", str(folder / "lc_example_3.dat"), "--tref", "garbage"]) == 2
    assert "garbage" in capsys.readouterr().err
    far = tmp_path / "far.txt"
    far.write_text("".join(f"99999-01-01T00:00:{k:02d} 1.0\n" for k in range(20)))
    assert main(["--no-plugins", "fit", str(far)]) == 2
    err = capsys.readouterr().err
    assert "far.txt" in err and "Traceback" not in err


def test_a_time_of_day_aav_must_be_dated(tmp_path, capsys):
    from occcore.synthetic import star_field
    from occcore.synthetic.adv import write_adv
    frames, truth = star_field(n_frames=60, seed=2, dtype=np.uint8, bias_adu=20.0,
                               sky_e=20.0, gain_e_per_adu=8.0,
                               stars=((60.0, 50.0, 9000.0), (100.0, 70.0, 12000.0),
                                      (40.0, 90.0, 15000.0)))
    stamps_ns = (20 * 3600 + 49 * 60 + 56.5) * 1e9 + np.arange(60) * 0.04e9
    path = write_adv(tmp_path / "tod.aav", frames, version=2, container="aav",
                     stamps=stamps_ns.astype(np.int64), exposure_s=0.04,
                     system_tags={"NATIVE-FRAME-RATE": "25.0", "EFFECTIVE-FRAME-RATE": "25.0"})
    args = ["--no-plugins", "reduce", str(path), "--target", "60,50", "--reference", "100,70"]
    assert main([*args, "-o", str(tmp_path / "undated")]) == 2
    err = capsys.readouterr().err
    assert "--date" in err and "tod.aav" in err
    assert not (tmp_path / "undated").exists()
    assert main([*args, "-o", str(tmp_path / "dated"), "--date", "2023-11-02"]) == 0
    from astropy.table import Table
    table = Table.read(tmp_path / "dated" / "lightcurve.ecsv", format="ascii.ecsv")
    first = Time(table["time"][0])
    assert first.isot.startswith("2023-11-02T20:49:56")
