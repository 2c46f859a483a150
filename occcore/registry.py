"""Plugin loading and the registry of implementations.

This is the only module that talks to pluggy. Built-in plugins (the modules listed in
``occplugins.BUILTIN_PLUGINS``) and third-party plugins (entry-point group
``occcore``) go through the same ``_register`` path and the same record validation.

A third-party plugin that fails to import, registers an unknown hook, or yields a bad
record becomes a warning and a ``broken`` row; occcore goes on without it. Two
plugins may register the same name: nothing breaks until that name is used, and then
the error names both providers and their qualified spellings (``plugin/name``).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import os
from collections.abc import Iterable, Mapping

import attrs
import pluggy

from occcore import hookspecs
from occcore.errors import (AmbiguousImplementation, OccCoreError, UnknownImplementation,
                            did_you_mean)
from occcore.plugin import API_VERSION, SPEC_TYPES, Event, ImplementationSpec

log = logging.getLogger("occcore")

ENTRY_POINT_GROUP = "occcore"
BUILTIN_PACKAGE = "occplugins"
_ALL = {"1", "all", "*", "true", "yes"}


@attrs.frozen
class Provider:
    """Who provides a plugin: built in, a distribution (name, version), or a loose module."""

    plugin: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False

    def __str__(self) -> str:
        if self.builtin:
            return "builtin"
        if self.distribution:
            return f"{self.distribution} {self.version or ''}".strip()
        return f"module {self.plugin}"


@attrs.frozen
class Registered:
    """A registration record together with the provider that yielded it."""

    spec: ImplementationSpec
    provider: Provider

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def qualified_name(self) -> str:
        return f"{self.provider.plugin}/{self.spec.name}"

    def missing_modules(self) -> list[str]:
        """The required modules that cannot be imported here."""
        missing = []
        for module in self.spec.requires:
            try:
                if importlib.util.find_spec(module) is None:
                    missing.append(module)
            except (ImportError, ValueError):
                missing.append(module)
        return missing


@attrs.frozen
class PluginFailure:
    """A plugin (or one of its hooks) that could not be used, and why."""

    plugin: str
    provider: Provider
    reason: str
    kind: str = "plugin"


@attrs.frozen
class PluginRow:
    """One line of ``occcore plugins``."""

    kind: str
    name: str
    provider: str
    status: str           # active | unavailable | broken | ambiguous | duplicate
    reason: str = ""

    def to_dict(self) -> dict:
        return attrs.asdict(self)


class Registry:
    """A snapshot of every registered implementation, with typed accessors."""

    def __init__(self, entries: Mapping[str, list[Registered]], failures: list[PluginFailure],
                 observers: list[pluggy.HookImpl]):
        self._entries = {kind: sorted(entries.get(kind, []), key=lambda r: r.qualified_name)
                         for kind in SPEC_TYPES}
        self.failures = list(failures)
        self._observers = list(observers)

    # -- lookups ---------------------------------------------------------------------------
    def implementations(self, kind: str) -> list[Registered]:
        """Every registered implementation of ``kind``, sorted by qualified name."""
        return list(self._entries[kind])

    def names(self, kind: str) -> list[str]:
        return sorted({r.name for r in self._entries[kind]})

    def get(self, kind: str, name: str) -> Registered:
        """The implementation called ``name`` (or ``plugin/name``).

        Raises UnknownImplementation (with a did-you-mean) or AmbiguousImplementation
        (naming every provider) when the name does not pick exactly one.
        """
        wanted = name.strip().lower()
        if "/" in wanted:
            found = [r for r in self._entries[kind] if r.qualified_name == wanted]
        else:
            found = [r for r in self._entries[kind] if r.name == wanted]
        if len(found) == 1:
            return found[0]
        if not found:
            known = self.names(kind) + [r.qualified_name for r in self._entries[kind]]
            listing = ", ".join(self.names(kind)) or "none"
            raise UnknownImplementation(
                f"unknown {kind} {name!r}{did_you_mean(wanted, known)}; registered: {listing}")
        providers = "; ".join(f"{r.qualified_name!r} from {r.provider}" for r in found)
        raise AmbiguousImplementation(
            f"{kind} name {name!r} is registered by {len(found)} plugins: {providers}. "
            "Use the qualified name (plugin/name) in the configuration.")

    # -- reporting -----------------------------------------------------------------------------
    def rows(self) -> list[PluginRow]:
        """Every implementation and every broken plugin, for ``occcore plugins``."""
        rows = []
        for kind, entries in self._entries.items():
            counts: dict[str, int] = {}
            for r in entries:
                counts[r.name] = counts.get(r.name, 0) + 1
            for r in entries:
                missing = r.missing_modules()
                if missing:
                    status, reason = "unavailable", "module(s) not importable: " + ", ".join(missing)
                elif counts[r.name] > 1:
                    status, reason = "ambiguous", f"name also registered elsewhere; use {r.qualified_name!r}"
                else:
                    status, reason = "active", ""
                rows.append(PluginRow(kind=kind, name=r.name if counts[r.name] == 1 else r.qualified_name,
                                      provider=str(r.provider), status=status, reason=reason))
        for f in self.failures:
            rows.append(PluginRow(kind="plugin" if f.kind == "duplicate" else f.kind,
                                  name=f.plugin, provider=str(f.provider),
                                  status="duplicate" if f.kind == "duplicate" else "broken",
                                  reason=f.reason))
        return rows

    # -- events --------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Send ``event`` to every observer; an observer's exception is logged, not raised."""
        for impl in self._observers:
            try:
                impl.function(**({"event": event} if "event" in impl.argnames else {}))
            except Exception as exc:   # an observer must never stop a run
                log.warning("event observer %s failed: %s: %s", impl.plugin_name,
                            type(exc).__name__, exc)


# -- loading -----------------------------------------------------------------------------------


def _builtin_modules() -> tuple[str, ...]:
    package = importlib.import_module(BUILTIN_PACKAGE)
    return tuple(package.BUILTIN_PLUGINS)


def _env_list(value: str | None) -> list[str]:
    return [v.strip().lower() for v in (value or "").split(",") if v.strip()]


class _Loader:
    def __init__(self):
        self.pm = pluggy.PluginManager("occcore")
        self.pm.add_hookspecs(hookspecs)
        self.providers: dict[str, Provider] = {}
        self.failures: list[PluginFailure] = []
        self._spec_names = {name for name in dir(hookspecs) if name.startswith("occcore_")}

    def register(self, obj, provider: Provider) -> bool:
        """Register one plugin object; any problem makes it a failure, not a crash."""
        name = provider.plugin
        if self.pm.has_plugin(name) or name in self.providers:
            first = self.providers.get(name)
            if first is not None and (first.distribution, first.builtin) == \
                    (provider.distribution, provider.builtin):
                return False   # the same distribution seen twice on sys.path
            self._fail(name, provider, f"entry-point name {name!r} is already taken by "
                       f"{first}; this one was not loaded (rename one of them)",
                       kind="duplicate")
            return False
        problem = self._check_impls(obj)
        if problem is None:
            try:
                self.pm.register(obj, name=name)
            except Exception as exc:   # pluggy's validation: wrong hook arguments etc.
                problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            if provider.builtin:
                raise OccCoreError(f"built-in plugin {name} is broken: {problem}")
            self._fail(name, provider, problem)
            return False
        self.providers[name] = provider
        return True

    def _check_impls(self, obj) -> str | None:
        for attr in dir(obj):
            if not attr.startswith("occcore_"):
                continue
            function = getattr(obj, attr)
            if not hasattr(function, "occcore_impl"):
                continue
            if attr not in self._spec_names:
                close = did_you_mean(attr, self._spec_names)
                return f"implements unknown hook {attr!r}{close}"
            defaults = [p.name for p in inspect.signature(function).parameters.values()
                        if p.default is not inspect.Parameter.empty]
            if defaults:
                return (f"hook {attr} gives parameter defaults ({', '.join(defaults)}), "
                        "which pluggy does not pass")
        return None

    def _fail(self, plugin: str, provider: Provider, reason: str, kind: str = "plugin"):
        what = "was not loaded" if kind == "duplicate" else "is broken and was skipped"
        log.warning("occcore plugin %s (%s) %s: %s", plugin, provider, what, reason)
        self.failures.append(PluginFailure(plugin=plugin, provider=provider, reason=reason,
                                           kind=kind))

    def load_builtins(self):
        for module_name in _builtin_modules():
            module = importlib.import_module(module_name)
            self.register(module, Provider(plugin=module_name.removeprefix(f"{BUILTIN_PACKAGE}."),
                                          builtin=True))

    def load_entry_points(self, allow: list[str] | None, deny: list[str]):
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = dist.name if dist is not None else None
            version = dist.version if dist is not None else None
            names = {ep.name.lower(), (dist_name or "").lower()}
            if allow is not None and not names & set(allow):
                continue
            if names & set(deny):
                continue
            provider = Provider(plugin=ep.name, distribution=dist_name, version=version)
            try:
                obj = ep.load()
            except Exception as exc:   # a broken plugin must not stop occcore
                self._fail(ep.name, provider, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.register(obj, provider)

    def load_modules(self, modules: Iterable[str]):
        for module_name in modules:
            provider = Provider(plugin=module_name)
            try:
                obj = importlib.import_module(module_name)
            except Exception as exc:
                self._fail(module_name, provider, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.register(obj, provider)

    def collect(self) -> Registry:
        entries: dict[str, list[Registered]] = {kind: [] for kind in SPEC_TYPES}
        for kind, hook_name in hookspecs.registration_hooks().items():
            record_type = SPEC_TYPES[kind]
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                provider = self.providers[impl.plugin_name]
                try:
                    records = self._records(impl, record_type)
                except Exception as exc:
                    reason = f"{hook_name}: {type(exc).__name__}: {exc}"
                    if provider.builtin:
                        raise OccCoreError(f"built-in plugin {impl.plugin_name}: {reason}") from exc
                    self._fail(impl.plugin_name, provider, reason, kind=kind)
                    continue
                entries[kind].extend(Registered(spec=r, provider=provider) for r in records)
        observers = list(self.pm.hook.occcore_on_event.get_hookimpls())
        return Registry(entries, self.failures, observers)

    @staticmethod
    def _records(impl: pluggy.HookImpl, record_type: type) -> list[ImplementationSpec]:
        result = impl.function()
        if result is None:
            raise TypeError("returned None instead of yielding records")
        records = list(result)
        for record in records:
            if not isinstance(record, record_type):
                raise TypeError(f"yielded {type(record).__name__}, expected {record_type.__name__}")
            if record.api > API_VERSION:
                raise TypeError(f"{record.kind} {record.name!r} needs occcore plugin API "
                                f"{record.api}; this occcore provides {API_VERSION}")
        return records


def load_registry(*, no_plugins: bool = False, extra_modules: Iterable[str] = (),
                  disable: Iterable[str] = (), env: Mapping[str, str] | None = None,
                  extra_plugins: Iterable[tuple[str, object]] = ()) -> Registry:
    """Load built-ins, then third-party entry points (unless switched off), then modules.

    Switches: ``no_plugins`` (``--no-plugins``), ``OCCCORE_DISABLE_PLUGINS`` (``1``/``all``
    for every third-party plugin, or a comma list of entry-point or distribution names),
    ``OCCCORE_LOAD_PLUGINS`` (an allow-list; empty means none), ``disable`` (from
    ``[plugins] disable`` in the config). ``extra_plugins`` are ``(name, object)`` pairs
    registered like a loose module (tests, lab scripts).
    """
    env = os.environ if env is None else env
    loader = _Loader()
    loader.load_builtins()
    deny = _env_list(env.get("OCCCORE_DISABLE_PLUGINS")) + [d.lower() for d in disable]
    all_off = no_plugins or bool(set(deny) & _ALL)
    allow = _env_list(env["OCCCORE_LOAD_PLUGINS"]) if "OCCCORE_LOAD_PLUGINS" in env else None
    if not all_off and allow != []:
        loader.load_entry_points(allow, deny)
    loader.load_modules(extra_modules)
    for name, obj in extra_plugins:
        loader.register(obj, Provider(plugin=name))
    return loader.collect()
