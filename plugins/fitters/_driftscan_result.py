"""The drift-scan TimingResult: the direct method's edges and the PSF-model fit beside."""
from __future__ import annotations

import math

import numpy as np

from occcore.model import Edge, TimingDiagnostics, TimingReadings, TimingResult
from occcore.plugin import NotApplicable


def _edge(epoch, offset_s, err1_s):
    from astropy.time import TimeDelta
    if offset_s is None:
        return None
    if err1_s is None or not math.isfinite(err1_s) or err1_s <= 0:
        return Edge(time=epoch + TimeDelta(offset_s, format="sec"))
    # the roughness error is a Gaussian 1-sigma: the 2 and 3-sigma intervals scale with it
    return Edge(time=epoch + TimeDelta(offset_s, format="sec"),
                **{f"err{k}_s": (k * err1_s, k * err1_s) for k in (1, 2, 3)})


def timing_result(lc, info: dict) -> TimingResult:
    from occplugins.readers._driftscan import DriftScanError, fit_psf_edges
    epoch = lc.times.epoch
    if not info.get("event_detected", True):
        return TimingResult(model="driftscan", outcome="negative",
                            reason="no gap in the target trail: "
                            + "; ".join(info.get("notes", [])))
    times, errors = info["times_s"], info["err_s"]
    direct = {name: _edge(epoch, times.get(key), errors.get(key))
              for name, key in (("immersion", "disappearance"), ("emersion", "reappearance"))}
    extra = {"driftscan": {k: info[k] for k in ("method", "primary_conversion", "times_utc",
                                                "conversions", "trail", "notes") if k in info}}
    model = None
    chi2, dof = float("nan"), 0
    try:
        psf = fit_psf_edges(lc)
    except DriftScanError as exc:
        extra["psf_model_fit"] = {"declined": str(exc)}
    else:
        fitted = {}
        for name, key in (("immersion", "disappearance"), ("emersion", "reappearance")):
            edge = Edge(time=epoch + psf[f"{key}_s"] * _seconds(),
                        err1_s=psf.get(f"{key}_err_s"), err2_s=psf.get(f"{key}_err2_s"),
                        err3_s=psf.get(f"{key}_err3_s"))
            fitted[name] = edge.to_json()
        extra["psf_model_fit"] = {"model": psf.get("model", "step convolved with the trail PSF"),
                                  **fitted, "chi2": psf.get("chi2"), "dof": psf.get("dof"),
                                  "psf_sigma_s": psf.get("psf_sigma_s")}
        model = psf.get("model_flux")
        chi2, dof = float(psf.get("chi2", float("nan"))), int(psf.get("dof", 0))
    if direct["immersion"] is None and direct["emersion"] is None:
        raise NotApplicable("the drift-scan analysis found no edge to time")
    start = lc.times.offsets_s - 0.5 * lc.exposure_s
    flux = np.asarray(lc.flux, float)
    upper = float(np.nanpercentile(flux, 90)) or 1.0
    return TimingResult(
        model="driftscan", outcome="positive", **direct, chi2=chi2, dof=dof,
        readings=TimingReadings(epoch=epoch, start_s=start, end_s=start + lc.exposure_s,
                                flux=flux / upper,
                                model=None if model is None else np.asarray(model) / upper),
        diagnostics=TimingDiagnostics(
            errors_method="trail roughness / edge slope (Broughton); 2 and 3 sigma scaled",
            significance_method="a gap in the trail between the 49 % crossings",
            n_readings=len(flux), exposure_s=lc.exposure_s, time_instant_of_input="mid",
            notes=tuple(info.get("notes", ())), extra=extra))


def _seconds():
    from astropy import units as u
    return u.s
