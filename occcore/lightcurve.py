"""Light curves from photometry: the Occultation Portal's equations 1-3.

Each star's flux is normalised by its median over the run (eqs. 1-2; an ensemble of
reference stars is the mean of their normalised fluxes), and the target is divided by
the reference (eq. 3). Frames flagged by the aligner or photometry keep their values and
carry their flags.
"""
from __future__ import annotations

import numpy as np
from astropy.table import Table
from astropy.time import Time

from occcore.model import FrameSeries, Photometry, Track


def normalised(flux: np.ndarray) -> np.ndarray:
    """Flux divided by its median over the finite values (eqs. 1 and 2)."""
    finite = np.isfinite(flux)
    if not finite.any():
        return np.full_like(flux, np.nan)
    median = np.median(flux[finite])
    if median == 0:
        return np.full_like(flux, np.nan)
    return flux / median


def ensemble(fluxes: list[np.ndarray]) -> np.ndarray:
    """Mean of several normalised reference fluxes."""
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.vstack([normalised(f) for f in fluxes]), axis=0)


def build_table(series: FrameSeries, track: Track, phot: Photometry, roles: dict[str, str],
                time_mid: Time, flags: np.ndarray, meta: dict) -> Table:
    """The lightcurve.ecsv table: time (UTC, mid exposure), frame, per-star columns,
    norm_target, norm_reference, ratio, flag."""
    table = Table(meta=meta)
    time = Time(time_mid, format="isot", precision=9)
    table["time"] = time
    table["frame"] = np.arange(len(series))
    for j, name in enumerate(phot.names):
        table[f"flux_{name}"] = phot.flux[:, j]
        table[f"flux_err_{name}"] = phot.flux_err[:, j]
        table[f"sky_{name}"] = phot.sky[:, j]
        table[f"x_{name}"] = track.x[:, j]
        table[f"y_{name}"] = track.y[:, j]
    target = [j for j, n in enumerate(phot.names) if roles[n] == "target"][0]
    references = [j for j, n in enumerate(phot.names) if roles[n] == "reference"]
    norm_target = normalised(phot.flux[:, target])
    norm_reference = ensemble([phot.flux[:, j] for j in references])
    table["norm_target"] = norm_target
    table["norm_reference"] = norm_reference
    with np.errstate(invalid="ignore", divide="ignore"):
        table["ratio"] = norm_target / norm_reference
    table["flag"] = flags.astype(np.uint32)
    return table
