"""Sources and format identification.

A source is a file, a directory, a glob or a list of files. Every reader's
``identify(probe)`` is asked (an exception is recorded, never fatal); levels are
graded EXTENSION < SIGNATURE < CONTENT. Ranking: level, then built-ins before
third-party readers, then a third-party reader's ``priority``. A tie at the top is an
:class:`AmbiguousFormat` error that shows the TOML to settle it; no match is an
:class:`UnknownFormat` error that lists every reader's verdict.
"""
from __future__ import annotations

import fnmatch
import glob as globmod
from collections.abc import Sequence
from pathlib import Path

import attrs

from occcore.errors import AmbiguousFormat, InputError, UnknownFormat
from occcore.plugin import Match, Probe, Source
from occcore.registry import Registered, Registry

_GLOB_CHARS = set("*?[")


def resolve_source(spec) -> Source:
    """Turn what the user typed (path, directory, glob, or list of paths) into a Source."""
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, (list, tuple)):
        if len(spec) == 1:
            return resolve_source(spec[0])
        paths = [Path(p) for p in spec]
        if not paths:
            raise InputError("no input files given")
        for p in paths:
            if not p.is_file():
                raise InputError(f"{p}: no such file")
        return Source(paths=paths, kind="list", display_name=f"{paths[0]} (+{len(paths) - 1} more)")
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        return Source(paths=[path], kind="dir", display_name=text)
    if path.is_file():
        return Source(paths=[path], kind="file", display_name=text)
    if _GLOB_CHARS & set(text):
        matches = sorted((Path(m) for m in globmod.glob(text) if Path(m).is_file()),
                         key=lambda p: p.name)
        if not matches:
            raise InputError(f"{text}: the pattern matches no file")
        return Source(paths=matches, kind="glob", display_name=text)
    if path.exists():
        raise InputError(f"{text}: not a regular file or directory")
    raise InputError(f"{text}: no such file or directory")


def probe_source(source: Source) -> Probe:
    """A probe of the source; for several files, of the first with the list as members."""
    try:
        if source.kind in ("file", "dir", "archive"):
            return Probe.of(source.path)
        first = Probe.of(source.paths[0])
        return attrs.evolve(first, members=tuple(source.paths))
    except OSError as exc:
        raise InputError(f"{source.display_name}: cannot be read: {exc}") from None


@attrs.frozen
class Verdict:
    """One reader's answer about one source."""

    reader: Registered
    level: Match | None
    note: str = ""
    error: str = ""

    def to_dict(self) -> dict:
        return {"reader": self.reader.name, "provider": str(self.reader.provider),
                "level": self.level.name.lower() if self.level else None,
                "note": self.note, "error": self.error}


@attrs.frozen
class Identification:
    source: Source
    verdicts: tuple[Verdict, ...]
    ranked: tuple[Verdict, ...]        # verdicts with a level, best first

    @property
    def winner(self) -> Verdict | None:
        return self.ranked[0] if self.ranked else None

    def to_dict(self) -> dict:
        return {"source": self.source.display_name,
                "winner": self.winner.reader.name if self.winner else None,
                "verdicts": [v.to_dict() for v in self.verdicts]}


def _ask(reader: Registered, probe: Probe) -> Verdict:
    spec = reader.spec
    by_name = bool(spec.patterns) and not probe.is_dir and probe.matches(spec.patterns)
    level, note = (Match.EXTENSION, "file name matches " + ", ".join(spec.patterns)) if by_name \
        else (None, "")
    if spec.identify is None:
        return Verdict(reader=reader, level=level, note=note)
    try:
        answer = spec.identify(probe)
    except Exception as exc:   # one reader's bug must not stop identification
        return Verdict(reader=reader, level=level, note=note,
                       error=f"identify raised {type(exc).__name__}: {exc}")
    found_note = ""
    if isinstance(answer, tuple):
        answer, found_note = answer
    if answer is not None:
        answer = Match(answer)
        if level is None or answer > level:
            level, note = answer, found_note or answer.name.lower()
    return Verdict(reader=reader, level=level, note=note)


def _rank_key(v: Verdict):
    return (-int(v.level), 0 if v.reader.provider.builtin else 1, -v.reader.spec.priority)


def takes(reader: Registered, source: Source) -> bool:
    """Whether ``reader`` declares that it reads this kind of source (one file, a
    directory, or several files as one series)."""
    return source.input in reader.spec.inputs


def identify(source: Source, registry: Registry, kind: str = "reader") -> Identification:
    """Ask every auto-identifying reader of ``kind`` that takes this kind of source about
    ``source`` and rank the answers."""
    probe = probe_source(source)
    verdicts = []
    for reader in registry.implementations(kind):
        if not reader.spec.auto_identify or not takes(reader, source):
            continue
        verdicts.append(_ask(reader, probe))
    ranked = sorted((v for v in verdicts if v.level is not None), key=_rank_key)
    return Identification(source=source, verdicts=tuple(verdicts), ranked=tuple(ranked))


def choose_readers(source: Source, registry: Registry, chosen: Sequence[str] = (),
                   prefer: dict | None = None, kind: str = "reader"
                   ) -> tuple[list[Registered], Identification | None]:
    """The readers to try for ``source``, in order.

    An explicit choice (``--reader`` / ``[read] reader``) or a matching ``[read.prefer]``
    pattern replaces identification, and does not fall back to other readers.
    """
    names = [n for n in chosen if n != "auto"]
    if not names and prefer:
        for pattern, preferred in prefer.items():
            if fnmatch.fnmatch(Path(source.paths[0]).name.lower(), pattern.lower()):
                names = [preferred] if isinstance(preferred, str) else list(preferred)
                break
    if names:
        readers = [registry.get(kind, n) for n in names]
        refused = [r for r in readers if not takes(r, source)]
        if refused and len(refused) == len(readers):
            raise InputError(_refusal(source, refused))
        return [r for r in readers if takes(r, source)], None
    found = identify(source, registry, kind)
    if not found.ranked:
        others = [r for r in registry.implementations(kind) if r.spec.auto_identify
                  and not takes(r, source)]
        raise UnknownFormat(_unknown_message(found, registry, kind, others))
    best = found.ranked[0]
    tied = [v for v in found.ranked[1:] if _rank_key(v) == _rank_key(best)]
    if tied:
        names = [best.reader.qualified_name] + [v.reader.qualified_name for v in tied]
        listing = "; ".join(f"{v.reader.name} ({v.reader.provider}): {v.level.name.lower()} {v.note}"
                            for v in [best, *tied])
        raise AmbiguousFormat(
            f"{source.display_name}: several readers claim it equally well: {listing}. "
            f"Choose one with --reader NAME or in occcore.toml:\n  [read]\n  reader = \"{names[0]}\"")
    return [v.reader for v in found.ranked], found


_INPUT_WORDS = {"file": "one file", "dir": "a directory", "files": "several files"}


def _refusal(source: Source, readers: Sequence[Registered]) -> str:
    given = _INPUT_WORDS[source.input]
    if source.input == "files":
        given = f"{len(source.paths)} files"
    return "; ".join(f"{source.display_name}: {r.name} reads "
                     f"{' or '.join(_INPUT_WORDS[i] for i in r.spec.inputs)}, not {given}"
                     for r in readers)


def _unknown_message(found: Identification, registry: Registry, kind: str = "reader",
                     others: Sequence[Registered] = ()) -> str:
    what = "light-curve reader" if kind == "lightcurve-reader" else "reader"
    lines = [f"{found.source.display_name}: no {what} recognised this source. Asked:"]
    for v in found.verdicts:
        reason = v.error or "no match"
        lines.append(f"  {v.reader.name:<14} {str(v.reader.provider):<20} "
                     f"{', '.join(v.reader.spec.patterns) or '-':<24} {reason}")
    if others:
        lines.append(f"Not asked, since they do not read {_INPUT_WORDS[found.source.input]}: "
                     + ", ".join(r.name for r in others))
    manual = [r.name for r in registry.implementations(kind) if not r.spec.auto_identify]
    if manual:
        lines.append("Readers used only when chosen by name (--reader): " + ", ".join(manual))
    return "\n".join(lines)
