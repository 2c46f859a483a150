"""AVI decode speed: occcore's reader next to PyAV's bare decode loop and a numpy memmap.

Run by hand: ``python bench/bench_avi.py [n_frames] [--repeats 5] [--codecs rawvideo,ffv1]``.
For each codec, 640x480 frames, the median of --repeats interleaved runs (the machine is
shared; a median is what a user sees, the best run only says what is possible):

* ``bare``   — ``for frame in container.decode(video=0)``: ``frame.planes[0]`` to numpy
  (PyAV's own loop, same thread setting as the reader: FFmpeg "AUTO");
* ``occcore``— ``series.iter_batches(64)`` (the reader's open, i.e. the packet count,
  timed separately as ``open``);
* ``memmap`` — a numpy memmap pass over the same raw bytes (the floor: no container).

Ratios are occcore / bare (goal >= 0.9) and memmap / bare. Then one whole
``occcore info`` command on a file, start-up included.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from occcore.api import Session
from occcore.config import load_config
from occcore.synthetic import star_field
from occcore.synthetic.avi import write_avi

CODECS = ("rawvideo", "ffv1", "ffv1-16", "ffvhuff", "ffvhuff-16", "mjpeg")
H, W = 480, 640


def frames_for(codec: str, n: int) -> np.ndarray:
    dtype = np.uint16 if codec.endswith("-16") else np.uint8
    frames, _ = star_field(n_frames=n, height=H, width=W, seed=1, dtype=dtype,
                           stars=((200.0, 150.0, 4e4), (400.0, 300.0, 6e4), (500.0, 100.0, 5e4)),
                           gain_e_per_adu=4.0 if dtype == np.uint8 else 0.25)
    return frames


def bare_loop(path: Path, copy: bool) -> float:
    """PyAV's loop; ``copy`` also copies each luma plane into a frame array (a reader has
    to hand out frames that outlive the decoder's buffer)."""
    import av
    t0 = time.perf_counter()
    total = 0
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        for frame in container.decode(video=0):
            plane = frame.planes[0]
            size = 2 if "16" in frame.format.name else 1
            a = np.frombuffer(plane, f"<u{size}").reshape(frame.height, -1)[:, :frame.width]
            if copy:
                a = a.copy()
            total += int(a[0, 0])
    return time.perf_counter() - t0


def occcore_pass(session, path: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    series = session.open(path, reader="avi")
    t1 = time.perf_counter()
    total = 0
    with series:
        for block in series.iter_batches(64):
            total += int(block[0, 0, 0])
    return t1 - t0, time.perf_counter() - t1


def memmap_pass(path: Path, frames: np.ndarray) -> float:
    raw = path.with_suffix(".raw")
    frames.tofile(raw)
    t0 = time.perf_counter()
    mapped = np.memmap(raw, frames.dtype, "r", shape=frames.shape)
    total = 0
    for start in range(0, len(frames), 64):
        total += int(np.array(mapped[start:start + 64])[0, 0, 0])
    del mapped
    return time.perf_counter() - t0


def main():
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("n_frames", nargs="?", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--codecs", default=",".join(CODECS))
    args = parser.parse_args()
    n, repeats = args.n_frames, args.repeats
    session = Session(config=load_config(cwd=Path("/nonexistent")), no_plugins=True)
    print(f"{n} frames of {W}x{H}; median of {repeats} interleaved runs; frames/s. "
          "bare = view of the plane, bare+copy = copied out; ratios against bare+copy")
    print(f"{'codec':<12}{'bare':>9}{'bare+copy':>10}{'occcore':>9}{'+open':>9}{'memmap':>9}"
          f"{'occ/bare':>9}{'(+open)':>9}{'occ/view':>9}{'mm/bare':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for codec in args.codecs.split(","):
            frames = frames_for(codec, n)
            path = write_avi(Path(tmp) / f"{codec}.avi", frames, codec=codec,
                             bit_rate=2e7 if codec == "mjpeg" else None)
            views, copies, opens, reads, maps = [], [], [], [], []
            for _ in range(repeats):
                views.append(bare_loop(path, copy=False))
                copies.append(bare_loop(path, copy=True))
                t_open, t_read = occcore_pass(session, path)
                opens.append(t_open)
                reads.append(t_read)
                maps.append(memmap_pass(path, frames))
            t_view, t_bare, t_open, t_occ, t_mm = map(np.median,
                                                      (views, copies, opens, reads, maps))
            print(f"{codec:<12}{n / t_view:9.0f}{n / t_bare:10.0f}{n / t_occ:9.0f}"
                  f"{n / (t_occ + t_open):9.0f}{n / t_mm:9.0f}{t_bare / t_occ:9.2f}"
                  f"{t_bare / (t_occ + t_open):9.2f}{t_view / t_occ:9.2f}{t_bare / t_mm:9.2f}")
        # whole commands: `occcore info` on the last file against `occcore plugins` (the
        # same start-up: interpreter, occcore, plugin registration), median of 3 each
        exe = str(Path(sys.executable).parent / "occcore")
        t_info, t_plugins = [], []
        for _ in range(3):
            for cmd, times in (([exe, "info", str(path)], t_info), ([exe, "plugins"], t_plugins)):
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                times.append(time.perf_counter() - t0)
        t_info, t_plugins = np.median(t_info), np.median(t_plugins)
        print(f"occcore info {path.name} ({n} frames): {t_info:.2f} s whole command; "
              f"occcore plugins {t_plugins:.2f} s; ratio {t_info / t_plugins:.2f}")


if __name__ == "__main__":
    main()
