"""Atomic outputs: every result file is written under a temporary name and renamed into
place, and a step's files are staged together (:class:`OutputSet`) and moved in at once,
so an interrupted run never leaves a half-written or partial result that looks complete.
Files get the user's umask. JSON conversion of results lives here too (:func:`jsonable`)."""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publishable(path: Path) -> None:
    """Give a file made by mkstemp (mode 0600) the mode the user's umask says."""
    os.chmod(path, 0o666 & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; rename it over ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _publishable(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def deferred_signals():
    """Hold SIGINT and SIGTERM until the block is over (a handful of renames), so an
    interrupt cannot leave half of a run's outputs in place."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            raise KeyboardInterrupt


class OutputSet:
    """A step's outputs, written into a private folder inside the output directory and
    moved into place together when the step succeeds: a run's outputs appear all together
    or not at all. ``path(name)`` is where to write ``name``; ``stage`` is the folder
    (a reporter's destination)."""

    def __init__(self, outdir: str | Path):
        self.outdir = Path(outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.stage = Path(tempfile.mkdtemp(prefix=".occcore-stage-", dir=self.outdir))

    def path(self, name: str) -> Path:
        return self.stage / name

    def commit(self) -> list[Path]:
        """Move every staged file into the output directory; returns their final paths."""
        staged = sorted(p for p in self.stage.rglob("*") if p.is_file()
                        and not p.name.endswith(".part"))
        final = []
        with deferred_signals():
            for p in staged:
                target = self.outdir / p.relative_to(self.stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                if p.stat().st_mode & 0o777 == 0o600:
                    _publishable(p)
                os.replace(p, target)
                final.append(target)
        self.discard()
        return final

    def discard(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)

    def final(self, staged: Path) -> Path:
        """The path a staged file will have once committed."""
        return self.outdir / Path(staged).relative_to(self.stage)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.discard()      # after commit() this is a no-op; on an error nothing appears


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, data) -> Path:
    return write_text(path, json.dumps(jsonable(data), indent=2) + "\n")


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, Time, Path and sets into JSON-friendly values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        if all(type(v) is float for v in value):      # the common case: a column of readings
            return [v if math.isfinite(v) else None for v in value]
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biu":
            return value.tolist()
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if type(value).__name__ == "Time" and hasattr(value, "isot"):
        from occcore.model import iso_utc
        return iso_utc(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)



