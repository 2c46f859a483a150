"""The tlc light-curve reader: identified by its content, exact times, clear errors."""
import numpy as np
import pytest
from samples import write_tlc

from occcore.plugin import CorruptSource, Match, Probe, Source, StepContext, kind_of
from occcore.testing.contracts import RegistrationContract


class TestTlcRegistration(RegistrationContract):
    kind = "lightcurve-reader"
    name = "tlc"


@pytest.fixture
def tlc(occ_registry):
    return occ_registry.get("lightcurve-reader", "tlc").spec


def _read(spec, path, **options):
    source = Source(paths=[path], kind="file", display_name=path.name)
    return spec.read(source, options=spec.options(**options), context=StepContext())


def test_identified_by_content_not_by_name(tlc, tmp_path):
    path = write_tlc(tmp_path / "curve.txt", "2024-03-01", [10.0, 10.5, 11.0], [1, 2, 3])
    level, note = tlc.identify(Probe.of(path))
    assert level == Match.CONTENT and "tlc" in note
    other = tmp_path / "other.tlc"
    other.write_text("FrameNum,timeInfo,signal-target\n0,[00:00:01.0000],5\n")
    assert tlc.identify(Probe.of(other)) is None
    assert tlc.identify(Probe.of(tmp_path)) is None          # a directory


def test_times_flux_and_midnight(tlc, tmp_path):
    seconds = [86399.0, 86399.5, 86400.0, 86400.5]           # crosses midnight
    path = write_tlc(tmp_path / "a.tlc", "2024-03-01", seconds, [1.0, 0.5, 0.25, 1.0])
    lc = _read(tlc, path, instant="mid")
    assert kind_of("lightcurve-reader").check(lc) is None
    assert lc.times.utc(0).isot == "2024-03-01T23:59:59.000"
    assert lc.times.utc(3).isot == "2024-03-02T00:00:00.500"
    assert np.array_equal(lc.flux, [1.0, 0.5, 0.25, 1.0])
    assert lc.times.instant == "mid" and lc.exposure_s == 0.5


@pytest.mark.parametrize("text, where", [
    ("00:00:01.0 1\n", "line 1"),                                     # no date header
    ("# date 2024-03-01\n00:00:01.0 1\n00:00:01.5 x\n00:00:02.0 1\n", "line 3"),
    ("# date 2024-03-01\n00:00:01.0 1\n0:00:01.5 1\n", "line 3"),
    ("# date 2024-03-01\n00:00:01.0 1\n00:00:02.0 1\n", "2 readings"),
])
def test_bad_files_name_the_file_and_the_line(tlc, tmp_path, text, where):
    path = tmp_path / "bad.tlc"
    path.write_text(text)
    with pytest.raises(CorruptSource) as raised:
        _read(tlc, path)
    assert "bad.tlc" in str(raised.value) and where in str(raised.value)
