"""Configuration: TOML, validated as a whole before any data is read.

Precedence: built-in defaults < ``occcore.toml`` in the working directory, or the
file given with ``--config`` < each ``--set key=value``. Unknown keys and unknown
implementation names are errors with a "did you mean"; each implementation's own
options (``[<step>.options.<name>]``) are validated into its ``options`` attrs class.
"""
from __future__ import annotations

import copy
import json
import logging
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from occcore.errors import ConfigError, OccCoreError
from occcore.validate import FREE, Key, check_table, list_of, make_options, read_toml

log = logging.getLogger("occcore")

DEFAULT_FILE = "occcore.toml"

def _positive(value):
    return None if value > 0 else "must be > 0"


def _fraction(value):
    return None if 0 <= value <= 1 else "must be between 0 and 1"


_names = list_of(str, "implementation names")

# The keys of each step besides its chain and its implementations' options.
STEP_KEYS: dict[str, dict[str, Any]] = {
    "read": {"prefer": FREE,
             "archive_limit_gb": Key(20.0, (int, float), "largest expanded size of an archive",
                                     _positive)},
    "align": {
        "min_aligned_fraction": Key(0.8, (int, float), "acceptance gate: frames aligned", _fraction),
        "reference_frame": Key(-1, (int,), "reference frame index; -1 picks the best seeing"),
        "reference_search_frames": Key(25, (int,), "frames searched for the best seeing",
                                       _positive),
        "snap_px": Key(3.0, (int, float), "move given positions to the star centroid within this"),
    },
    "photometry": {
        "aperture_px": Key(0.0, (int, float), "aperture radius; 0 = 1.6 x FWHM of the reference"),
        "annulus_px": Key([], (list,), "[inner, outer] sky annulus radii; [] = from the aperture",
                          list_of(float, "two radii")),
        "sky": Key("median", (str,), "sky estimator: median or clipped-mean",
                   lambda v: None if v in ("median", "clipped-mean") else
                   "must be 'median' or 'clipped-mean'"),
        "gain_e_per_adu": Key(0.0, (int, float), "detector gain; 0 = from the file, else 1"),
        "read_noise_e": Key(0.0, (int, float), "read noise in electrons"),
    },
    "report": {
        "observer": Key([], (list,), "observer-profile TOML files, merged (later wins)",
                        list_of(str, "file paths")),
    },
}


def _schema() -> dict[str, Any]:
    """The configuration schema: ``[plugins]``, ``[run]``, and for every kind of
    :data:`occcore.plugin.KINDS` its section with ``chain``, ``options`` and the step's
    own keys."""
    from occcore.plugin import KINDS
    schema: dict[str, Any] = {
        "plugins": {
            "autoload": Key(True, (bool,), "load third-party plugins from entry points"),
            "disable": Key([], (list,), "entry-point or distribution names never loaded",
                           _names),
            "extra_modules": Key([], (list,), "importable modules registered as plugins",
                                 _names),
        },
        "run": {
            "strict": Key(False, (bool,), "stop at the first failure of any step"),
            "progress": Key(True, (bool,), "show a progress bar on stderr for long runs"),
            "seed": Key(0, (int,), "seed of the random generator given to plugins"),
        },
        "calibrate": {
            "enabled": Key(False, (bool,), "apply master bias/dark/flat to FITS lights"),
            "bias": Key("", (str,), "path or glob of extra bias frames"),
            "dark": Key("", (str,), "path or glob of extra dark frames"),
            "flat": Key("", (str,), "path or glob of extra flat frames"),
        },
    }
    for entry in KINDS:
        what = "every one runs" if entry.runs == "all" else "tried in order"
        schema[entry.section] = {
            "chain": Key(list(entry.default_chain), (list, str),
                         f"{entry.name} implementations, {what} ('auto': identify)", _chain),
            "options": FREE,
            **STEP_KEYS.get(entry.section, {}),
        }
    return schema


def _chain(value):
    return None if isinstance(value, str) else _names(value)


SCHEMA = _schema()

# Keys of earlier versions: (old dotted key, new dotted key). They keep working for now,
# with a message saying where the setting lives today.
DEPRECATED = {
    "read.reader": "read.chain",
    "report.writers": "report.chain",
}


def _deprecations(tree: dict[str, Any], where: str) -> dict[str, Any]:
    """Move deprecated keys of ``tree`` to where they live now, with a warning."""
    tree = copy.deepcopy(tree)
    for old, new in DEPRECATED.items():
        section, key = old.split(".")
        table = tree.get(section)
        if not isinstance(table, dict) or key not in table:
            continue
        value = table.pop(key)
        if not table and section not in SCHEMA:
            tree.pop(section)
        log.warning("%s: '%s' is deprecated; use '%s' (it is applied there)", where, old, new)
        node = tree
        *parents, last = new.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: '{new}' must be a table to take '{old}'")
        node[last] = value
    return tree


def defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, keys in SCHEMA.items():
        table: dict[str, Any] = {}
        for name, key in keys.items():
            table[name] = {} if key is FREE else copy.deepcopy(key.default)
        out[section] = table
    return out


@attrs.frozen
class Config:
    """The resolved configuration (a nested dict) and where it came from."""

    data: dict[str, Any]
    files: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def section(self, name: str) -> dict[str, Any]:
        return self.data.get(name, {})

    def chain(self, section: str) -> list[str]:
        """The implementation names of a step's chain (``[section] chain``)."""
        value = self.data[section]["chain"]
        return [value] if isinstance(value, str) else list(value)

    def options_table(self, step: str, name: str) -> dict[str, Any]:
        return dict(self.data[step].get("options", {}).get(name, {}))

    def to_toml(self) -> str:
        return dumps_toml(self.data)


def _merge(base: dict, update: Mapping, where: str) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, where)
        else:
            base[key] = copy.deepcopy(value)


def parse_set(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a", "b", "c"], value); the value is read as TOML, else as text."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def load_config(path: str | Path | None = None, sets: Iterable[str] = (),
                cwd: Path | None = None) -> Config:
    """Resolve defaults < file < ``--set`` and check every key (not implementation names)."""
    data = defaults()
    files: list[str] = []
    if path is None:
        candidate = Path(cwd or Path.cwd()) / DEFAULT_FILE
        path = candidate if candidate.is_file() else None
    if path is not None:
        loaded = _deprecations(read_toml(Path(path)), str(path))
        check_keys(loaded, str(path))
        _merge(data, loaded, str(path))
        files.append(str(path))
    overrides = []
    for item in sets:
        parts, value = parse_set(item)
        patch: dict[str, Any] = value
        for part in reversed(parts):
            patch = {part: patch}
        patch = _deprecations(patch, f"--set {item}")
        check_keys(patch, f"--set {item}")
        _merge(data, patch, f"--set {item}")
        overrides.append(item)
    return Config(data=data, files=tuple(files), overrides=tuple(overrides))


def check_keys(tree: Mapping[str, Any], where: str) -> None:
    """Unknown sections/keys and wrong types -> ConfigError naming the key and the origin."""
    check_table(tree, SCHEMA, where)


def validate(config: Config, registry) -> None:
    """Check implementation names and their options against the registry.

    Raises UnknownImplementation / AmbiguousImplementation / ConfigError before any
    data is read.
    """
    from occcore.plugin import KINDS
    where = ", ".join(config.files + config.overrides) or "defaults"
    for entry in KINDS:
        step, kind, key = entry.section, entry.name, "chain"
        names = [n for n in config.chain(step) if n != "auto"]
        if step == "read":
            for pattern, preferred in config.data["read"]["prefer"].items():
                if isinstance(preferred, str):
                    preferred = [preferred]
                if not isinstance(preferred, list) or _names(preferred):
                    raise ConfigError(f"{where}: read.prefer.{pattern!r} must list reader names")
                names += preferred
        for name in names:
            try:
                registry.get(kind, name)
            except OccCoreError as exc:
                raise type(exc)(f"{where}: [{step}] {key}: {exc}") from None
        for impl_name, table in config.data[step].get("options", {}).items():
            try:
                registered = registry.get(kind, impl_name)
            except OccCoreError as exc:
                raise type(exc)(f"{where}: [{step}.options.{impl_name}]: {exc}") from None
            make_options(registered.spec, table, f"{where}: [{step}.options.{impl_name}]")


def dumps_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for the resolved configuration (tables, lists, scalars)."""
    lines: list[str] = []

    def scalar(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        if isinstance(value, Mapping):
            return "{" + ", ".join(f"{json.dumps(k)} = {scalar(v)}" for k, v in value.items()) + "}"
        raise TypeError(f"cannot write {type(value).__name__} to TOML")

    def table(prefix: str, node: Mapping[str, Any]):
        plain = {k: v for k, v in node.items() if not isinstance(v, Mapping)}
        nested = {k: v for k, v in node.items() if isinstance(v, Mapping)}
        if prefix and (plain or not nested):
            lines.append(f"[{prefix}]")
        for k, v in plain.items():
            lines.append(f"{_toml_key(k)} = {scalar(v)}")
        if prefix and (plain or not nested):
            lines.append("")
        for k, v in nested.items():
            table(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v)

    table("", data)
    return "\n".join(lines).rstrip() + "\n"


def _toml_key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "").isalnum()
    return key if bare else json.dumps(key)
