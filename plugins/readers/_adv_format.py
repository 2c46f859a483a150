"""ADV v1/v2 and AAV v1/v2 container parsing: file header, tag tables, section headers,
index and the per-frame headers and status sections.

Layout from ``shared/design/formats.md`` §1 and ``video-and-time.md`` §3. Every read is
bounds-checked against the file; sizes from the file are checked before anything is
allocated, and damage is a :class:`CorruptSource` naming the file, the frame and the byte.
"""
from __future__ import annotations

import struct

import attrs
import numpy as np

from occcore.plugin import CorruptSource, InputError

MAGIC = b"FSTF"
FRAME_MAGIC = b"\xff\x22\x01\xee"
DRAFT_V2 = ("unsupported draft ADV v2 (2016 pre-release encoding: 1-byte string lengths "
            "and a status section without the timestamp-accuracy field); only the released "
            "ADV v2 format is read")
UNSUPPORTED_LAYOUTS = {"8BIT-COLOR-IMAGE": "colour ADV layout (defined, never written by "
                                           "AdvLib)",
                       "IMAGE-ROIS": "region-of-interest ADV layout (Astrid extension)"}
V1_TYPES = {0: "UInt8", 1: "UInt16", 2: "UInt32", 3: "ULong64", 4: "Real", 5: "AnsiString254",
            6: "List16AnsiString254"}
V2_TYPES = {0: "Int8", 1: "Int16", 2: "Int32", 3: "Long64", 4: "Real4", 5: "UTF8String"}
V1_FIXED = {0: "<u1", 1: "<u2", 2: "<u4", 3: "<u8", 4: "<f4"}
V2_FIXED = {0: "<u1", 1: "<u2", 2: "<u4", 3: "<i8", 4: "<f4"}
MAX_TAGS = 100_000


class Cursor:
    """Bounds-checked little-endian reads from a byte buffer (a memmap of the file)."""

    def __init__(self, data, name: str, offset: int = 0, what: str = ""):
        self.data = data
        self.name = name
        self.pos = offset
        self.what = what

    def fail(self, message: str):
        where = f" ({self.what})" if self.what else ""
        raise CorruptSource(f"{self.name}: {message} at byte {self.pos}{where}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            self.fail(f"needs {n} bytes but the file ends at byte {len(self.data)}")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def unpack(self, fmt: str):
        values = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))
        return values[0] if len(values) == 1 else values

    def string(self, width: int) -> str:
        """A length-prefixed string: ``width`` 1 (v1, ASCII) or 2 (v2, UTF-8)."""
        n = self.unpack("B" if width == 1 else "H")
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


@attrs.frozen
class Layout:
    layout_id: int
    version: int
    bpp: int
    tags: dict

    @property
    def data_layout(self) -> str:
        return self.tags.get("DATA-LAYOUT", "FULL-IMAGE-RAW")

    @property
    def compression(self) -> str:
        return self.tags.get("SECTION-DATA-COMPRESSION", "UNCOMPRESSED")

    @property
    def is_diff(self) -> bool:
        return self.data_layout.startswith("FULL-IMAGE-DIFFERENTIAL-CODING")

    @property
    def base_frame(self) -> str:
        return self.tags.get("DIFFCODE-BASE-FRAME", "KEY-FRAME")


@attrs.frozen
class AdvHeader:
    """Everything read once at open: header, tables, section headers and the index."""

    version: int
    size: int
    system_tags: dict
    user_tags: dict
    streams: list              # v2: [{name, frames, clock_hz, accuracy_ticks, tags}]
    width: int
    height: int
    data_bpp: int
    layouts: dict              # layout id -> Layout
    image_tags: dict
    status_tags: list          # [(name, type code)]
    timestamp_accuracy_ns: int | None
    index_offsets: np.ndarray  # MAIN frames: offset of the frame magic
    index_sizes: np.ndarray    # bytes after the magic
    index_elapsed: np.ndarray  # v1: ms since the first frame; v2: stream clock ticks
    calibration_frames: int
    header_frame_count: int

    @property
    def is_aav(self) -> bool:
        if self.version == 1:
            return self.system_tags.get("FSTF-TYPE", "").upper() == "AAV"
        return "AAV-VERSION" in self.system_tags

    @property
    def byte_order(self) -> str:
        order = self.image_tags.get("IMAGE-BYTE-ORDER", "LITTLE-ENDIAN").upper()
        return ">" if order == "BIG-ENDIAN" else "<"


def _tag_table(data, name: str, offset: int, count_width: str, string_width: int,
               what: str) -> dict:
    cur = Cursor(data, name, offset, what)
    count = cur.unpack(count_width)
    if count > MAX_TAGS or count * 2 * string_width > len(data) - offset:
        cur.fail(f"{what} declares {count} tags, more than the file can hold")
    out = {}
    for _ in range(count):
        key = cur.string(string_width)
        out[key] = cur.string(string_width)
    return out


def _check_offset(name: str, offset: int, size: int, what: str):
    if not 0 < offset < size:
        raise CorruptSource(f"{name}: {what} offset {offset} is outside the file "
                            f"({size} bytes)")


def parse_header(data, name: str) -> AdvHeader:
    size = len(data)
    if size < 40 or bytes(data[:4]) != MAGIC:
        raise CorruptSource(f"{name}: not an ADV/AAV file (no FSTF magic)")
    version = int(data[4])
    if version == 1:
        return _parse_v1(data, name)
    if version == 2:
        return _parse_v2(data, name)
    raise InputError(f"{name}: ADV format version {version} is not supported (1 and 2 are)")


def _parse_v2(data, name: str) -> AdvHeader:
    size = len(data)
    cur = Cursor(data, name, 5, "file header")
    _reserved, index_at, system_at, user_at, n_streams = cur.unpack("IqqqB")
    if n_streams > 16:
        cur.fail(f"{n_streams} streams declared")
    streams = []
    for _ in range(n_streams):
        sname = cur.string(2)
        frames, clock_hz, accuracy, tags_at = cur.unpack("IqIq")
        streams.append({"name": sname, "frames": frames, "clock_hz": clock_hz,
                        "accuracy_ticks": accuracy, "tags_at": tags_at})
    n_sections = cur.unpack("B")
    if bytes(data[cur.pos:cur.pos + 6]) == b"\x05IMAGE":
        # the 2016 draft: section names with a 1-byte length
        raise InputError(f"{name}: {DRAFT_V2} (1-byte section-name length at byte {cur.pos})")
    sections = {}
    for _ in range(n_sections):
        sname = cur.string(2)
        sections[sname] = cur.unpack("q")
    if "IMAGE" not in sections or "STATUS" not in sections:
        raise InputError(f"{name}: {DRAFT_V2} (sections found: {sorted(sections)})")
    for what, at in (("index", index_at), ("system metadata", system_at),
                     ("user metadata", user_at), ("IMAGE section", sections["IMAGE"]),
                     ("STATUS section", sections["STATUS"])):
        _check_offset(name, at, size, what)
    for stream in streams:
        _check_offset(name, stream["tags_at"], size, f"{stream['name']} stream tag table")
        stream["tags"] = _tag_table(data, name, stream.pop("tags_at"), "B", 2,
                                    f"{stream['name']} stream tags")
    system_tags = _tag_table(data, name, system_at, "I", 2, "system metadata")
    user_tags = _tag_table(data, name, user_at, "I", 2, "user metadata")
    width, height, data_bpp, layouts, image_tags = _image_section(
        data, name, sections["IMAGE"], 2)
    cur = Cursor(data, name, sections["STATUS"], "STATUS section header")
    status_version, accuracy_ns, n_tags = cur.unpack("BqB")
    if status_version != 2:
        raise InputError(f"{name}: {DRAFT_V2} (STATUS section version {status_version})")
    status_tags = []
    for _ in range(n_tags):
        tag = cur.string(2)
        status_tags.append((tag, cur.unpack("B")))
    # index: version byte, two table offsets (ignored: older cores wrote other values)
    cur = Cursor(data, name, index_at, "index table")
    cur.unpack("BII")
    main = _index_entries(cur, size, "qqI", "MAIN")
    n_cal = cur.unpack("I") if cur.pos + 4 <= size else 0
    main_count = streams[0]["frames"] if streams else len(main[0])
    return AdvHeader(version=2, size=size, system_tags=system_tags, user_tags=user_tags,
                     streams=streams, width=width, height=height, data_bpp=data_bpp,
                     layouts=layouts, image_tags=image_tags, status_tags=status_tags,
                     timestamp_accuracy_ns=accuracy_ns, index_offsets=main[1],
                     index_sizes=main[2], index_elapsed=main[0], calibration_frames=n_cal,
                     header_frame_count=main_count)


def _index_entries(cur: Cursor, size: int, fmt: str, what: str):
    count = cur.unpack("I")
    entry = struct.calcsize("<" + fmt)
    if count * entry > size - cur.pos:
        cur.fail(f"the {what} index declares {count} frames ({count * entry} bytes), more "
                 "than the file holds")
    dtype = np.dtype([("elapsed", "<i8" if fmt[0] == "q" else "<u4"), ("offset", "<i8"),
                      ("bytes", "<u4")])
    table = np.frombuffer(bytes(cur.data[cur.pos:cur.pos + count * entry]), dtype, count)
    cur.pos += count * entry
    return (table["elapsed"].astype(np.int64), table["offset"].astype(np.int64),
            table["bytes"].astype(np.int64))


def _image_section(data, name: str, offset: int, width_s: int):
    cur = Cursor(data, name, offset, "IMAGE section header")
    _version, width, height, data_bpp, n_layouts = cur.unpack("BIIBB")
    if not (0 < width <= 65536 and 0 < height <= 65536) or width * height * 2 > 4 << 30:
        cur.fail(f"image size {width}x{height} is not plausible")
    if data_bpp not in (8, 12, 14, 16):
        cur.fail(f"image bit depth {data_bpp} is not 8, 12, 14 or 16")
    layouts = {}
    for _ in range(n_layouts):
        layout_id, version, bpp, n_tags = cur.unpack("BBBB")
        tags = {}
        for _ in range(n_tags):
            key = cur.string(width_s)
            tags[key] = cur.string(width_s)
        layouts[layout_id] = Layout(layout_id=layout_id, version=version, bpp=bpp, tags=tags)
    n_tags = cur.unpack("B")
    image_tags = {}
    for _ in range(n_tags):
        key = cur.string(width_s)
        image_tags[key] = cur.string(width_s)
    return width, height, data_bpp, layouts, image_tags


def _parse_v1(data, name: str) -> AdvHeader:
    size = len(data)
    cur = Cursor(data, name, 5, "file header")
    frame_count, index_at, system_at, user_at, n_sections = cur.unpack("IqqqB")
    sections = {}
    for _ in range(n_sections):
        sname = cur.string(1)
        sections[sname] = cur.unpack("q")
    if "IMAGE" not in sections or "STATUS" not in sections:
        raise CorruptSource(f"{name}: ADV v1 header lacks the IMAGE/STATUS sections "
                            f"(found {sorted(sections)})")
    for what, at in (("index", index_at), ("system metadata", system_at),
                     ("user metadata", user_at), ("IMAGE section", sections["IMAGE"]),
                     ("STATUS section", sections["STATUS"])):
        _check_offset(name, at, size, what)
    system_tags = _tag_table(data, name, system_at, "I", 1, "system metadata")
    user_tags = _tag_table(data, name, user_at, "I", 1, "user metadata")
    width, height, data_bpp, layouts, image_tags = _image_section(
        data, name, sections["IMAGE"], 1)
    cur = Cursor(data, name, sections["STATUS"], "STATUS section header")
    _version, n_tags = cur.unpack("BB")
    status_tags = []
    for _ in range(n_tags):
        tag = cur.string(1)
        status_tags.append((tag, cur.unpack("B")))
    cur = Cursor(data, name, index_at, "index table")
    elapsed, offsets, sizes = _index_entries(cur, size, "IqI", "frame")
    return AdvHeader(version=1, size=size, system_tags=system_tags, user_tags=user_tags,
                     streams=[], width=width, height=height, data_bpp=data_bpp,
                     layouts=layouts, image_tags=image_tags, status_tags=status_tags,
                     timestamp_accuracy_ns=None, index_offsets=offsets, index_sizes=sizes,
                     index_elapsed=elapsed, calibration_frames=0,
                     header_frame_count=frame_count)


# -- per-frame headers -----------------------------------------------------------------------

@attrs.frozen
class FrameTable:
    """What the open-time pass over every frame found (one entry per MAIN frame)."""

    layout_id: np.ndarray
    byte_mode: np.ndarray
    payload_at: np.ndarray     # first payload byte (after layout id and byte mode)
    payload_len: np.ndarray
    stamp: np.ndarray          # v2: UTC ns since 2010; v1: ms since 2010 (mid-exposure)
    exposure: np.ndarray       # v2: ns; v1: 0.1 ms
    start_ticks: np.ndarray | None
    end_ticks: np.ndarray | None
    status: dict               # tag name -> per-frame list of values (None = absent)


def _gather(data, at: np.ndarray, width: int) -> np.ndarray:
    """Bytes ``at[k] .. at[k]+width-1`` of every frame, as an (n, width) uint8 array."""
    return np.asarray(data)[at[:, None] + np.arange(width)]


def _le(block: np.ndarray, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(block).view(dtype)[:, 0]


def scan_frames(data, header: AdvHeader, name: str) -> FrameTable:
    """Read every frame's fixed header and status section (the index is read already)."""
    size = header.size
    offsets, sizes = header.index_offsets, header.index_sizes
    n = len(offsets)
    head = 27 if header.version == 2 else 22      # magic .. byte mode
    bad = np.flatnonzero((offsets < 0) | (offsets + 4 + sizes > size) | (sizes < head - 4))
    if len(bad):
        k = int(bad[0])
        raise CorruptSource(f"{name}: frame {k}: the index places it at bytes {offsets[k]}.."
                            f"{offsets[k] + 4 + sizes[k]}, outside the file ({size} bytes) "
                            "or too short (truncated file or damaged index)")
    block = _gather(data, offsets, head)
    magic_ok = np.all(block[:, :4] == np.frombuffer(FRAME_MAGIC, np.uint8), axis=1)
    if not np.all(magic_ok):
        k = int(np.flatnonzero(~magic_ok)[0])
        raise CorruptSource(f"{name}: frame {k}: no frame magic FF 22 01 EE at byte "
                            f"{offsets[k]} (damaged file or index)")
    if header.version == 2:
        start_ticks = _le(block[:, 5:13], "<i8")
        end_ticks = _le(block[:, 13:21], "<i8")
        image_len = _le(block[:, 21:25], "<u4").astype(np.int64)
        stamp = exposure = None
    else:
        start_ticks = end_ticks = None
        stamp = _le(block[:, 4:12], "<i8")
        exposure = _le(block[:, 12:16], "<u4").astype(np.int64)
        image_len = _le(block[:, 16:20], "<u4").astype(np.int64)
    layout_id = block[:, head - 2].astype(np.int64)
    byte_mode = block[:, head - 1].astype(np.int64)
    status_at = offsets + head - 2 + image_len
    end = offsets + 4 + sizes
    bad = np.flatnonzero((image_len < 2) | (status_at + 4 > end))
    if len(bad):
        k = int(bad[0])
        raise CorruptSource(f"{name}: frame {k}: image section of {image_len[k]} bytes does "
                            f"not fit the {sizes[k]} bytes the index gives it")
    status_len = _le(_gather(data, status_at, 4), "<u4").astype(np.int64)
    bad = np.flatnonzero(status_at + 4 + status_len != end)
    if len(bad):
        k = int(bad[0])
        raise CorruptSource(f"{name}: frame {k}: image ({image_len[k]} bytes) and status "
                            f"({status_len[k]} bytes) sections disagree with the index size "
                            f"{sizes[k]}")
    body_at = status_at + 4
    if header.version == 2:
        short = np.flatnonzero(status_len < 13)
        if len(short):
            k = int(short[0])
            raise CorruptSource(f"{name}: frame {k}: status section of {status_len[k]} bytes "
                                "is shorter than the 13-byte timestamp header")
        fixed = _gather(data, body_at, 13)
        stamp = _le(fixed[:, 0:8], "<i8")
        exposure = _le(fixed[:, 8:12], "<u4").astype(np.int64)
        counts = fixed[:, 12].astype(np.int64)
        entries_at = body_at + 13
    else:
        short = np.flatnonzero(status_len < 1)
        if len(short):
            k = int(short[0])
            raise CorruptSource(f"{name}: frame {k}: empty status section")
        counts = np.asarray(data)[body_at].astype(np.int64)
        entries_at = body_at + 1
    status = _status_values(data, header, name, counts, entries_at, end)
    for k in np.unique(layout_id):
        if int(k) not in header.layouts:
            first = int(np.flatnonzero(layout_id == k)[0])
            raise CorruptSource(f"{name}: frame {first}: image layout id {int(k)} is not "
                                f"declared in the IMAGE section (declared: "
                                f"{sorted(header.layouts)})")
    return FrameTable(layout_id=layout_id, byte_mode=byte_mode, payload_at=offsets + head,
                      payload_len=image_len - 2, stamp=stamp, exposure=exposure,
                      start_ticks=start_ticks, end_ticks=end_ticks, status=status)


def _status_values(data, header: AdvHeader, name: str, counts, entries_at, end) -> dict:
    tags = header.status_tags
    n = len(counts)
    values = {tag: [None] * n for tag, _ in tags}
    fixed = V2_FIXED if header.version == 2 else V1_FIXED
    known = V2_TYPES if header.version == 2 else V1_TYPES
    str_width = 2 if header.version == 2 else 1
    for k in np.flatnonzero(counts):
        k = int(k)
        cur = Cursor(data, name, int(entries_at[k]), f"status of frame {k}")
        limit = int(end[k])
        for _ in range(int(counts[k])):
            index = cur.unpack("B")
            if index >= len(tags):
                cur.fail(f"frame {k}: status tag index {index} beyond the {len(tags)} "
                         "declared tags")
            tag, code = tags[index]
            if code in fixed:
                raw = cur.take(np.dtype(fixed[code]).itemsize)
                value = np.frombuffer(raw, fixed[code])[0].item()
            elif code in known and code in (5, 6):
                if code == 5:
                    value = cur.string(str_width)
                else:
                    value = " | ".join(cur.string(1) for _ in range(cur.unpack("B")))
            else:
                cur.fail(f"frame {k}: status tag {tag!r} has unknown type code {code}")
            if cur.pos > limit:
                cur.fail(f"frame {k}: status entries run past the end of the frame")
            values[tag][k] = value
    return values
