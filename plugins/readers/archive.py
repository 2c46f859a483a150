"""Archives as sources: .zip, .7z, .rar, .tar(.gz/.bz2/.xz), and single-file .gz/.bz2/.xz.

The members are extracted into the run's private working directory (never beside the
input) and identified again, so a zip of FITS frames is a FITS series and a 7z that
holds one SER file is a SER source.

Before anything is written the member list is checked: absolute paths, ``..``
components, links that point outside, devices, and a total expanded size above the
limit (``read.archive_limit_gb``, and never more than the free disk space) are
refused. Extraction is a fallback chain: the standard library or py7zr first, which
stream each member through occcore's byte budget and stop as soon as the real size
passes the limit, then pyunpack (as the Occultation Portal does), run in a child
process whose files are capped by the kernel (RLIMIT_FSIZE) and whose output is
measured while it runs. A .rar needs ``rarfile`` plus an ``unrar``/``bsdtar``
executable; when neither is there the error says what to install.

Safety refusals (size, member count, nesting depth, bombs, polyglots) raise
``LimitExceeded``, which ends the reader chain. Links are resolved physically (through
the links extracted before them) before anything is written. Messages name the
archive and the member (``obs.zip!frames/f001.fits``), never the private work path.
"""
from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import os
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import attrs

from occcore.plugin import (CorruptSource, InputError, LimitExceeded, Match, NotApplicable,
                            ReaderSpec, hookimpl)

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


DEFAULT_LIMIT_GB = 20.0


@attrs.frozen(kw_only=True)
class ArchiveOptions:
    extractors: tuple = attrs.field(default=("builtin", "pyunpack"), converter=tuple,
                                    validator=attrs.validators.deep_iterable(
                                        attrs.validators.in_(("builtin", "pyunpack"))))
    limit_gb: float = attrs.field(default=DEFAULT_LIMIT_GB, validator=attrs.validators.gt(0))
    max_members: int = attrs.field(default=100_000, validator=attrs.validators.gt(0))
    max_depth: int = attrs.field(default=4, validator=attrs.validators.ge(1))


@attrs.frozen
class Member:
    name: str
    size: int
    is_dir: bool = False
    link_target: str | None = None
    is_special: bool = False
    hard_link: bool = False         # a tar hard link: its target is relative to the root


def _check_counts(members: int, total: int, name: str, limit: int, max_members: int) -> None:
    if members > max_members:
        raise LimitExceeded(f"{name}: more than {max_members} members "
                            "(read.options.archive.max_members); refused")
    if total > limit:
        raise LimitExceeded(f"{name}: expands to more than {limit / 1e9:.3g} GB, the limit "
                            "(read.options.archive.limit_gb, free disk space); refused")


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


def _list_members(path: Path, kind: str, name: str, limit: int, max_members: int) -> list[Member]:
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                out = []
                infos = zf.infolist()
                _check_counts(len(infos), 0, name, limit, max_members)
                if infos and min(i.header_offset for i in infos) != 0:
                    raise LimitExceeded(f"{name}: the zip directory does not describe the data "
                                        "the file starts with (a polyglot or appended archive); "
                                        "refused")
                for info in infos:
                    mode = info.external_attr >> 16
                    link = None
                    if stat.S_ISLNK(mode):
                        link = zf.read(info)[:4096].decode("utf-8", "replace")
                    out.append(Member(info.filename, info.file_size, info.is_dir(), link))
                return out
        if kind == "tar" or _is_tar_compressed(path, kind):
            out, total = [], 0
            with tarfile.open(path) as tf:
                for m in tf:        # stop at the first header past a limit: no full scan
                    out.append(Member(m.name, m.size, m.isdir(),
                                      m.linkname if (m.issym() or m.islnk()) else None,
                                      not (m.isfile() or m.isdir() or m.issym() or m.islnk()),
                                      hard_link=m.islnk()))
                    total += max(m.size, 0)
                    _check_counts(len(out), total, name, limit, max_members)
            return out
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
    except Exception as exc:   # zipfile, tarfile, py7zr, rarfile: name the archive, the cause
        raise CorruptSource(f"{name}: cannot read the {kind} archive directory: "
                            f"{type(exc).__name__}: {exc}") from None


def _resolve(parts: list[str], links: dict[str, str], hops: int = 0) -> list[str] | None:
    """Physically resolve a member path through the links seen so far; None if it escapes."""
    out: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(part)
        target = links.get("/".join(out))
        if target is not None:
            if hops > 40 or target.startswith(("/", "?")):
                return None
            resolved = _resolve(out[:-1] + target.split("/"), links, hops + 1)
            if resolved is None:
                return None
            out = resolved
    return out


def check_members(members: list[Member], archive: str, limit_bytes: int,
                  max_members: int = 100_000) -> None:
    """Refuse path traversal, escaping links (resolved physically), special files and bombs."""
    _check_counts(len(members), 0, archive, limit_bytes, max_members)
    total = 0
    links: dict[str, str] = {}
    for m in members:
        text = m.name.replace("\\", "/")
        pure = PurePosixPath(text)
        if pure.is_absolute() or m.name.startswith(("/", "\\")) or (len(m.name) > 1 and m.name[1] == ":"):
            raise InputError(f"{archive}: member {m.name!r} has an absolute path; refused")
        if ".." in pure.parts:
            raise InputError(f"{archive}: member {m.name!r} climbs out with '..'; refused")
        if m.is_special:
            raise InputError(f"{archive}: member {m.name!r} is a device or FIFO; refused")
        parent = _resolve(list(pure.parent.parts), links)
        if parent is None:
            raise InputError(f"{archive}: member {m.name!r} is written through a link that "
                             "points outside the archive; refused")
        if m.link_target is not None:
            target = m.link_target.replace("\\", "/")
            if m.hard_link:      # tar hard links name their target from the archive root
                resolved = _resolve(target.split("/"), links) if not target.startswith("/") else None
            else:
                resolved = None if target.startswith(("/", "?")) else \
                    _resolve(parent + target.split("/"), links)
            if resolved is None:
                raise InputError(f"{archive}: member {m.name!r} is a link to {m.link_target!r} "
                                 "outside the archive; refused")
            if not m.hard_link:
                links["/".join(parent + [pure.name])] = target
        if m.size > 0:
            total += m.size
    if total > limit_bytes:
        raise LimitExceeded(f"{archive}: expands to {total / 1e9:.3g} GB, more than the limit "
                            f"{limit_bytes / 1e9:.3g} GB (read.options.archive.limit_gb, free "
                            "disk space); refused")


class _Budget:
    """Bytes and members left; every extractor writes through it, so a bomb stops at the limit."""

    def __init__(self, limit: int, archive: str, dest: Path, max_members: int = 100_000):
        self.left = limit
        self.limit = limit
        self.archive = archive
        self.dest = dest
        self.root = dest.resolve()
        self.members_left = max_members

    def exceeded(self, what: str = "") -> LimitExceeded:
        return LimitExceeded(f"{self.archive}{'!' + what if what else ''}: expanded data pass "
                             f"the size limit {self.limit / 1e9:.3g} GB while extracting; "
                             "refused (a compression bomb?) (read.options.archive.limit_gb)")

    def target(self, member: str) -> Path:
        """Where a member goes; refuses anything that would land outside (through links too)."""
        self.members_left -= 1
        if self.members_left < 0:
            raise LimitExceeded(f"{self.archive}: too many members "
                                "(read.options.archive.max_members); refused")
        out = self.dest / member.replace("\\", "/").lstrip("/")
        if not out.parent.resolve().is_relative_to(self.root) or out.is_symlink():
            raise InputError(f"{self.archive}: member {member!r} would be written outside the "
                             "archive's directory; refused")
        return out

    def take(self, n: int, member: str) -> None:
        self.left -= n
        if self.left < 0:
            raise self.exceeded(member)

    def copy(self, src, member: str):
        dst_path = self.target(member)
        dst_path.parent.mkdir(parents=True, exist_ok=True)
        with open(dst_path, "wb") as dst:
            while True:
                chunk = src.read(min(1 << 20, max(self.left + 1, 1)))
                if not chunk:
                    return
                self.take(len(chunk), member)
                dst.write(chunk)


class _BudgetWriter:
    """A py7zr writer that streams one member into the budget (py7zr never writes itself)."""

    def __init__(self, budget: _Budget, member: str):
        self.budget = budget
        self.member = member
        self.path = budget.target(member)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "wb")
        self.written = 0

    def write(self, data) -> int:
        self.budget.take(len(data), self.member)
        self.written += len(data)
        return self.fh.write(data)

    def read(self, size=None) -> bytes:
        return b""

    def seek(self, offset, whence=0) -> int:
        return self.fh.seek(offset, whence)

    def flush(self) -> None:
        self.fh.flush()

    def size(self) -> int:
        return self.written

    def close(self) -> None:
        self.fh.close()


def _extract_builtin(path: Path, kind: str, dest: Path, members: list[Member], budget: _Budget):
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir() and not stat.S_ISLNK(info.external_attr >> 16):
                    with zf.open(info) as src:
                        budget.copy(src, info.filename)
        return
    if kind == "tar" or _is_tar_compressed(path, kind):
        with tarfile.open(path) as tf:
            for m in tf:
                if m.isfile():
                    with tf.extractfile(m) as src:
                        budget.copy(src, m.name)
        return
    if kind == "7z":
        import py7zr

        class Factory(py7zr.WriterFactory):
            def create(self, filename):
                return _BudgetWriter(budget, filename)

        with py7zr.SevenZipFile(path) as zf:
            zf.extractall(path=dest, factory=Factory())
        return
    if kind in _SINGLE:
        with _SINGLE[kind](path, "rb") as src:
            budget.copy(src, members[0].name)
        return
    raise NotApplicable(f"no built-in extractor for {kind}")


def _extract_pyunpack(path: Path, kind: str, dest: Path, members, budget: _Budget):
    if kind in _SINGLE and not _is_tar_compressed(path, kind):
        raise NotApplicable("pyunpack does not unpack single compressed files")
    if kind != "zip" and zipfile.is_zipfile(path):
        # pyunpack would unpack the zip found at the end, not the declared archive
        raise NotApplicable(f"pyunpack reads a zip where the first bytes say {kind} "
                            "(a polyglot file); this extractor is refused")
    _run_limited(lambda: __import__("pyunpack").Archive(str(path)).extractall(str(dest)),
                 dest, budget)


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
            except OSError:
                pass
    return total


def _run_limited(work, dest: Path, budget: _Budget, poll_s: float = 0.005) -> None:
    """Run an extractor we do not control in a child process: the kernel caps every file it
    writes at the bytes left (RLIMIT_FSIZE) and the tree is measured while it runs; past
    the limit the child's process group is killed."""
    import resource
    import signal
    import time
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setpgid(0, 0)
            cap = max(budget.left, 1)
            resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            work()
            code = 0
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if budget.left - _tree_bytes(dest) < 0:
                raise budget.exceeded()
            if done:
                break
            time.sleep(poll_s)
    except BaseException:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(pid, 0) if not done else None
        raise
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXFSZ:
        raise budget.exceeded()
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise RuntimeError(f"extractor process ended with status {status}")
    budget.take(_tree_bytes(dest), "")


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
        raise LimitExceeded(f"{archive}: extracted {total / 1e9:.3g} GB, more than the limit")


def _settings(options: ArchiveOptions, config: dict) -> float:
    """limit_gb from the options; the old ``read.archive_limit_gb`` when the option is unset."""
    old = (config.get("read") or {}).get("archive_limit_gb") if isinstance(config, dict) else None
    if options.limit_gb == DEFAULT_LIMIT_GB and isinstance(old, (int, float)) and old > 0:
        return float(old)
    return options.limit_gb


def _depth(path: Path, workdir: Path) -> int:
    """How many archives this file is already inside: its extraction folder is named
    ``archive-<n>-d<depth>-<name>`` (no state kept between calls)."""
    try:
        inside = path.resolve().relative_to(workdir.resolve())
    except ValueError:
        return 0
    m = re.match(r"archive-\d+-d(\d+)-", inside.parts[0]) if inside.parts else None
    return int(m.group(1)) + 1 if m else 0


def _rename(exc: Exception, dest: Path, shown: str) -> Exception:
    """The same error with the private extraction path replaced by ``archive!``."""
    text = str(exc)
    for prefix in {str(dest.resolve()), str(dest)}:
        text = text.replace(prefix + os.sep, shown + "!").replace(prefix, shown)
    if text == str(exc):
        return exc
    try:
        new = type(exc)(text)
    except Exception:
        new = (LimitExceeded if getattr(exc, "stops_chain", False) else InputError)(text)
    new.__cause__ = exc.__cause__
    return new


def _open(source, *, options, context):
    options = options or ArchiveOptions()
    if source.kind != "file":
        raise NotApplicable("an archive source is one file")
    path = source.path
    with open(path, "rb") as fh:
        kind = kind_of(fh.read(512))
    if kind is None:
        # chosen by its name only: say what is wrong (a bad-input error, exit code 2)
        raise CorruptSource(f"{path}: the name says archive but the file starts with no "
                            "zip/7z/rar/gzip/bzip2/xz/tar signature")
    if context.workdir is None or context.open_source is None:
        raise NotApplicable("archives need a working directory and member identification")
    workdir = Path(context.workdir)
    shown = str(path)
    depth = _depth(path, workdir)
    if depth >= options.max_depth:
        raise LimitExceeded(f"{shown}: archives nested more than {options.max_depth} deep "
                            "(read.options.archive.max_depth); refused")
    free = shutil.disk_usage(workdir).free
    configured = int(_settings(options, context.config) * 1e9)
    # nested archives share one budget: what the outer levels wrote counts
    limit = min(configured - _tree_bytes(workdir), free)
    if limit <= 0:
        raise LimitExceeded(f"{shown}: the archives already extracted fill the size limit "
                            f"{configured / 1e9:.3g} GB (read.options.archive.limit_gb); refused")
    members = _list_members(path, kind, shown, limit, options.max_members)
    check_members(members, shown, limit, options.max_members)
    dest = workdir / f"archive-{len(list(workdir.glob('archive-*')))}-d{depth}-{path.name}"
    errors = []
    for extractor in options.extractors:
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        try:
            _EXTRACTORS[extractor](path, kind, dest, members,
                                   _Budget(limit, shown, dest, options.max_members))
            _verify_tree(dest, limit, shown)
            break
        except InputError as exc:
            shutil.rmtree(dest, ignore_errors=True)
            renamed = _rename(exc, dest, shown)
            raise renamed from renamed.__cause__
        except Exception as exc:   # try the next extractor, keep the reason
            shutil.rmtree(dest, ignore_errors=True)
            errors.append(f"{extractor}: {type(exc).__name__}: "
                          f"{str(exc).replace(str(dest), shown + '!')}")
            log.debug("%s: extractor %s failed: %s", path, extractor, exc)
    else:
        shutil.rmtree(dest, ignore_errors=True)
        raise CorruptSource(f"{path}: could not extract ({'; '.join(errors)})")
    inner = dest
    entries = [p for p in inner.iterdir() if not p.name.startswith(".")]
    while len(entries) == 1 and entries[0].is_dir():
        inner = entries[0]
        entries = [p for p in inner.iterdir() if not p.name.startswith(".")]
    files = [p for p in entries if p.is_file()]
    if not files and not entries:
        raise InputError(f"{path}: the archive is empty")
    target = files[0] if len(entries) == 1 else inner
    try:
        series = context.open_source(target)
    except Exception as exc:
        renamed = _rename(exc, dest, shown)
        if renamed is exc:
            raise
        raise renamed from renamed.__cause__
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
