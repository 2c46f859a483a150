"""In-tree plugins import only the public plugin API and register like third parties."""
import ast
import importlib.metadata
from pathlib import Path

import occplugins

PLUGIN_DIR = Path(occplugins.__file__).parent
ALLOWED = {"occcore.plugin", "occcore.model"}


def _imports(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_plugins_import_only_the_public_api():
    offenders = []
    files = list(PLUGIN_DIR.rglob("*.py"))
    assert len(files) > 3
    for path in files:
        for module in _imports(path):
            if (module == "occcore" or module.startswith("occcore.")) and module not in ALLOWED:
                offenders.append(f"{path.relative_to(PLUGIN_DIR)} imports {module}")
    assert offenders == []


def test_builtins_are_not_entry_points_of_occcore_itself():
    for ep in importlib.metadata.entry_points(group="occcore"):
        assert not ep.value.startswith("occplugins"), ep


def test_every_builtin_module_is_registered(occ_builtin_registry):
    from occcore.plugin import KINDS
    modules = {m.removeprefix("occplugins.") for m in occplugins.BUILTIN_PLUGINS}
    providers = {r.provider.plugin for kind in KINDS
                 for r in occ_builtin_registry.implementations(kind.name)}
    assert modules <= providers


def test_plugins_package_is_namespaced():
    assert occplugins.__name__ == "occplugins"
    assert PLUGIN_DIR.name == "plugins"
