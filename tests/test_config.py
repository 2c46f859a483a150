import pytest
import toyplugins as toy

from occcore.config import dumps_toml, load_config, parse_set, validate
from occcore.errors import ConfigError, UnknownImplementation


def test_precedence_defaults_file_set(tmp_path):
    (tmp_path / "occcore.toml").write_text('[run]\nseed = 5\nprogress = false\n')
    config = load_config(cwd=tmp_path)
    assert config.get("run.seed") == 5 and config.get("run.progress") is False
    assert config.get("run.strict") is False                       # default kept
    config = load_config(cwd=tmp_path, sets=["run.seed=7"])
    assert config.get("run.seed") == 7
    other = tmp_path / "other.toml"
    other.write_text("[run]\nseed = 9\n")
    assert load_config(other, cwd=tmp_path).get("run.seed") == 9  # --config replaces ./occcore.toml


@pytest.mark.parametrize("text, expected", [
    ("[aling]\nchain = []\n", "did you mean 'align'"),
    ("[align]\nchian = []\n", "did you mean 'chain'"),
    ("[run]\nseed = 'x'\n", "must be int"),
    ("[run]\nstrict = 1\n", "must be bool"),
    ("[align]\nmin_aligned_fraction = 2.0\n", "between 0 and 1"),
    ("[run\n", "not valid TOML"),
])
def test_bad_config_files(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert err.value.exit_code == 2


def test_set_values_are_toml_or_text():
    assert parse_set("align.chain=['a', 'b']") == (["align", "chain"], ["a", "b"])
    assert parse_set("run.seed=3") == (["run", "seed"], 3)
    assert parse_set("read.reader=fits") == (["read", "reader"], "fits")
    with pytest.raises(ConfigError):
        parse_set("novalue")


def test_unknown_implementation_and_options_are_checked(make_registry, tmp_path):
    registry = make_registry(("al", toy.Aligners()))
    validate(load_config(sets=['align.chain=["dummy"]'], cwd=tmp_path), registry)
    with pytest.raises(UnknownImplementation, match="did you mean 'dummy'"):
        validate(load_config(sets=['align.chain=["dumy"]'], cwd=tmp_path), registry)
    validate(load_config(sets=["align.options.dummy.level=3"], cwd=tmp_path), registry)
    with pytest.raises(ConfigError, match="did you mean 'level'"):
        validate(load_config(sets=["align.options.dummy.levl=3"], cwd=tmp_path), registry)
    with pytest.raises(UnknownImplementation):
        validate(load_config(sets=["read.reader=nosuch"], cwd=tmp_path), registry)


def test_shown_config_reads_back_identically(tmp_path):
    config = load_config(sets=['read.prefer."*.avi"=["fits"]', "run.seed=3"], cwd=tmp_path)
    path = tmp_path / "shown.toml"
    path.write_text(dumps_toml(config.data))
    assert load_config(path).data == config.data
