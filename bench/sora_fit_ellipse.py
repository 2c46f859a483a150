"""Run SORA's fit_ellipse on given sky-plane points; print its result and run time as JSON.

Runs with the python of a virtual environment that has sora-astro installed (it imports
nothing from occcore). Input on stdin: {"points": [[name, f, g, vf, vg, err_s], ...],
"kwargs": {...fit_ellipse keywords...}, "seed": n}. SORA reads the chords of an
Occultation; a bare Occultation holding small stand-in chords gives it exactly the points,
velocities and timing errors, with no star or ephemeris.
"""
import contextlib
import io
import json
import sys
import time

import numpy as np


class _LightCurve:
    def __init__(self, immersion_err, emersion_err):
        self.immersion_err = immersion_err
        self.emersion_err = emersion_err


class _Chord:
    """What fit_ellipse asks of a chord: status, is_able, get_fg and the timing errors."""

    def __init__(self, immersion, emersion):
        self._points = {"immersion": immersion, "emersion": emersion}
        self.is_able = {"immersion": True, "emersion": True}
        self.lightcurve = _LightCurve(immersion[4], emersion[4])

    def status(self):
        return "positive"

    def get_fg(self, time, vel=True):
        f, g, vf, vg, _ = self._points[time]
        return f, g, vf, vg


class _Chords(dict):
    pass


def main():
    request = json.load(sys.stdin)
    with contextlib.redirect_stdout(io.StringIO()):
        from sora import Occultation
        from sora.occultation import fit_ellipse
    chords = _Chords()
    points = request["points"]
    for i in range(0, len(points), 2):
        name = points[i][0]
        chords[name] = _Chord(points[i][1:], points[i + 1][1:])
    occ = Occultation.__new__(Occultation)
    occ._chords = chords
    np.random.seed(request.get("seed", 1))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        chisquare = fit_ellipse(occ, **request["kwargs"])
    elapsed = time.perf_counter() - started
    best = chisquare.get_nsigma(sigma=1)
    out = {"seconds": elapsed,
           "fitted": {k: [float(v[0]), float(v[1])] for k, v in best.items()
                      if k in ("center_f", "center_g", "equatorial_radius", "oblateness",
                               "position_angle")},
           "chi2_min": float(best["chi2_min"]), "n_samples": int(len(chisquare.data["chi2"])),
           "n_within_1sigma": int(np.sum(chisquare.data["chi2"] < best["chi2_min"] + 1))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
