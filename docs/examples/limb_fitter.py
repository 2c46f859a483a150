import numpy as np

from occcore.model import LimbFit
from occcore.plugin import LimbFitterSpec, NotApplicable, hookimpl


def _fit(chords, *, options, context):
    """A circle through the chords' end points: centre their mean, radius the mean
    distance (no error bars)."""
    points = [(f, g) for c in chords if c.positive and c.f_km is not None
              for f, g in zip(c.f_km, c.g_km, strict=True)]
    if len(points) < 3:
        raise NotApplicable(f"{len(points)} chord end points; a circle needs 3")
    f, g = np.array(points).T
    f0, g0 = f.mean(), g.mean()
    distance = np.hypot(f - f0, g - g0)
    radius = float(distance.mean())
    return LimbFit(model="mean-circle", center_f_km=float(f0), center_g_km=float(g0),
                   equatorial_radius_km=radius, oblateness=0.0, position_angle_deg=0.0,
                   chi2=float(np.sum((distance - radius) ** 2)), dof=len(points) - 3)


@hookimpl
def occcore_limb_fitters():
    yield LimbFitterSpec(name="mean-circle", summary="circle through the mean", fit=_fit)
