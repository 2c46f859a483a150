"""End to end through the ``occcore`` command (in-process): a light curve is fitted by
the third-party fitter, whose result has edges without intervals, and every report is
written from it."""
import json
import os

import pytest
from samples import write_pymovie_csv, write_tlc

from occcore.cli import main
from occcore.model import TimingResult
from occcore.synthetic import diffraction_lightcurve

OBSERVER = """
[observer]
name = "Ada Observer"
email = "ada@example.org"
[site]
nearest_city = "Springfield"
country_code = "NZ"
latitude = "-36 50 41.3"
longitude = "+174 45 55.8"
altitude_m = 81.0
[equipment]
telescope = "SCT"
aperture_cm = 28
camera = "QHY174M GPS"
time_source = "GPS"
method = "video"
[event]
asteroid = "Theobalda"
asteroid_number = 778
star = "UCAC4 361-199861"
"""


@pytest.fixture
def readings(tmp_path, monkeypatch):
    """A seeded synthetic event (start-of-exposure stamps from 02:03:04.000 UTC): its
    times of day, fluxes and truth."""
    monkeypatch.chdir(tmp_path)                 # no stray occcore.toml is picked up
    for name in ("OCCCORE_DISABLE_PLUGINS", "OCCCORE_LOAD_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    lc, truth = diffraction_lightcurve(n_event=40, exposure_s=0.1, snr=20, seed=11,
                                       epoch="2024-03-01T02:03:04.000", time_instant="start")
    return 2 * 3600 + 3 * 60 + 4.0 + lc.times.offsets_s, lc.flux, truth


@pytest.fixture
def curve(readings, tmp_path):
    """The readings as a PyMovie CSV, which ``occcore fit`` reads today."""
    seconds, flux, truth = readings
    return write_pymovie_csv(tmp_path / "theobalda.csv", seconds, flux), truth


FIT = ["--model", "halfway", "--date", "2024-03-01"]


def test_fit_reads_a_tlc_file_through_the_plugin(readings, tmp_path, capsys):
    seconds, flux, _ = readings
    path = write_tlc(tmp_path / "theobalda.tlc", "2024-03-01", seconds, flux)
    assert main(["fit", str(path), "--model", "halfway", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "halfway"
    assert result["immersion"]["time_utc"].startswith("2024-03-01T02:03:1")


def test_fit_prints_the_edges(curve, capsys):
    path, truth = curve
    assert main(["fit", str(path), *FIT, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "positive" and result["model"] == "halfway"
    assert result["immersion"]["err1_s"] is None
    # the file's first stamp is 02:03:04.000 at the start of an exposure of 0.1 s
    immersion = result["immersion"]["time_utc"]
    assert immersion.startswith("2024-03-01T02:03:")
    found_s = float(immersion[17:]) - 4.0
    assert abs(found_s - truth.immersion_s) < truth.exposure_s


def test_fit_writes_timing_json(curve, tmp_path):
    path, _ = curve
    out = tmp_path / "run"
    assert main(["fit", str(path), *FIT, "-o", str(out)]) == 0
    result = TimingResult.from_json(json.loads((out / "timing.json").read_text()))
    assert result.model == "halfway" and result.immersion.err3_s is None
    assert result.immersion.time.isot.startswith("2024-03-01T02:03:1")


def test_fit_writes_timing_png(curve, tmp_path):
    path, _ = curve
    out = tmp_path / "run"
    assert main(["fit", str(path), *FIT, "-o", str(out)]) == 0
    assert (out / "timing.png").stat().st_size > 0


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One ``occcore fit -o RUN`` of the curve, and an observer profile, for the reports."""
    root = tmp_path_factory.mktemp("fitted")
    lc, _ = diffraction_lightcurve(n_event=40, exposure_s=0.1, snr=20, seed=11,
                                   time_instant="start")
    path = write_pymovie_csv(root / "theobalda.csv", 7384.0 + lc.times.offsets_s, lc.flux)
    assert main(["fit", str(path), *FIT, "-o", str(root / "run")]) == 0
    (root / "observer.toml").write_text(OBSERVER)
    return root


def _report(fitted, fmt, capsys=None):
    out = fitted / ("out-" + fmt.replace(",", "-"))
    code = main(["report", str(fitted / "run"), "--format", fmt, "-o", str(out),
                 "--observer", str(fitted / "observer.toml"), "--json"])
    return code, out


@pytest.mark.parametrize("fmt", ["sora", "iota-es", "pymovie-csv", "vizier", "plots"])
def test_report_from_a_result_without_intervals(fitted, fmt, capsys):
    code, out = _report(fitted, fmt)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    files = json.loads(captured.out)["files"]
    assert files and all(os.path.getsize(f) > 0 for f in files), f"{fmt} wrote {files}"


def test_report_all_formats_in_one_call(fitted, capsys):
    code, out = _report(fitted, "sora,iota-es,pymovie-csv,vizier,plots")
    assert code == 0, capsys.readouterr().err
    assert len(list(out.iterdir())) >= 7


def test_reports_keep_the_date_of_the_fit(fitted):
    assert _report(fitted, "iota-es")[0] == 0
    form = next((fitted / "out-iota-es").glob("*IOTA-ES_POS.txt")).read_text()
    assert "#DATE: 1 March 2024" in form


def test_iota_es_writes_the_edges_of_a_positive_without_intervals(fitted):
    assert _report(fitted, "iota-es")[0] == 0
    form = next((fitted / "out-iota-es").glob("*IOTA-ES_POS.txt")).read_text()
    assert "#D: M" not in form and "#R: M" not in form
    assert "#D: D" in form and "#Acc_D:\n" in form       # the time, and no invented accuracy
    assert "nan" not in form
