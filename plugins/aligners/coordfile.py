"""Star positions per frame from a file: the last resort of the Occultation Portal's chain.

Accepted layouts (CSV, ``#`` comment lines skipped):

* PyMovie: ``FrameNum,timeInfo,...,xcentroid-<name>,ycentroid-<name>,...``;
* wide: ``frame,x_<name>,y_<name>,...``;
* long: ``frame,star,x,y`` (one row per star and frame).

``<name>`` is an aperture name (target, reference, guide ...), or mapped to one with the
``names`` option (``{ target = "star-1" }``). Stars missing from the file, and the target
in every frame, move with the mean shift of the stars that are in it. Coordinates are
0-based pixels unless ``one_based = true`` (DS9, JS9, PyMovie's ``x,y`` box centres).
"""
from __future__ import annotations

import csv
from pathlib import Path

import attrs
import numpy as np

from occcore.model import FrameFlag, Track
from occcore.plugin import AlignerSpec, InputError, NotApplicable, hookimpl


@attrs.frozen(kw_only=True)
class CoordFileOptions:
    path: str = ""
    one_based: bool = False
    names: dict = attrs.field(factory=dict)      # aperture name -> name in the file
    target_from_file: bool = False               # trust the file's target column


def _rows(path: Path):
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None
    if not lines:
        raise InputError(f"{path}: no data rows")
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader)]
    return header, [row for row in reader if row]


def _number(text: str, path: Path, line: int) -> float:
    text = text.strip()
    if text == "":
        return np.nan
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{path}: line {line}: {text!r} is not a number") from None


def read_positions(path: Path, names: list[str], mapping: dict) -> tuple[np.ndarray, dict]:
    """(frame numbers, {aperture name: (x array, y array)}) from any accepted layout."""
    header, rows = _rows(path)
    lower = [h.lower() for h in header]
    file_name = {n: mapping.get(n, n) for n in names}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if "framenum" in lower or "frame" in lower and any(h.startswith("x_") for h in lower):
        frame_col = lower.index("framenum") if "framenum" in lower else lower.index("frame")
        frames = np.array([_number(r[frame_col], path, i + 2) for i, r in enumerate(rows)])
        for name in names:
            for xkey, ykey in ((f"xcentroid-{file_name[name]}", f"ycentroid-{file_name[name]}"),
                               (f"x_{file_name[name]}", f"y_{file_name[name]}")):
                if xkey.lower() in lower and ykey.lower() in lower:
                    xi, yi = lower.index(xkey.lower()), lower.index(ykey.lower())
                    out[name] = (np.array([_number(r[xi], path, i + 2) for i, r in enumerate(rows)]),
                                 np.array([_number(r[yi], path, i + 2) for i, r in enumerate(rows)]))
        return frames, out
    if {"frame", "star", "x", "y"} <= set(lower):
        fi, si, xi, yi = (lower.index(k) for k in ("frame", "star", "x", "y"))
        frames = np.unique([_number(r[fi], path, i + 2) for i, r in enumerate(rows)])
        index = {f: k for k, f in enumerate(frames)}
        for name in names:
            xs = np.full(len(frames), np.nan)
            ys = np.full(len(frames), np.nan)
            hit = False
            for i, r in enumerate(rows):
                if r[si].strip() == file_name[name]:
                    k = index[_number(r[fi], path, i + 2)]
                    xs[k], ys[k] = _number(r[xi], path, i + 2), _number(r[yi], path, i + 2)
                    hit = True
            if hit:
                out[name] = (xs, ys)
        return frames, out
    raise InputError(f"{path}: unknown layout; expected PyMovie columns (FrameNum, xcentroid-NAME), "
                     "frame,x_NAME,y_NAME or frame,star,x,y")


def _align(request, *, options, context):
    options = options or CoordFileOptions()
    if not options.path:
        raise NotApplicable("no coordinate file given (align.options.coords.path)")
    path = Path(options.path)
    if not path.is_file():
        raise InputError(f"{path}: coordinate file not found")
    names = list(request.names)
    frames, found = read_positions(path, names, options.names)
    n = len(request.series)
    offset = 1.0 if options.one_based else 0.0
    roles = {a.name: a.role for a in request.apertures}
    usable = [nm for nm in found if roles[nm] != "target" or options.target_from_file]
    if not usable:
        raise NotApplicable(f"{path}: none of the stars {names} is in the file")
    first = frames[0] if len(frames) else 0
    index = np.rint(frames - first).astype(int)
    if len(frames) != n or index.min() < 0 or index.max() >= n:
        raise InputError(f"{path}: {len(frames)} frames in the file, the source has {n}")
    x0, y0 = request.positions()
    ref = request.reference_index
    shifts_x, shifts_y = [], []
    full = {}
    for name in usable:
        xs = np.full(n, np.nan)
        ys = np.full(n, np.nan)
        xs[index], ys[index] = found[name][0] - offset, found[name][1] - offset
        full[name] = (xs, ys)
        j = names.index(name)
        shifts_x.append(xs - xs[ref] if np.isfinite(xs[ref]) else xs - x0[j])
        shifts_y.append(ys - ys[ref] if np.isfinite(ys[ref]) else ys - y0[j])
    with np.errstate(all="ignore"):
        sx = np.nanmean(np.array(shifts_x), axis=0)
        sy = np.nanmean(np.array(shifts_y), axis=0)
    flags = np.zeros(n, np.uint32)
    missing = ~np.isfinite(sx)
    flags[missing] |= np.uint32(FrameFlag.ALIGN_UNCERTAIN)
    if missing.all():
        raise NotApplicable(f"{path}: no usable coordinates")
    frame_index = np.arange(n)
    sx = np.interp(frame_index, frame_index[~missing], sx[~missing])
    sy = np.interp(frame_index, frame_index[~missing], sy[~missing])
    x = x0[None] + sx[:, None]
    y = y0[None] + sy[:, None]
    for name, (xs, ys) in full.items():
        j = names.index(name)
        ok = np.isfinite(xs) & np.isfinite(ys)
        x[ok, j], y[ok, j] = xs[ok], ys[ok]
    return Track(names=request.names, x=x, y=y, flags=flags, reference_index=ref, method="coords")


@hookimpl
def occcore_aligners():
    yield AlignerSpec(name="coords", summary="star positions per frame from a file (PyMovie CSV "
                      "or plain CSV)", align=_align, options=CoordFileOptions)
