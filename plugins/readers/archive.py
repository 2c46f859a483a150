"""Archives as sources: .zip, .7z, .rar, .tar(.gz/.bz2/.xz), and single-file .gz/.bz2/.xz.

The members are extracted into the run's private working directory (never beside the
input) and identified again, so a zip of FITS frames is a FITS series and a 7z that
holds one SER file is a SER source.

Before anything is written the member list is checked: absolute paths, ``..``
components, links that point outside, devices, and a total expanded size above the
limit (``read.archive_limit_gb``, and never more than the free disk space) are
refused. Extraction is a fallback chain: pyunpack first (as the Occultation Portal
does), then the standard library or py7zr, which stream each member and stop as soon
as the real size passes the limit. A .rar needs ``rarfile`` plus an ``unrar``/``bsdtar``
executable; when neither is there the error says what to install.
"""
from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import attrs

from occcore.plugin import CorruptSource, InputError, Match, NotApplicable, ReaderSpec, hookimpl

log = logging.getLogger("occcore.archive")

SIGNATURES = {
    "zip": (0, b"PK\x03\x04"),
    "7z": (0, b"7z\xbc\xaf\x27\x1c"),
    "rar": (0, b"Rar!\x1a\x07"),
    "gz": (0, b"\x1f\x8b"),
    "bz2": (0, b"BZh"),
    "xz": (0, b"\xfd7zXZ\x00"),
    "tar": (257, b"ustar"),
}
PATTERNS = ("*.zip", "*.7z", "*.rar", "*.tar", "*.tar.gz", "*.tgz", "*.tar.bz2", "*.tbz2",
            "*.tar.xz", "*.txz", "*.gz", "*.bz2", "*.xz")
_SINGLE = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}


@attrs.frozen(kw_only=True)
class ArchiveOptions:
    extractors: tuple = attrs.field(default=("pyunpack", "builtin"), converter=tuple)


@attrs.frozen
class Member:
    name: str
    size: int
    is_dir: bool = False
    link_target: str | None = None
    is_special: bool = False


def kind_of(head: bytes) -> str | None:
    for kind, (offset, magic) in SIGNATURES.items():
        if head[offset:offset + len(magic)] == magic:
            return kind
    return None


def _is_tar_compressed(path: Path, kind: str) -> bool:
    if kind not in ("gz", "bz2", "xz"):
        return False
    try:
        with tarfile.open(path) as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _identify(probe):
    if probe.is_dir:
        return None
    kind = kind_of(probe.head)
    if kind is None:
        return None
    return Match.SIGNATURE, f"{kind} archive"


def _list_members(path: Path, kind: str) -> list[Member]:
    name = str(path)
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                out = []
                for info in zf.infolist():
                    mode = info.external_attr >> 16
                    link = None
                    if stat.S_ISLNK(mode):
                        link = zf.read(info).decode("utf-8", "replace")
                    out.append(Member(info.filename, info.file_size, info.is_dir(), link))
                return out
        if kind == "tar" or _is_tar_compressed(path, kind):
            with tarfile.open(path) as tf:
                return [Member(m.name, m.size, m.isdir(), m.linkname if (m.issym() or m.islnk()) else None,
                               not (m.isfile() or m.isdir() or m.issym() or m.islnk()))
                        for m in tf.getmembers()]
        if kind == "7z":
            import py7zr
            with py7zr.SevenZipFile(path) as zf:
                return [Member(f.filename, f.uncompressed or 0, f.is_directory,
                               None if not f.is_symlink else "?symlink")
                        for f in zf.list()]
        if kind == "rar":
            try:
                import rarfile
            except ImportError:
                raise InputError(f"{name}: .rar archives need the 'rarfile' package and an "
                                 "'unrar' or 'bsdtar' executable: pip install rarfile; "
                                 "apt-get install unrar (or libarchive-tools)") from None
            with rarfile.RarFile(path) as rf:
                return [Member(i.filename, i.file_size, i.is_dir(),
                               "?symlink" if i.is_symlink() else None) for i in rf.infolist()]
        # a single compressed file: its expanded size is only known by streaming it
        stem = path.name.rsplit(".", 1)[0] or "member"
        return [Member(stem, -1)]
    except InputError:
        raise
    except Exception as exc:
        raise CorruptSource(f"{name}: cannot read the {kind} archive directory: "
                            f"{type(exc).__name__}: {exc}") from None


def check_members(members: list[Member], archive: str, limit_bytes: int) -> None:
    """Refuse path traversal, escaping links, special files and size bombs."""
    total = 0
    for m in members:
        pure = PurePosixPath(m.name.replace("\\", "/"))
        if pure.is_absolute() or m.name.startswith(("/", "\\")) or (len(m.name) > 1 and m.name[1] == ":"):
            raise InputError(f"{archive}: member {m.name!r} has an absolute path; refused")
        if ".." in pure.parts:
            raise InputError(f"{archive}: member {m.name!r} climbs out with '..'; refused")
        if m.is_special:
            raise InputError(f"{archive}: member {m.name!r} is a device or FIFO; refused")
        if m.link_target is not None:
            target = PurePosixPath(m.link_target.replace("\\", "/"))
            resolved = (pure.parent / target).parts
            depth = 0
            for part in resolved:
                depth += -1 if part == ".." else (0 if part == "." else 1)
                if depth < 0:
                    break
            if target.is_absolute() or depth < 0 or m.link_target.startswith("?"):
                raise InputError(f"{archive}: member {m.name!r} is a link to {m.link_target!r} "
                                 "outside the archive; refused")
        if m.size > 0:
            total += m.size
    if total > limit_bytes:
        raise InputError(f"{archive}: expands to {total / 1e9:.3g} GB, more than the limit "
                         f"{limit_bytes / 1e9:.3g} GB (read.archive_limit_gb, free disk space)")


class _Budget:
    def __init__(self, limit: int, archive: str):
        self.left = limit
        self.archive = archive

    def copy(self, src, dst_path: Path):
        dst_path.parent.mkdir(parents=True, exist_ok=True)
        with open(dst_path, "wb") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    return
                self.left -= len(chunk)
                if self.left < 0:
                    raise InputError(f"{self.archive}: expanded data pass the size limit while "
                                     "extracting; refused (a compression bomb?)")
                dst.write(chunk)


def _extract_builtin(path: Path, kind: str, dest: Path, members: list[Member], limit: int):
    budget = _Budget(limit, str(path))
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    with zf.open(info) as src:
                        budget.copy(src, dest / info.filename)
        return
    if kind == "tar" or _is_tar_compressed(path, kind):
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                if m.isfile():
                    with tf.extractfile(m) as src:
                        budget.copy(src, dest / m.name)
        return
    if kind == "7z":
        import py7zr
        with py7zr.SevenZipFile(path) as zf:
            zf.extractall(path=dest)
        return
    if kind in _SINGLE:
        with _SINGLE[kind](path, "rb") as src:
            budget.copy(src, dest / members[0].name)
        return
    raise NotApplicable(f"no built-in extractor for {kind}")


def _extract_pyunpack(path: Path, kind: str, dest: Path, members, limit):
    if kind in _SINGLE and not _is_tar_compressed(path, kind):
        raise NotApplicable("pyunpack does not unpack single compressed files")
    from pyunpack import Archive
    Archive(str(path)).extractall(str(dest))


_EXTRACTORS = {"pyunpack": _extract_pyunpack, "builtin": _extract_builtin}


def _verify_tree(dest: Path, limit: int, archive: str) -> None:
    root = dest.resolve()
    total = 0
    for p in dest.rglob("*"):
        if p.is_symlink():
            target = p.resolve()
            if not target.is_relative_to(root):
                raise InputError(f"{archive}: extracted link {p.name} points outside; refused")
        elif p.is_file():
            total += p.stat().st_size
    if total > limit:
        raise InputError(f"{archive}: extracted {total / 1e9:.3g} GB, more than the limit")


def _open(source, *, options, context):
    options = options or ArchiveOptions()
    if source.kind != "file":
        raise NotApplicable("an archive source is one file")
    path = source.path
    with open(path, "rb") as fh:
        kind = kind_of(fh.read(512))
    if kind is None:
        raise NotApplicable(f"{path}: no archive signature")
    if context.workdir is None or context.open_source is None:
        raise NotApplicable("archives need a working directory and member identification")
    workdir = Path(context.workdir)
    free = shutil.disk_usage(workdir).free
    configured = int(float(context.config.get("read", {}).get("archive_limit_gb", 20.0)) * 1e9)
    limit = min(configured, free)
    members = _list_members(path, kind)
    check_members(members, str(path), limit)
    dest = workdir / f"archive-{len(list(workdir.glob('archive-*')))}-{path.name}"
    errors = []
    for extractor in options.extractors:
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        try:
            _EXTRACTORS[extractor](path, kind, dest, members, limit)
            _verify_tree(dest, limit, str(path))
            break
        except InputError:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        except Exception as exc:   # try the next extractor, keep the reason
            errors.append(f"{extractor}: {type(exc).__name__}: {exc}")
            log.debug("%s: extractor %s failed: %s", path, extractor, exc)
    else:
        shutil.rmtree(dest, ignore_errors=True)
        raise InputError(f"{path}: could not extract ({'; '.join(errors)})")
    inner = dest
    entries = [p for p in inner.iterdir() if not p.name.startswith(".")]
    while len(entries) == 1 and entries[0].is_dir():
        inner = entries[0]
        entries = [p for p in inner.iterdir() if not p.name.startswith(".")]
    files = [p for p in entries if p.is_file()]
    if not files and not entries:
        raise InputError(f"{path}: the archive is empty")
    target = files[0] if len(entries) == 1 else inner
    series = context.open_source(target)
    meta = dict(series.meta)
    meta["archive"] = {"path": str(path), "kind": kind, "members": len(members),
                       "extracted_to": str(dest), "extractor_failures": errors}
    inside = target.relative_to(dest)
    name = f"{path}!{inside}" if str(inside) != "." else str(path)
    return attrs.evolve(series, meta=meta, source_name=name)


@hookimpl
def occcore_readers():
    yield ReaderSpec(name="archive", summary="zip, 7z, rar, tar(.gz/.bz2/.xz), gz: members "
                     "identified again", patterns=PATTERNS, identify=_identify, open=_open,
                     options=ArchiveOptions, priority=0)
