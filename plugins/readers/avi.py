"""AVI reader (analogue occultation video: camera -> VTI -> frame grabber -> AVI), via PyAV.

Registration only: the RIFF header walk used by ``identify`` is plain ``struct``; the
decoding (PyAV, imported lazily) lives in ``_avi_decode``.

* Frames are the luma plane exactly as recorded (8- or 16-bit); nothing goes through
  FFmpeg's "gray" conversion, which rescales limited-range YUV.
* The frame count is exact: it comes from the container's own index (AVI idx1/OpenDML,
  no packet read) when that index is complete, else from the demuxed packets (no
  decoding); a header that promises more frames than the file holds is reported as
  truncation. rawvideo frames are copied straight from the file (their offsets checked
  against the packets), skipping the demuxer and decoder.
* Container time is low-trust: AVI has only a nominal frame rate, so stamps are
  ``source="pc-clock"`` (start from the file's creation tag or modification time) and
  the note says a VTI time source should replace them (``series.with_times``).
* ``fields = "split"`` serves each interlaced frame as its two fields (half height,
  field period = frame period / 2), with ``frame_meta["field_parity"]`` (0 = top/even
  rows, 1 = bottom/odd rows) and ``frame_meta["frame_index"]``.
* Other containers PyAV reads (.mkv, .mov, .mp4) are accepted by magic bytes at
  SIGNATURE level and read the same way.
"""
from __future__ import annotations

import struct

import attrs

from occcore.plugin import Match, ReaderSpec, hookimpl

FIELD_MODES = ("frames", "split")
FIELD_ORDERS = ("auto", "top-first", "bottom-first")


@attrs.frozen(kw_only=True)
class AviOptions:
    fields: str = attrs.field(default="frames", validator=attrs.validators.in_(FIELD_MODES))
    field_order: str = attrs.field(default="auto", validator=attrs.validators.in_(FIELD_ORDERS))
    allow_truncated: bool = False
    """Read the complete frames of a file shorter than its header says (else an error)."""
    start_utc: str | None = None
    """Start of the first frame (PC clock) when the file's own creation tag is wrong/absent."""
    exposure_s: float | None = None
    """Exposure per frame (per field when split); default the frame (field) period."""
    threads: bool = True
    """Let FFmpeg decode with its own threads (frame/slice threading)."""


@attrs.frozen
class AviHeader:
    """What the RIFF header says (from ``avih``, the first video ``strh``/``strf``)."""

    width: int
    height: int
    total_frames: int          # avih dwTotalFrames (first RIFF segment only in OpenDML files)
    stream_length: int         # strh dwLength of the video stream
    rate: tuple[int, int]      # strh (dwRate, dwScale)
    handler: str               # strh fccHandler
    compression: str           # strf biCompression (FourCC, or BI_RGB)
    bit_count: int             # strf biBitCount


def _fourcc(raw: bytes) -> str:
    if raw == b"\0\0\0\0":
        return "BI_RGB"
    return raw.decode("latin-1").rstrip("\0 ") or "BI_RGB"


def parse_avi_header(head: bytes) -> AviHeader | None:
    """Walk ``RIFF AVI / LIST hdrl`` in the first bytes; None when it does not parse."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return None
    avih = strh = strf = None
    pos, end = 12, len(head)
    stack = []          # ends of open LIST chunks
    while pos + 8 <= end and (avih is None or strh is None or strf is None):
        while stack and pos >= stack[-1]:
            stack.pop()
        chunk_id = head[pos:pos + 4]
        size = struct.unpack_from("<I", head, pos + 4)[0]
        if chunk_id == b"LIST":
            if pos + 12 > end:
                break
            kind = head[pos + 8:pos + 12]
            if kind == b"movi":
                break
            stack.append(pos + 8 + size)
            pos += 12
            continue
        body = head[pos + 8:pos + 8 + size]
        if chunk_id == b"avih" and len(body) >= 40:
            avih = struct.unpack_from("<10I", body)
        elif chunk_id == b"strh" and len(body) >= 36 and strh is None and body[:4] == b"vids":
            strh = body
        elif chunk_id == b"strf" and strh is not None and strf is None and len(body) >= 20:
            strf = body
        pos += 8 + size + (size & 1)
    if avih is None or strh is None or strf is None:
        return None
    handler = _fourcc(strh[4:8])
    scale, rate = struct.unpack_from("<II", strh, 20)
    length = struct.unpack_from("<I", strh, 32)[0]
    width, height = struct.unpack_from("<ii", strf, 4)
    bit_count = struct.unpack_from("<H", strf, 14)[0]
    return AviHeader(width=int(width), height=abs(int(height)), total_frames=int(avih[4]),
                     stream_length=int(length), rate=(int(rate), int(scale)), handler=handler,
                     compression=_fourcc(strf[16:20]), bit_count=int(bit_count))


def _other_container(head: bytes) -> str | None:
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[4:8] == b"ftyp" or head[4:8] in (b"moov", b"mdat", b"wide"):
        return "QuickTime/MP4"
    return None


def _identify(probe):
    if probe.is_dir or len(probe.head) < 12:
        return None
    head = probe.head
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        header = parse_avi_header(head)
        if header is None or header.width <= 0 or header.height <= 0:
            return Match.SIGNATURE, "RIFF AVI magic, but no video stream header in the first 64 KiB"
        fps = header.rate[0] / header.rate[1] if header.rate[1] else float("nan")
        return Match.CONTENT, (f"AVI {header.width}x{header.height} {header.compression} "
                               f"{header.bit_count}-bit, {header.stream_length} frames in "
                               f"header, {fps:.3f} fps")
    other = _other_container(head)
    if other is not None and probe.matches(PATTERNS[1:]):
        return Match.SIGNATURE, f"{other} container (read through PyAV)"
    return None


def _open(source, *, options, context):
    from occplugins.readers._avi_decode import open_video
    return open_video(source, options or AviOptions(), context)


PATTERNS = ("*.avi", "*.mkv", "*.mov", "*.mp4")


@hookimpl
def occcore_readers():
    yield ReaderSpec(name="avi", summary="AVI video (analogue/VTI capture) and other PyAV "
                     "containers, 8/16-bit luma, optional field split",
                     patterns=PATTERNS, identify=_identify, open=_open, options=AviOptions,
                     requires=("av",))
