"""What every in-tree light-curve reader shares: its options, reading text safely, time
parsing, dates, and turning columns into a :class:`~occcore.model.LightCurve` with its
timestamps checked (never re-sorted silently)."""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import attrs
import numpy as np

from occcore.model import FrameFlag, FrameTimes, LightCurve, timestamp_quality
from occcore.plugin import InputError

TIMESTAMP_POLICIES = ("rederive", "keep", "refuse")
MAX_FIELD_CHARS = 10_000          # a CSV field longer than this is not a number or a time
MAX_FILE_BYTES = 2 << 30

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BRACKET_TIME = re.compile(r"^\[?\s*(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*\]?$")


def _date_or_none(instance, attribute, value):
    if value is not None and not (isinstance(value, str) and _DATE.match(value)):
        raise ValueError(f"{attribute.name} must be YYYY-MM-DD, not {value!r}")


def _positive_or_none(instance, attribute, value):
    if value is not None and not (isinstance(value, (int, float)) and value > 0):
        raise ValueError(f"{attribute.name} must be > 0, not {value!r}")


@attrs.frozen(kw_only=True)
class LightCurveOptions:
    """Options every in-tree light-curve reader takes (``occcore fit`` fills them from
    ``--column``, ``--date``, ``--exposure``, ``--frame-rate``/``--cadence``,
    ``--start``, ``--timestamps``)."""

    column: str | None = None              # the signal column (or aperture / object name)
    date: str | None = attrs.field(default=None, validator=_date_or_none)
    exposure_s: float | None = attrs.field(default=None, validator=_positive_or_none)
    timestamps: str = attrs.field(default="rederive",
                                  validator=attrs.validators.in_(TIMESTAMP_POLICIES))
    frame_rate_hz: float | None = attrs.field(default=None, validator=_positive_or_none)
    cadence_s: float | None = attrs.field(default=None, validator=_positive_or_none)
    start_utc: str | None = None           # time of the first reading, for curves without times


def read_lines(path: Path) -> list[str]:
    """The file's lines (undecodable bytes replaced), refusing files too big for a curve."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size} bytes is not a light-curve file")
        return path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def csv_rows(path: Path, lines: list[str], first_line: int):
    """Rows of ``lines`` as CSV, with the file's line number of each; fields are bounded."""
    csv.field_size_limit(min(sys.maxsize, 1 << 20))
    out = []
    try:
        for k, row in enumerate(csv.reader(lines)):
            if any(len(x) > MAX_FIELD_CHARS for x in row):
                raise InputError(f"{path}: line {first_line + k}: a field of more than "
                                 f"{MAX_FIELD_CHARS} characters")
            out.append((first_line + k, [x.strip() for x in row]))
    except csv.Error as exc:
        raise InputError(f"{path}: not readable as CSV: {exc}") from None
    return out


def number(text: str) -> float:
    text = text.strip()
    if not text:
        return np.nan
    try:
        return float(text)
    except ValueError:
        return np.nan


def seconds_of_day(text: str, path: Path, line: int) -> float:
    m = _BRACKET_TIME.match(text.strip())
    if not m:
        raise InputError(f"{path}: line {line}: time {text[:40]!r} is not hh:mm:ss[.fff]")
    h, mi, s = m.groups()
    value = int(h) * 3600 + int(mi) * 60 + float(s)
    if int(h) > 47 or int(mi) > 59 or float(s) >= 61:
        raise InputError(f"{path}: line {line}: time {text[:40]!r} is not a time of day")
    return value


def unwrap_days(seconds: np.ndarray) -> np.ndarray:
    """Add a day after each midnight crossing (a drop of more than 12 h)."""
    jumps = np.concatenate([[0], np.cumsum(np.diff(seconds) < -43200)])
    return seconds + 86400.0 * jumps


def pick(columns: list[str], column: str | None, candidates: list[str], path: Path) -> str:
    if column is not None:
        for c in columns:
            if c == column or c.lower() == column.lower():
                return c
        for c in candidates:
            if c.split("-", 1)[-1] == column or c.endswith(f"({column})"):
                return c
        raise InputError(f"{path}: no column {column!r}; signal columns: {', '.join(candidates)}")
    if not candidates:
        raise InputError(f"{path}: no signal column found")
    return candidates[0]


def utc_time(text: str, where: str):
    """An ISO date/time as astropy Time (UTC), range-checked before ERFA sees it."""
    from astropy.time import Time
    text = str(text).strip()
    m = re.match(r"^(\d{4})-", text)
    if not m or not 1900 <= int(m.group(1)) <= 2200:
        raise InputError(f"{where}: {text[:40]!r} is not an ISO time between 1900 and 2200")
    try:
        return Time(text, scale="utc")
    except ValueError:
        raise InputError(f"{where}: {text[:40]!r} is not an ISO time") from None


def day_of(date: str | None, found: str | None, path: Path, reader: str) -> tuple[str, str]:
    """(YYYY-MM-DD, where it came from) for a curve timed by time of day only: the file's
    own date, else the ``date`` option; neither is an error (never a placeholder)."""
    if found:
        return found, "file"
    if date:
        return date, "option"
    raise InputError(f"{path}: the file gives times of day only, without a date; give the "
                     f"date with --date YYYY-MM-DD (or [lightcurve.options.{reader}] date)")


def index_times(frames: np.ndarray, options: LightCurveOptions, path: Path):
    """Seconds after the start for a curve without time stamps, from its frame numbers and
    the given frame rate or cadence; None when neither was given."""
    cadence = options.cadence_s or (1.0 / options.frame_rate_hz if options.frame_rate_hz
                                    else None)
    if cadence is None:
        return None
    if options.start_utc is None:
        raise InputError(f"{path}: times from the frame cadence need the time of the first "
                         "reading (--start ISO)")
    index = frames - frames[np.isfinite(frames)][0] if np.isfinite(frames).any() \
        else np.arange(len(frames), dtype=float)
    return index * cadence


def _rederive(t: np.ndarray, quality) -> tuple[np.ndarray, list[int]]:
    """Re-derive isolated bad stamps (a stamp whose neighbours are two cadences apart
    while it breaks the cadence) as the midpoint of its neighbours, as GoPyOTE does."""
    t = t.copy()
    cadence = quality.cadence_s
    suspects = sorted(set(quality.negative_steps) | set(quality.duplicated) |
                      set(quality.cadence_changes))
    fixed = []
    for i in suspects:
        for j in (i, i - 1):              # the bad stamp is the flagged frame or the one before
            if 0 < j < len(t) - 1 and j not in fixed and \
                    abs((t[j + 1] - t[j - 1]) / cadence - 2) < 0.3 and \
                    not abs((t[j] - t[j - 1]) / cadence - 1) < 0.3:
                t[j] = 0.5 * (t[j - 1] + t[j + 1])
                fixed.append(j)
                break
    return t, fixed


def make_lightcurve(path: Path, seconds, flux, flux_err, *, instant: str, options, epoch_day,
                    note: str, frames, meta: dict, logger=None) -> LightCurve:
    """A LightCurve from columns read in file order.

    ``seconds`` are after 00:00 UTC of ``epoch_day`` (an astropy Time) or after the first
    reading. Readings without a value are dropped; the stamps are checked for dropped,
    duplicated and out-of-order frames and handled by the ``timestamps`` policy:
    ``rederive`` (default) re-derives isolated bad stamps from their neighbours and flags
    them, ``keep`` leaves them (out-of-order stamps are still refused: a fit needs time
    order), ``refuse`` stops at any problem. Nothing is re-sorted.
    """
    from astropy import units as u
    seconds = np.asarray(seconds, float)
    flux = np.asarray(flux, float)
    keep = np.isfinite(seconds) & np.isfinite(flux)
    if keep.sum() < 3:
        raise InputError(f"{path}: fewer than 3 readings with a time and a value"
                         + ("" if np.isfinite(seconds).any() else
                            "; the file has no times: give --frame-rate HZ (or --cadence S) "
                            "and --start ISO"))
    seconds = seconds[keep]
    frames_kept = None if frames is None else np.asarray(frames, float)[keep]
    label = (lambda i: int(frames_kept[i])) if frames_kept is not None and \
        np.all(np.isfinite(frames_kept)) else (lambda i: int(np.flatnonzero(keep)[i]))
    quality = timestamp_quality(seconds)
    flags = np.array(quality.flags)
    policy = options.timestamps
    problems = quality.summary()
    named = _name_frames(quality, label)
    if not quality.clean:
        if policy == "refuse":
            raise InputError(f"{path}: timestamp problems ({named}); refused by the "
                             "'refuse' timestamp policy")
        if policy == "rederive" and (quality.negative_steps or quality.duplicated
                                     or quality.cadence_changes):
            seconds, fixed = _rederive(seconds, quality)
            after = timestamp_quality(seconds)
            if after.negative_steps or after.duplicated:
                raise InputError(f"{path}: timestamp problems that are not isolated errors "
                                 f"({named}); they cannot be re-derived from the cadence. "
                                 "Check the file, or use --timestamps keep to fit as read")
            flags = np.array(after.flags)
            for j in fixed:
                flags[j] |= np.uint32(FrameFlag.TIME_CORRECTED)
            meta["timestamps_rederived_frames"] = [label(j) for j in fixed]
            problems = f"{problems}; re-derived from the cadence at frame(s) " + \
                ", ".join(str(label(j)) for j in fixed) if fixed else problems
        elif quality.negative_steps:
            raise InputError(f"{path}: time runs backwards ({named}); a fit needs readings "
                             "in time order: use --timestamps rederive, or fix the file")
        if logger is not None:
            logger.warning("%s: %s", path, named)
    meta["timestamp_quality"] = {**quality.to_json(), "frames": named, "policy": policy}
    epoch = epoch_day + seconds[0] * u.s
    exposure_s = options.exposure_s
    if exposure_s is None:
        exposure_s = quality.cadence_s
        meta["exposure_note"] = "exposure taken as the median reading interval"
    times = FrameTimes(epoch=epoch, offsets_s=seconds - seconds[0], instant=instant,
                       source="unknown", note=note)
    err = None if flux_err is None else np.asarray(flux_err, float)[keep]
    frame_numbers = None if frames_kept is None or not np.all(np.isfinite(frames_kept)) else \
        np.rint(frames_kept * 2).astype(np.int64) // 2
    return LightCurve(times=times, exposure_s=exposure_s, flux=flux[keep], flux_err=err,
                      name=meta.get("column", "flux"), frame=frame_numbers, flags=flags,
                      meta={**meta, "timestamp_summary": problems})


def _name_frames(quality, label) -> str:
    """The quality summary with the file's own frame numbers."""
    parts = []
    if quality.dropped:
        parts.append("dropped frames before frame(s) " +
                     ", ".join(f"{label(f)} ({m} missing)" for f, m in quality.dropped[:8]))
    if quality.duplicated:
        parts.append("duplicated stamps at frame(s) " +
                     ", ".join(str(label(f)) for f in quality.duplicated[:8]))
    if quality.negative_steps:
        parts.append("time runs backwards at frame(s) " +
                     ", ".join(str(label(f)) for f in quality.negative_steps[:8]))
    if quality.cadence_changes:
        parts.append("cadence changes at frame(s) " +
                     ", ".join(str(label(f)) for f in quality.cadence_changes[:8]))
    return "; ".join(parts) or "no timestamp problem found"


def midnight(day: str):
    from astropy.time import Time
    return Time(day, scale="utc")
