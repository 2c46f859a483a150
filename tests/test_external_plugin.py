"""A plugin package that lives outside this repository, installed with pip into a
throw-away virtual environment, registers a reader for a made-up format. No line of
occcore changes for it; a broken twin shows as broken while everything else works."""
import json
import os
import site
import subprocess
import sys
import textwrap
import venv

import pytest

PLUGIN_CODE = '''
import numpy as np
from astropy.time import Time
from occcore.model import FrameSeries
from occcore.plugin import CorruptSource, Match, ReaderSpec, hookimpl

MAGIC = b"KIWIVID1"


def _identify(probe):
    if probe.head.startswith(MAGIC):
        return Match.CONTENT, "kiwi header"
    return None


def _open(source, *, options, context):
    data = source.path.read_bytes()
    n, h, w = data[8], data[9], data[10]
    body = data[11:]
    if len(body) < n * h * w:
        raise CorruptSource(f"{source.path}: {len(body)} pixel bytes for {n} frames")
    frames = np.frombuffer(body[:n * h * w], np.uint8).reshape(n, h, w)
    return FrameSeries.from_arrays(frames, times=Time("2025-05-05T05:05:05.25", scale="utc"),
                                   offsets_s=np.arange(n) * 0.04, exposure_s=0.04,
                                   time_instant="start", time_source="gps", format="kiwi",
                                   reader="kiwi", source_name=str(source.path))


@hookimpl
def occcore_readers():
    yield ReaderSpec(name="kiwi", summary="Kiwi OSD video (made up for the tests)",
                     patterns=("*.kwv",), identify=_identify, open=_open)
'''


def _package(root, dist, module, code):
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(code)
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{dist}"
        version = "0.3.1"
        dependencies = []
        [project.entry-points.occcore]
        {module.replace('occcore_', '')} = "{module}"
        [tool.setuptools]
        packages = ["{module}"]
    """))
    return root


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("external")
    good = _package(root / "occcore-kiwi", "occcore-kiwi", "occcore_kiwi", PLUGIN_CODE)
    broken = _package(root / "occcore-kiwi-broken", "occcore-kiwi-broken", "occcore_kiwibroken",
                      "raise ImportError('the broken twin fails at import')\n")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # make this test run's occcore (and its dependencies) visible inside the throw-away venv
    parents = [p for p in site.getsitepackages() if os.path.isdir(p)]
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
    with open(os.path.join(purelib, "zz_parent_site.pth"), "w") as fh:
        fh.write(lines)
    for pkg in (good, broken):
        # this run's pip installs into the throw-away venv; no network, no build isolation
        done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                               "-q", "--no-deps", "--no-build-isolation", "--no-index", str(pkg)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    sample = root / "clip.kwv"
    sample.write_bytes(b"KIWIVID1" + bytes([5, 4, 6]) + bytes(range(120)))
    return python, sample


def occ(plugin_env, *args):
    python, _ = plugin_env
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCCCORE_")}
    return subprocess.run([str(python), "-m", "occcore.cli", *args], capture_output=True,
                          text=True, env=env, cwd=plugin_env[1].parent)


def test_plugins_lists_the_external_reader_and_the_broken_twin(plugin_env):
    result = occ(plugin_env, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    kiwi = [r for r in rows if r["name"] == "kiwi"]
    assert kiwi == [{"kind": "reader", "name": "kiwi", "provider": "occcore-kiwi 0.3.1",
                     "status": "active", "reason": ""}]
    broken = [r for r in rows if r["status"] == "broken"]
    assert len(broken) == 1
    assert broken[0]["provider"] == "occcore-kiwi-broken 0.3.1"
    assert "the broken twin fails at import" in broken[0]["reason"]
    assert "broken" in result.stderr          # the warning


def test_identify_and_info_use_it(plugin_env):
    result = occ(plugin_env, "identify", str(plugin_env[1]), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["winner"] == "kiwi"
    result = occ(plugin_env, "info", str(plugin_env[1]), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["reader"], info["n_frames"], info["width"], info["height"]) == ("kiwi", 5, 6, 4)
    assert info["start_utc"] == "2025-05-05T05:05:05.250000"
    assert info["end_utc"] == "2025-05-05T05:05:05.410000"


def test_other_commands_still_work_and_switches_disable_it(plugin_env):
    for args in (["formats"], ["config", "check"], ["plugins"]):
        assert occ(plugin_env, *args).returncode == 0
    result = occ(plugin_env, "--no-plugins", "plugins", "--json")
    names = [r["name"] for r in json.loads(result.stdout)]
    assert "kiwi" not in names and "occcore_kiwibroken" not in names
    python, sample = plugin_env
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OCCCORE_")},
           "OCCCORE_DISABLE_PLUGINS": "occcore-kiwi-broken"}
    result = subprocess.run([str(python), "-m", "occcore.cli", "plugins", "--json"],
                            capture_output=True, text=True, env=env)
    rows = json.loads(result.stdout)
    assert any(r["name"] == "kiwi" for r in rows)
    assert not any(r["status"] == "broken" for r in rows)
