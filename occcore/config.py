"""Configuration: TOML, validated as a whole before any data is read.

Precedence: built-in defaults < ``occcore.toml`` in the working directory, or the
file given with ``--config`` < each ``--set key=value``. Unknown keys and unknown
implementation names are errors with a "did you mean"; each implementation's own
options (``[<step>.options.<name>]``) are validated into its ``options`` attrs class.
"""
from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from occcore.errors import ConfigError, OccCoreError, did_you_mean

DEFAULT_FILE = "occcore.toml"

# Which config section chooses implementations of which kind, and through which key.
STEP_KINDS = {
    "read": ("reader", "reader"),
    "align": ("aligner", "chain"),
    "photometry": ("photometry", "chain"),
    "timing": ("timing-fitter", "chain"),
    "limb": ("limb-fitter", "chain"),
    "report": ("reporter", "writers"),
}


@attrs.frozen
class Key:
    """One configuration key: its default, accepted types and an optional value check."""

    default: Any
    types: tuple[type, ...]
    doc: str = ""
    check: Any = None     # callable(value) -> error message or None


def _names(value):
    if not all(isinstance(v, str) for v in value):
        return "must be a list of implementation names"
    return None


def _paths(value):
    if not all(isinstance(v, str) for v in value):
        return "must be a list of file paths"
    return None


def _positive(value):
    return None if value > 0 else "must be > 0"


def _fraction(value):
    return None if 0 <= value <= 1 else "must be between 0 and 1"


FREE_TABLE = "free"   # a table whose keys are not fixed (options per implementation, patterns)

SCHEMA: dict[str, dict[str, Any]] = {
    "plugins": {
        "autoload": Key(True, (bool,), "load third-party plugins from entry points"),
        "disable": Key([], (list,), "entry-point or distribution names never loaded", _names),
        "extra_modules": Key([], (list,), "importable modules registered as plugins", _names),
    },
    "run": {
        "strict": Key(False, (bool,), "stop at the first failure of any step"),
        "progress": Key(True, (bool,), "show a progress bar on stderr for long runs"),
        "seed": Key(0, (int,), "seed of the random generator given to plugins"),
    },
    "read": {
        "reader": Key("auto", (str, list), "'auto', a reader name, or an ordered list of names"),
        "prefer": FREE_TABLE,
        "options": FREE_TABLE,
        "archive_limit_gb": Key(20.0, (int, float), "largest expanded size of an archive", _positive),
    },
    "calibrate": {
        "enabled": Key(False, (bool,), "apply master bias/dark/flat to FITS lights"),
        "bias": Key("", (str,), "path or glob of extra bias frames"),
        "dark": Key("", (str,), "path or glob of extra dark frames"),
        "flat": Key("", (str,), "path or glob of extra flat frames"),
    },
    "align": {
        "chain": Key(["tracker", "astroalign", "roi", "coords"], (list,),
                     "aligners to try, in order", _names),
        "min_aligned_fraction": Key(0.8, (int, float), "acceptance gate: frames aligned", _fraction),
        "reference_frame": Key(-1, (int,), "reference frame index; -1 picks the best seeing"),
        "reference_search_frames": Key(25, (int,), "frames searched for the best seeing",
                                       _positive),
        "snap_px": Key(3.0, (int, float), "move given positions to the star centroid within this"),
        "options": FREE_TABLE,
    },
    "photometry": {
        "chain": Key(["sep", "photutils"], (list,), "photometry methods to try, in order", _names),
        "aperture_px": Key(0.0, (int, float), "aperture radius; 0 = 1.6 x FWHM of the reference"),
        "annulus_px": Key([], (list,), "[inner, outer] sky annulus radii; [] = from the aperture"),
        "sky": Key("median", (str,), "sky estimator: median or clipped-mean",
                   lambda v: None if v in ("median", "clipped-mean") else
                   "must be 'median' or 'clipped-mean'"),
        "gain_e_per_adu": Key(0.0, (int, float), "detector gain; 0 = EGAIN from the header, else 1"),
        "read_noise_e": Key(0.0, (int, float), "read noise in electrons"),
        "options": FREE_TABLE,
    },
    "timing": {
        "chain": Key(["diffraction", "square"], (list,), "timing fitters to try, in order",
                     _names),
        "options": FREE_TABLE,
    },
    "limb": {
        "chain": Key(["ellipse", "circle"], (list,), "limb fitters to try, in order", _names),
        "options": FREE_TABLE,
    },
    "report": {
        "writers": Key([], (list,), "reporters that all run after reduce, fit and limb "
                       "(and the default of occcore report --format)", _names),
        "observer": Key([], (list,), "observer-profile TOML files, merged (later wins)", _paths),
        "options": FREE_TABLE,
    },
}


def register_defaults(section: str, **keys: Key) -> None:
    """Let a core module add keys to a section (used by pipeline modules at import)."""
    SCHEMA.setdefault(section, {}).update(keys)


def defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, keys in SCHEMA.items():
        table: dict[str, Any] = {}
        for name, key in keys.items():
            table[name] = {} if key is FREE_TABLE else copy.deepcopy(key.default)
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

    def chain(self, step: str) -> list[str]:
        kind, key = STEP_KINDS[step]
        value = self.data[step][key]
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


def read_toml(path: Path, what: str = "config file", error: type = ConfigError) -> dict[str, Any]:
    """A TOML file as a dict; a missing or malformed file raises ``error`` naming it."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc}") from None


def load_config(path: str | Path | None = None, sets: Iterable[str] = (),
                cwd: Path | None = None) -> Config:
    """Resolve defaults < file < ``--set`` and check every key (not implementation names)."""
    data = defaults()
    files: list[str] = []
    if path is None:
        candidate = Path(cwd or Path.cwd()) / DEFAULT_FILE
        path = candidate if candidate.is_file() else None
    if path is not None:
        loaded = read_toml(Path(path))
        check_keys(loaded, str(path))
        _merge(data, loaded, str(path))
        files.append(str(path))
    overrides = []
    for item in sets:
        parts, value = parse_set(item)
        patch: dict[str, Any] = value
        for part in reversed(parts):
            patch = {part: patch}
        check_keys(patch, f"--set {item}")
        _merge(data, patch, f"--set {item}")
        overrides.append(item)
    return Config(data=data, files=tuple(files), overrides=tuple(overrides))


def check_keys(tree: Mapping[str, Any], where: str) -> None:
    """Unknown sections/keys and wrong types -> ConfigError naming the key and the origin."""
    for section, table in tree.items():
        if section not in SCHEMA:
            raise ConfigError(f"{where}: unknown section [{section}]{did_you_mean(section, SCHEMA)}; "
                              f"known: {', '.join(sorted(SCHEMA))}")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: [{section}] must be a table")
        keys = SCHEMA[section]
        for name, value in table.items():
            if name not in keys:
                raise ConfigError(f"{where}: unknown key '{section}.{name}'"
                                  f"{did_you_mean(name, keys)}; known in [{section}]: "
                                  f"{', '.join(sorted(keys))}")
            key = keys[name]
            if key is FREE_TABLE:
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{where}: '{section}.{name}' must be a table")
                continue
            if isinstance(value, bool) and bool not in key.types:
                ok = False
            else:
                ok = isinstance(value, key.types)
            if not ok:
                wanted = " or ".join(t.__name__ for t in key.types)
                raise ConfigError(f"{where}: '{section}.{name}' must be {wanted}, "
                                  f"not {type(value).__name__} ({value!r})")
            if key.check is not None:
                problem = key.check(value)
                if problem:
                    raise ConfigError(f"{where}: '{section}.{name}' {problem} (got {value!r})")


def validate(config: Config, registry) -> None:
    """Check implementation names and their options against the registry.

    Raises UnknownImplementation / AmbiguousImplementation / ConfigError before any
    data is read.
    """
    where = ", ".join(config.files + config.overrides) or "defaults"
    for step, (kind, key) in STEP_KINDS.items():
        names = config.chain(step)
        if step == "read":
            names = [n for n in names if n != "auto"]
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


def make_options(spec, table: Mapping[str, Any] | None, where: str):
    """Build an implementation's options object from a table, with a clear error."""
    table = dict(table or {})
    if spec.options is None:
        if table:
            raise ConfigError(f"{where}: {spec.name!r} takes no options (got {sorted(table)})")
        return None
    fields = {f.alias if f.alias else f.name: f for f in attrs.fields(spec.options)}
    for name in table:
        if name not in fields:
            raise ConfigError(f"{where}: unknown option {name!r} for {spec.name!r}"
                              f"{did_you_mean(name, fields)}; known: {', '.join(sorted(fields))}")
    try:
        return spec.options(**table)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad option for {spec.name!r}: {exc}") from None


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
