"""``pymovie-csv``: the light curves in PyMovie's CSV layout, so PyOTE can take over.

``FrameNum,timeInfo,signal-<aperture>...``: one ``signal-`` column per aperture (net flux,
as PyMovie's), then the analysed signal when it is not one of them; ``timeInfo`` is the
**start** of each exposure as ``[hh:mm:ss.ssss]`` (PyOTE's convention; ``decimals`` up to
7). Aperture names lose their hyphens, because PyOTE keeps only the part of a column name
between the first and second hyphen. ``# date at frame 0:`` carries the date.
"""
from __future__ import annotations

import re
from pathlib import Path

import attrs
import numpy as np

from occcore.model import LightCurve, ReportInput
from occcore.plugin import NotApplicable, ReporterSpec, hookimpl, write_text
from occplugins.reporters import _common


@attrs.frozen
class PymovieCsvOptions:
    decimals: int = attrs.field(default=4, validator=[attrs.validators.ge(0),
                                                      attrs.validators.le(7)])


def column_name(name: str) -> str:
    return "signal-" + (re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "signal")


def _columns(run: ReportInput) -> dict[str, LightCurve]:
    curves = dict(run.apertures)
    lc = run.lightcurve
    if lc is not None and lc.meta.get("column") not in {f"flux_{n}" for n in curves}:
        curves[str(lc.meta.get("column") or lc.name)] = lc
    if not curves:
        raise NotApplicable("the run has no light curve")
    return curves


def csv_text(run: ReportInput, options: PymovieCsvOptions) -> str:
    curves = _columns(run)
    first = max(curves.values(), key=lambda lc: len(lc.flux))
    starts = _common.start_offsets_s(first)
    midnight, seconds = _common.seconds_of_day(first, starts)
    columns = {}
    for name, lc in curves.items():
        # readings a curve lacks (dropped as unmeasurable) stay empty, as in PyMovie
        mine = _common.start_offsets_s(lc) + float((lc.times.epoch - first.times.epoch).to_value("s"))
        index = np.clip(np.searchsorted(starts, mine), 0, len(starts) - 1)
        if np.any(np.abs(starts[index] - mine) > 1e-6):
            raise NotApplicable(f"aperture {name!r} has readings the others do not have")
        column = np.full(len(starts), np.nan)
        column[index] = lc.flux
        columns[column_name(name)] = column
    frames = first.frame if first.frame is not None else np.arange(len(starts))
    lines = [f"# PyMovie file written by occcore {run.occcore_version}",
             f"# source: {first.meta.get('source') or run.directory}",
             "#",
             "# Aperture photometry was used to extract the lightcurves",
             "#"]
    for name in curves:
        lines.append(f"# aperture name: {column_name(name)[len('signal-'):]}")
    lines += ["#", f"# date at frame 0: {midnight.utc.isot[:10]}",
              "# timeInfo: start of exposure (UTC)",
              f"# produced by: {run.produced_by()}",
              "#",
              "FrameNum,timeInfo," + ",".join(columns)]
    for k in range(len(starts)):
        values = ",".join(f"{col[k]:.6f}" if np.isfinite(col[k]) else "" for col in columns.values())
        lines.append(f"{frames[k]:.2f},[{_common.clock(seconds[k], options.decimals)}],{values}")
    return "\n".join(lines) + "\n"


def _write(run: ReportInput, destination, *, options, context):
    options = options or PymovieCsvOptions()
    text = csv_text(run, options)
    return [write_text(Path(destination) / f"{_common.file_stem(run)}_pymovie.csv", text)]


@hookimpl
def occcore_reporters():
    yield ReporterSpec(name="pymovie-csv", summary="PyMovie-layout CSV that PyOTE reads "
                       "(start-of-exposure times, one column per aperture)",
                       options=PymovieCsvOptions, write=_write)
