"""Decoding half of the AVI reader (imports PyAV; loaded only when a file is opened)."""
from __future__ import annotations

import logging
import os

import attrs
import numpy as np

from occcore.model import FrameSeries, FrameTimes
from occcore.plugin import CorruptSource, InputError, NotApplicable

log = logging.getLogger("occcore.avi")

LOSSLESS_CODECS = {"rawvideo", "ffv1", "ffvhuff", "huffyuv", "lagarith", "utvideo", "magicyuv",
                   "v210", "v308", "v408", "y41p", "yuv4", "zlib", "png", "qtrle", "r210",
                   "ayuv", "012v", "v410", "targa", "bmp", "tiff"}
PACKED_LUMA = {"yuyv422": 0, "yvyu422": 0, "uyvy422": 1}     # byte offset of Y in each pair
REC601 = {"r": 0.299, "g": 0.587, "b": 0.114}
SCIENCE_NOTE = ("the container's clock is not good enough for science: AVI stores only a "
                "nominal frame rate, grabbers drop and repeat frames, and the start is a PC "
                "clock; use a VTI time source (OCR of the burned-in time) to replace these stamps")


def _ffmpeg_errors():
    import av
    return (av.error.FFmpegError,)


# -- pixel extraction ---------------------------------------------------------------------------


def _rgb_layout(name: str):
    """(stride, byte offset of r, g, b) for packed 8-bit RGB formats, else None."""
    letters = {"rgb24": "rgb", "bgr24": "bgr", "rgba": "rgba", "bgra": "bgra", "argb": "argb",
               "abgr": "abgr", "rgb0": "rgb0", "bgr0": "bgr0", "0rgb": "0rgb", "0bgr": "0bgr"}
    pattern = letters.get(name)
    if pattern is None:
        return None
    return len(pattern), pattern.index("r"), pattern.index("g"), pattern.index("b")


@attrs.frozen
class Extractor:
    """How the luma samples are cut out of a decoded frame."""

    kind: str               # "planar", "packed-yuv", "rgb-channel", "rgb-luma"
    dtype: np.dtype
    bit_depth: int
    note: str
    offset: int = 0
    stride: int = 1
    channels: tuple = ()    # byte positions of r, g, b (colour luma)
    weights: tuple = ()

    def __call__(self, frame, out: np.ndarray) -> None:
        plane = frame.planes[0]
        height, width = out.shape
        if self.kind == "planar":
            row = plane.line_size // self.dtype.itemsize
            rows = np.frombuffer(plane, self.dtype, count=row * height).reshape(height, row)
            out[...] = rows[:, :width]
            return
        raw = np.frombuffer(plane, np.uint8, count=plane.line_size * height)
        rows = raw.reshape(height, plane.line_size)
        if self.kind in ("packed-yuv", "rgb-channel"):
            out[...] = rows[:, self.offset:self.offset + self.stride * width:self.stride]
            return
        pixels = rows[:, :self.stride * width].reshape(height, width, self.stride)
        out[...] = pixels[..., list(self.channels)] @ np.asarray(self.weights, np.float32)


def make_extractor(frame, name: str) -> Extractor:
    fmt = frame.format
    comps = fmt.components
    if comps and comps[0].is_luma and all(c.plane != 0 for c in comps[1:]):
        bits = comps[0].bits
        size = 1 if bits <= 8 else 2
        order = ">" if fmt.is_big_endian else "<"
        dtype = np.dtype(np.uint8) if size == 1 else np.dtype(f"{order}u2")
        return Extractor("planar", dtype, bits, f"luma plane of {fmt.name}, as recorded")
    if fmt.name in PACKED_LUMA:
        return Extractor("packed-yuv", np.dtype(np.uint8), 8, f"Y bytes of packed {fmt.name}",
                         offset=PACKED_LUMA[fmt.name], stride=2)
    layout = _rgb_layout(fmt.name)
    if layout is not None:
        stride, r, g, b = layout
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8, count=plane.line_size * frame.height)
        pix = rows.reshape(frame.height, plane.line_size)[:, :stride * frame.width]
        pix = pix.reshape(frame.height, frame.width, stride)
        if np.array_equal(pix[..., r], pix[..., g]) and np.array_equal(pix[..., r], pix[..., b]):
            return Extractor("rgb-channel", np.dtype(np.uint8), 8,
                             f"{fmt.name} with R = G = B in frame 0 (a monochrome camera): "
                             "the red channel, exactly", offset=r, stride=stride)
        return Extractor("rgb-luma", np.dtype(np.float32), 8,
                         f"colour {fmt.name}: Rec. 601 luma 0.299 R + 0.587 G + 0.114 B",
                         stride=stride, channels=(r, g, b),
                         weights=(REC601["r"], REC601["g"], REC601["b"]))
    raise InputError(f"{name}: pixel format {fmt.name!r} is not supported by the AVI reader "
                     "(planar YUV/grey, packed YUYV/UYVY and 8-bit RGB are)")


# -- the decoder ---------------------------------------------------------------------------------


class Decoder:
    """One open container with a decoder position: consecutive reads never re-seek."""

    def __init__(self, path, name: str, threads: bool):
        import av
        self.av = av
        self.name = name
        self.errors = _ffmpeg_errors()
        try:
            self.container = av.open(str(path), metadata_errors="ignore")
        except self.errors as exc:
            raise CorruptSource(f"{name}: FFmpeg cannot open it as a video container: "
                                f"{exc}") from None
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"{name}: the container holds no video stream")
        self.stream = self.container.streams.video[0]
        if threads:
            self.stream.thread_type = "AUTO"
        self.next_index = 0
        self._frames = None
        self._pending = None        # a frame decoded ahead (the open-time probe)
        self.index_of_pts: dict = {}
        self.pts: np.ndarray = np.zeros(0, np.int64)
        self.keyframes: np.ndarray = np.zeros(0, np.int64)
        self.packet_sizes: np.ndarray = np.zeros(0, np.int64)
        self.packet_positions: np.ndarray = np.zeros(0, np.int64)
        self.path = path
        self.file_map = None        # rawvideo frames at known file offsets: a memmap
        self.frame_positions: np.ndarray = np.zeros(0, np.int64)
        self.pts_unsorted: np.ndarray = np.zeros(0, np.int64)
        self.raw_bytes = 0          # > 0: rawvideo luma read straight from the packets
        self._packets = None
        self.next_packet = 0

    def close(self):
        self._frames = None
        self._pending = None
        self._packets = None
        self.file_map = None
        self.container.close()

    # -- rawvideo: packets are the frames ---------------------------------------------------
    def try_raw_packets(self, extract: "Extractor", first, height: int, width: int) -> str:
        """Read rawvideo luma straight from the demuxed packets, skipping the decoder
        (which only copies the packet into a frame), when that is shown to be exact:
        every packet has frame 0's size and frame 0's packet begins with exactly the
        luma plane the decoder made of it, in an orientation the check can tell (a frame
        equal to itself upside down cannot show whether the rows are stored bottom-up).
        Returns a note for the metadata, empty when the decoder is kept."""
        if self.stream.codec_context.name != "rawvideo" or extract.kind != "planar":
            return ""
        need = height * width * extract.dtype.itemsize
        sizes = self.packet_sizes
        if len(sizes) == 0 or sizes[0] < need or np.any(sizes != sizes[0]):
            return ""
        decoded = np.empty((height, width), extract.dtype)
        extract(first, decoded)
        if np.array_equal(decoded, decoded[::-1]):
            return ""
        self._seek_packets(0)
        packet = self._next_packet(0)
        stored = np.frombuffer(packet, np.uint8, count=need).view(extract.dtype)
        if not np.array_equal(stored.reshape(height, width), decoded):
            self._packets = None
            return ""
        self.raw_bytes = need
        if self._map_file(need):
            return ("rawvideo: luma bytes read straight from the file at each packet's "
                    "offset (checked equal to the decoded frame 0 and to the first, middle "
                    "and last packets)")
        return ("rawvideo: luma bytes taken straight from the packets (checked equal to "
                "the decoded frame 0)")

    def _map_file(self, need: int) -> bool:
        """Whether the packets' file offsets hold their bytes (checked on the first,
        middle and last packet): then frames are copied out of a memmap, which skips
        the demuxer's buffered reads too."""
        positions = self.packet_positions[np.argsort(self.pts_unsorted, kind="stable")] \
            if len(self.pts_unsorted) == len(self.packet_positions) else None
        if positions is None or len(positions) != len(self.pts) or np.any(positions < 0):
            return False
        data = np.memmap(self.path, np.uint8, "r")
        if np.any(positions + need > len(data)):
            return False
        for k in sorted({0, len(positions) // 2, len(positions) - 1}):
            self._seek_packets(k)
            stored = np.frombuffer(self._next_packet(k), np.uint8, count=need)
            if not np.array_equal(data[positions[k]:positions[k] + need], stored):
                self._packets = None
                return False
        self._packets = None
        self.file_map = np.asarray(data)        # a plain view: slicing stays in C
        self.frame_positions = positions
        return True

    def _seek_packets(self, index: int):
        try:
            self.container.seek(int(self.pts[index]), stream=self.stream, backward=True)
        except self.errors as exc:
            raise CorruptSource(f"{self.name}: cannot seek to frame {index}: {exc}") from None
        self._packets = self.container.demux(self.stream)
        self.next_packet = -1       # unknown until a packet's pts says where we are

    def _next_packet(self, expected: int):
        """The packet of frame ``expected`` (skipping earlier ones after a seek)."""
        while True:
            try:
                packet = next(self._packets)
            except StopIteration:
                raise CorruptSource(f"{self.name}: the file ended before frame {expected} of "
                                    f"{len(self.pts)} (truncated or damaged)") from None
            except self.errors as exc:
                raise CorruptSource(f"{self.name}: frame {expected}: reading failed: "
                                    f"{exc}") from None
            if packet.size == 0:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            at = self.index_of_pts.get(int(stamp)) if stamp is not None else None
            if at is None:
                raise CorruptSource(f"{self.name}: a packet has pts {stamp}, which the "
                                    f"index does not hold (near frame {expected})")
            if at == expected:
                self.next_packet = at + 1
                return packet
            if at > expected:
                raise CorruptSource(f"{self.name}: seeking for frame {expected} landed on "
                                    f"frame {at}; the file's index is inconsistent")

    def raw_frames_into(self, a: int, b: int, out: np.ndarray):
        """Frames a..b-1 copied from their packets into ``out`` (one batch)."""
        rows = out.reshape(b - a, -1).view(np.uint8)
        need = self.raw_bytes
        if self.file_map is not None:
            data, positions = self.file_map, self.frame_positions
            steps = np.diff(positions[a:b])
            if len(steps) and np.all(steps == steps[0]) and steps[0] >= need:
                # evenly spaced frames (the usual AVI: chunk header + frame, repeated):
                # the whole batch is one strided view, copied in one numpy call
                rows[...] = np.lib.stride_tricks.as_strided(
                    data[positions[a]:], shape=(b - a, need), strides=(int(steps[0]), 1),
                    writeable=False)
                return
            for i in range(a, b):
                at = int(positions[i])
                rows[i - a] = data[at:at + need]
            return
        if self._packets is None or self.next_packet != a:
            self._seek_packets(a)
        rows = out.reshape(b - a, -1).view(np.uint8)
        need = self.raw_bytes
        for i in range(a, b):
            rows[i - a] = np.frombuffer(self._next_packet(i), np.uint8, count=need)

    def indexed_packets(self, declared: int):
        """pts, key-frame and corrupt flags from the container's own index (AVI idx1 /
        OpenDML, read by FFmpeg when the file is opened), without reading a packet; None
        when the index cannot be trusted to be the packet list: empty, a count other
        than the header's, zero-size (dropped-frame) entries, repeated stamps, or an
        entry beyond the end of the file (truncated): those files are demuxed instead."""
        try:
            entries = self.stream.index_entries
        except AttributeError:          # PyAV before 14 does not expose it
            return None
        n = len(entries)
        if n == 0 or n != declared:
            return None
        table = np.array([(e.timestamp, e.is_keyframe, e.size, e.pos) for e in entries],
                         np.int64).reshape(n, 4)
        pts, keys, sizes, chunk_at = table.T
        file_size = os.path.getsize(self.path)
        if (np.any(sizes <= 0) or np.any(chunk_at < 0) or np.any(chunk_at + sizes > file_size)
                or len(np.unique(pts)) != n):
            return None
        self.packet_sizes = sizes
        # an AVI index entry points at the chunk header (4-byte id, 4-byte size), so the
        # data start 8 bytes on; _map_file checks that against the packets themselves
        self.packet_positions = chunk_at + 8 if self.container.format.name == "avi" else \
            np.full(n, -1, np.int64)
        return pts.copy(), keys.astype(bool), np.zeros(n, bool)

    def count_packets(self):
        """Demux (no decoding) every packet: exact frame count, pts and key frames."""
        pts, keys, corrupt, sizes, positions = [], [], [], [], []
        try:
            for packet in self.container.demux(self.stream):
                if packet.size == 0:
                    continue            # the end-of-stream flush packet
                stamp = packet.pts if packet.pts is not None else packet.dts
                pts.append(len(pts) if stamp is None else stamp)
                keys.append(packet.is_keyframe)
                corrupt.append(packet.is_corrupt)
                sizes.append(packet.size)
                positions.append(-1 if packet.pos is None else packet.pos)
        except self.errors as exc:
            log.warning("%s: demuxing stopped after %d packets: %s", self.name, len(pts), exc)
        self.packet_sizes = np.asarray(sizes, np.int64)
        self.packet_positions = np.asarray(positions, np.int64)
        return np.asarray(pts, np.int64), np.asarray(keys, bool), np.asarray(corrupt, bool)

    def set_index(self, pts: np.ndarray, keyframes: np.ndarray):
        self.pts_unsorted = pts
        order = np.argsort(pts, kind="stable")
        self.pts = pts[order]
        self.index_of_pts = {int(p): k for k, p in enumerate(self.pts)}
        if len(self.index_of_pts) != len(self.pts):
            raise CorruptSource(f"{self.name}: repeated packet time stamps; frames cannot be "
                                "located")
        key_positions = np.flatnonzero(keyframes[order])
        self.keyframes = key_positions if len(key_positions) and key_positions[0] == 0 else \
            np.concatenate([[0], key_positions])

    def _restart(self, index: int):
        """Seek to the key frame at or before ``index`` and decode from there."""
        key = int(self.keyframes[np.searchsorted(self.keyframes, index, side="right") - 1])
        try:
            self.container.seek(int(self.pts[key]), stream=self.stream, backward=True)
        except self.errors as exc:
            raise CorruptSource(f"{self.name}: cannot seek to frame {key}: {exc}") from None
        self._frames = self.container.decode(self.stream)
        self._pending = None
        self.next_index = key       # where we should land; checked by pts when there is one

    def _decode_next(self, expected: int):
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        try:
            return next(self._frames)
        except StopIteration:
            raise CorruptSource(f"{self.name}: the decoder ended before frame {expected} of "
                                f"{len(self.pts)} (file truncated or damaged)") from None
        except self.errors as exc:
            raise CorruptSource(f"{self.name}: frame {expected}: decoding failed: "
                                f"{exc}") from None

    def _where(self, frame, fallback: int) -> int:
        if frame.pts is None:
            return fallback
        index = self.index_of_pts.get(int(frame.pts))
        if index is None:
            raise CorruptSource(f"{self.name}: a decoded frame has pts {frame.pts}, which no "
                                f"packet carries (near frame {fallback})")
        return index

    def frame(self, index: int):
        """The decoded frame ``index`` (decoding forward, seeking only when needed)."""
        if self._frames is None or self.next_index != index:      # not the next one
            key = int(self.keyframes[np.searchsorted(self.keyframes, index, side="right") - 1])
            if self._frames is None or not key <= self.next_index <= index:
                self._restart(index)
        while True:
            expected = self.next_index
            frame = self._decode_next(expected)
            at = self._where(frame, expected)
            self.next_index = at + 1
            if at == index:
                return frame
            if at > index:
                raise CorruptSource(f"{self.name}: seeking for frame {index} landed on frame "
                                    f"{at}; the file's index is inconsistent")

    def start_decoding(self):
        """Decode frame 0 (checks the stream and tells the pixel format)."""
        self._restart(0)
        first = self.frame(0)
        self._pending = first
        self.next_index = 0
        return first


# -- opening ---------------------------------------------------------------------------------


def _epoch(container, path, duration_s: float, options):
    from astropy.time import Time
    if options.start_utc:
        return Time(options.start_utc, scale="utc"), "start given by read options (start_utc)"
    for key in ("creation_time", "date", "DateTimeOriginal"):
        value = container.metadata.get(key)
        if not value:
            continue
        try:
            return Time(value.strip().replace("Z", ""), scale="utc"), \
                f"start from the container's {key} tag ({value.strip()}, a PC clock)"
        except ValueError:
            continue
    mtime = os.stat(path).st_mtime
    start = Time(mtime - duration_s, format="unix", scale="utc")
    return start, ("start = file modification time minus the nominal duration (a PC clock "
                   "at best; the file has no creation tag)")


def open_video(source, options, context) -> FrameSeries:
    if len(source.paths) != 1 or source.kind == "dir":
        raise NotApplicable("an AVI source is one file")
    path = source.path
    name = str(path)
    decoder = Decoder(path, name, options.threads)
    try:
        return _open(decoder, path, name, options)
    except BaseException:
        decoder.close()
        raise


def _open(decoder: Decoder, path, name: str, options) -> FrameSeries:
    from occplugins.readers.avi import parse_avi_header
    with open(path, "rb") as fh:
        header = parse_avi_header(fh.read(1 << 16))
    stream = decoder.stream
    notes = []
    declared = int(stream.frames or 0)
    indexed = decoder.indexed_packets(declared)
    if indexed is not None:
        pts, keys, corrupt = indexed
        counted_from = "the container's index (no packet read)"
    else:
        pts, keys, corrupt = decoder.count_packets()
        counted_from = "demuxed packets"
    if corrupt.any():
        notes.append(f"{int(corrupt.sum())} packet(s) flagged corrupt by the demuxer "
                     f"(first at frame {int(np.flatnonzero(corrupt)[0])})")
    if declared and len(pts) < declared:
        if not options.allow_truncated:
            raise CorruptSource(f"{name}: the header says {declared} frames but the file holds "
                                f"only {len(pts)} (truncated); set "
                                "read.options.avi.allow_truncated = true to read those")
        if corrupt.size and corrupt[-1]:
            pts, keys, corrupt = pts[:-1], keys[:-1], corrupt[:-1]
        notes.append(f"truncated: header {declared} frames, read {len(pts)}")
        log.warning("%s: truncated: header says %d frames, reading %d", name, declared, len(pts))
    elif declared and len(pts) > declared:
        notes.append(f"header says {declared} frames; the file holds {len(pts)} (counted)")
    if len(pts) == 0:
        raise CorruptSource(f"{name}: no video frame in the file")
    decoder.set_index(pts, keys)
    first = decoder.start_decoding()
    extract = make_extractor(first, name)
    n_frames = len(pts)
    height, width = first.height, first.width

    time_base = stream.time_base
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    stamps_s = (decoder.pts - decoder.pts[0]) * float(time_base)
    if rate:
        frame_period_s = 1.0 / float(rate)
    elif n_frames > 1:
        frame_period_s = float(np.median(np.diff(stamps_s)))
    else:
        raise InputError(f"{name}: one frame and no frame rate; cannot time it")
    codec = stream.codec_context.name
    meta = {"container": decoder.container.format.name, "codec": codec,
            "pixel_format": first.format.name, "luma": extract.note,
            "frame_rate_hz": float(1.0 / frame_period_s),
            "header_frame_count": declared, "counted_frames": n_frames,
            "frames_counted_from": counted_from,
            "key_frames": len(decoder.keyframes),
            "interlaced_flag": bool(first.interlaced_frame),
            "lossless_codec": codec in LOSSLESS_CODECS, "notes": notes}
    if header is not None:
        meta.update(fourcc=header.compression, handler=header.handler,
                    avih_total_frames=header.total_frames)
    if codec not in LOSSLESS_CODECS:
        notes.append(f"lossy codec {codec}: pixel values are not the camera's; photometry "
                     "is degraded")

    state = {"batches": 0}

    raw_note = decoder.try_raw_packets(extract, first, height, width)
    if raw_note:
        meta["luma"] += f"; {raw_note}"

    def read_frames(a: int, b: int) -> np.ndarray:
        out = np.empty((b - a, height, width), extract.dtype)
        if decoder.raw_bytes:
            decoder.raw_frames_into(a, b, out)
        else:
            for i in range(a, b):
                extract(decoder.frame(i), out[i - a])
        state["batches"] += 1
        return out

    epoch, epoch_note = _epoch(decoder.container, path, n_frames * frame_period_s, options)
    common = {"dtype": np.dtype(extract.dtype).newbyteorder("="),
              "bit_depth": extract.bit_depth, "format": meta["container"], "reader": "avi",
              "source_name": name, "on_close": decoder.close}
    timing = (f"container timing: {epoch_note}; offsets are each frame's nominal presentation "
              f"time (packet pts x {time_base}); {SCIENCE_NOTE}")

    if options.fields == "frames":
        times = FrameTimes(epoch=epoch, offsets_s=stamps_s, instant="start", source="pc-clock",
                           uncertainty_s=None, note=timing)
        exposure_s = options.exposure_s if options.exposure_s is not None else frame_period_s
        if options.exposure_s is None:
            notes.append("exposure taken as the frame period (AVI does not store it)")

        def read_batch(a, b):
            return _native(read_frames(a, b))
        return FrameSeries(n_frames=n_frames, height=height, width=width, times=times,
                           exposure_s=exposure_s, read_batch=read_batch, meta=meta,
                           frame_meta={"frame_index": np.arange(n_frames)}, **common)

    # -- fields --
    if height % 2:
        notes.append(f"odd frame height {height}: the last row is left out of the fields")
    field_height = height // 2
    order, order_note = _field_order(options.field_order, decoder, read_frames, n_frames)
    first_parity = 0 if order == "top-first" else 1
    meta.update(fields="split", field_order=order, field_order_decision=order_note)
    field_period_s = frame_period_s / 2
    n_fields = 2 * n_frames
    frame_index = np.repeat(np.arange(n_frames), 2)
    position = np.tile([0, 1], n_frames)
    parity = np.where(position == 0, first_parity, 1 - first_parity)
    offsets = stamps_s[frame_index] + position * field_period_s
    times = FrameTimes(epoch=epoch, offsets_s=offsets, instant="start", source="pc-clock",
                       uncertainty_s=None,
                       note=f"{timing}; fields {field_period_s * 1e3:.3f} ms apart "
                            f"(frame period / 2), {order} ({order_note})")
    exposure_s = options.exposure_s if options.exposure_s is not None else field_period_s
    if options.exposure_s is None:
        notes.append("exposure taken as the field period (AVI does not store it)")

    def read_fields(a, b):
        fa, fb = a // 2, (b - 1) // 2 + 1
        frames = read_frames(fa, fb)
        out = np.empty((b - a, field_height, width), frames.dtype)
        for j in range(a, b):
            out[j - a] = frames[j // 2 - fa, parity[j]::2][:field_height]
        return _native(out)

    return FrameSeries(n_frames=n_fields, height=field_height, width=width, times=times,
                       exposure_s=exposure_s, read_batch=read_fields, meta=meta,
                       frame_meta={"field_parity": parity, "frame_index": frame_index}, **common)


def _native(block: np.ndarray) -> np.ndarray:
    return block if block.dtype.isnative else block.astype(block.dtype.newbyteorder("="))


def _field_order(option: str, decoder, read_frames, n_frames: int) -> tuple[str, str]:
    if option != "auto":
        return option, "set by read option field_order"
    sample = min(n_frames, 41)
    if sample >= 3:
        frames = read_frames(0, sample).astype(np.float32)
        decision = field_order_from_motion(frames)
        if decision is not None:
            return decision
    return "top-first", ("assumed (default top-first): the data do not show which field is "
                         "earlier; set field_order or let a VTI time source decide")


def field_order_from_motion(frames: np.ndarray):
    """Decide the field order from which field sits between which in time.

    With fields T_k (even rows) and B_k (odd rows): top-first means B_k lies between T_k
    and T_k+1, so B_k resembles T_k+1 more than T_k-1; bottom-first the reverse. T is
    interpolated onto B's rows so both comparisons carry the same spatial error.
    Returns (order, explanation), or None when the evidence is weak.
    """
    height = frames.shape[1] - frames.shape[1] % 2
    top = frames[:, 0:height:2]
    bottom = frames[:, 1:height:2]
    top_at_bottom_rows = 0.5 * (top[:, :-1] + top[:, 1:])
    b = bottom[1:-1, :-1]
    to_next = np.mean(np.abs(b - top_at_bottom_rows[2:]), axis=(1, 2))
    to_prev = np.mean(np.abs(b - top_at_bottom_rows[:-2]), axis=(1, 2))
    diff = to_prev - to_next              # > 0: bottom closer to the next top: top-first
    scale = np.maximum(to_prev, to_next)
    n = len(diff)
    votes_top = int(np.sum(diff > 0.05 * scale))
    votes_bottom = int(np.sum(diff < -0.05 * scale))
    for order, votes, other in (("top-first", votes_top, votes_bottom),
                                ("bottom-first", votes_bottom, votes_top)):
        if votes >= max(3, 0.8 * n) and other <= 0.1 * n:
            return order, (f"decided from the data: in {votes} of {n} frames the "
                           f"{'odd' if order == 'top-first' else 'even'}-row field resembles "
                           "the next frame's other field more than the previous one's")
    return None
