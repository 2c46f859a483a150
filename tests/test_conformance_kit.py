"""The conformance kit tests a plugin object before it is installed: a contract subclass
names the object in ``plugin`` and every contract test runs against it."""
import types
from pathlib import Path

from occcore.plugin import NotApplicable, ReporterSpec, hookimpl, write_text
from occcore.testing.contracts import ReporterContract


def _write(run, destination, *, options, context):
    if run.lightcurve is None and run.timing is None and run.limb is None:
        raise NotApplicable("nothing to summarise")
    outcome = run.timing.outcome if run.timing is not None else "no timing"
    return [write_text(Path(destination) / "summary.txt", f"{outcome}\n")]


@hookimpl
def occcore_reporters():
    yield ReporterSpec(name="one-line-summary", summary="the outcome in one line", write=_write)


UNINSTALLED = types.ModuleType("one_line_summary")
UNINSTALLED.occcore_reporters = occcore_reporters


class TestAnUninstalledReporter(ReporterContract):
    name = "one-line-summary"
    plugin = UNINSTALLED


def test_the_kit_refuses_what_the_contract_forbids(tmp_path):
    """The same contract fails a reporter that writes outside its destination."""
    import pytest

    def leaky(run, destination, *, options, context):
        return [write_text(tmp_path / "elsewhere.txt", "x")]

    contract = TestAnUninstalledReporter()
    spec = ReporterSpec(name="leaky", summary="writes elsewhere", write=leaky)
    registered = types.SimpleNamespace(spec=spec)
    with pytest.raises(AssertionError):
        contract.test_writes_its_files_inside_the_destination(registered, tmp_path)
