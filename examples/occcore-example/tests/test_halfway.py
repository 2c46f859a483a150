"""The halfway timing fitter: short, honest about what it does not know (no intervals)."""
from pathlib import Path

import numpy as np
import pytest

import occcore_example.halfway
from occcore.model import FrameTimes, LightCurve
from occcore.plugin import NotApplicable, StepContext, kind_of
from occcore.synthetic import diffraction_lightcurve
from occcore.testing.contracts import RegistrationContract


class TestHalfwayRegistration(RegistrationContract):
    kind = "timing-fitter"
    name = "halfway"


@pytest.fixture
def halfway(occ_registry):
    return occ_registry.get("timing-fitter", "halfway").spec


def _fit(spec, lc):
    return spec.fit(lc, options=None, context=StepContext())


def test_the_fitter_is_at_most_25_lines():
    lines = Path(occcore_example.halfway.__file__).read_text().splitlines()
    assert len(lines) <= 25, f"halfway.py has {len(lines)} lines"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_edges_within_one_exposure_and_no_intervals(halfway, seed):
    lc, truth = diffraction_lightcurve(n_event=40, exposure_s=0.1, snr=15, seed=seed)
    result = _fit(halfway, lc)
    assert kind_of("timing-fitter").check(result) is None
    assert result.outcome == "positive" and result.model == "halfway"
    epoch = lc.times.epoch
    assert abs(result.immersion.offset_s(epoch) - truth.immersion_s) < truth.exposure_s
    assert abs(result.emersion.offset_s(epoch) - truth.emersion_s) < truth.exposure_s
    for _, edge in result.edges:
        assert (edge.err1_s, edge.err2_s, edge.err3_s) == (None, None, None)


def _curve(flux):
    from astropy.time import Time
    times = FrameTimes(epoch=Time("2024-01-01", scale="utc"),
                       offsets_s=np.arange(len(flux)) * 0.1, instant="mid")
    return LightCurve(times=times, exposure_s=0.1, flux=flux)


def test_noise_alone_is_declined(halfway):
    flux = 1 + np.random.default_rng(4).normal(0, 0.05, 400)
    with pytest.raises(NotApplicable):
        _fit(halfway, _curve(flux))


def test_an_event_running_off_the_end_gives_one_edge(halfway):
    flux = np.r_[np.ones(100), np.zeros(20)] + np.random.default_rng(5).normal(0, 0.02, 120)
    result = _fit(halfway, _curve(flux))
    assert kind_of("timing-fitter").check(result) is None
    assert result.emersion is None
    assert abs(result.immersion.offset_s(_curve(flux).times.epoch) - 9.95) < 0.1
