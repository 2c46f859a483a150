"""AVI writers for tests and benchmarks (PyAV, imported lazily).

:func:`write_avi` writes ``(n, height, width)`` uint8/uint16 frames in one of
:data:`CODECS`; :func:`interlace` builds frames from time-ordered fields, so a field
split can be checked against known field content.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

CODECS = {
    # name: (FFmpeg encoder, pixel format written, input dtype, lossless)
    "rawvideo": ("rawvideo", "gray", np.uint8, True),
    "ffv1": ("ffv1", "gray", np.uint8, True),
    "ffv1-16": ("ffv1", "gray16le", np.uint16, True),
    "ffvhuff": ("ffvhuff", "gray", np.uint8, True),
    "ffvhuff-16": ("ffvhuff", "gray16le", np.uint16, True),
    "huffyuv-yuv422": ("huffyuv", "yuv422p", np.uint8, True),
    "rawvideo-yuyv": ("rawvideo", "yuyv422", np.uint8, True),
    "rawvideo-bgr24": ("rawvideo", "bgr24", np.uint8, True),
    "mjpeg": ("mjpeg", "yuvj420p", np.uint8, False),
    "mpeg4": ("mpeg4", "yuv420p", np.uint8, False),
}
"""Codecs the writer knows. A 16-bit *rawvideo* AVI is not among them: FFmpeg's AVI muxer
stores it as BI_RGB with 16 bits per pixel, which every reader (FFmpeg too) decodes as
RGB555."""

PAL_RATE = Fraction(25)
NTSC_RATE = Fraction(30000, 1001)


def interlace(fields: np.ndarray, order: str = "top-first") -> np.ndarray:
    """Frames ``(n/2, 2h, w)`` from time-ordered fields ``(n, h, w)``.

    ``top-first``: field 2k goes to the even rows (top field) of frame k and field 2k+1 to
    the odd rows; ``bottom-first`` the reverse.
    """
    fields = np.asarray(fields)
    if fields.ndim != 3 or len(fields) % 2:
        raise ValueError("interlace needs an even number of (h, w) fields")
    n, h, w = fields.shape
    frames = np.empty((n // 2, 2 * h, w), fields.dtype)
    first, second = (0, 1) if order == "top-first" else (1, 0)
    frames[:, first::2] = fields[0::2]
    frames[:, second::2] = fields[1::2]
    return frames


def _to_video_frame(av, frame: np.ndarray, pix_fmt: str):
    if pix_fmt in ("gray", "gray16le"):
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=pix_fmt)
    if pix_fmt == "bgr24":
        rgb = np.repeat(frame[..., None], 3, axis=2)
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="bgr24")
    # YUV targets: write the luma plane directly (a "gray" -> YUV conversion would rescale
    # to limited range and change Y); chroma is neutral
    video = av.VideoFrame(frame.shape[1], frame.shape[0], pix_fmt)
    if pix_fmt == "yuyv422":
        plane = video.planes[0]
        packed = np.full((frame.shape[0], plane.line_size), 128, np.uint8)
        packed[:, 0:2 * frame.shape[1]:2] = frame
        plane.update(packed.tobytes())
        return video
    for k, plane in enumerate(video.planes):
        rows = plane.buffer_size // plane.line_size
        data = np.full((rows, plane.line_size), 128, np.uint8)
        if k == 0:
            data[:, :frame.shape[1]] = frame
        plane.update(data.tobytes())
    return video


def write_avi(path, frames: np.ndarray, *, codec: str = "ffv1", rate=PAL_RATE,
              gop: int | None = None, bit_rate: float | None = None, container: str = "avi",
              metadata: dict | None = None) -> Path:
    """Write ``frames`` (n, h, w) as a video file; returns the path.

    ``codec`` is a key of :data:`CODECS`; ``gop`` sets the key-frame interval (ffv1,
    mpeg4); ``bit_rate`` (bits/s) the lossy codecs' quality.
    """
    import av

    encoder, pix_fmt, dtype, _ = CODECS[codec]
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"frames must be (n, h, w); got {frames.shape}")
    if frames.dtype != dtype:
        raise ValueError(f"codec {codec} takes {np.dtype(dtype).name} frames, not {frames.dtype}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container) as out:
        if metadata:
            out.metadata.update(metadata)
        stream = out.add_stream(encoder, rate=Fraction(rate))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if gop is not None:
            stream.codec_context.gop_size = gop
        if bit_rate is not None:
            stream.codec_context.bit_rate = int(bit_rate)
        for frame in frames:
            for packet in stream.encode(_to_video_frame(av, frame, pix_fmt)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
