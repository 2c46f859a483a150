"""The example plugin package (examples/occcore-example), copied out of the repository and
installed with pip into a throw-away virtual environment, works as a third-party plugin:
it is listed, its reader wins identification, a broken twin shows as broken while
everything else works, the switches turn it off, and its own tests pass there. No line
of occcore changes for it."""
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import numpy as np
import pytest

from occcore.plugin import NotApplicable, StepContext, kind_of
from occcore.registry import load_registry
from occcore.testing.contracts import ReporterContract, contract_field

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "occcore-example"


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCCORE_")}
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


def _broken_twin(root: Path) -> Path:
    (root / "occcore_examplebroken").mkdir(parents=True)
    (root / "occcore_examplebroken" / "__init__.py").write_text(
        "raise ImportError('the broken twin fails at import')\n")
    (root / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "occcore-example-broken"
        version = "0.3.1"
        [project.entry-points.occcore]
        examplebroken = "occcore_examplebroken"
        [tool.setuptools]
        packages = ["occcore_examplebroken"]
    """))
    return root


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    copy = shutil.copytree(EXAMPLE, root / "occcore-example",
                           ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__",
                                                         ".pytest_cache"))
    broken = _broken_twin(root / "occcore-example-broken")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    # make this test run's occcore (and its dependencies) visible inside the throw-away venv
    parents = [p for p in site.getsitepackages() if os.path.isdir(p)]
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
    with open(os.path.join(purelib, "zz_parent_site.pth"), "w") as fh:
        fh.write(lines)
    # this run's pip installs into the throw-away venv; no network, no build isolation
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "-q", "--no-deps", "--no-build-isolation", "--no-index", str(copy),
                           str(broken)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    sample = root / "clip.kwv"
    sample.write_bytes(b"KIWIVID1" + bytes([5, 4, 6]) + bytes(range(120)))
    return python, sample, copy


def occ(plugin_env, *args, **env):
    python, sample, _ = plugin_env
    return subprocess.run([str(python), "-m", "occcore.cli", *args], capture_output=True,
                          text=True, env=_clean_env(**env), cwd=sample.parent)


def test_plugins_lists_the_example_and_the_broken_twin(plugin_env):
    result = occ(plugin_env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    mine = sorted((r["kind"], r["name"]) for r in rows if r["provider"] == "occcore-example 0.1.0")
    assert mine == [("lightcurve-reader", "tlc"), ("reader", "kiwi"),
                    ("timing-fitter", "halfway")]
    assert all(r["status"] == "active" for r in rows if r["provider"] == "occcore-example 0.1.0")
    broken = [r for r in rows if r["status"] == "broken"]
    assert len(broken) == 1
    assert broken[0]["provider"] == "occcore-example-broken 0.3.1"
    assert "the broken twin fails at import" in broken[0]["reason"]
    assert "broken" in result.stderr          # the warning


def test_identify_and_info_use_it(plugin_env):
    sample = plugin_env[1]
    result = occ(plugin_env, "identify", str(sample), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["winner"] == "kiwi"
    result = occ(plugin_env, "info", str(sample), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["reader"], info["n_frames"], info["width"], info["height"]) == ("kiwi", 5, 6, 4)
    assert info["start_utc"] == "2025-05-05T05:05:05.250000"
    assert info["end_utc"] == "2025-05-05T05:05:05.410000"


def test_other_commands_still_work_and_switches_disable_it(plugin_env):
    for args in (["formats"], ["config", "check"]):
        assert occ(plugin_env, *args).returncode == 0
    names = [r["name"] for r in json.loads(occ(plugin_env, "--no-plugins", "plugins",
                                               "--json").stdout)]
    assert "kiwi" not in names and "examplebroken" not in names
    rows = json.loads(occ(plugin_env, "plugins", "--json",
                          OCCCORE_DISABLE_PLUGINS="occcore-example-broken").stdout)
    assert any(r["name"] == "kiwi" for r in rows)
    assert not any(r["status"] == "broken" for r in rows)
    names = [r["name"] for r in json.loads(occ(plugin_env, "plugins", "--json",
                                               OCCCORE_LOAD_PLUGINS="example").stdout)]
    assert "halfway" in names and "examplebroken" not in names


def test_the_example_packages_own_tests_pass_where_it_is_installed(plugin_env):
    python, _, copy = plugin_env
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "tests"], capture_output=True, text=True,
                          cwd=copy, env=_clean_env())
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]


# -- the documentation's examples of the other kinds (docs/examples/*.py) ------------------------
# Plugin objects tested before they are installed, as docs/testing.md shows.

DOC_EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def _doc_module(name):
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}",
                                                  DOC_EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def occ_registry():
    """Built-ins plus every documentation example, as if each were an installed plugin."""
    return load_registry(no_plugins=True, extra_plugins=[
        (name, _doc_module(name)) for name in
        ("time_source", "aligner", "photometry", "limb_fitter", "reporter")])


class TestDocsReporter(ReporterContract):
    name = "edges"


def _series(source="gps"):
    from occcore.model import FrameSeries
    frames, truth = contract_field(n_frames=6)
    return FrameSeries.from_arrays(frames, times=truth.times.epoch,
                                   offsets_s=truth.times.offsets_s, exposure_s=truth.exposure_s,
                                   time_instant="start", time_source=source), truth


def test_docs_time_source(occ_registry):
    spec = occ_registry.get("time-source", "gps-only").spec
    series, _ = _series("gps")
    stamps = spec.stamp(series, options=None, context=StepContext())
    assert kind_of("time-source").check(stamps, series.n_frames) is None
    with pytest.raises(NotApplicable):
        spec.stamp(_series("pc-clock")[0], options=None, context=StepContext())


def test_docs_aligner_and_photometry(occ_registry):
    from occcore.model import AlignRequest, Aperture, PhotometryRequest
    series, truth = _series()
    apertures = [Aperture(name=truth.names[j], role=("target", "reference")[min(j, 1)],
                          x=truth.x[0, j], y=truth.y[0, j], radius_px=4.0,
                          annulus_px=(7.0, 11.0)) for j in range(3)]
    track = occ_registry.get("aligner", "fixed").spec.align(
        AlignRequest(series=series, apertures=apertures), options=None, context=StepContext())
    assert kind_of("aligner").check(track, series.n_frames, 3) is None
    phot = occ_registry.get("photometry", "box").spec.measure(
        PhotometryRequest(series=series, track=track, apertures=apertures),
        options=None, context=StepContext())
    assert kind_of("photometry").check(phot, series.n_frames, track.names) is None
    # the stars barely drift in 6 frames: the box holds nearly all of each star's flux
    assert np.allclose(np.median(phot.flux / truth.flux[:, :3], axis=0), 1, atol=0.05)


def test_docs_limb_fitter(occ_registry):
    from occcore.synthetic import ellipse_chords
    chords, truth = ellipse_chords(n_chords=8, err_km=(0.2, 0.4), n_negative=0, seed=3,
                                   center_f_km=4.0, center_g_km=-7.0, equatorial_radius_km=120.0,
                                   oblateness=0.0, position_angle_deg=0.0)
    spec = occ_registry.get("limb-fitter", "mean-circle").spec
    fit = spec.fit(tuple(chords), options=None, context=StepContext())
    assert kind_of("limb-fitter").check(fit) is None
    assert abs(fit.equatorial_radius_km - 120.0) < 5
    with pytest.raises(NotApplicable):
        spec.fit(tuple(chords[:1]), options=None, context=StepContext())
