"""Light-curve files in: occcore ECSV, PyMovie, PyOTE/R-OTE, Tangra, Limovie CSV, SORA text.

The dialect is recognised by content (the first line, as PyOTE does, then the data).
Each dialect states what its time stamps mean: PyMovie/PyOTE/R-OTE/Limovie readings are
**start** of exposure, Tangra and SORA **mid** exposure, occcore's ECSV says so in its
metadata. ``column`` picks the signal (a column name, or an aperture name such as
``target``); time-of-day-only files take their date from the header when it is there,
else from ``date`` (default 2000-01-01, noted in the metadata).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.time import Time

from occcore.errors import InputError
from occcore.model import FrameTimes, LightCurve

_BRACKET_TIME = re.compile(r"^\[?\s*(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*\]?$")
DEFAULT_DATE = "2000-01-01"


def sniff(path: Path) -> str:
    """The dialect of a light-curve file, from its first line and content."""
    try:
        with open(path, "r", errors="replace") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None
    first = head.splitlines()[0] if head else ""
    if first.startswith("# %ECSV") or first.startswith("%ECSV"):
        return "ecsv"
    if "Tangra" in first:
        return "tangra"
    if "Limovie" in first:
        return "limovie"
    if "PyMovie" in first or "PYMOVIE" in first.upper() or "R-OTE" in first or \
            "PYOTE" in first.upper():
        return "pymovie"
    if first.startswith("#") and re.search(r"^FrameNum\s*,", head, re.M):
        return "pymovie"
    return "sora"


def _seconds_of_day(text: str, path: Path, line: int) -> float:
    m = _BRACKET_TIME.match(text.strip())
    if not m:
        raise InputError(f"{path}: line {line}: time {text!r} is not hh:mm:ss[.fff]")
    h, mi, s = m.groups()
    return int(h) * 3600 + int(mi) * 60 + float(s)


def _unwrap_days(seconds: np.ndarray) -> np.ndarray:
    """Add a day after each midnight crossing (a drop of more than 12 h)."""
    jumps = np.concatenate([[0], np.cumsum(np.diff(seconds) < -43200)])
    return seconds + 86400.0 * jumps


def _pick(columns: list[str], column: str | None, candidates: list[str], path: Path) -> str:
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


def _number(text: str) -> float:
    text = text.strip()
    if not text:
        return np.nan
    try:
        return float(text)
    except ValueError:
        return np.nan


def _make(path, seconds, flux, flux_err, instant, exposure_s, date, note, frames, meta):
    keep = np.isfinite(seconds) & np.isfinite(flux)
    if keep.sum() < 3:
        raise InputError(f"{path}: fewer than 3 readings with a time and a value")
    order = np.argsort(seconds[keep], kind="stable")
    seconds = seconds[keep][order]
    epoch = Time(date, scale="utc") + seconds[0] * u.s
    cycle = float(np.median(np.diff(seconds))) if len(seconds) > 1 else None
    if exposure_s is None:
        exposure_s = cycle
        meta["exposure_note"] = "exposure taken as the median reading interval"
    times = FrameTimes(epoch=epoch, offsets_s=seconds - seconds[0], instant=instant,
                       source="unknown", note=note)
    err = None if flux_err is None else flux_err[keep][order]
    return LightCurve(times=times, exposure_s=exposure_s, flux=flux[keep][order], flux_err=err,
                      name=meta.get("column", "flux"), frame=None if frames is None else
                      np.rint(frames[keep][order] * 2).astype(np.int64) // 2,
                      meta=meta)


def _read_csv_rows(lines: list[str], header_index: int):
    reader = csv.reader(lines[header_index:])
    header = [h.strip() for h in next(reader)]
    rows = [r for r in reader if r and any(x.strip() for x in r)]
    return header, rows


def read_pymovie(path: Path, column, exposure_s, date):
    """PyMovie and PyOTE/R-OTE CSV: FrameNum, timeInfo [hh:mm:ss.ffff], signal columns."""
    lines = path.read_text(errors="replace").splitlines()
    header_index = next((i for i, ln in enumerate(lines) if ln.startswith("FrameNum")), None)
    if header_index is None:
        raise InputError(f"{path}: no 'FrameNum,timeInfo,...' header line")
    comments = [ln for ln in lines[:header_index]]
    header, rows = _read_csv_rows(lines, header_index)
    if len(header) < 3 or header[1] != "timeInfo":
        raise InputError(f"{path}: expected FrameNum,timeInfo,... columns, got {header[:3]}")
    found_date = None
    for ln in comments:
        m = re.search(r"date at frame 0:\s*(\d{4}-\d\d-\d\d)", ln) or \
            re.search(r"timestamp\s*=\s*(\d{4}-\d\d-\d\d)", ln)
        if m:
            found_date = m.group(1)
    signals = [h for h in header[2:] if h.startswith("signal-")] or header[2:]
    chosen = _pick(header, column, signals, path)
    j = header.index(chosen)
    frames = np.array([_number(r[0]) for r in rows])
    seconds = np.array([_seconds_of_day(r[1], path, header_index + 2 + i) if r[1].strip()
                        else np.nan for i, r in enumerate(rows)])
    flux = np.array([_number(r[j]) if j < len(r) else np.nan for r in rows])
    meta = {"dialect": "pymovie", "column": chosen, "columns": header,
            "header_lines": comments, "date_source": "file" if found_date else "default"}
    return _make(path, _unwrap_days(seconds), flux, None, "start", exposure_s,
                 found_date or date, "PyMovie/PyOTE time stamps: start of exposure", frames, meta)


def read_tangra(path: Path, column, exposure_s, date):
    """Tangra CSV: FrameNo, Time (UT), Signal (n), Background (n) ...; mid-exposure stamps."""
    lines = path.read_text(errors="replace").splitlines()
    header_index = next((i for i, ln in enumerate(lines) if ln.startswith("FrameNo")
                         or ln.startswith("BinNo")), None)
    if header_index is None:
        raise InputError(f"{path}: no 'FrameNo,Time (UT),...' header line")
    header, rows = _read_csv_rows(lines, header_index)
    if not header[1].startswith("Time"):
        raise InputError(f"{path}: Tangra time column is {header[1]!r}; export times as UT")
    objects = sorted({m.group(1) for h in header for m in [re.search(r"\((\d+)\)", h)] if m},
                     key=int)
    wanted = column or (objects[0] if objects else None)
    if wanted is None:
        raise InputError(f"{path}: no object columns")
    wanted = str(wanted)
    signal = f"Signal ({wanted})"
    background = f"Background ({wanted})"
    net = f"SignalMinusBackground ({wanted})"
    frames = np.array([_number(r[0]) for r in rows])
    seconds = np.array([_seconds_of_day(r[1], path, header_index + 2 + i)
                        if r[1].strip() and "?" not in r[1] else np.nan
                        for i, r in enumerate(rows)])
    if net in header:
        flux = np.array([_number(r[header.index(net)]) for r in rows])
        chosen = net
    elif signal in header:
        s = np.array([_number(r[header.index(signal)]) for r in rows])
        b = np.array([_number(r[header.index(background)]) for r in rows]) \
            if background in header else 0.0
        flux = s - b
        chosen = f"{signal} - {background}"
    elif column in header:
        flux = np.array([_number(r[header.index(column)]) for r in rows])
        chosen = column
    else:
        raise InputError(f"{path}: no Signal/SignalMinusBackground column for object {wanted}; "
                         f"objects: {', '.join(objects)}")
    meta = {"dialect": "tangra", "column": chosen, "columns": header,
            "header_lines": lines[:header_index], "date_source": "default"}
    return _make(path, _unwrap_days(seconds), flux, None, "mid", exposure_s, date,
                 "Tangra time stamps: mid-exposure", frames, meta)


def read_limovie(path: Path, column, exposure_s, date):
    """Limovie CSV: data rows after the 'No.' header; VTI h, m, s in columns 3-5,
    object values from column 10."""
    lines = path.read_text(errors="replace").splitlines()
    header_index = next((i for i, ln in enumerate(lines)
                         if ln.lstrip('"').startswith("No.")), None)
    if header_index is None:
        raise InputError(f"{path}: no 'No.' header row of a Limovie file")
    rows = [r for r in csv.reader(lines[header_index + 1:]) if len(r) > 10]
    index = 10 + (int(column) - 1 if column and str(column).isdigit() else 0)
    frames = np.array([_number(r[0]) for r in rows])
    seconds = np.array([3600 * _number(r[3]) + 60 * _number(r[4]) + _number(r[5]) for r in rows])
    flux = np.array([_number(r[index]) for r in rows])
    meta = {"dialect": "limovie", "column": f"object {index - 9}", "date_source": "default"}
    return _make(path, _unwrap_days(seconds), flux, None, "start", exposure_s, date,
                 "Limovie VTI times: assumed start of exposure", frames, meta)


def _split_jd(text: str) -> tuple[float, float]:
    """A JD string -> (integer part, fraction) without float rounding of the whole number."""
    text = text.strip()
    if "e" in text.lower():
        value = float(text)
        whole = np.floor(value)
        return whole, value - whole
    whole, _, frac = text.partition(".")
    return float(whole), float("0." + (frac or "0"))


def read_sora(path: Path, column, exposure_s, date, tref=None, time_column: int = 0):
    """SORA-style text: time (JD, ISO, or seconds after ``tref``), flux, optional error.

    ``time_column`` and a numeric ``column`` pick other columns (SORA's ``usecols``)."""
    all_lines = path.read_text(errors="replace").splitlines()
    lines = [ln for ln in all_lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError(f"{path}: empty light-curve file")
    if tref is None:
        # occcore's SORA export names its reference in the header
        found = next((m.group(1) for ln in all_lines if ln.lstrip().startswith("#")
                      for m in [re.search(r"tref\s*=\s*([0-9T:. -]+?)\s*(?:UTC)?\s*$", ln)] if m),
                     None)
        tref = found
    delimiter = "," if "," in lines[0] else None
    split = (lambda ln: [x.strip().strip('"') for x in ln.split(",")]) if delimiter else \
        (lambda ln: ln.split())
    rows = [split(ln) for ln in lines]
    if time_column:
        rows = [[r[time_column]] + [x for k, x in enumerate(r) if k != time_column] for r in rows]
    header = None
    if not _looks_like_time(rows[0][0]):
        header, rows = rows[0], rows[1:]
    if not rows or len(rows[0]) < 2:
        raise InputError(f"{path}: expected at least two columns (time, flux)")
    first = rows[0][0]
    flux_index = 1
    if column is not None:
        if header and column in header:
            flux_index = header.index(column)
        elif str(column).isdigit():
            flux_index = int(column) + (1 if time_column and int(column) < time_column else 0)
        else:
            raise InputError(f"{path}: no column {column!r}")
    try:
        flux = np.array([float(r[flux_index]) for r in rows])
        err = np.array([float(r[2]) for r in rows]) if all(len(r) > 2 for r in rows) and \
            flux_index == 1 else None
    except (ValueError, IndexError) as exc:
        raise InputError(f"{path}: unreadable number: {exc}") from None
    if ":" in first:
        times = Time([r[0] for r in rows], scale="utc")
        epoch = times[0]
        kind = "iso"
    else:
        values = [_split_jd(r[0]) for r in rows]
        if values[0][0] > 2_400_000:
            whole = np.array([v[0] for v in values])
            frac = np.array([v[1] for v in values])
            times = Time(whole, frac, format="jd", scale="utc")
            epoch = times[0]
            kind = "jd"
        else:
            if tref is None:
                raise InputError(f"{path}: times are seconds after a reference; give --tref "
                                 "(ISO time) for them")
            epoch = Time(tref, scale="utc")
            seconds = np.array([v[0] + v[1] for v in values])
            times = epoch + seconds * u.s
            kind = "seconds"
    ref = Time(epoch.utc.iso[:10], scale="utc")
    seconds = (times - ref).to_value("s")
    meta = {"dialect": f"sora-{kind}", "column": header[flux_index] if header else "flux",
            "date_source": "file"}
    return _make(path, seconds, flux, err, "mid", exposure_s, ref.iso[:10],
                 "SORA time stamps: mid-exposure", None, meta)


def _looks_like_time(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return ":" in text and any(ch.isdigit() for ch in text)


def read_ecsv_table(path: Path):
    """occcore's lightcurve.ecsv as an astropy Table (checked to have its time column)."""
    from astropy.table import Table
    try:
        table = Table.read(path, format="ascii.ecsv")
    except Exception as exc:
        raise InputError(f"{path}: not a readable ECSV table: {exc}") from None
    if "time" not in table.colnames or not isinstance(table["time"], Time):
        raise InputError(f"{path}: no 'time' column of times")
    return table


def ecsv_lightcurves(path: Path, table, columns, exposure_s=None) -> dict[str, LightCurve]:
    """Several signals of one read ECSV table (None: the default column, ratio), sharing
    one conversion of its times."""
    meta = dict(table.meta)
    instant = meta.get("time_instant", "mid")
    exposure = exposure_s if exposure_s is not None else meta.get("exposure_s")
    times = table["time"].utc
    ref = Time(times[0].iso[:10], scale="utc")
    seconds = (times - ref).to_value("s")
    frames = np.asarray(table["frame"], float) if "frame" in table.colnames else None
    curves = {}
    for column in columns:
        chosen = column or ("ratio" if "ratio" in table.colnames else None)
        if chosen not in table.colnames:
            chosen = next((c for c in table.colnames if c.endswith(f"_{column}")), None) \
                if column else None
            if chosen is None:
                raise InputError(f"{path}: no column {column!r}; columns: "
                                 f"{', '.join(table.colnames)}")
        flux = np.asarray(table[chosen], float)
        err = None
        if chosen.startswith("flux_") and f"flux_err_{chosen[5:]}" in table.colnames:
            err = np.asarray(table[f"flux_err_{chosen[5:]}"], float)
        info = {"dialect": "occcore-ecsv", "column": chosen, "source": meta.get("source"),
                "date_source": "file", "time_source": meta.get("time_source")}
        curves[column] = _make(path, seconds, flux, err, instant, exposure, ref.iso[:10],
                               f"occcore light curve ({instant} exposure)", frames, info)
    return curves


def read_ecsv(path: Path, column, exposure_s, date):
    """occcore's lightcurve.ecsv (default column: ratio)."""
    return ecsv_lightcurves(path, read_ecsv_table(path), [column], exposure_s)[column]


READERS = {"ecsv": read_ecsv, "pymovie": read_pymovie, "tangra": read_tangra,
           "limovie": read_limovie, "sora": read_sora}


def read_lightcurve(path, *, column: str | None = None, exposure_s: float | None = None,
                    date: str | None = None, tref: str | None = None,
                    dialect: str | None = None, time_column: int = 0) -> LightCurve:
    """Read any supported light-curve file into a LightCurve."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = dialect or sniff(path)
    if kind not in READERS:
        raise InputError(f"unknown light-curve dialect {kind!r}; known: {', '.join(READERS)}")
    reader = READERS[kind]
    if kind == "sora":
        return reader(path, column, exposure_s, date or DEFAULT_DATE, tref=tref,
                      time_column=time_column)
    return reader(path, column, exposure_s, date or DEFAULT_DATE)
