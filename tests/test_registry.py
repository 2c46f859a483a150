import logging

import pytest
import toyplugins as toy

from occcore.errors import AmbiguousImplementation, OccCoreError, UnknownImplementation
from occcore.plugin import Event
from occcore.registry import load_registry


def test_builtins_are_registered_with_builtin_provider(occ_builtin_registry):
    names = occ_builtin_registry.names("reader")
    assert {"fits", "ser", "archive"} <= set(names)
    for r in occ_builtin_registry.implementations("reader"):
        assert r.provider.builtin


@pytest.mark.parametrize("plugin, reason", [
    (toy.ReturnsNone(), "returned None"),
    (toy.YieldsWrongType(), "expected ReaderSpec"),
    (toy.RaisesInHook(), "cannot register"),
    (toy.UnknownHook(), "unknown hook 'occcore_reader'"),
    (toy.FutureApi(), "needs occcore plugin API 99"),
])
def test_bad_plugin_is_a_broken_row_not_a_crash(make_registry, plugin, reason, caplog):
    with caplog.at_level(logging.WARNING, logger="occcore"):
        registry = make_registry(("bad", plugin), ("good", toy.ToyReader()))
    assert "toy" in registry.names("reader")          # the good one still works
    broken = [r for r in registry.rows() if r.status == "broken"]
    assert len(broken) == 1 and broken[0].name == "bad"
    assert reason in broken[0].reason
    assert "bad" in caplog.text and "broken" in caplog.text


def test_module_that_fails_to_import_is_broken():
    registry = load_registry(no_plugins=True, extra_modules=["no_such_plugin_module_xyz"])
    [row] = [r for r in registry.rows() if r.status == "broken"]
    assert "import failed" in row.reason and "ModuleNotFoundError" in row.reason


def test_duplicate_names_break_only_when_used(make_registry):
    registry = make_registry(("alpha", toy.ToyReader()), ("beta", toy.TwinToyReader()))
    assert registry.get("reader", "fits")              # other names still work
    with pytest.raises(AmbiguousImplementation) as err:
        registry.get("reader", "toy")
    message = str(err.value)
    assert "alpha/toy" in message and "beta/toy" in message
    assert registry.get("reader", "beta/toy").provider.plugin == "beta"
    statuses = {r.name: r.status for r in registry.rows()}
    assert statuses["alpha/toy"] == "ambiguous"


def test_unknown_name_suggests_close_match(occ_builtin_registry):
    with pytest.raises(UnknownImplementation, match="did you mean 'fits'"):
        occ_builtin_registry.get("reader", "fitz")


def test_missing_required_module_is_unavailable(make_registry):
    registry = make_registry(("al", toy.Aligners()))
    rows = {r.name: r for r in registry.rows()}
    assert rows["needs-missing"].status == "unavailable"
    assert "no_such_module_xyz" in rows["needs-missing"].reason
    assert rows["dummy"].status == "active"


def test_observers_get_events_and_a_failing_one_is_not_fatal(make_registry, caplog):
    seen = toy.Observer()
    registry = make_registry(("obs", seen), ("bad-obs", toy.BrokenObserver()))
    with caplog.at_level(logging.WARNING, logger="occcore"):
        registry.emit(Event(kind="log", message="hello"))
    assert [e.message for e in seen.events] == ["hello"]
    assert "observer bug" in caplog.text


def test_switches_turn_third_party_plugins_off(monkeypatch):
    calls = []
    import importlib.metadata as md
    real = md.entry_points

    def spy(**kw):
        calls.append(kw)
        return real(**kw)

    monkeypatch.setattr(md, "entry_points", spy)
    load_registry(env={"OCCCORE_DISABLE_PLUGINS": "1"})
    load_registry(no_plugins=True, env={})
    load_registry(env={"OCCCORE_LOAD_PLUGINS": ""})
    assert calls == []
    load_registry(env={})
    assert calls == [{"group": "occcore"}]


def test_builtin_failure_is_loud(monkeypatch):
    import occplugins
    monkeypatch.setattr(occplugins, "BUILTIN_PLUGINS", ("occplugins.readers.no_such",))
    with pytest.raises(ModuleNotFoundError):
        load_registry(no_plugins=True)


def test_hookimpl_with_defaults_is_refused(make_registry):
    from occcore.plugin import hookimpl

    class WithDefault:
        @hookimpl
        def occcore_on_event(self, event=None):
            pass

    registry = make_registry(("defaults", WithDefault()))
    [row] = [r for r in registry.rows() if r.status == "broken"]
    assert "defaults" in row.reason


def test_builtin_bad_record_raises(monkeypatch):
    import occplugins.readers.ser as ser_module

    def bad():
        yield "not a record"

    monkeypatch.setattr(ser_module, "occcore_readers", ser_module.hookimpl(bad))
    with pytest.raises(OccCoreError, match="built-in plugin"):
        load_registry(no_plugins=True)
