"""The example plugin package (examples/occcore-example), copied out of the repository and
installed with pip into a throw-away virtual environment, works as a third-party plugin:
it is listed, its reader wins identification, a broken twin shows as broken while
everything else works, the switches turn it off, and its own tests pass there. No line
of occcore changes for it."""
import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

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
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
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
