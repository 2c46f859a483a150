"""``tlc``: a made-up "tiny light curve" text dialect.

A ``# date YYYY-MM-DD`` header line (other ``#`` lines are comments), then one reading a
line: ``hh:mm:ss.sss flux`` (time of day in UTC, what the stamp means is the option
``instant``). Readings past midnight continue on the next day.
"""
import re

import attrs

from occcore.plugin import CorruptSource, Match

DATE_LINE = re.compile(r"^# date (\d{4}-\d{2}-\d{2})\s*$")
ROW = re.compile(r"^(\d{2}):(\d{2}):(\d{2}(?:\.\d+)?)\s+(\S+)\s*$")


@attrs.frozen(kw_only=True)
class TlcOptions:
    """``[lightcurve.options.tlc]``"""

    instant: str = attrs.field(default="start",
                               validator=attrs.validators.in_(("start", "mid", "end")))
    exposure_s: float = 0.0         # 0: the median interval between readings


def identify(probe):
    if probe.is_dir:
        return None
    lines = probe.head.decode("ascii", "replace").splitlines()
    if len(lines) >= 2 and DATE_LINE.match(lines[0]):
        data = next((ln for ln in lines[1:] if ln.strip() and not ln.startswith("#")), "")
        if ROW.match(data):
            return Match.CONTENT, "tlc date header and rows"
    return None


def read(source, *, options, context):
    import numpy as np
    from astropy import units as u
    from astropy.time import Time

    from occcore.model import FrameTimes, LightCurve
    path = source.path                      # an occcore.plugin.Source of one file
    options = options or TlcOptions()
    lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    date = DATE_LINE.match(lines[0]) if lines else None
    if date is None:
        raise CorruptSource(f"{path}: line 1: expected '# date YYYY-MM-DD'")
    seconds, flux = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip() or line.startswith("#"):
            continue
        row = ROW.match(line)
        if row is None:
            raise CorruptSource(f"{path}: line {number}: expected 'hh:mm:ss.sss flux', "
                                f"got {line[:40]!r}")
        h, m, s, value = row.groups()
        try:
            flux.append(float(value))
        except ValueError:
            raise CorruptSource(f"{path}: line {number}: flux {value!r} is not a number") \
                from None
        seconds.append(int(h) * 3600 + int(m) * 60 + float(s))
    if len(seconds) < 3:
        raise CorruptSource(f"{path}: {len(seconds)} readings; at least 3 are needed")
    seconds = np.asarray(seconds)
    seconds += 86400.0 * np.concatenate([[0], np.cumsum(np.diff(seconds) < -43200)])
    if np.any(np.diff(seconds) <= 0):
        line = int(np.flatnonzero(np.diff(seconds) <= 0)[0]) + 1
        raise CorruptSource(f"{path}: reading {line + 1}: time does not increase")
    exposure_s = options.exposure_s or float(np.median(np.diff(seconds)))
    epoch = Time(date.group(1), scale="utc") + seconds[0] * u.s
    times = FrameTimes(epoch=epoch, offsets_s=seconds - seconds[0], instant=options.instant,
                       source="unknown", note="tlc time of day")
    return LightCurve(times=times, exposure_s=exposure_s, flux=np.asarray(flux),
                      name=path.stem, meta={"format": "tlc", "date": date.group(1)})
