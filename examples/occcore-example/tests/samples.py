"""Sample files of the example's made-up formats, with what is known to be in them."""
from pathlib import Path

import numpy as np


def write_kiwi(path: Path, frames: np.ndarray) -> Path:
    """A .kwv file: ``KIWIVID1``, frame count, height, width, then the uint8 pixels."""
    n, h, w = frames.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"KIWIVID1" + bytes([n, h, w]) + frames.astype(np.uint8).tobytes())
    return path


def _clock(seconds_of_day: float, decimals: int) -> str:
    h, rest = divmod(seconds_of_day % 86400, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:0{3 + decimals}.{decimals}f}"


def write_tlc(path: Path, date: str, seconds_of_day, flux, decimals: int = 3) -> Path:
    """A .tlc file: the date header, then ``hh:mm:ss.sss flux`` rows."""
    rows = [f"# date {date}", "# written by the occcore-example tests"]
    for s, f in zip(seconds_of_day, flux, strict=True):
        rows.append(f"{_clock(s, decimals)} {f:.6f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="ascii")
    return path


def write_pymovie_csv(path: Path, seconds_of_day, flux) -> Path:
    """The same readings in PyMovie's CSV layout (start-of-exposure ``[hh:mm:ss.ssss]``),
    a format occcore's own ``occcore fit`` reads."""
    rows = ["# PyMovie-style file written by the occcore-example tests",
            "FrameNum,timeInfo,signal-target"]
    rows += [f"{i},[{_clock(s, 4)}],{f:.6f}" for i, (s, f) in
             enumerate(zip(seconds_of_day, flux, strict=True))]
    path.write_text("\n".join(rows) + "\n", encoding="ascii")
    return path
