"""``tangra``: Tangra CSV export (``FrameNo, Time (UT), Signal (n), Background (n) ...``).

Tangra's stamps mean the middle of each exposure. A Tangra file has no date: it comes
from ``--date``."""
from __future__ import annotations

import re

import numpy as np

from occcore.plugin import InputError, LightCurveReaderSpec, Match, hookimpl
from occplugins.lightcurves import _common


def _identify(probe):
    head = probe.head[:4096].decode("utf-8", "replace")
    if head.startswith("Tangra"):
        return Match.CONTENT, head.splitlines()[0][:40]
    return None


def _read(source, *, options, context):
    options = options or _common.LightCurveOptions()
    path = source.path
    lines = _common.read_lines(path)
    header_index = next((i for i, ln in enumerate(lines) if ln.startswith("FrameNo")
                         or ln.startswith("BinNo")), None)
    if header_index is None:
        raise InputError(f"{path}: no 'FrameNo,Time (UT),...' header line")
    rows = _common.csv_rows(path, lines[header_index:], header_index + 1)
    header = rows[0][1]
    rows = [(n, r) for n, r in rows[1:] if r and any(r)]
    if len(header) < 2 or not header[1].startswith("Time"):
        raise InputError(f"{path}: Tangra time column is {header[1:2]}; export times as UT")
    objects = sorted({m.group(1) for h in header for m in [re.search(r"\((\d+)\)", h)] if m},
                     key=int)
    wanted = options.column or (objects[0] if objects else None)
    if wanted is None:
        raise InputError(f"{path}: no object columns")
    wanted = str(wanted)
    signal, background = f"Signal ({wanted})", f"Background ({wanted})"
    net = f"SignalMinusBackground ({wanted})"

    def column(name):
        k = header.index(name)
        return np.array([_common.number(r[k]) if k < len(r) else np.nan for _, r in rows])

    frames = np.array([_common.number(r[0]) for _, r in rows])
    if net in header:
        flux, chosen = column(net), net
    elif signal in header:
        flux = column(signal) - (column(background) if background in header else 0.0)
        chosen = f"{signal} - {background}"
    elif wanted in header:
        flux, chosen = column(wanted), wanted
    else:
        raise InputError(f"{path}: no Signal/SignalMinusBackground column for object {wanted}; "
                         f"objects: {', '.join(objects)}")
    seconds = np.array([_common.seconds_of_day(r[1], path, n)
                        if len(r) > 1 and r[1].strip() and "?" not in r[1] else np.nan
                        for n, r in rows])
    day, date_source = _common.day_of(options.date, None, path, "tangra")
    meta = {"dialect": "tangra", "column": chosen, "columns": header,
            "header_lines": lines[:header_index], "date_source": date_source}
    return _common.make_lightcurve(path, _common.unwrap_days(seconds), flux, None,
                                   instant="mid", options=options,
                                   epoch_day=_common.midnight(day),
                                   note="Tangra time stamps: mid-exposure", frames=frames,
                                   meta=meta, logger=context.logger)


@hookimpl
def occcore_lightcurve_readers():
    yield LightCurveReaderSpec(name="tangra", summary="Tangra CSV export (mid-exposure stamps)",
                               identify=_identify, read=_read, options=_common.LightCurveOptions)
