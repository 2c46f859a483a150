"""The square-well timing fitter: a sharp-edged event integrated over each exposure window,
edges at sub-reading resolution, baseline and bottom fitted (see ``_driver``)."""
from __future__ import annotations

import attrs

from occcore.plugin import TimingFitterSpec, hookimpl
from occplugins.fitters._options import TimingOptions


@attrs.frozen(kw_only=True)
class SquareOptions(TimingOptions):
    pass


def _fit(lightcurve, *, options, context):
    from occplugins.fitters._driver import fit_event
    from occplugins.fitters._models import SquareModel
    options = options or SquareOptions()
    return fit_event(lightcurve, lambda start, end, width_s: SquareModel(start, end), 0.0,
                     options, context, "square", {})


@hookimpl
def occcore_timing_fitters():
    yield TimingFitterSpec(name="square", summary="square well integrated over each exposure; "
                           "profile-likelihood edges", fit=_fit, options=SquareOptions)
