"""occcore's conformance kit: an opt-in pytest plugin for occcore and plugin authors.

Use it with ``pytest_plugins = ["occcore.testing"]`` in your ``conftest.py``. It gives

* fixtures ``occ_registry`` (built-ins and installed plugins, as ``occcore`` would
  load them), ``occ_builtin_registry`` (built-ins only) and ``make_registry`` (built-ins
  plus plugin objects you pass, for temporary plugins in a test);
* seeded synthetic data in :mod:`occcore.synthetic` (which never imports pytest);
* contract test classes in :mod:`occcore.testing.contracts`.
"""
from __future__ import annotations

import pytest

from occcore.registry import load_registry


@pytest.fixture(scope="session")
def occ_registry():
    """Built-in and installed third-party plugins, as the ``occcore`` command loads them."""
    return load_registry()


@pytest.fixture(scope="session")
def occ_builtin_registry():
    """Built-in plugins only: tests do not depend on what else is installed."""
    return load_registry(no_plugins=True)


@pytest.fixture
def make_registry():
    """``make_registry(("name", plugin_object), ...)``: built-ins plus these plugins."""
    def make(*plugins, no_plugins: bool = True):
        return load_registry(no_plugins=no_plugins, extra_plugins=plugins)
    return make
