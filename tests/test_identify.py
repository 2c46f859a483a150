import pytest
import toyplugins as toy

from occcore.errors import AmbiguousFormat, InputError, UnknownFormat
from occcore.identify import choose_readers, identify, resolve_source
from occcore.plugin import Match


def test_levels_are_graded(make_registry, tmp_path):
    registry = make_registry(("toy", toy.ToyReader()))
    right = toy.write_toy(tmp_path / "a.toy")
    found = identify(resolve_source(right), registry)
    assert found.winner.reader.name == "toy" and found.winner.level == Match.SIGNATURE
    # right extension, wrong content: only the extension level
    wrong = tmp_path / "b.toy"
    wrong.write_bytes(b"nothing")
    found = identify(resolve_source(wrong), registry)
    assert found.winner.level == Match.EXTENSION
    # right content, wrong name: the signature still wins
    renamed = toy.write_toy(tmp_path / "c.dat")
    assert identify(resolve_source(renamed), registry).winner.reader.name == "toy"


def test_identifier_that_raises_is_recorded_not_fatal(make_registry, tmp_path):
    registry = make_registry(("boom", toy.RaisingIdentify()), ("toy", toy.ToyReader()))
    found = identify(resolve_source(toy.write_toy(tmp_path / "a.toy")), registry)
    assert found.winner.reader.name == "toy"
    [bad] = [v for v in found.verdicts if v.reader.name == "exploding"]
    assert "RuntimeError: identify exploded" in bad.error


def test_tie_is_ambiguous_with_the_toml_to_settle_it(make_registry, tmp_path):
    registry = make_registry(("alpha", toy.ToyReader()), ("beta", toy.TwinToyReader()))
    source = resolve_source(toy.write_toy(tmp_path / "a.toy"))
    with pytest.raises(AmbiguousFormat) as err:
        choose_readers(source, registry)
    assert "alpha/toy" in str(err.value) and "[read]" in str(err.value)
    readers, _ = choose_readers(source, registry, chosen=["beta/toy"])
    assert readers[0].provider.plugin == "beta"


def test_no_match_lists_every_reader(occ_builtin_registry, tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(UnknownFormat) as err:
        choose_readers(resolve_source(path), occ_builtin_registry)
    message = str(err.value)
    for name in ("fits", "ser", "archive"):
        assert name in message
    assert err.value.exit_code == 2


def test_prefer_replaces_identification(make_registry, tmp_path):
    registry = make_registry(("toy", toy.ToyReader()))
    path = tmp_path / "a.xyz"
    path.write_bytes(b"whatever")
    readers, found = choose_readers(resolve_source(path), registry, prefer={"*.xyz": ["toy"]})
    assert [r.name for r in readers] == ["toy"] and found is None


def test_sources_resolve_file_dir_glob_list(tmp_path):
    a = toy.write_toy(tmp_path / "a.toy")
    b = toy.write_toy(tmp_path / "b.toy")
    assert resolve_source(a).kind == "file"
    assert resolve_source(tmp_path).kind == "dir"
    glob = resolve_source(str(tmp_path / "*.toy"))
    assert glob.kind == "glob" and glob.paths == (a, b)
    assert resolve_source([a, b]).kind == "list"
    with pytest.raises(InputError, match="no such file"):
        resolve_source(tmp_path / "missing.toy")
    with pytest.raises(InputError, match="matches no file"):
        resolve_source(str(tmp_path / "*.nothing"))


def test_a_glob_is_read_whole_or_refused(tmp_path):
    """Two 20-frame files named by one glob: a reader that takes several files reads all 40
    frames; one that reads single files is never handed the glob (an error says so)."""
    import numpy as np
    from astropy.time import Time

    from occcore.api import Session
    from occcore.config import load_config
    from occcore.errors import InputError
    from occcore.synthetic import write_fits_series, write_ser
    frames = np.random.default_rng(0).integers(100, 200, (40, 8, 10)).astype(np.uint16)
    t0 = Time("2024-01-01T00:00:00", scale="utc")
    from astropy import units as u
    times = t0 + np.arange(40) * 0.04 * u.s
    write_fits_series(tmp_path / "fits", frames, times, exposure_s=0.04)
    (tmp_path / "ser").mkdir()
    write_ser(tmp_path / "ser" / "a.ser", frames[:20], times[:20])
    write_ser(tmp_path / "ser" / "b.ser", frames[20:], times[20:])
    with Session(config=load_config(cwd=tmp_path), no_plugins=True) as session:
        with session.open(str(tmp_path / "fits" / "*.fits")) as series:
            assert len(series) == 40
        with pytest.raises(InputError, match="do not read several files: .*ser"):
            session.open(str(tmp_path / "ser" / "*.ser"))
