"""Analogue video end to end: an AVI written here, a star field with an occultation under a
rendered IOTA-VTI overlay, reduces with ``occcore reduce`` to a light curve timed by the
overlay (not by the container's clock), and ``occcore fit`` recovers the event."""
import json

import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from occcore.cli import main
from occcore.synthetic import star_field
from occcore.synthetic.avi import write_avi
from occcore.synthetic.osd import render_osd_video

N_FRAMES = 250
FRAME_S = 0.04                       # PAL: two 20 ms fields per frame
START_OF_DAY_S = 3 * 3600 + 25 * 60 + 41.3     # the VTI's first printed (end-of-field) time
DATE = "2024-05-05"
STARS = ((300.0, 200.0, 9000.0), (420.0, 150.0, 14000.0), (200.0, 320.0, 20000.0))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    directory = tmp_path_factory.mktemp("video")
    immersion_s, emersion_s = 4.0123, 6.5311          # after the start of frame 0
    frames, truth = star_field(n_frames=N_FRAMES, height=576, width=720, stars=STARS,
                               sky_e=40.0, bias_adu=30.0, gain_e_per_adu=8.0, read_noise_e=8.0,
                               fwhm_px=3.0, drift_px_per_frame=(0.01, 0.0), walk_px=0.03,
                               occultation=(0, immersion_s, emersion_s, 0.05),
                               exposure_s=FRAME_S, seed=11, dtype=np.uint8)
    osd, osd_truth = render_osd_video("iota-vti", n_frames=N_FRAMES, standard="PAL",
                                      width=720, noise_adu=3.0, start_time_s=START_OF_DAY_S,
                                      seed=4)
    combined = frames.copy()
    combined[:, 500:] = osd[:, 500:]          # the VTI writes over the bottom rows
    path = write_avi(directory / "occultation.avi", combined, codec="ffv1")
    # frame k spans its two fields: it starts one field before the first printed time
    frame_start_s = START_OF_DAY_S - 0.020 + FRAME_S * np.arange(N_FRAMES)
    return path, truth, frame_start_s, immersion_s, emersion_s


def test_reduce_takes_the_overlay_times_and_fit_recovers_the_event(video, tmp_path, capsys):
    path, truth, frame_start_s, immersion_s, emersion_s = video
    out = tmp_path / "run"
    code = main(["--no-plugins", "--set", f'read.options.avi.start_utc="{DATE}T03:25:40"',
                 "reduce", str(path), "-o", str(out), "--target", "300,200",
                 "--reference", "420,150", "--guide", "200,320", "--json"])
    assert code == 0, capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    assert run["metadata"]["time_stamped_by"] == "vti-ocr"
    assert run["metadata"]["time_source"] == "ocr"
    table = Table.read(out / "lightcurve.ecsv", format="ascii.ecsv")
    day = Time(DATE, scale="utc")
    seconds = (table["time"] - day).to_value("s")
    # the light curve's stamps are mid-exposure: the VTI's first field's end of each frame
    assert np.max(np.abs(seconds - (frame_start_s + FRAME_S / 2))) < 2e-4
    capsys.readouterr()
    assert main(["--no-plugins", "fit", str(out / "lightcurve.ecsv"), "-o", str(out),
                 "--model", "square", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "positive"
    for edge, true_offset in (("immersion", immersion_s), ("emersion", emersion_s)):
        found = Time(result[edge]["time_utc"], scale="utc")
        delta = float((found - day).to_value("s")) - (frame_start_s[0] + true_offset)
        minus, plus = result[edge]["err1_s"]
        assert -minus <= -delta <= plus, (edge, delta, minus, plus)
