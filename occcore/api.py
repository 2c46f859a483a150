"""The Python API: everything the CLI does is one call here.

>>> from occcore.api import Session
>>> session = Session()                       # defaults < occcore.toml < sets
>>> with session.open("frames/") as series:   # identification + reader chain
...     print(len(series), series.times.utc(0))
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from occcore import __version__
from occcore.chain import ChainResult, run_chain
from occcore.config import Config, load_config, validate
from occcore.validate import make_options
from occcore.identify import Identification, choose_readers, identify, resolve_source
from occcore.model import FrameSeries, LightCurve, StepProvenance, iso_utc
from occcore.output import jsonable
from occcore.results import check_lightcurve, check_series, check_time_stamps
from occcore.plugin import Event, StepContext
from occcore.registry import Registry, load_registry


class Session:
    """A configuration and a plugin registry, validated together before any data is read."""

    def __init__(self, config: Config | None = None, *, config_path: str | Path | None = None,
                 sets: Iterable[str] = (), no_plugins: bool = False, strict: bool | None = None,
                 registry: Registry | None = None, observers: Sequence = ()):
        self.config = config if config is not None else load_config(config_path, sets)
        plugins = self.config.section("plugins")
        self.registry = registry if registry is not None else load_registry(
            no_plugins=no_plugins or not plugins["autoload"],
            extra_modules=plugins["extra_modules"], disable=plugins["disable"])
        validate(self.config, self.registry)
        self.strict = self.config.get("run.strict") if strict is None else strict
        self._observers = list(observers)
        self._workdir: tempfile.TemporaryDirectory | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        for observer in self._observers:
            observer(event)
        self.registry.emit(event)

    @property
    def workdir(self) -> Path:
        """A private working directory for this session (archives are extracted here)."""
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="occcore-")
        return Path(self._workdir.name)

    def close(self) -> None:
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def context(self, step: str) -> StepContext:
        return StepContext(step=step, rng=np.random.default_rng(self.config.get("run.seed")),
                           workdir=self.workdir, strict=self.strict, config=self.config.data,
                           emit=self.emit, open_source=self._open_member)

    def options(self, step: str, registered, overrides: dict[str, Any] | None = None,
                extra: dict[str, Any] | None = None, where: str = "") -> Any:
        """An implementation's options, in one order of precedence: its defaults <
        ``[step.options.name]`` of the configuration < ``extra`` (a table from an input
        file, e.g. a chords file's [fit]) < ``overrides`` (command-line values; only the
        ones its options class has)."""
        table = self.config.options_table(step, registered.name)
        table.update(extra or {})
        if overrides and registered.spec.options is not None:
            fields = {f.name for f in attrs.fields(registered.spec.options)}
            table.update({k: v for k, v in overrides.items() if k in fields and v is not None})
        return make_options(registered.spec, table,
                            where or f"[{step}.options.{registered.name}]")

    def run_step(self, step: str, candidates, call, *, gate=None, source: str = "",
                 overrides: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                 where: str = "") -> ChainResult:
        """Run ``call(registered, options)`` over ``candidates`` as a fallback chain."""
        pairs = [(c, self.options(step, c, overrides, extra, where)) for c in candidates]
        return run_chain(step, pairs, call, gate=gate, strict=self.strict, source=source,
                         emit=self.emit)

    # -- reading -------------------------------------------------------------------------------
    def identify(self, source, kind: str = "reader") -> Identification:
        return identify(resolve_source(source), self.registry, kind)

    def open_with_provenance(self, source, reader: str | Sequence[str] | None = None
                             ) -> tuple[FrameSeries, StepProvenance]:
        """Identify ``source`` and open it through the reader chain."""
        src = resolve_source(source)
        chosen = ([reader] if isinstance(reader, str) else list(reader)) if reader else \
            self.config.chain("read")
        candidates, _ = choose_readers(src, self.registry, chosen,
                                       self.config.get("read.prefer"))
        context = self.context("read")

        def call(registered, options):
            return registered.spec.open(src, options=options, context=context)

        result = self.run_step("read", candidates, call, gate=check_series,
                               source=src.display_name)
        return result.value, result.provenance("read")

    def open(self, source, reader: str | Sequence[str] | None = None) -> FrameSeries:
        return self.open_with_provenance(source, reader)[0]

    def _open_member(self, path: Path) -> FrameSeries:
        return self.open(path)

    def stamp(self, series: FrameSeries, chain: Sequence[str] | None = None
              ) -> tuple[FrameSeries, StepProvenance, dict[str, Any]]:
        """Run the ``[time] chain`` on ``series``: the first time source that does not
        decline gives every frame its stamp. Returns the series with those times, the
        step's provenance and the time source's report (OCR statistics, dropped and
        duplicated frames)."""
        names = list(chain) if chain is not None else self.config.chain("time")
        candidates = [self.registry.get("time-source", n) for n in names]
        context = self.context("time")
        result = self.run_step(
            "time", candidates,
            lambda reg, opt: reg.spec.stamp(series, options=opt, context=context),
            gate=lambda stamps: check_time_stamps(stamps, series.n_frames),
            source=series.source_name)
        stamps = result.value
        report = {"time_source": result.used.name, **dict(stamps.report)}
        if stamps.times is series.times and not np.any(stamps.flags):
            return series, result.provenance("time"), report
        return (series.with_times(stamps.times, flags=stamps.flags,
                                  time_stamped_by=result.used.name),
                result.provenance("time"), report)

    def info(self, source, reader: str | Sequence[str] | None = None) -> dict[str, Any]:
        """What ``occcore info`` prints: size, depth, times (after the time chain) and
        metadata of a source."""
        series, provenance = self.open_with_provenance(source, reader)
        with series:
            stamped, time_provenance, report = self.stamp(series)
            info = series_info(stamped, provenance)
            info["time_chain"] = {"used": time_provenance.implementation,
                                  "attempts": [a.to_dict() for a in time_provenance.attempts],
                                  "report": jsonable(report)}
            return info

    def read_lightcurve(self, source, reader: str | Sequence[str] | None = None,
                        overrides: dict[str, Any] | None = None
                        ) -> tuple[LightCurve, StepProvenance]:
        """Identify a light-curve file and read it through the ``[lightcurve] chain``;
        ``overrides`` (column, date, exposure_s, tref ...) fill the reader's options
        where it has them."""
        src = resolve_source(source)
        chosen = ([reader] if isinstance(reader, str) else list(reader)) if reader else \
            self.config.chain("lightcurve")
        candidates, _ = choose_readers(src, self.registry, chosen, kind="lightcurve-reader")
        context = self.context("lightcurve")
        result = self.run_step(
            "lightcurve", candidates,
            lambda reg, opt: reg.spec.read(src, options=opt, context=context),
            gate=check_lightcurve, source=src.display_name, overrides=overrides)
        return result.value, result.provenance("lightcurve")

    # -- the steps (each is one call; the CLI is a thin layer over these) ----------------------
    def reduce(self, source, outdir, **kwargs):
        """Frames in, light curve out: see :func:`occcore.steps.reduce.reduce`."""
        from occcore.steps.reduce import reduce
        return reduce(self, source, outdir, **kwargs)

    def fit(self, lightcurve, **kwargs):
        """Time a light curve: see :func:`occcore.steps.timing.fit_lightcurve`."""
        from occcore.steps.timing import fit_lightcurve
        return fit_lightcurve(self, lightcurve, **kwargs)

    def limb(self, chords, **kwargs):
        """Fit the limb to a chords file: see :func:`occcore.steps.limb.fit_limb`."""
        from occcore.steps.limb import fit_limb
        return fit_limb(self, chords, **kwargs)

    def report(self, run_dir, formats: Sequence[str] | None = None, outdir=None,
               observer: Sequence[str | Path] = ()):
        """Write reports from a run directory: see :mod:`occcore.steps.report`."""
        from occcore.steps.report import load_run, raise_failures, write_reports
        names = list(formats) if formats else self.config.chain("report")
        profiles = [Path(p).expanduser() for p in (observer or
                                                    self.config.get("report.observer"))]
        run = load_run(run_dir, profiles, session=self)
        outcome = write_reports(self, run, names, outdir or run_dir)
        raise_failures(outcome)
        return outcome

    def demo(self, outdir, n_frames: int = 1500):
        """The built-in synthetic observation: see :mod:`occcore.steps.demo`."""
        from occcore.steps.demo import run_demo
        return run_demo(self, outdir, n_frames=n_frames)


def read_lightcurve(path, *, reader: str | None = None, session: Session | None = None,
                    **options) -> LightCurve:
    """Read a light-curve file with occcore's readers (identified by content); ``options``
    are reader options such as ``column``, ``date``, ``tref``, ``exposure_s``."""
    if session is not None:
        return session.read_lightcurve(path, reader, options)[0]
    with Session(config=load_config(cwd=Path("/nonexistent")), no_plugins=True) as own:
        return own.read_lightcurve(path, reader, options)[0]


def series_info(series: FrameSeries, provenance: StepProvenance | None = None) -> dict[str, Any]:
    info = {
        "source": series.source_name,
        "format": series.format,
        "reader": series.reader or (provenance.implementation if provenance else ""),
        "n_frames": series.n_frames,
        "width": series.width,
        "height": series.height,
        "bit_depth": series.bit_depth,
        "dtype": str(series.dtype),
        "start_utc": iso_utc(series.start_utc()),
        "end_utc": iso_utc(series.end_utc()),
        "exposure_s": series.exposure_s,
        "time_instant": series.times.instant,
        "time_source": series.times.source,
        "time_uncertainty_s": series.times.uncertainty_s,
        "time_note": series.times.note,
        "flagged_frames": int(np.count_nonzero(series.frame_flags)),
        "metadata": jsonable(dict(series.meta)),
    }
    if provenance is not None:
        info["provenance"] = provenance.to_dict()
    return info


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2)


def versions() -> dict[str, str]:
    """Versions of occcore and the libraries whose behaviour results depend on."""
    import importlib.metadata as md
    out = {"occcore": __version__}
    for name in ("numpy", "scipy", "astropy", "pluggy", "attrs", "sep", "photutils",
                 "astroalign", "av"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


