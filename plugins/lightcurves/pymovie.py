"""``pymovie``: PyMovie and PyOTE/R-OTE CSV (``FrameNum, timeInfo, signal-...``).

Stamps mean the start of each exposure. The date comes from the header (``# date at
frame 0: ...``), else ``--date``. Header lines that say what the file is (observer,
site, object, the recording's tags) are carried into the light curve's metadata.
"""
from __future__ import annotations

import re

import numpy as np

from occcore.plugin import InputError, LightCurveReaderSpec, Match, hookimpl
from occplugins.lightcurves import _common

_HEADER_KEYS = {"observer": r"observer", "site": r"(site|location)", "object": r"(object|target)",
                "telescope": r"telescope", "camera": r"camera|instrument"}


def _identify(probe):
    head = probe.head[:8192].decode("utf-8", "replace")
    first = head.splitlines()[0] if head else ""
    upper = first.upper()
    if "PYMOVIE" in upper or "R-OTE" in upper or "PYOTE" in upper:
        return Match.CONTENT, first.strip("# ")[:40]
    if re.search(r"^FrameNum\s*,\s*timeInfo", head, re.M):
        return Match.CONTENT, "FrameNum,timeInfo header"
    return None


def _header_meta(comments: list[str]) -> tuple[str | None, dict]:
    found_date, meta = None, {}
    for line in comments:
        m = re.search(r"date at frame 0:\s*(\d{4}-\d\d-\d\d)", line) or \
            re.search(r"timestamp\s*=\s*(\d{4}-\d\d-\d\d)", line)
        if m:
            found_date = m.group(1)
        m = re.match(r"#\s*([A-Za-z][\w .-]{0,40}?)\s*[:=]\s*(.+)$", line)
        if m:
            key, value = m.group(1).strip().lower(), m.group(2).strip()
            for name, pattern in _HEADER_KEYS.items():
                if re.fullmatch(pattern, key):
                    meta[name] = value
    if found_date == "2010-01-01" and any("aav" in c.lower() for c in comments):
        found_date = None       # OccuRec's AAV placeholder date: a time of day only
        meta["date_note"] = "the AAV date 2010-01-01 is a placeholder, not the observation date"
    return found_date, meta


def _read(source, *, options, context):
    options = options or _common.LightCurveOptions()
    path = source.path
    lines = _common.read_lines(path)
    header_index = next((i for i, ln in enumerate(lines) if ln.startswith("FrameNum")), None)
    if header_index is None:
        raise InputError(f"{path}: no 'FrameNum,timeInfo,...' header line")
    comments = lines[:header_index]
    rows = _common.csv_rows(path, lines[header_index:], header_index + 1)
    header = rows[0][1]
    rows = [(n, r) for n, r in rows[1:] if r and any(r)]
    if len(header) < 3 or header[1] != "timeInfo":
        raise InputError(f"{path}: expected FrameNum,timeInfo,... columns, got {header[:3]}")
    found_date, file_meta = _header_meta(comments)
    signals = [h for h in header[2:] if h.startswith("signal-")] or header[2:]
    chosen = _common.pick(header, options.column, signals, path)
    j = header.index(chosen)
    frames = np.array([_common.number(r[0]) for _, r in rows])
    flux = np.array([_common.number(r[j]) if j < len(r) else np.nan for _, r in rows])
    stamped = [bool(r[1].strip()) if len(r) > 1 else False for _, r in rows]
    meta = {"dialect": "pymovie", "column": chosen, "columns": header,
            "header_lines": comments, **file_meta}
    if any(stamped):
        seconds = np.array([_common.seconds_of_day(r[1], path, n) if ok else np.nan
                            for (n, r), ok in zip(rows, stamped, strict=True)])
        day, meta["date_source"] = _common.day_of(options.date, found_date, path, "pymovie")
        seconds = _common.unwrap_days(seconds)
        note = "PyMovie/PyOTE time stamps: start of exposure"
        epoch_day = _common.midnight(day)
    else:
        seconds = _common.index_times(frames, options, path)
        if seconds is None:
            raise InputError(f"{path}: the timeInfo column is empty; give --frame-rate HZ "
                             "(or --cadence S) and --start ISO to time the readings")
        epoch_day = _common.utc_time(options.start_utc, f"{path}: --start")
        meta["date_source"] = "option"
        note = "times from the frame numbers and the given cadence (start of exposure)"
    return _common.make_lightcurve(path, seconds, flux, None, instant="start", options=options,
                                   epoch_day=epoch_day, note=note, frames=frames, meta=meta,
                                   logger=context.logger)


@hookimpl
def occcore_lightcurve_readers():
    yield LightCurveReaderSpec(name="pymovie", summary="PyMovie and PyOTE/R-OTE CSV "
                               "(start-of-exposure stamps)", identify=_identify, read=_read,
                               options=_common.LightCurveOptions)
