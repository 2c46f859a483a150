"""Reporters: round trips through occcore's own readers, the IOTA-ES samples line for line,
the NA Excel cells, plots, the command and [report] writers."""
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from astropy.time import Time

from occcore.cli import main
from occcore.lcio import read_lightcurve
from occcore.plugin import StepContext
from occcore.synthetic import SAMPLE_PROFILE, report_input
from occplugins.reporters import iota_es, na_excel, plots, pymovie_csv, sora, vizier

FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "reports"
IOTA_SAMPLES = {"positive": FIXTURES / "iota-es" / "IOTA-ES_Sample-report-positiv.txt",
                "negative": FIXTURES / "iota-es" / "IOTA-ES_Sample-report-negativ.txt"}


def _write(module, run, destination, options=None):
    spec = next(iter(module.occcore_reporters()))
    return [Path(p) for p in spec.write(run, destination, options=options, context=StepContext())]


def _true_times(lc, instant):
    """The truth, computed independently of the reporters: astropy Time of each reading."""
    shift = {"start": -0.5, "mid": 0.0}[instant] * lc.exposure_s    # the synthetic stamps are mid
    return lc.times.epoch + (lc.times.offsets_s + shift) * u.s


# -- sora ----------------------------------------------------------------------------------------


def test_sora_round_trip_keeps_mid_exposure_times_to_the_microsecond(tmp_path):
    run, _ = report_input(tmp_path, seed=1)
    files = _write(sora, run, tmp_path / "out")
    dat = next(p for p in files if p.name.endswith("_sora_lc.dat"))
    back = read_lightcurve(dat)                       # tref from the file's header
    assert back.times.instant == "mid"
    got = back.times.utc()
    want = _true_times(run.lightcurve, "mid")
    assert np.max(np.abs((got - want).to_value("s"))) < 1e-6
    np.testing.assert_allclose(back.flux, run.lightcurve.flux, rtol=1e-9)
    # never a float JD: the time column is seconds of the day
    first = next(ln for ln in dat.read_text().splitlines() if not ln.startswith("#"))
    assert float(first.split()[0]) < 86400


def test_sora_writes_flux_errors_and_says_how_to_load_them(tmp_path):
    import attrs
    run, _ = report_input(tmp_path)
    run = attrs.evolve(run, lightcurve=run.apertures["target"])
    dat = next(p for p in _write(sora, run, tmp_path / "out") if p.suffix == ".dat")
    text = dat.read_text()
    assert "usecols=[0, 1, 2]" in text
    back = read_lightcurve(dat)
    np.testing.assert_allclose(back.flux_err, run.lightcurve.flux_err, rtol=1e-9)


def test_sora_chord_files_follow_soras_layout(tmp_path):
    run, _ = report_input(tmp_path, with_limb=True)
    files = _write(sora, run, tmp_path / "out")
    body = run.profile["event"]["asteroid"]
    assert {f"occ_{body}_{k}" for k in ("pos.txt", "err.txt", "neg.txt", "ellipse.log")} <= \
        {p.name for p in files}
    positives = [c for c in run.limb.chords if c.positive]
    pos = (tmp_path / "out" / f"occ_{body}_pos.txt").read_text().splitlines()
    assert len(pos) == 2 * len(positives)
    for line, (c, k) in zip(pos, [(c, k) for c in positives for k in (0, 1)], strict=True):
        f, g, vf, vg, jd, label = line.split()
        assert float(f) == pytest.approx(c.f_km[k], abs=5e-4)
        assert float(g) == pytest.approx(c.g_km[k], abs=5e-4)
        assert float(jd) == pytest.approx(Time(c.times_utc[k], scale="utc").jd, abs=1e-8)
        assert label == f"{c.name}_{('immersion', 'emersion')[k]}"
    err = (tmp_path / "out" / f"occ_{body}_err.txt").read_text().splitlines()
    c = positives[0]
    f_minus, f_plus = float(err[0].split()[0]), float(err[1].split()[0])
    assert f_plus - f_minus == pytest.approx(2 * c.err_km[0], abs=2e-3)
    neg = (tmp_path / "out" / f"occ_{body}_neg.txt").read_text().splitlines()
    assert [ln.split()[-1] for ln in neg] == ["negative1_start", "negative1_end"]
    log = (tmp_path / "out" / f"occ_{body}_ellipse.log").read_text()
    # SORA reports the middle of each interval +/- its half-width
    value, half = re.search(r"equatorial_radius:\n    1-sigma: ([\d.]+) \+/- ([\d.]+)", log).groups()
    a = run.limb.equatorial_radius_km
    assert float(value) == pytest.approx(a + 0.25, abs=1e-3)
    assert float(half) == pytest.approx(1.25, abs=1e-3)


# -- pymovie-csv -------------------------------------------------------------------------------


@pytest.mark.parametrize("decimals,tolerance_s", [(4, 5e-5 + 1e-9), (6, 5e-7 + 1e-9)])
def test_pymovie_csv_round_trip(tmp_path, decimals, tolerance_s):
    run, _ = report_input(tmp_path, seed=2)
    path = _write(pymovie_csv, run, tmp_path / "out",
                  pymovie_csv.PymovieCsvOptions(decimals=decimals))[0]
    want = _true_times(run.lightcurve, "start")
    for name, lc in {**run.apertures, "ratio": run.lightcurve}.items():
        back = read_lightcurve(path, column=name)
        assert back.times.instant == "start"
        assert np.max(np.abs((back.times.utc() - want).to_value("s"))) <= tolerance_s
        np.testing.assert_allclose(back.flux, lc.flux, atol=5e-7, rtol=1e-9)
        np.testing.assert_array_equal(back.frame, run.lightcurve.frame)


def test_pymovie_csv_column_names_survive_pyotes_hyphen_split(tmp_path):
    import attrs
    run, _ = report_input(tmp_path)
    run = attrs.evolve(run, apertures={"no-star": run.apertures["target"]})
    path = _write(pymovie_csv, run, tmp_path / "out")[0]
    header = next(ln for ln in path.read_text().splitlines() if ln.startswith("FrameNum"))
    for column in header.split(",")[2:]:
        assert column.count("-") == 1, column       # PyOTE keeps the part after the hyphen


# -- vizier --------------------------------------------------------------------------------------


def test_vizier_round_trip(tmp_path):
    run, truth = report_input(tmp_path, seed=3)
    path = _write(vizier, run, tmp_path / "out", vizier.VizierOptions(margin_readings=50))[0]
    assert re.fullmatch(r"\(778\)_20240301_\d{6}_\d\d\.dat", path.name)
    assert path.read_bytes().count(b"\r\n") == 5
    back = vizier.read_vizier(path)
    lc = run.lightcurve
    starts = _true_times(lc, "start")
    mids = lc.times.offsets_s
    first = int(np.searchsorted(mids, truth.immersion_s)) - 50
    last = int(np.searchsorted(mids, truth.emersion_s)) + 50
    assert back["count"] == last - first
    assert abs((Time(back["start_utc"], scale="utc") - starts[first]).to_value("s")) <= 0.005 + 1e-9
    assert back["duration_s"] == pytest.approx(0.04 * (last - first), abs=0.006)
    flux = lc.flux[first:last]
    np.testing.assert_allclose(back["values"], flux / flux.max() * 9524, atol=0.5)
    assert max(back["values"]) == 9524
    assert back["star"] == ["0", "0", "0", "0", "0-0-1", "361-199861"]
    assert back["longitude"] == "+174:45:55.8" and back["latitude"] == "-36:50:41.3"
    assert back["altitude_m"] == 81 and back["observer"] == "Ada Observer"
    assert back["object"] == ["Asteroid", "778", "Theobalda"]


# -- iota-es -------------------------------------------------------------------------------------


def _need_samples():
    if not all(p.is_file() for p in IOTA_SAMPLES.values()):
        pytest.skip(f"IOTA-ES samples not found under {FIXTURES} (shared fixtures absent)")


# value formats of the samples' fields (checked against the samples themselves below)
FORMATS = {
    "Occultation": r"POSITIVE|NEGATIVE", "DATE": r"\d{1,2} [A-Z][a-z]+ \d{4}",
    "PREDICTTIME": r"\d\d [A-Z][a-z]{2}; (\d{4} )?\d\d:\d\d:\d\d UT",
    "STAR": r"[A-Z0-9]+ [\d-]+", "Nr": r"\d+", "Countrycode": r"[A-Z]{2}",
    "Latitude": r"[+-]\d\d \d\d \d\d\.\d", "Longitude": r"[+-]\d{3} \d\d \d\d\.\d",
    "Altitude": r"-?\d+(\.\d+)?", "Telescope": r"[1-8]?", "Aperture": r"\d+(\.\d+)?",
    "FocalLength": r"\d+(\.\d+)?", "ObservingMethod": r"[a-g]?",
    "StartObs": r"\d\d:\d\d:\d\d\.\d\d", "EndObs": r"\d\d:\d\d:\d\d\.\d\d",
    "D": r"M|[DdGgN]\d\d:\d\d:\d\d\.\d{1,3}", "R": r"M|[RrBbN]\d\d:\d\d:\d\d\.\d{1,3}",
    "Acc_D": r"(\d+\.\d{1,3})?", "Acc_R": r"(\d+\.\d{1,3})?", "Duration": r"(\d+\.\d{1,3})?",
    "Exp_Time": r"\d+\.\d+", "Timesource": r"[a-g]?", "Wind": r"\d{1,2}",
    "Temperature": r"-?\d+(\.\d)?", "Transparency": r"[1-7]", "Stability": r"[1-3]?",
}


def test_formats_match_the_samples_themselves():
    _need_samples()
    for path in IOTA_SAMPLES.values():
        _, values, _ = iota_es.read_form(path)
        for key, pattern in FORMATS.items():
            if values[key]:
                assert re.fullmatch(pattern, values[key].strip()), (path.name, key, values[key])


@pytest.mark.parametrize("outcome", ["positive", "negative"])
def test_iota_es_matches_the_sample_line_for_line(tmp_path, outcome):
    _need_samples()
    run, _ = report_input(tmp_path, positive=outcome == "positive")
    path = _write(iota_es, run, tmp_path / "out")[0]
    assert path.name.endswith("_POS.txt" if outcome == "positive" else "_NEG.txt")
    mine_literal, mine, _ = iota_es.read_form(path)
    sample_literal, sample, _ = iota_es.read_form(IOTA_SAMPLES[outcome])
    assert mine_literal == sample_literal            # same lines, sections, keys, order
    assert list(mine) == list(sample)
    for key, pattern in FORMATS.items():
        if mine[key]:
            assert re.fullmatch(pattern, mine[key]), (key, mine[key])
    # what is empty in the samples' negative report is empty here too
    if outcome == "negative":
        assert (mine["D"], mine["R"], mine["Acc_D"], mine["Acc_R"], mine["Duration"]) == \
            ("M", "M", "", "", "")


def test_iota_es_round_trip_of_every_filled_field(tmp_path):
    run, truth = report_input(tmp_path, seed=4)
    path = _write(iota_es, run, tmp_path / "out")[0]
    _, back, comments = iota_es.read_form(path)
    p = SAMPLE_PROFILE
    assert back["Occultation"] == "POSITIVE" and back["DATE"] == "1 March 2024"
    assert back["PREDICTTIME"] == "01 Mar; 2024 02:03:15 UT"
    assert (back["STAR"], back["ASTEROID"], back["Nr"]) == ("UCAC4 361-199861", "Theobalda", "778")
    assert (back["Observer1"], back["E-mail"], back["Address"]) == \
        (p["observer"]["name"], p["observer"]["email"], p["observer"]["address"])
    assert (back["NearestCity"], back["Countrycode"]) == ("Springfield", "NZ")
    assert (back["Latitude"], back["Longitude"], back["Altitude"]) == \
        ("-36 50 41.3", "+174 45 55.8", "81")
    assert (back["Datum"], back["Telescope"], back["Aperture"], back["FocalLength"]) == \
        ("", "3", "28", "280")
    assert (back["ObservingMethod"], back["Timesource"], back["Camera"]) == ("a", "a", "QHY174M GPS")
    epoch = run.lightcurve.times.epoch
    day = Time("2024-03-01", scale="utc")
    for key, edge_s, acc in (("D", truth.immersion_s, "0.004"), ("R", truth.emersion_s, "0.004")):
        assert back[key][0] == key
        h, m, s = back[key][1:].split(":")
        seconds = int(h) * 3600 + int(m) * 60 + float(s)
        true = ((epoch + edge_s * u.s) - day).to_value("s")
        assert abs(seconds - true) <= 0.0005 + 1e-9         # 3 decimals for a 4 ms accuracy
        assert back[f"Acc_{key}"] == acc                     # 3 sigma: max(3.0, 3.6) ms
    assert back["Duration"] == f"{truth.emersion_s - truth.immersion_s:.3f}"
    assert back["Exp_Time"] == "0.04" and back["Signal/Noise"] == "30.0"
    start = ((epoch - 0.02 * u.s) - day).to_value("s")
    assert back["StartObs"] == f"02:03:{start - 7380:05.2f}"
    assert (back["Wind"], back["Temperature"], back["Transparency"], back["Stability"]) == \
        ("2", "14.5", "1", "2")
    assert comments[0] == "synthetic run"
    assert "3-sigma" in comments[1]
    assert "timing: square (after diffraction declined)" in comments[-1]


def test_iota_es_rejects_an_unknown_code(tmp_path):
    import attrs
    run, _ = report_input(tmp_path)
    profile = {**run.profile, "equipment": {**run.profile["equipment"], "telescope": "periscope"}}
    with pytest.raises(Exception, match="telescope 'periscope' is not one of"):
        _write(iota_es, attrs.evolve(run, profile=profile), tmp_path / "out")


# -- na-excel ------------------------------------------------------------------------------------


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_na_excel_fills_the_documented_cells_and_leaves_the_template(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    from report_forms import write_na_template
    template = write_na_template(tmp_path / "NA_form.xlsx")
    before = _digest(template)
    run, truth = report_input(tmp_path, seed=5)
    path = _write(na_excel, run, tmp_path / "out", na_excel.NaExcelOptions(template=str(template)))[0]
    assert _digest(template) == before
    assert path.name.endswith("_POS.xlsx")
    sheet = openpyxl.load_workbook(path)["DATA"]
    assert (sheet["D5"].value, sheet["K5"].value, sheet["P5"].value) == (2024, "March", 1)
    assert (sheet["Y5"].value, sheet["AA5"].value, sheet["AC5"].value) == (2, 3, 15)
    assert (sheet["E7"].value, sheet["K7"].value, sheet["S7"].value, sheet["X7"].value) == \
        (778, "Theobalda", "UCAC4", "361-199861")
    assert sheet["D9"].value == "Ada Observer" and sheet["S9"].value == "ada@example.org"
    assert sheet["E18"].value == pytest.approx(36 + 50 / 60 + 41.3 / 3600, abs=1e-6)
    assert (sheet["J18"].value, sheet["R18"].value, sheet["V18"].value) == ("S", "E", 81.0)
    assert sheet["O23"].value == "occcore" and sheet["P25"].value == pytest.approx(0.04)
    epoch = run.lightcurve.times.epoch
    day = Time("2024-03-01", scale="utc")
    for row, edge_s in (("32", truth.immersion_s), ("36", truth.emersion_s)):
        seconds = sheet[f"F{row}"].value * 3600 + sheet[f"H{row}"].value * 60 + sheet[f"J{row}"].value
        assert abs(seconds - ((epoch + edge_s * u.s) - day).to_value("s")) <= 5e-5 + 1e-9
    assert (sheet["L33"].value, sheet["M33"].value, sheet["N33"].value) == (0.0012, 0.0024, 0.0036)
    assert sheet["W40"].value == 30.0
    assert "occcore" in sheet["D44"].value
    assert sheet["G1"].value == "Asteroid Occultation Report Form"    # the template kept


def test_na_excel_names_a_wrong_template(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wrong = tmp_path / "budget.xlsx"
    openpyxl.Workbook().save(wrong)
    run, _ = report_input(tmp_path)
    with pytest.raises(Exception, match=r"budget\.xlsx: not the asteroid occultation report form"):
        _write(na_excel, run, tmp_path / "out", na_excel.NaExcelOptions(template=str(wrong)))


# -- plots ---------------------------------------------------------------------------------------


def test_plots_write_png_and_pdf_of_the_light_curve_and_chords(tmp_path):
    import matplotlib.image
    run, _ = report_input(tmp_path, with_limb=True)
    files = _write(plots, run, tmp_path / "out")
    suffixes = sorted(p.name.rsplit("_", 1)[-1] for p in files)
    assert suffixes == ["chords.pdf", "chords.png", "lightcurve.pdf", "lightcurve.png"]
    for path in files:
        if path.suffix == ".pdf":
            assert path.read_bytes().startswith(b"%PDF")
        else:
            image = matplotlib.image.imread(path)
            assert image.shape[0] > 500 and image.shape[1] > 500
            # something is drawn: many distinct colours, not a blank canvas
            assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50


# -- command line and [report] writers ---------------------------------------------------------


@pytest.fixture
def fitted_run(tmp_path):
    """A run directory as reduce + fit leave it: lightcurve.ecsv and timing.json."""
    from occcore.synthetic import square_well_lightcurve
    lc, truth = square_well_lightcurve(n_points=500, cadence_s=0.05, immersion_s=10.0123456,
                                       emersion_s=14.5432109, bottom=0.05, sigma=0.02, seed=7)
    times = lc.times.utc()
    table = Table({"time": times, "frame": np.arange(len(lc.flux)),
                   "flux_target": lc.flux * 1000, "flux_err_target": lc.flux_err * 1000,
                   "flux_reference": np.full(len(lc.flux), 2000.0), "ratio": lc.flux})
    table.meta.update({"time_instant": "mid", "exposure_s": 0.05, "source": "synthetic"})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    table.write(run_dir / "lightcurve.ecsv", format="ascii.ecsv")
    assert main(["fit", str(run_dir / "lightcurve.ecsv"), "-o", str(run_dir), "--model",
                 "square"]) == 0
    profile = tmp_path / "observer.toml"
    profile.write_text('[observer]\nname = "Ada"\n[site]\nlatitude = "-36 50 41.3"\n'
                       'longitude = 174.765\naltitude_m = 81\n[event]\nasteroid = "Theobalda"\n'
                       'asteroid_number = 778\nstar = "UCAC4 361-199861"\n')
    return run_dir, profile, truth, lc


def test_report_command_writes_every_format(fitted_run, tmp_path, capsys):
    run_dir, profile, truth, lc = fitted_run
    out = tmp_path / "reports"
    code = main(["report", str(run_dir), "--format", "sora,iota-es,pymovie-csv,vizier,plots",
                 "-o", str(out), "--observer", str(profile)])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert any(n.endswith("_IOTA-ES_POS.txt") for n in names)
    assert any(n.endswith("_sora_lc.dat") for n in names)
    assert any(n.startswith("(778)_") for n in names)
    assert not any(n.endswith(".part") for n in names)
    _, back, comments = iota_es.read_form(next(out.glob("*_IOTA-ES_POS.txt")))
    h, m, s = back["D"][1:].split(":")
    immersion = lc.times.epoch + truth.immersion_s * u.s
    found = Time("2024-03-01", scale="utc") + (int(h) * 3600 + int(m) * 60 + float(s)) * u.s
    assert abs((found - immersion).to_value("s")) < 3 * float(back["Acc_D"])
    assert "timing: square" in comments[-1]


def test_report_command_errors(fitted_run, tmp_path, capsys):
    run_dir, profile, _, _ = fitted_run
    assert main(["report", str(run_dir), "--format", "sroa"]) == 2
    assert "sora" in capsys.readouterr().err                        # did you mean
    bad = tmp_path / "bad.toml"
    bad.write_text('[observer]\nnmae = "x"\n')
    assert main(["report", str(run_dir), "--format", "sora", "--observer", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "nmae" in err and "name" in err
    assert main(["report", str(tmp_path / "nothing-here"), "--format", "sora"]) == 2
    # one reporter failing does not stop the others; the command fails naming it
    assert main(["report", str(run_dir), "--format", "na-excel,sora", "-o",
                 str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "na-excel" in err and "template" in err
    assert list((tmp_path / "o").glob("*_sora_lc.dat"))


def test_report_writers_run_after_fit(fitted_run, tmp_path):
    run_dir, profile, _, _ = fitted_run
    config = tmp_path / "occcore.toml"
    config.write_text(f'[report]\nwriters = ["sora", "vizier"]\nobserver = ["{profile}"]\n')
    out = tmp_path / "fit-out"
    assert main(["--config", str(config), "fit", str(run_dir / "lightcurve.ecsv"), "-o", str(out),
                 "--model", "square"]) == 0
    names = [p.name for p in out.iterdir()]
    assert "timing.json" in names
    assert any(n.endswith("_sora_lc.dat") for n in names) and any(n.startswith("(778)_") for n in names)


def test_negative_observation_reports_a_miss(tmp_path):
    from occcore.synthetic import square_well_lightcurve
    lc, _ = square_well_lightcurve(n_points=400, cadence_s=0.05, bottom=1.0, sigma=0.02, seed=8)
    table = Table({"time": lc.times.utc(), "ratio": lc.flux})
    table.meta.update({"time_instant": "mid", "exposure_s": 0.05})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    table.write(run_dir / "lightcurve.ecsv", format="ascii.ecsv")
    assert main(["fit", str(run_dir / "lightcurve.ecsv"), "-o", str(run_dir)]) == 0
    assert main(["report", str(run_dir), "--format", "iota-es,plots"]) == 0
    _, back, _ = iota_es.read_form(next(run_dir.glob("*_IOTA-ES_NEG.txt")))
    assert back["Occultation"] == "NEGATIVE" and back["D"] == "M" and back["R"] == "M"
    assert list(run_dir.glob("*_lightcurve.png"))
