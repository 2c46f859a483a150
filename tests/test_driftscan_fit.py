"""A drift-scan image through the commands a user runs: ``occcore fit IMAGE --reader
driftscan`` gives the direct 49 % D and R (roughness errors) in the keys of any timing
result, the trail-PSF model fit beside them, and the IOTA-ES report says "drift scan"."""
import json

from astropy.time import Time

from occcore.cli import main
from occcore.synthetic.driftscan import drift_scan_image, write_drift_scan_fits


def test_fit_and_report_a_drift_scan_image(tmp_path, capsys):
    image, header, truth = drift_scan_image(seed=5)
    path = write_drift_scan_fits(tmp_path / "lutetia-like.fits", image, header)
    out = tmp_path / "run"
    assert main(["--no-plugins", "--set", "read.options.driftscan.target=[25.3, 19.6]",
                 "fit", str(path), "--reader", "driftscan", "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "positive" and result["model"] == "driftscan"
    opened = Time(truth.shutter_open_utc, scale="utc")
    for edge, true_s in (("immersion", truth.disappearance_s), ("emersion", truth.reappearance_s)):
        found = (Time(result[edge]["time_utc"], scale="utc") - opened).to_value("s")
        minus, plus = result[edge]["err3_s"]
        assert -minus <= true_s - found <= plus, (edge, true_s, found, minus, plus)
        model = result["diagnostics"]["extra"]["psf_model_fit"][edge]
        fitted = (Time(model["time_utc"], scale="utc") - opened).to_value("s")
        # the model fit agrees with the direct method within their combined 3-sigma errors
        assert abs(fitted - found) < 3 * (model["err1_s"][1] + result[edge]["err1_s"][1])
    profile = tmp_path / "observer.toml"
    profile.write_text('[observer]\nname = "A. Observer"\n[event]\nasteroid = "Lutetia"\n')
    assert main(["--no-plugins", "report", str(out), "--format", "iota-es",
                 "--observer", str(profile)]) == 0
    form = next(out.glob("*IOTA-ES_POS.txt")).read_text()
    assert "#ObservingMethod: e" in form
