"""The ``sora`` export loads in SORA's own LightCurve with the same times and fluxes.

Needs SORA installed in a separate virtual environment (it pins old libraries); give its
python as SORA_PYTHON=/path/to/sora-venv/bin/python. Skipped, with the reason, without it.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u

from occcore.lcio import read_lightcurve
from occcore.plugin import StepContext
from occcore.synthetic import report_input
from occplugins.reporters import sora

SORA_PYTHON = os.environ.get("SORA_PYTHON")

# run inside SORA's environment: load the file the way its header says, print the times
LOADER = r"""
import contextlib, io, json, re, sys
with contextlib.redirect_stdout(io.StringIO()):
    from sora import LightCurve
path = sys.argv[1]
header = open(path).read()
exptime = float(re.search(r"exptime = ([0-9.eE+-]+)", header).group(1))
tref = re.search(r"tref = ([0-9:. -]+?) UTC", header).group(1)
usecols = [int(x) for x in re.search(r"usecols=\[([0-9, ]+)\]", header).group(1).split(",")]
with contextlib.redirect_stdout(io.StringIO()):
    lc = LightCurve(name="check", file=path, exptime=exptime, tref=tref, usecols=usecols)
t = lc._time.utc
print(json.dumps({"jd1": t.jd1.tolist(), "jd2": t.jd2.tolist(), "flux": list(map(float, lc.flux)),
                  "dflux": None if lc.dflux is None else list(map(float, lc.dflux))}))
"""


@pytest.mark.needs_sora
@pytest.mark.skipif(not SORA_PYTHON or not Path(SORA_PYTHON).exists(),
                    reason="SORA not available: set SORA_PYTHON to the python of a venv with "
                    "sora-astro installed")
@pytest.mark.parametrize("signal", ["ratio", "target"])
def test_sora_loads_the_export_with_the_same_times(tmp_path, signal):
    import attrs
    from astropy.time import Time
    run, _ = report_input(tmp_path, seed=11)
    if signal == "target":        # a signal with flux errors: three columns
        run = attrs.evolve(run, lightcurve=run.apertures["target"])
    spec = next(iter(sora.occcore_reporters()))
    dat = next(Path(p) for p in spec.write(run, tmp_path / "out", options=None,
                                           context=StepContext()) if str(p).endswith(".dat"))
    done = subprocess.run([SORA_PYTHON, "-c", LOADER, str(dat)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    got = Time(loaded["jd1"], loaded["jd2"], format="jd", scale="utc")
    lc = run.lightcurve
    want = lc.times.epoch + lc.times.offsets_s * u.s          # synthetic stamps are mid-exposure
    worst_s = np.max(np.abs((got - want).to_value("s")))
    print(f"SORA-loaded times differ from the truth by at most {worst_s * 1e9:.1f} ns")
    assert worst_s < 1e-6
    np.testing.assert_allclose(loaded["flux"], lc.flux, rtol=1e-9)
    if signal == "target":
        np.testing.assert_allclose(loaded["dflux"], lc.flux_err, rtol=1e-9)
    # and occcore reads the same file back to the same instants
    back = read_lightcurve(dat)
    assert np.max(np.abs((back.times.utc() - want).to_value("s"))) < 1e-6
