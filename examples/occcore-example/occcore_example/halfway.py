"""``halfway``: edges where the curve crosses half way between its two levels; no error bars."""
import numpy as np

from occcore.model import Edge, TimingResult
from occcore.plugin import NotApplicable


def fit(lc, *, options, context):
    from astropy import units as u
    flux, t = lc.flux, lc.times.mid_exposure_offsets_s(lc.exposure_s)
    half = np.mean(np.percentile(flux, [5, 95]))
    for _ in range(10):        # two levels: the medians of the readings either side of half
        upper, lower = np.median(flux[flux >= half]), np.median(flux[flux < half])
        half = (upper + lower) / 2
    noise = 1.4826 * np.median(np.abs(flux[flux >= half] - upper))
    if not upper - lower > 6 * noise:
        raise NotApplicable(f"no drop: levels {upper:.4g}, {lower:.4g}, noise {noise:.2g}")
    low = np.flatnonzero(flux < half)
    first, last = max(np.split(low, np.flatnonzero(np.diff(low) > 1) + 1), key=len)[[0, -1]]
    def crossing(i):           # between readings i and i + 1, linearly
        return lc.times.epoch + (t[i] + (half - flux[i]) / (flux[i + 1] - flux[i]) *
                                 (t[i + 1] - t[i])) * u.s
    return TimingResult(model="halfway",
                        immersion=Edge(time=crossing(first - 1)) if first > 0 else None,
                        emersion=Edge(time=crossing(last)) if last < len(flux) - 1 else None)
