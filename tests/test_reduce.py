import json

import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from occcore.api import Session
from occcore.cli import main
from occcore.config import load_config
from occcore.model import FrameFlag
from occcore.steps.reduce import reduce
from occcore.synthetic import star_field, write_fits_series, write_ser

STARS = ((70.0, 60.0, 30000.0), (130.0, 45.0, 50000.0), (45.0, 100.0, 70000.0))
IMM, EM = 3.013, 4.527      # seconds after the first frame's start


def observation(n=300, jumps=((150, 11.0, -7.0),), seed=7, **kw):
    return star_field(n_frames=n, height=140, width=180, stars=STARS, fwhm_px=3.0,
                      drift_px_per_frame=(0.03, 0.02), walk_px=0.1, jumps=jumps,
                      occultation=(0, IMM, EM, 0.0), exposure_s=0.02, seed=seed, **kw)


def session(tmp_path, *sets):
    return Session(config=load_config(cwd=tmp_path, sets=sets), no_plugins=True)


def run_reduce(tmp_path, source, *sets, **kw):
    with session(tmp_path, *sets) as s:
        return reduce(s, source, tmp_path / "out", target=STARS[0][:2], references=[STARS[1][:2]],
                      guide=STARS[2][:2], **kw)


def check_truth(result, truth):
    track = result.track
    rms = np.sqrt(np.mean((track.x - truth.x) ** 2 + (track.y - truth.y) ** 2, axis=0))
    assert np.all(rms < 0.1), f"tracking rms {rms} px"
    in_event = (truth.times.offsets_s > IMM) & (truth.times.offsets_s + 0.02 < EM)
    target_rms = np.sqrt(np.mean((track.x[in_event, 0] - truth.x[in_event, 0]) ** 2
                                 + (track.y[in_event, 0] - truth.y[in_event, 0]) ** 2))
    assert target_rms < 0.1, "the target is lost while occulted"
    ratio = np.asarray(result.table["ratio"], float)
    dropped = np.flatnonzero(ratio < 0.5)
    # frame k covers [k, k+1) * 0.02 s; more than half occulted <=> ratio below 0.5
    frac = np.clip((np.minimum(truth.times.offsets_s + 0.02, EM)
                    - np.maximum(truth.times.offsets_s, IMM)) / 0.02, 0, 1)
    assert np.array_equal(dropped, np.flatnonzero(frac > 0.5))


def test_ser_with_drift_jump_and_occultation(tmp_path):
    frames, truth = observation()
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())
    result = run_reduce(tmp_path, path)
    check_truth(result, truth)
    assert result.summary["aligner"] == "tracker"
    assert result.summary["align_uncertain_frames"] == 0


def test_fits_series_with_drift_jump_and_occultation(tmp_path):
    frames, truth = observation(n=200, jumps=((90, -9.0, 12.0),), seed=8)
    write_fits_series(tmp_path / "fits", frames, truth.times.utc(), exposure_s=0.02)
    result = run_reduce(tmp_path, tmp_path / "fits")
    check_truth(result, truth)


def test_outputs_columns_metadata_and_mid_exposure_times(tmp_path):
    frames, truth = observation(n=120, jumps=())
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())
    run_reduce(tmp_path, path, "read.options.ser.exposure_s=0.02")
    table = Table.read(tmp_path / "out" / "lightcurve.ecsv")
    expected = ["time", "frame"]
    for name in ("target", "reference", "guide"):
        expected += [f"{c}_{name}" for c in ("flux", "flux_err", "sky", "x", "y")]
    expected += ["norm_target", "norm_reference", "ratio", "flag"]
    assert table.colnames == expected
    assert isinstance(table["time"], Time)
    # stamps are SER start-of-exposure; the table holds mid-exposure UTC to the microsecond
    delta = (table["time"] - truth.times.utc()).to_value("s")
    assert np.allclose(delta, 0.01, atol=1e-6)
    meta = table.meta
    assert meta["time_instant"] == "mid" and meta["time_instant_of_source"] == "start"
    assert meta["reader"] == "ser"
    steps = [s["step"] for s in meta["provenance"]["steps"]]
    assert steps == ["read", "time", "align", "photometry"]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["config"]["align"]["chain"][0] == "tracker"
    assert run["versions"]["occcore"]
    assert (tmp_path / "out" / "lightcurve.png").stat().st_size > 10_000
    assert not list((tmp_path / "out").glob(".*part"))
    assert np.allclose(table["ratio"], table["norm_target"] / table["norm_reference"],
                       equal_nan=True)


def test_chain_falls_back_for_real(tmp_path):
    frames, truth = observation(n=100, jumps=())
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())
    result = run_reduce(tmp_path, path, 'align.chain=["coords", "tracker"]',
                        f'align.options.coords.path="{tmp_path / "missing.csv"}"')
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    [align] = [s for s in run["metadata"]["provenance"]["steps"] if s["step"] == "align"]
    assert [a["status"] for a in align["attempts"]] == ["failed", "ok"]
    assert "missing.csv" in align["attempts"][0]["reason"]
    assert result.summary["aligner"] == "tracker"


def test_ensemble_of_references_and_one_based(tmp_path):
    frames, truth = star_field(n_frames=60, height=100, width=120,
                               stars=((40.0, 40.0, 20000.0), (80.0, 30.0, 30000.0),
                                      (60.0, 75.0, 40000.0)), seed=3, jumps=())
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())
    with session(tmp_path) as s:
        result = reduce(s, path, tmp_path / "out", target=(41.0, 41.0),
                        references=[(81.0, 31.0), (61.0, 76.0)], one_based=True)
    names = list(result.photometry.names)
    assert names == ["target", "reference", "reference2"]
    table = result.table
    expected = 0.5 * (table["flux_reference"] / np.median(table["flux_reference"])
                      + table["flux_reference2"] / np.median(table["flux_reference2"]))
    assert np.allclose(table["norm_reference"], expected)
    assert abs(result.track.x[0, 0] - truth.x[0, 0]) < 0.1


def test_sep_and_photutils_agree(tmp_path):
    frames, truth = observation(n=40, jumps=())
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())
    results = {}
    for method in ("sep", "photutils"):
        for sky in ("median", "clipped-mean"):
            with session(tmp_path, f'photometry.chain=["{method}"]', f'photometry.sky="{sky}"') as s:
                results[method, sky] = reduce(s, path, tmp_path / f"out-{method}-{sky}",
                                              target=STARS[0][:2], references=[STARS[1][:2]],
                                              plot=False).photometry
    for sky in ("median", "clipped-mean"):
        a, b = results["sep", sky], results["photutils", sky]
        assert np.max(np.abs(a.flux / b.flux - 1)) < 1e-6
        assert np.max(np.abs(a.sky / b.sky - 1)) < 1e-6
        assert np.max(np.abs(a.flux_err / b.flux_err - 1)) < 1e-6


def test_flux_errors_match_the_scatter(tmp_path):
    frames, truth = star_field(n_frames=300, height=100, width=120,
                               stars=((40.0, 40.0, 20000.0), (80.0, 30.0, 30000.0)),
                               names=("target", "reference"), seed=11, jumps=(), sky_e=200,
                               read_noise_e=5, walk_px=0.02, drift_px_per_frame=(0, 0))
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())
    with session(tmp_path, "photometry.gain_e_per_adu=1.0", "photometry.aperture_px=5",
                 'photometry.annulus_px=[8, 14]') as s:
        result = reduce(s, path, tmp_path / "out", target=(40.0, 40.0), references=[(80.0, 30.0)],
                        plot=False)
    flux = result.photometry.flux
    err = result.photometry.flux_err
    for j in range(2):
        scatter = np.std(flux[:, j] - truth.flux[:, j] * 0.999)
        assert 0.85 < np.median(err[:, j]) / scatter < 1.15


@pytest.mark.parametrize("args, message", [
    (dict(target=(500.0, 10.0)), "outside"),
    (dict(aperture_px=40.0, annulus_px=(45.0, 80.0)), "does not fit"),
])
def test_bad_input_is_exit_2_and_leaves_no_file(tmp_path, capsys, args, message):
    frames, truth = observation(n=30, jumps=())
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())
    argv = ["--no-plugins", "reduce", str(path), "-o", str(tmp_path / "out"),
            "--target", "{},{}".format(*args.get("target", STARS[0][:2])),
            "--reference", "{},{}".format(*STARS[1][:2])]
    if "aperture_px" in args:
        argv += ["--aperture", str(args["aperture_px"]), "--annulus", "{},{}".format(*args["annulus_px"])]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_single_frame_source_is_refused(tmp_path, capsys):
    frames, truth = observation(n=1, jumps=())
    path = write_ser(tmp_path / "one.ser", frames, truth.times.utc(),)
    code = main(["--no-plugins", "reduce", str(path), "-o", str(tmp_path / "out"), "--target",
                 "70,60", "--reference", "130,45", "--set", "read.options.ser.exposure_s=0.02"])
    assert code == 2
    assert "at least 2 frames" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_coordinates_are_usage_errors(tmp_path, capsys):
    assert main(["--no-plugins", "reduce", "x.ser", "-o", str(tmp_path), "--target", "1;2",
                 "--reference", "3,4"]) == 2
    assert "expected X,Y" in capsys.readouterr().err


def test_interrupt_leaves_no_partial_output(tmp_path):
    frames, truth = observation(n=80, jumps=())
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())

    def interrupt(event):
        if event.kind == "progress" and event.step == "photometry":
            raise KeyboardInterrupt

    with Session(config=load_config(cwd=tmp_path), no_plugins=True, observers=[interrupt]) as s:
        with pytest.raises(KeyboardInterrupt):
            reduce(s, path, tmp_path / "out", target=STARS[0][:2], references=[STARS[1][:2]])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_json_summary_and_progress_bar(tmp_path, capsys):
    import io

    from occcore.plugin import Event
    from occcore.progress import ProgressBar
    frames, truth = observation(n=50, jumps=())
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())
    code = main(["--no-plugins", "reduce", str(path), "-o", str(tmp_path / "out"), "--target",
                 "70,60", "--reference", "130,45", "--guide", "45,100", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["n_frames"] == 50 and len(summary["outputs"]) == 3
    stream = io.StringIO()
    bar = ProgressBar(stream=stream, enabled=True)
    bar(Event(kind="progress", step="photometry", done=50, total=100))
    bar(Event(kind="step-finished", step="photometry"))
    assert "[" + "#" * 15 + "." * 15 + "] 50/100" in stream.getvalue()


def test_tracker_declines_when_it_loses_the_field_and_roi_takes_over(tmp_path):
    frames, truth = observation(n=120, jumps=())
    rng = np.random.default_rng(1)
    frames[60:] = rng.normal(np.median(frames), 10, frames[60:].shape)   # thick cloud for good
    path = write_ser(tmp_path / "obs.ser", frames, truth.times.utc())
    with session(tmp_path, 'align.chain=["tracker", "roi"]',
                 "align.options.tracker.max_lost_frames=10", "align.min_aligned_fraction=0.4") as s:
        result = reduce(s, path, tmp_path / "out", target=STARS[0][:2], references=[STARS[1][:2]],
                        guide=STARS[2][:2], plot=False)
    attempts = next(s for s in result.provenance.steps if s.step == "align").attempts
    assert attempts[0].status == "declined" and "lost the field" in attempts[0].reason
    assert attempts[1].implementation == "roi" and attempts[1].status == "ok"
    assert np.all(result.track.flags[60:] & FrameFlag.ALIGN_UNCERTAIN)
