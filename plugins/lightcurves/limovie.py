"""``limovie``: Limovie CSV (data rows after the ``No.`` header; VTI hours, minutes,
seconds in columns 3-5, object values from column 10). Times are taken as the start of
each exposure; the date comes from ``--date``."""
from __future__ import annotations

import numpy as np

from occcore.plugin import InputError, LightCurveReaderSpec, Match, hookimpl
from occplugins.lightcurves import _common


def _identify(probe):
    head = probe.head[:4096].decode("utf-8", "replace")
    first = head.splitlines()[0] if head else ""
    if "Limovie" in first:
        return Match.CONTENT, first.strip()[:40]
    return None


def _read(source, *, options, context):
    options = options or _common.LightCurveOptions()
    path = source.path
    lines = _common.read_lines(path)
    header_index = next((i for i, ln in enumerate(lines) if ln.lstrip('"').startswith("No.")),
                        None)
    if header_index is None:
        raise InputError(f"{path}: no 'No.' header row of a Limovie file")
    rows = [(n, r) for n, r in _common.csv_rows(path, lines[header_index + 1:], header_index + 2)
            if len(r) > 10]
    column = options.column
    index = 10 + (int(column) - 1 if column and str(column).isdigit() else 0)
    frames = np.array([_common.number(r[0]) for _, r in rows])
    seconds = np.array([3600 * _common.number(r[3]) + 60 * _common.number(r[4])
                        + _common.number(r[5]) for _, r in rows])
    flux = np.array([_common.number(r[index]) if index < len(r) else np.nan for _, r in rows])
    day, date_source = _common.day_of(options.date, None, path, "limovie")
    meta = {"dialect": "limovie", "column": f"object {index - 9}", "date_source": date_source}
    return _common.make_lightcurve(path, _common.unwrap_days(seconds), flux, None,
                                   instant="start", options=options,
                                   epoch_day=_common.midnight(day),
                                   note="Limovie VTI times: assumed start of exposure",
                                   frames=frames, meta=meta, logger=context.logger)


@hookimpl
def occcore_lightcurve_readers():
    yield LightCurveReaderSpec(name="limovie", summary="Limovie CSV (VTI times, start of "
                               "exposure)", identify=_identify, read=_read,
                               options=_common.LightCurveOptions)
