"""``kiwi``: frames of the made-up Kiwi OSD video format (``.kwv``).

The layout: the 8 bytes ``KIWIVID1``, then one byte each for the frame count, the height
and the width, then the 8-bit pixels of every frame, row by row. Frames are 0.04 s
apart from 2025-05-05 05:05:05.25 UTC (a GPS-timed camera that says so nowhere else).
"""
import numpy as np

from occcore.model import FrameSeries
from occcore.plugin import CorruptSource, Match

MAGIC = b"KIWIVID1"
HEADER_BYTES = len(MAGIC) + 3


def identify(probe):
    if probe.head.startswith(MAGIC):
        return Match.CONTENT, "kiwi header"
    return None


def open_kiwi(source, *, options, context):
    from astropy.time import Time          # heavy imports go inside the callable
    data = source.path.read_bytes()
    if len(data) < HEADER_BYTES or not data.startswith(MAGIC):
        raise CorruptSource(f"{source.path}: {len(data)} bytes, not a {HEADER_BYTES}-byte "
                            "kiwi header")
    n, h, w = data[8], data[9], data[10]
    body = data[HEADER_BYTES:]
    if n == 0 or len(body) < n * h * w:
        raise CorruptSource(f"{source.path}: {len(body)} pixel bytes for {n} frames of "
                            f"{w}x{h} (expected {n * h * w})")
    frames = np.frombuffer(body[:n * h * w], np.uint8).reshape(n, h, w)
    return FrameSeries.from_arrays(frames, times=Time("2025-05-05T05:05:05.25", scale="utc"),
                                   offsets_s=np.arange(n) * 0.04, exposure_s=0.04,
                                   time_instant="start", time_source="gps", format="kiwi",
                                   reader="kiwi", source_name=str(source.path))
