"""Contract test classes: what every implementation of a kind must satisfy.

Subclass one, set ``name`` (and for readers ``make_samples``), and pytest runs every
test method against your implementation. The example plugin package
``examples/occcore-example`` does (quoted by cog from its tests; see ``docs/testing.md``)::

    [[[cog
    import sys; sys.path.insert(0, "docs"); import quote
    quote.python("tests/conftest.py", "pytest_plugins", indent=4, fence=False, docstring=True)
    ]]]
    # examples/occcore-example/tests/conftest.py
    pytest_plugins = ["occcore.testing"]
    [[[end]]]

    [[[cog
    quote.python("tests/test_kiwi.py", "TestKiwiReader", indent=4, fence=False, docstring=True)
    ]]]
    # examples/occcore-example/tests/test_kiwi.py
    class TestKiwiReader(ReaderContract):
        name = "kiwi"

        def make_samples(self, directory):
            frames = np.random.default_rng(7).integers(0, 256, (5, 4, 6), dtype=np.uint8)
            path = write_kiwi(directory / "clip.kwv", frames)
            return [ReaderSample(path=path, level=Match.CONTENT, n_frames=5, height=4, width=6)]
    [[[end]]]

occcore's own suite runs every in-tree plugin through these classes automatically
(``tests/test_contracts_builtin.py``).
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import attrs
import numpy as np
import pytest

from occcore.errors import InputError, OccCoreError
from occcore.identify import identify, resolve_source
from occcore.model import FrameSeries
from occcore.plugin import API_VERSION, Match, NotApplicable, Probe
from occcore.results import check_timing_result
from occcore.synthetic import samples as sample_files
from occcore.synthetic import garbage_files, truncated_copy

HEAVY_MODULES = ("scipy", "astropy", "numba", "PIL", "av", "sep", "photutils", "astroalign",
                 "matplotlib", "py7zr", "pyunpack",
                 "skimage")


def _digest(path: Path) -> str:
    if path.is_dir():
        return "".join(_digest(p) for p in sorted(path.iterdir()) if p.is_file())
    return hashlib.sha256(path.read_bytes()).hexdigest()


class RegistrationContract:
    """Checks every kind shares: name, record validity, options, lazy heavy imports."""

    kind: str = ""
    name: str = ""
    plugin: object = None
    """Set to a plugin object (a module with ``@hookimpl`` functions) to test it before it
    is installed: it is registered next to the built-ins for the test."""

    @pytest.fixture
    def registry(self, occ_registry):
        if self.plugin is None:
            return occ_registry
        from occcore.registry import load_registry
        return load_registry(no_plugins=True, extra_plugins=[("under-test", self.plugin)])

    @pytest.fixture
    def registered(self, registry):
        return registry.get(self.kind, self.name)

    def test_registered_under_its_name(self, registered):
        assert registered.name == self.name
        assert registered.kind == self.kind

    def test_record_is_valid(self, registered):
        spec = registered.spec
        assert spec.summary.strip(), "a record needs a one-line summary"
        assert 1 <= spec.api <= API_VERSION

    def test_default_options_validate(self, registered):
        spec = registered.spec
        if spec.options is not None:
            options = spec.options()
            assert attrs.has(type(options))

    def test_no_heavy_imports_at_registration(self, registered):
        code = ("import sys; from occcore.registry import load_registry; load_registry(); "
                f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert out == "", f"heavy modules imported while registering plugins: {out}"


@attrs.frozen(kw_only=True)
class ReaderSample:
    """A file the reader under test must read, and what it must find in it."""

    path: Path
    level: Match
    n_frames: int
    height: int
    width: int
    truncatable: bool = True


class ReaderContract(RegistrationContract):
    """A reader claims its samples (and nobody else's), opens them into a well-behaved
    FrameSeries, never raises from ``identify``, and fails cleanly on truncated input."""

    kind = "reader"

    def make_samples(self, directory: Path) -> list[ReaderSample]:
        raise NotImplementedError("a ReaderContract subclass must write its sample files")

    @pytest.fixture
    def samples(self, tmp_path):
        made = self.make_samples(tmp_path / "samples")
        assert made, "make_samples returned no sample"
        return made

    @pytest.fixture
    def session(self, registry):
        from occcore.api import Session
        from occcore.config import load_config
        with Session(config=load_config(cwd=Path("/nonexistent")), registry=registry) as s:
            yield s

    def test_claims_its_samples(self, samples, registry, registered):
        if not registered.spec.auto_identify:
            # a reader chosen by name only must never be picked by identification
            for sample in samples:
                found = identify(resolve_source(sample.path), registry)
                assert found.winner is None or found.winner.reader.name != self.name
            return
        for sample in samples:
            found = identify(resolve_source(sample.path), registry)
            assert found.winner is not None, f"nobody claims {sample.path}"
            assert found.winner.reader.name == self.name, (
                f"{sample.path} went to {found.winner.reader.name}, not {self.name}")
            assert found.winner.level >= sample.level

    def test_does_not_claim_other_formats(self, registered, tmp_path):
        spec = registered.spec
        if spec.identify is None:
            pytest.skip("reader identifies by file name only")
        for owner, path in sample_files.format_zoo(tmp_path / "zoo"):
            if owner == self.name:
                continue
            answer = spec.identify(Probe.of(path))
            level = answer[0] if isinstance(answer, tuple) else answer
            assert level is None or Match(level) <= Match.EXTENSION, (
                f"{self.name} claims {path.name} (a {owner} sample) at {Match(level).name}")

    def test_identify_never_raises_on_garbage(self, registered, tmp_path):
        spec = registered.spec
        if spec.identify is None:
            pytest.skip("reader identifies by file name only")
        for path in garbage_files(tmp_path / "garbage").values():
            spec.identify(Probe.of(path))   # must return, whatever it says
        (tmp_path / "empty_dir").mkdir()
        spec.identify(Probe.of(tmp_path / "empty_dir"))

    def test_open_gives_a_well_behaved_series(self, samples, session):
        for sample in samples:
            series = session.open(sample.path, reader=self.name)
            assert isinstance(series, FrameSeries)
            with series:
                assert len(series) == sample.n_frames
                assert (series.height, series.width) == (sample.height, sample.width)
                assert len(series.times) == len(series)
                offsets = series.times.offsets_s
                assert np.all(np.diff(offsets) >= 0), "frames are not in time order"
                frames = list(series)
                assert len(frames) == len(series)
                assert all(f.shape == (sample.height, sample.width) for f in frames)
                assert len({f.dtype for f in frames}) == 1
                for i in (0, len(series) - 1):
                    assert np.array_equal(series[i], frames[i])
                block = series.batch(0, len(series))
                assert block.shape == (len(series), sample.height, sample.width)
                assert np.array_equal(block[-1], frames[-1])
                with pytest.raises(ValueError):
                    block[0, 0, 0] = 0          # frames are read-only
                with pytest.raises(IndexError):
                    series[len(series)]
            series.close()                      # closing twice is harmless
            assert series.closed

    def test_truncated_input_fails_cleanly(self, samples, registered, session, tmp_path):
        for sample in samples:
            if not sample.truncatable or sample.path.is_dir():
                continue
            for keep in (0.5, 0.05):
                bad = truncated_copy(sample.path, tmp_path, keep)
                try:
                    with session.open(bad, reader=self.name) as series:
                        for _ in series.iter_batches(64):
                            pass
                except (InputError, NotApplicable) as exc:
                    assert str(bad) in str(exc) or bad.name in str(exc), (
                        f"error does not name the file: {exc}")
                except OccCoreError as exc:     # the chain table: the reason must be ours
                    attempts = getattr(exc, "attempts", ())
                    for a in attempts:
                        assert a.status != "failed" or not a.reason.startswith(
                            ("IndexError", "ValueError", "TypeError", "KeyError", "struct")), (
                            f"truncated input raised a bare {a.reason}")
                        assert bad.name in a.reason or a.status != "failed"

    def test_input_is_not_modified(self, samples, session):
        for sample in samples:
            before = _digest(sample.path)
            with session.open(sample.path, reader=self.name) as series:
                for _ in series.iter_batches(64):
                    pass
            assert _digest(sample.path) == before


# -- aligners ----------------------------------------------------------------------------------

CONTRACT_STARS = ((60.0, 50.0, 20000.0), (110.0, 40.0, 40000.0), (40.0, 95.0, 60000.0),
                  (130.0, 100.0, 30000.0), (90.0, 110.0, 25000.0), (25.0, 30.0, 35000.0),
                  (145.0, 20.0, 22000.0), (75.0, 80.0, 28000.0))


def contract_field(n_frames=40, seed=5, **kw):
    """A star field with 8 stars (the first is the target), drift and a known truth."""
    from occcore.synthetic import star_field
    names = ("target", "reference", "guide") + tuple(f"field{i}" for i in range(5))
    return star_field(n_frames=n_frames, height=130, width=170, stars=CONTRACT_STARS,
                      names=names, seed=seed, **kw)


def _series(frames, truth):
    return FrameSeries.from_arrays(frames, times=truth.times.epoch,
                                   offsets_s=truth.times.offsets_s, exposure_s=truth.exposure_s,
                                   time_instant="start")


def _apertures(truth, frame=0):
    from occcore.model import Aperture
    roles = ["target", "reference", "guide"]
    return tuple(Aperture(name=truth.names[j], role=roles[j] if j < 3 else "reference",
                          x=truth.x[frame, j], y=truth.y[frame, j], radius_px=4.0,
                          annulus_px=(7.0, 11.0)) for j in range(3))


class AlignerContract(RegistrationContract):
    """An aligner recovers a known drift, keeps identical frames still, declines blank
    frames, returns one position per frame and star, and is deterministic."""

    kind = "aligner"
    declines_blank_frames = True
    tolerance_px = 0.15

    def make_options(self, directory: Path, truth):
        """Options for the aligner under test (None: its defaults)."""
        return None

    def _align(self, registered, frames, truth, directory, apertures=None):
        from occcore.model import AlignRequest
        from occcore.plugin import StepContext
        request = AlignRequest(series=_series(frames, truth), apertures=apertures or _apertures(truth),
                               reference_index=0, fwhm_px=3.0)
        options = self.make_options(directory, truth)
        return registered.spec.align(request, options=options, context=StepContext())

    def test_recovers_a_known_drift(self, registered, tmp_path):
        frames, truth = contract_field(drift_px_per_frame=(0.15, -0.1), walk_px=0.05)
        track = self._align(registered, frames, truth, tmp_path)
        assert track.x.shape == (len(frames), 3)
        error = np.hypot(track.x - truth.x[:, :3], track.y - truth.y[:, :3])
        assert np.sqrt(np.mean(error ** 2)) < self.tolerance_px

    def test_identical_frames_give_identity(self, registered, tmp_path):
        frames, truth = contract_field(n_frames=10, drift_px_per_frame=(0, 0), walk_px=0.0)
        frames = np.repeat(frames[:1], 10, axis=0)
        truth = attrs.evolve(truth, x=np.repeat(truth.x[:1], 10, 0), y=np.repeat(truth.y[:1], 10, 0))
        track = self._align(registered, frames, truth, tmp_path)
        assert np.allclose(track.x, truth.x[:, :3], atol=0.05)
        assert np.allclose(track.y, truth.y[:, :3], atol=0.05)

    def test_blank_frames_are_declined(self, registered, tmp_path):
        if not self.declines_blank_frames:
            pytest.skip("this aligner does not look at the pixels")
        frames, truth = contract_field(n_frames=8)
        rng = np.random.default_rng(0)
        blank = rng.normal(300, 5, frames.shape).astype(frames.dtype)
        with pytest.raises(NotApplicable):
            self._align(registered, blank, truth, tmp_path)

    def test_is_deterministic(self, registered, tmp_path):
        frames, truth = contract_field(n_frames=12)
        a = self._align(registered, frames, truth, tmp_path)
        b = self._align(registered, frames, truth, tmp_path)
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


# -- photometry --------------------------------------------------------------------------------


class PhotometryContract(RegistrationContract):
    """Photometry recovers known fluxes within their errors, measures ~0 on empty sky, gives
    finite positive errors, and turns an aperture off the frame into NaN + EDGE."""

    kind = "photometry"

    def _measure(self, registered, frames, truth, apertures, x=None, y=None):
        from occcore.model import PhotometryRequest, Track
        from occcore.plugin import StepContext
        track = Track(names=tuple(a.name for a in apertures),
                      x=truth.x[:, :len(apertures)] if x is None else x,
                      y=truth.y[:, :len(apertures)] if y is None else y,
                      flags=np.zeros(len(frames), np.uint32))
        request = PhotometryRequest(series=_series(frames, truth), track=track,
                                    apertures=apertures, gain_e_per_adu=1.0, read_noise_e=5.0)
        return registered.spec.measure(request, options=None, context=StepContext())

    def test_recovers_known_fluxes(self, registered):
        frames, truth = contract_field(n_frames=60, read_noise_e=5.0)
        apertures = _apertures(truth)
        phot = self._measure(registered, frames, truth, apertures)
        expected = truth.flux[:, :3] * 0.9953   # a 4 px aperture holds 99.5 % of a 3 px-FWHM star
        pull = (phot.flux - expected) / phot.flux_err
        assert np.all(np.isfinite(phot.flux_err)) and np.all(phot.flux_err > 0)
        assert abs(np.median(phot.flux / expected) - 1) < 0.01
        assert 0.7 < np.std(pull) < 1.3

    def test_empty_sky_measures_zero(self, registered):
        from occcore.model import Aperture
        frames, truth = contract_field(n_frames=30)
        sky = (Aperture(name="sky", role="target", x=150.0, y=65.0, radius_px=4.0,
                        annulus_px=(7.0, 11.0)),)
        x = np.full((30, 1), 150.0)
        y = np.full((30, 1), 65.0)
        phot = self._measure(registered, frames, truth, sky, x, y)
        assert abs(np.mean(phot.flux / phot.flux_err)) < 1.0
        assert np.std(phot.flux / phot.flux_err) < 1.5

    def test_aperture_off_the_edge_is_masked(self, registered):
        from occcore.model import Aperture, FrameFlag
        frames, truth = contract_field(n_frames=5)
        edge = (Aperture(name="edge", role="target", x=2.0, y=60.0, radius_px=4.0,
                         annulus_px=(7.0, 11.0)),)
        phot = self._measure(registered, frames, truth, edge, np.full((5, 1), 2.0),
                             np.full((5, 1), 60.0))
        assert np.all(np.isnan(phot.flux))
        assert np.all(phot.flags & FrameFlag.EDGE)


# -- timing fitters ----------------------------------------------------------------------------


class TimingFitterContract(RegistrationContract):
    """A timing fitter recovers the edges of a synthetic event within its 3-sigma intervals,
    reports positive errors, puts immersion before emersion, and calls a curve without an
    event negative (or declines it); every result passes occcore's own result check."""

    kind = "timing-fitter"

    def make_options(self, truth):
        """Options for the fitter under test given the synthetic truth (None: defaults)."""
        return None

    def _fit(self, registered, lc, truth=None):
        from occcore.plugin import StepContext
        return registered.spec.fit(lc, options=self.make_options(truth),
                                   context=StepContext(rng=np.random.default_rng(3)))

    def synthetic_event(self, seed: int, **kw):
        """A light curve with an event and its truth (``immersion_s``/``emersion_s`` after
        the light curve's epoch). Override for a fitter made for other curves."""
        from occcore.synthetic import diffraction_lightcurve
        params = dict(n_event=40, exposure_s=0.1, snr=15, velocity_kms=20, distance_au=15)
        params.update(kw)
        return diffraction_lightcurve(seed=seed, **params)

    def synthetic_flat(self):
        """A light curve without an event (and the truth its options may need)."""
        from astropy.time import Time

        from occcore.model import FrameTimes, LightCurve
        from occcore.synthetic import diffraction_lightcurve
        _, truth = diffraction_lightcurve(seed=1)       # only its physics is used
        rng = np.random.default_rng(4)
        flux = 1 + rng.normal(0, 0.05, 400)
        lc = LightCurve(times=FrameTimes(epoch=Time("2024-01-01", scale="utc"),
                                         offsets_s=np.arange(400) * 0.1, instant="mid"),
                        exposure_s=0.1, flux=flux)
        return lc, truth

    def test_recovers_a_synthetic_event(self, registered):
        for seed in (1, 2, 3):
            lc, truth = self.synthetic_event(seed)
            result = self._fit(registered, lc, truth)
            epoch = lc.times.epoch
            assert check_timing_result(result) is None, check_timing_result(result)
            assert result.outcome == "positive"
            for edge, true_s in (("immersion", truth.immersion_s), ("emersion", truth.emersion_s)):
                found = getattr(result, edge).offset_s(epoch)
                minus, plus = getattr(result, edge).err3_s
                assert minus > 0 and plus > 0
                assert -minus <= true_s - found <= plus, (edge, true_s, found, minus, plus)

    def test_immersion_before_emersion_and_positive_errors(self, registered):
        lc, truth = self.synthetic_event(9, n_event=10, exposure_s=0.2, snr=8)
        result = self._fit(registered, lc, truth)
        assert check_timing_result(result) is None, check_timing_result(result)
        assert result.immersion.time < result.emersion.time
        assert all(e > 0 for e in result.immersion.err1_s + result.emersion.err1_s)
        assert result.dof > 0 and np.isfinite(result.chi2)

    def test_no_event_is_negative_or_declined(self, registered):
        lc, truth = self.synthetic_flat()
        try:
            result = self._fit(registered, lc, truth)
        except NotApplicable:
            return                      # declined: the chain moves on, nothing claimed
        assert check_timing_result(result) is None, check_timing_result(result)
        assert result.outcome == "negative", f"noise alone gave a {result.outcome} result"


# -- limb fitters --------------------------------------------------------------------------------


class LimbFitterContract(RegistrationContract):
    """A limb fitter recovers the generating limb of synthetic chords within a few sigma,
    keeps clear of negative chords, gives two-sided errors, and declines too few chords."""

    kind = "limb-fitter"
    fits_oblateness = True

    def _fit(self, registered, chords):
        from occcore.plugin import StepContext
        return registered.spec.fit(tuple(chords), options=None, context=StepContext())

    def _truth(self):
        return dict(center_f_km=4.0, center_g_km=-7.0, equatorial_radius_km=120.0,
                    oblateness=0.12 if self.fits_oblateness else 0.0, position_angle_deg=40.0)

    def test_recovers_the_generating_limb(self, registered):
        from occcore.synthetic import ellipse_chords
        chords, truth = ellipse_chords(n_chords=12, err_km=(0.5, 1.5), n_negative=0, seed=3,
                                       **self._truth())
        fit = self._fit(registered, chords)
        assert abs(fit.equatorial_radius_km - truth["equatorial_radius_km"]) < 5
        assert abs(fit.center_f_km - truth["center_f_km"]) < 5
        assert abs(fit.center_g_km - truth["center_g_km"]) < 5
        for name, (minus, plus) in fit.errors.items():
            assert minus > 0 and plus > 0, name
        assert fit.dof > 0 and np.isfinite(fit.chi2)

    def test_respects_negative_chords(self, registered):
        from occcore.synthetic import ellipse_chords
        chords, truth = ellipse_chords(n_chords=6, err_km=(3.0, 6.0), n_negative=2, seed=5,
                                       **self._truth())
        fit = self._fit(registered, chords)
        assert fit.negative_chords_crossed == ()

    def test_too_few_chords_are_declined(self, registered):
        from occcore.model import Chord
        one = Chord(name="only", positive=True, f_km=np.array([-10.0]), g_km=np.array([5.0]),
                    err_km=np.array([1.0]))
        with pytest.raises(NotApplicable):
            self._fit(registered, [one])


# -- reporters -----------------------------------------------------------------------------------


class ReporterContract(RegistrationContract):
    """A reporter writes only inside its destination, atomically (no leftovers), returns
    the paths it wrote, declines (NotApplicable) a run with nothing to report, and never
    touches the run's own files."""

    kind = "reporter"

    def make_options(self, tmp_path):
        """Options for the reporter under test (None: its defaults)."""
        return None

    def _write(self, registered, run, destination, tmp_path):
        from occcore.plugin import StepContext
        return registered.spec.write(run, destination, options=self.make_options(tmp_path),
                                     context=StepContext())

    def test_writes_its_files_inside_the_destination(self, registered, tmp_path):
        from occcore.synthetic import report_input
        for positive in (True, False):
            run, _ = report_input(tmp_path / "run", positive=positive, with_limb=True)
            destination = tmp_path / f"out-{positive}"
            written = [Path(p) for p in self._write(registered, run, destination, tmp_path)]
            assert written, "returned no path"
            for path in written:
                assert path.is_file() and path.stat().st_size > 0, path
                assert path.resolve().parent == destination.resolve(), path
            leftovers = [p.name for p in destination.iterdir() if p not in written]
            assert leftovers == [], f"files written but not returned: {leftovers}"

    def test_empty_run_is_declined(self, registered, tmp_path):
        from occcore.model import ReportInput
        with pytest.raises(NotApplicable):
            self._write(registered, ReportInput(directory=tmp_path), tmp_path / "out", tmp_path)
