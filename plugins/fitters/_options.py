"""Options every in-tree timing fitter shares (a light module: registering the fitters
imports it, the fitting engine is imported only when a curve is fitted)."""
from __future__ import annotations

import attrs

EDGE_MODES = ("auto", "both", "immersion", "emersion")


@attrs.frozen(kw_only=True)
class TimingOptions:
    """Options every in-tree timing fitter shares."""

    edges: str = attrs.field(default="auto", validator=attrs.validators.in_(EDGE_MODES))
    baseline_degree: int = attrs.field(default=-1, validator=attrs.validators.ge(-1))  # -1: BIC
    sigma: str = attrs.field(default="auto", validator=attrs.validators.in_(("auto", "data")))
    errors: str = attrs.field(default="profile", validator=attrs.validators.in_(
        ("profile", "montecarlo")))
    mc_trials: int = 200
    integration: int = attrs.field(default=0, validator=attrs.validators.ge(0))  # 0 auto, 1 none
    fpp_trials: int = attrs.field(default=0, validator=attrs.validators.ge(0))   # 0: by size
    min_flat_likelihood: float = 0.1     # a flat line more likely than this: no event
    max_false_positive: float = 0.0027   # noise makes a dip like this more often: no event
    min_snr: float = attrs.field(default=3.0, validator=attrs.validators.ge(0))  # event SNR floor
    detrend: bool = True                 # alternate trend fit and detection
    sensitivity_durations_s: tuple = attrs.field(default=(), converter=tuple)  # () by size
    detection_probability: float = attrs.field(default=0.9, validator=[
        attrs.validators.gt(0), attrs.validators.lt(1)])
