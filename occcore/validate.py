"""One way to check every TOML input: the configuration, observer profiles, chords files
and plugin options.

A schema is a dict of key -> :class:`Key` (a value with accepted types and an optional
check), :data:`FREE` (a table whose keys are not fixed) or a nested schema dict (a
table with fixed keys). :func:`check_table` walks a parsed TOML table against it and
raises one error style, naming the file and the dotted key, with a "did you mean" for
unknown keys; :func:`read_toml` reads the file with the same style (missing file,
invalid TOML, bytes that are not UTF-8).
"""
from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from occcore.errors import ConfigError, did_you_mean


@attrs.frozen
class Key:
    """One key: its default, accepted types, what it is, and an optional value check
    ``check(value) -> message or None``."""

    default: Any
    types: tuple[type, ...]
    doc: str = ""
    check: Any = None


FREE = "free"
"""A table whose keys are not fixed (per-implementation options, patterns)."""

TYPE_NAMES = {bool: "bool (true/false)", int: "int", float: "float", str: "str (a string)",
              list: "list", dict: "table"}


def type_text(types: tuple[type, ...]) -> str:
    return " or ".join(TYPE_NAMES.get(t, t.__name__) for t in types)


def value_text(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def accepts(value: Any, types: tuple[type, ...]) -> bool:
    """TOML-typed check: a bool is not a number; an int is accepted where a float is."""
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    if isinstance(value, float) and not math.isfinite(value) and float in types:
        return False            # nan/inf never make a sensible setting
    return isinstance(value, types)


def check_table(table: Any, schema: Mapping[str, Any], where: str, prefix: str = "",
                error: type = ConfigError) -> None:
    """Check ``table`` against ``schema``; raise ``error`` naming ``where`` and the key."""
    if not isinstance(table, Mapping):
        raise error(f"{where}: {f'[{prefix}]' if prefix else 'the file'} must be a table, "
                    f"not {value_text(table)}")
    for name, value in table.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name not in schema:
            known = ", ".join(sorted(schema)) or "none"
            raise error(f"{where}: unknown key '{dotted}'{did_you_mean(name, schema)}; known "
                        f"{'in [' + prefix + ']' if prefix else 'sections'}: {known}")
        rule = schema[name]
        if rule is FREE:
            if not isinstance(value, Mapping):
                raise error(f"{where}: '{dotted}' must be a table, not {value_text(value)}")
            continue
        if isinstance(rule, Mapping):
            check_table(value, rule, where, dotted, error)
            continue
        if not accepts(value, rule.types):
            raise error(f"{where}: '{dotted}' must be {type_text(rule.types)}, not "
                        f"{value_text(value)}")
        if rule.check is not None:
            problem = rule.check(value)
            if problem:
                raise error(f"{where}: '{dotted}' {problem} (got {value_text(value)})")


def read_toml(path: Path, what: str = "config file", error: type = ConfigError) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable or malformed file raises ``error``
    naming it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise error(f"{what} {path}: line {line}: bytes that are not UTF-8 "
                    "(TOML files are UTF-8 text)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{what} {path}: tables or arrays nested too deeply") from None


def list_of(kind: type, what: str):
    """A check: every item of a list is ``kind``."""
    def check(value):
        if not all(accepts(v, (kind,)) for v in value):
            return f"must be a list of {what}"
        return None
    return check


def make_options(spec, table: Mapping[str, Any] | None, where: str):
    """An implementation's options object from a table, checked like every other table:
    unknown option (with a did-you-mean), a value of the wrong type (judged by the
    field's default), or the options class's own validators."""
    table = dict(table or {})
    if spec.options is None:
        if table:
            raise ConfigError(f"{where}: {spec.name!r} takes no options (got {sorted(table)})")
        return None
    fields = {f.alias if f.alias else f.name: f for f in attrs.fields(spec.options)}
    for name, value in table.items():
        if name not in fields:
            raise ConfigError(f"{where}: unknown option {name!r} for {spec.name!r}"
                              f"{did_you_mean(name, fields)}; known: {', '.join(sorted(fields))}")
        default = fields[name].default
        if isinstance(default, (bool, int, float, str)) and value is not None:
            wanted = (float,) if isinstance(default, float) else (type(default),)
            if not accepts(value, wanted):
                raise ConfigError(f"{where}: option {name!r} of {spec.name!r} must be "
                                  f"{type_text(wanted)}, not {value_text(value)}")
    try:
        return spec.options(**table)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad option for {spec.name!r}: {exc}") from None
