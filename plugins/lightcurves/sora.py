"""``sora``: SORA-style text light curves: a time column (JD, ISO, or seconds after
``tref``), a flux column and optionally its error, whitespace or comma separated, with
optional ``#`` comments and one header row.

``time_column`` and ``column`` pick the columns (0-based, as SORA's ``usecols``, or a
header name); without ``time_column`` the first column that holds times (JD or ISO) is
used, else column 0. Stamps mean mid-exposure (SORA's convention).
"""
from __future__ import annotations

import re

import attrs
import numpy as np

from occcore.plugin import InputError, LightCurveReaderSpec, Match, hookimpl
from occplugins.lightcurves import _common


def _index_or_none(instance, attribute, value):
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                  and value >= 0):
        raise ValueError(f"{attribute.name} must be a column number >= 0, not {value!r}")


@attrs.frozen(kw_only=True)
class SoraOptions(_common.LightCurveOptions):
    tref: str | None = None                 # reference time of files timed in seconds
    time_column: int | None = attrs.field(default=None, validator=_index_or_none)


def _looks_like_time(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return ":" in text and any(ch.isdigit() for ch in text)


def _identify(probe):
    text = probe.head[:4096].decode("utf-8", "replace")
    rows = [ln for ln in text.splitlines()[:20] if ln.strip() and not ln.lstrip().startswith("#")]
    if len(rows) < 2:
        return None
    split = (lambda ln: [x.strip().strip('"') for x in ln.split(",")]) if "," in rows[1] else \
        (lambda ln: ln.split())
    cells = split(rows[1])
    if len(cells) >= 2 and all(_looks_like_time(c) for c in cells):
        return Match.SIGNATURE, "columns of numbers or times"
    return None


def _split_jd(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """JD strings -> (integer parts, fractions), without the float rounding of the whole
    number (a float JD resolves 40 microseconds)."""
    if any("e" in text or "E" in text for text in texts):     # exponents: one at a time
        pairs = [_split_jd([text]) if "e" not in text.lower() else
                 (np.floor([float(text)]), float(text) - np.floor([float(text)]))
                 for text in texts]
        return (np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs]))
    parts = [text.partition(".") for text in texts]
    # (a negative JD would come out wrong here, but it is refused as outside 1900-2200)
    return (np.array([p[0] for p in parts], float),
            np.array(["0." + (p[2] or "0") for p in parts], float))


def _time_kind(values: list[str]) -> str | None:
    """'iso', 'jd', 'seconds' or None (a constant or unreadable column is not a time)."""
    if all(":" in v for v in values[:5]):
        return "iso"
    try:
        numbers = np.array(values, float)
    except ValueError:
        return None
    if not np.all(np.isfinite(numbers)) or np.ptp(numbers) == 0:
        return None
    return "jd" if numbers[0] > 2_400_000 else "seconds"


def _numbers(path, rows, index: int) -> np.ndarray:
    """Column ``index`` as floats; the first unreadable one is named by its line."""
    try:
        return np.array([r[index] for _, r in rows], float)
    except ValueError:
        pass        # find the line to name
    out = np.empty(len(rows))
    for k, (n, r) in enumerate(rows):
        try:
            out[k] = float(r[index])
        except ValueError:
            raise InputError(f"{path}: line {n}: {r[index][:40]!r} in column {index} is not a "
                             "number") from None
    return out


def _read(source, *, options, context):
    from astropy import units as u
    from astropy.time import Time
    options = options or SoraOptions()
    path = source.path
    all_lines = _common.read_lines(path)
    stripped = [ln.lstrip() for ln in all_lines]
    lines = [(k + 1, all_lines[k]) for k, ln in enumerate(stripped) if ln and ln[0] != "#"]
    if not lines:
        raise InputError(f"{path}: empty light-curve file")
    tref = options.tref
    if tref is None:        # occcore's SORA export names its reference in the header
        tref = next((m.group(1) for ln in stripped if ln.startswith("#")
                     for m in [re.search(r"tref\s*=\s*([0-9T:. -]+?)\s*(?:UTC)?\s*$", ln)] if m),
                    None)
    comma = "," in lines[0][1]
    rows = [(n, [x.strip().strip('"') for x in ln.split(",")] if comma else ln.split())
            for n, ln in lines]
    if max(len(ln) for _, ln in lines) > _common.MAX_FIELD_CHARS and \
            any(len(x) > _common.MAX_FIELD_CHARS for _, r in rows for x in r):
        raise InputError(f"{path}: a field of more than {_common.MAX_FIELD_CHARS} characters")
    header = None
    if not all(_looks_like_time(x) for x in rows[0][1]):
        header, rows = rows[0][1], rows[1:]
    if not rows:
        raise InputError(f"{path}: no data rows")
    width = min(len(r) for _, r in rows)
    if width < 2:
        n = next(n for n, r in rows if len(r) < 2)
        raise InputError(f"{path}: line {n}: expected at least two columns (time, flux)")

    def column_index(value, what):
        if value is None:
            return None
        if isinstance(value, int) or str(value).isdigit():
            index = int(value)
        elif header and value in header:
            index = header.index(value)
        else:
            raise InputError(f"{path}: no {what} column {value!r}"
                             + (f"; columns: {', '.join(header)}" if header else ""))
        if index >= width:
            raise InputError(f"{path}: {what} column {index} does not exist; rows have "
                             f"{width} columns (0-based numbering)")
        return index

    time_index = column_index(options.time_column, "time")
    if time_index is None:
        kinds = [_time_kind([r[k] for _, r in rows[:50]]) for k in range(width)]
        time_index = next((k for k, kind in enumerate(kinds) if kind in ("jd", "iso")),
                          0 if kinds[0] else None)
        if time_index is None:
            # most often one bad cell in the first column: name it
            bad = next(((n, r[0]) for n, r in rows[:50] if not _looks_like_time(r[0])), None)
            where = f" (line {bad[0]}: {bad[1][:40]!r} in column 0 is not a time)" if bad else ""
            raise InputError(f"{path}: no column holds times{where}; give --time-column N")
    flux_index = column_index(options.column, "flux")
    if flux_index is None:
        flux_index = next(k for k in range(width) if k != time_index)
    if flux_index == time_index:
        raise InputError(f"{path}: the flux column is the time column ({time_index})")
    err_index = flux_index + 1 if options.column is None and flux_index + 1 < width and \
        flux_index + 1 != time_index else None
    flux = _numbers(path, rows, flux_index)
    err = None if err_index is None else _numbers(path, rows, err_index)
    stamps = [r[time_index] for _, r in rows]
    kind = _time_kind(stamps)
    if kind is None:
        raise InputError(f"{path}: column {time_index} does not hold times")
    if kind == "iso":
        for (n, _), text in zip(rows[:1], stamps[:1], strict=True):
            _common.utc_time(text, f"{path}: line {n}")
        try:
            times = Time(stamps, scale="utc")
        except ValueError:
            raise InputError(f"{path}: column {time_index}: unreadable ISO time") from None
    elif kind == "jd":
        whole, fraction = _split_jd(stamps)
        if not (2_415_020 <= whole.min() and whole.max() <= 2_524_593):   # 1900 .. 2200
            raise InputError(f"{path}: JD {whole.min():.0f} is outside 1900-2200")
        times = Time(whole, fraction, format="jd", scale="utc")
    else:
        if tref is None:
            raise InputError(f"{path}: times are seconds after a reference; give --tref "
                             "(ISO time) for them")
        epoch = _common.utc_time(tref, f"{path}: tref")
        times = epoch + np.array(stamps, float) * u.s
    day = Time(times[0].utc.iso[:10], scale="utc")
    seconds = (times - day).to_value("s")
    meta = {"dialect": f"sora-{kind}",
            "column": header[flux_index] if header else str(flux_index),
            "time_column": time_index, "date_source": "file"}
    return _common.make_lightcurve(path, seconds, flux, err, instant="mid", options=options,
                                   epoch_day=day, note="SORA time stamps: mid-exposure",
                                   frames=None, meta=meta, logger=context.logger)


@hookimpl
def occcore_lightcurve_readers():
    yield LightCurveReaderSpec(name="sora", summary="SORA text: JD, ISO or seconds after tref, "
                               "flux, error (mid-exposure)", identify=_identify, read=_read,
                               options=SoraOptions)
