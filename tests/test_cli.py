import json

import pytest

from occcore import __version__
from occcore.cli import main
from occcore.synthetic import write_ser


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_plugins_json(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    rows = json.loads(out)
    assert code == 0
    assert {"kind": "reader", "name": "fits", "provider": "builtin", "status": "active",
            "reason": ""} in rows


def test_formats_and_identify(capsys, tmp_path):
    code, out, _ = run(capsys, "formats")
    assert code == 0 and "fits" in out and "*.ser" in out
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"\1" * 300)
    code, out, _ = run(capsys, "identify", str(bad), "--json")
    assert code == 1 and json.loads(out)["winner"] is None


def test_config_typo_exits_2_and_suggests(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "occcore.toml").write_text("[align]\nchian = ['roi']\n")
    code, _, err = run(capsys, "config", "check")
    assert code == 2
    assert "did you mean 'chain'" in err


def test_config_show_and_check(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "config", "show", "--set", "run.seed=11")
    assert code == 0 and "seed = 11" in out
    code, out, _ = run(capsys, "config", "check")
    assert code == 0 and "ok" in out


def test_exhausted_chain_prints_attempts_and_exits_1(capsys, tmp_path):
    # a file that the explicitly chosen readers both fail on
    path = tmp_path / "broken.ser"
    path.write_bytes(b"LUCAM-RECORDER" + b"\0" * 100)
    code, _, err = run(capsys, "info", str(path), "--reader", "ser,fits")
    assert code == 1
    assert "step 'read' failed" in err
    assert "1. ser" in err and "2. fits" in err
    assert "CorruptSource" in err


def test_missing_file_is_a_usage_error(capsys, tmp_path):
    code, _, err = run(capsys, "info", str(tmp_path / "nope.fits"))
    assert code == 2 and "no such file" in err


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == 2


def test_info_json_keys(capsys, tmp_path):
    import numpy as np
    from astropy import units as u
    from astropy.time import Time
    t = Time("2024-01-02T03:04:05.123456", scale="utc") + np.arange(4) * 0.02 * u.s
    path = write_ser(tmp_path / "a.ser", np.zeros((4, 8, 10), np.uint16), t)
    code, out, _ = run(capsys, "info", str(path), "--json")
    info = json.loads(out)
    assert code == 0
    for key in ("format", "reader", "n_frames", "width", "height", "bit_depth", "start_utc",
                "end_utc", "exposure_s", "time_instant", "time_source", "metadata"):
        assert key in info
    assert info["start_utc"] == "2024-01-02T03:04:05.123456"
    assert info["end_utc"] == "2024-01-02T03:04:05.183456"
