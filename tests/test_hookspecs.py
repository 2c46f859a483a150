"""Every hook is documented with an example, and the hook API changes only on purpose."""
import inspect
import json
from pathlib import Path

from occcore import hookspecs
from occcore.plugin import SPEC_TYPES

SNAPSHOT = Path(__file__).parent / "data" / "hookspecs.json"


def _specs():
    return {name: fn for name, fn in vars(hookspecs).items()
            if name.startswith("occcore_") and callable(fn)}


def test_every_hook_is_documented_with_an_example():
    for name, fn in _specs().items():
        doc = inspect.getdoc(fn) or ""
        assert "Example::" in doc and "When:" in doc, name


def test_hook_signatures_match_the_snapshot():
    current = {name: list(inspect.signature(fn).parameters) for name, fn in _specs().items()}
    assert current == json.loads(SNAPSHOT.read_text())


def test_every_kind_has_a_registration_hook():
    assert set(hookspecs.registration_hooks()) == set(SPEC_TYPES)
    for hook in hookspecs.registration_hooks().values():
        assert hook in _specs()
        assert list(inspect.signature(_specs()[hook]).parameters) == []
