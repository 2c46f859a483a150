"""Every in-tree plugin runs through the conformance kit's contract for its kind."""
import pytest

from occcore.synthetic import samples
from occcore.testing import contracts

CONTRACTS = {"reader": contracts.ReaderContract}


def _builtin_names(kind):
    from occcore.registry import load_registry
    return [r.name for r in load_registry(no_plugins=True).implementations(kind)
            if r.provider.builtin]


def test_every_builtin_reader_has_contract_samples():
    missing = set(_builtin_names("reader")) - set(samples.READER_SAMPLES)
    assert not missing, f"in-tree readers without contract samples: {missing}"


def _reader_contract(name):
    return type(f"TestReaderContract_{name}", (contracts.ReaderContract,), {
        "name": name,
        "make_samples": lambda self, directory, _n=name: samples.READER_SAMPLES[_n](directory),
    })


for _name in _builtin_names("reader"):
    globals()[f"TestReaderContract_{_name}"] = _reader_contract(_name)


def _coords_options(self, directory, truth):
    """The coords aligner reads positions from a file: write the truth as one."""
    from occplugins.aligners.coordfile import CoordFileOptions
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "positions.csv"
    lines = ["frame,x_reference,y_reference,x_guide,y_guide"]
    for k in range(len(truth.x)):
        lines.append(f"{k},{truth.x[k, 1]},{truth.y[k, 1]},{truth.x[k, 2]},{truth.y[k, 2]}")
    path.write_text("\n".join(lines) + "\n")
    return CoordFileOptions(path=str(path))


ALIGNER_EXTRAS = {"coords": {"make_options": _coords_options, "declines_blank_frames": False}}

for _name in _builtin_names("aligner"):
    globals()[f"TestAlignerContract_{_name}"] = type(
        f"TestAlignerContract_{_name}", (contracts.AlignerContract,),
        {"name": _name, **ALIGNER_EXTRAS.get(_name, {})})

def _diffraction_options(self, truth):
    from occplugins.fitters.diffraction import DiffractionOptions
    return DiffractionOptions(velocity_kms=truth.velocity_kms, distance_au=truth.distance_au,
                              star_diameter_km=truth.star_diameter_km)


def _driftscan_curve(seed, **image):
    """A drift-scan image's target trail as a light curve, and the image's truth."""
    import tempfile
    from pathlib import Path

    from occcore.synthetic.driftscan import drift_scan_image, write_drift_scan_fits
    from occplugins.readers.driftscan import DriftScanOptions, driftscan_lightcurve
    picture, header, truth = drift_scan_image(seed=seed, **image)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_drift_scan_fits(Path(tmp) / "scan.fits", picture, header)
        return driftscan_lightcurve(path, DriftScanOptions(target=[25.3, 19.6])), truth


def _driftscan_event(self, seed, **kw):
    """The driftscan fitter's own curves: a trail with a gap, and when its star vanished."""
    import types
    lc, truth = _driftscan_curve(seed)
    return lc, types.SimpleNamespace(immersion_s=truth.disappearance_s,
                                     emersion_s=truth.reappearance_s)


def _driftscan_flat(self):
    """A trail without a gap: the fitter finds no event (or declines)."""
    return _driftscan_curve(3, remaining_fraction=1.0)[0], None


TIMING_EXTRAS = {"diffraction": {"make_options": _diffraction_options},
                 "driftscan": {"synthetic_event": _driftscan_event,
                               "synthetic_flat": _driftscan_flat}}

for _name in _builtin_names("timing-fitter"):
    globals()[f"TestTimingFitterContract_{_name}"] = type(
        f"TestTimingFitterContract_{_name}", (contracts.TimingFitterContract,),
        {"name": _name, **TIMING_EXTRAS.get(_name, {})})

LIMB_EXTRAS = {"circle": {"fits_oblateness": False}}

for _name in _builtin_names("limb-fitter"):
    globals()[f"TestLimbFitterContract_{_name}"] = type(
        f"TestLimbFitterContract_{_name}", (contracts.LimbFitterContract,),
        {"name": _name, **LIMB_EXTRAS.get(_name, {})})

for _name in _builtin_names("photometry"):
    globals()[f"TestPhotometryContract_{_name}"] = type(
        f"TestPhotometryContract_{_name}", (contracts.PhotometryContract,), {"name": _name})


def test_contract_catches_a_bad_reader(make_registry, tmp_path):
    """The kit can fail: a reader that hands out writable frames breaks its contract."""
    import numpy as np
    from astropy.time import Time

    from occcore.model import FrameSeries
    from occcore.plugin import Match, ReaderSpec, hookimpl

    def open_(source, *, options, context):
        frames = np.zeros((2, 3, 3), np.uint8)
        series = FrameSeries.from_arrays(frames, times=Time("2020-01-01", scale="utc"),
                                         offsets_s=[0, 1], exposure_s=1, time_instant="start")
        return FrameSeries(**{**{a: getattr(series, a) for a in
                                 ("n_frames", "height", "width", "dtype", "bit_depth",
                                  "times", "exposure_s")},
                              "read_batch": lambda a, b: np.zeros((b - a, 3, 3), np.uint8)})

    class Writable:
        @hookimpl
        def occcore_readers(self):
            yield ReaderSpec(name="writable", summary="hands out writable frames",
                             identify=lambda p: Match.SIGNATURE if p.head.startswith(b"WR") else None,
                             open=open_)

    registry = make_registry(("writable", Writable()))
    path = tmp_path / "x.wr"
    path.write_bytes(b"WR" + b"\0" * 20)
    contract = contracts.ReaderContract()
    contract.name = "writable"
    sample = contracts.ReaderSample(path=path, level=Match.SIGNATURE, n_frames=2, height=3,
                                    width=3)
    from occcore.api import Session
    from occcore.config import load_config
    session = Session(config=load_config(cwd=tmp_path), registry=registry)
    # FrameSeries.batch makes frames read-only even when a reader forgets: the contract passes
    contract.test_open_gives_a_well_behaved_series([sample], session)
    # ... but a wrong frame count is caught
    wrong = contracts.ReaderSample(path=path, level=Match.SIGNATURE, n_frames=3, height=3, width=3)
    with pytest.raises(AssertionError):
        contract.test_open_gives_a_well_behaved_series([wrong], session)


def _na_excel_options(self, tmp_path):
    """The NA form is not shipped: the contract fills a stand-in with the form's marks."""
    from report_forms import write_na_template
    from occplugins.reporters.na_excel import NaExcelOptions
    return NaExcelOptions(template=str(write_na_template(tmp_path / "form" / "NA_form.xlsx")))


REPORTER_EXTRAS = {"na-excel": {"make_options": _na_excel_options}}

for _name in _builtin_names("reporter"):
    globals()[f"TestReporterContract_{_name}"] = type(
        f"TestReporterContract_{_name}", (contracts.ReporterContract,),
        {"name": _name, **REPORTER_EXTRAS.get(_name, {})})
