"""What several reporters need: the outcome, file stems, times of the analysed readings."""
from __future__ import annotations

import re

import numpy as np

from occcore.model import LightCurve, ReportInput
from occcore.plugin import NotApplicable


def outcome(run: ReportInput) -> str:
    """'positive' or 'negative': the profile's [event] outcome, else the timing result.

    An undetermined timing (the curve could not be analysed) is never written up as a
    negative: the reporter declines with the reason."""
    given = str(run.section("event").get("outcome", "")).lower()
    if given in ("positive", "negative"):
        return given
    if run.timing is None:
        raise NotApplicable("no timing.json in the run and no [event] outcome in the profile")
    if run.timing.outcome == "undetermined":
        raise NotApplicable(f"the timing is undetermined ({run.timing.reason}); a report needs "
                            "a positive or a checked negative (or [event] outcome in the "
                            "observer profile)")
    return run.timing.outcome


def require_lightcurve(run: ReportInput) -> LightCurve:
    if run.lightcurve is None:
        raise NotApplicable("the run has no light curve (lightcurve.ecsv or the timing source)")
    return run.lightcurve


def exposure_s(lc: LightCurve) -> float:
    if lc.exposure_s is not None:
        return float(lc.exposure_s)
    return float(np.median(np.diff(lc.times.offsets_s)))


def start_offsets_s(lc: LightCurve) -> np.ndarray:
    """Start-of-exposure offsets from ``lc.times.epoch``."""
    return lc.times.as_instant("start", exposure_s(lc)).offsets_s


def mid_offsets_s(lc: LightCurve) -> np.ndarray:
    return lc.times.mid_exposure_offsets_s(exposure_s(lc))


def day_start(t):
    """00:00 UTC of ``t``'s date (an astropy Time)."""
    from astropy.time import Time
    return Time(t.utc.isot[:10], scale="utc")


def seconds_of_day(lc: LightCurve, offsets_s: np.ndarray):
    """(00:00 UTC of the first reading's date, offsets re-based on it) without losing the
    two-double precision of the epoch."""
    midnight = day_start(lc.times.epoch)
    shift = float((lc.times.epoch - midnight).to_value("s"))
    return midnight, offsets_s + shift


def clock(seconds: float, decimals: int) -> str:
    """hh:mm:ss.sss of a number of seconds after midnight (wrapping past 24 h)."""
    scale = 10 ** decimals
    ticks = int(round(seconds * scale)) % (86400 * scale)
    whole, frac = divmod(ticks, scale)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    text = f"{h:02d}:{m:02d}:{s:02d}"
    return text + (f".{frac:0{decimals}d}" if decimals else "")


def file_stem(run: ReportInput) -> str:
    """YYYYMMDD_<number>_<asteroid>_<observer> (the report forms' convention), from what is known."""
    event = run.section("event")
    parts = []
    if run.lightcurve is not None:
        parts.append(run.lightcurve.times.epoch.utc.isot[:10].replace("-", ""))
    for value in (event.get("asteroid_number"), event.get("asteroid"),
                  run.section("observer").get("name")):
        if value not in (None, ""):
            parts.append(re.sub(r"[^A-Za-z0-9]+", "-", str(value)).strip("-"))
    return "_".join(parts) or "occcore"


def sexagesimal(value_deg: float, decimals: int = 1) -> tuple[str, int, int, float]:
    """(sign, degrees, minutes, seconds) with the seconds rounded to ``decimals``."""
    sign = "-" if value_deg < 0 else "+"
    scale = 10 ** decimals
    ticks = int(round(abs(value_deg) * 3600 * scale))
    whole, frac = divmod(ticks, scale)
    d, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return sign, d, m, s + frac / scale


def edge(run: ReportInput, name: str):
    """The timing result's ``immersion`` or ``emersion`` Edge, or None."""
    if run.timing is None or run.timing.outcome != "positive":
        return None
    return getattr(run.timing, name)
