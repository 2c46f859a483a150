"""``driftscan``: timing of a drift-scan trail (Broughton's method).

The result's edges are the direct 49 % level crossings of the trail profile, with the
1-sigma error from the trail's roughness (the method the document specifies); beside them,
in ``diagnostics.extra["psf_model_fit"]``, the fit of the trail's light curve with each edge
a step convolved with the trail's PSF (a square well alone is biased on PSF-shaped edges).
It declines a light curve that does not come from a drift-scan image."""
from __future__ import annotations

from occcore.plugin import NotApplicable, TimingFitterSpec, hookimpl


def _fit(lightcurve, *, options, context):
    info = lightcurve.meta.get("driftscan")
    if not info:
        raise NotApplicable("not a drift-scan light curve (read it with --reader driftscan)")
    from occplugins.fitters._driftscan_result import timing_result
    return timing_result(lightcurve, info)


@hookimpl
def occcore_timing_fitters():
    yield TimingFitterSpec(name="driftscan", summary="drift-scan trail: direct 49 % crossings "
                           "(roughness errors) with a trail-PSF model fit beside them", fit=_fit)
