"""The example's tests run against the installed package (``pip install -e .``), the way
occcore itself finds it: through the entry-point group ``occcore``."""
import importlib.metadata

import pytest

pytest_plugins = ["occcore.testing"]


def pytest_collection_modifyitems(config, items):
    installed = any(ep.value == "occcore_example"
                    for ep in importlib.metadata.entry_points(group="occcore"))
    if not installed:
        skip = pytest.mark.skip(reason="occcore-example is not installed; run "
                                "`pip install -e examples/occcore-example` first")
        for item in items:
            item.add_marker(skip)
