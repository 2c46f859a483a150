"""``ecsv``: occcore's own ``lightcurve.ecsv`` (astropy ECSV with a ``time`` column; the
default signal is ``ratio``; ``column`` picks any other, e.g. ``flux_target`` or just
``target``). The stamps' instant and the exposure come from the table's metadata."""
from __future__ import annotations

import functools

import numpy as np

from occcore.plugin import InputError, LightCurveReaderSpec, Match, hookimpl
from occplugins.lightcurves import _common


def _identify(probe):
    if probe.head.startswith((b"# %ECSV", b"%ECSV")):
        return Match.CONTENT, "ECSV header"
    return None


@functools.lru_cache(maxsize=4)
def _table(path: str, mtime_ns: int, size: int):
    """The parsed table; cached so a report reading every aperture parses it once."""
    from astropy.table import Table
    from astropy.time import Time
    try:
        table = Table.read(path, format="ascii.ecsv")
    except Exception as exc:          # astropy raises many types for a bad ECSV
        raise InputError(f"{path}: not a readable ECSV table: {type(exc).__name__}: "
                         f"{str(exc)[:200]}") from None
    if "time" not in table.colnames or not isinstance(table["time"], Time):
        raise InputError(f"{path}: no 'time' column of times")
    times = table["time"].utc
    day = Time(times[0].iso[:10], scale="utc")
    return table, day, (times - day).to_value("s")


def _read(source, *, options, context):
    options = options or _common.LightCurveOptions()
    path = source.path
    stat = path.stat()
    table, day, seconds = _table(str(path), stat.st_mtime_ns, stat.st_size)
    meta = dict(table.meta)
    column = options.column
    chosen = column or ("ratio" if "ratio" in table.colnames else None)
    if chosen not in table.colnames:
        chosen = next((c for c in table.colnames if c.endswith(f"_{column}")), None) \
            if column else None
        if chosen is None:
            raise InputError(f"{path}: no column {column!r}; columns: {', '.join(table.colnames)}")
    flux = np.asarray(table[chosen], float)
    err = None
    if chosen.startswith("flux_") and f"flux_err_{chosen[5:]}" in table.colnames:
        err = np.asarray(table[f"flux_err_{chosen[5:]}"], float)
    frames = np.asarray(table["frame"], float) if "frame" in table.colnames else None
    instant = meta.get("time_instant", "mid")
    if instant not in ("start", "mid", "end"):
        raise InputError(f"{path}: time_instant {instant!r} in the metadata is not start, mid "
                         "or end")
    if options.exposure_s is None and isinstance(meta.get("exposure_s"), (int, float)):
        import attrs
        options = attrs.evolve(options, exposure_s=float(meta["exposure_s"]))
    info = {"dialect": "occcore-ecsv", "column": chosen, "source": meta.get("source"),
            "date_source": "file", "time_source": meta.get("time_source")}
    return _common.make_lightcurve(path, seconds, flux, err, instant=instant, options=options,
                                   epoch_day=day, note=f"occcore light curve ({instant} exposure)",
                                   frames=frames, meta=info, logger=context.logger)


@hookimpl
def occcore_lightcurve_readers():
    yield LightCurveReaderSpec(name="ecsv", summary="occcore lightcurve.ecsv (default column "
                               "ratio)", patterns=("*.ecsv",), identify=_identify, read=_read,
                               options=_common.LightCurveOptions)
