"""Reports: read a run directory and an observer profile, run the chosen reporters.

A run directory is what ``reduce``, ``fit`` and ``limb`` write (``lightcurve.ecsv`` +
``run.json``, ``timing.json``, ``limb.json``), in the directory itself or one level
below (``occcore demo`` writes ``OUTDIR/reduction``). Every reporter named runs; one
failing does not stop the others, and the command fails at the end if any did.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from occcore import __version__
from occcore.validate import read_toml
from occcore.errors import InputError, StepFailed, UsageError, did_you_mean
from occcore.model import LimbFit, ReportInput, TimingResult
from occcore.output import OutputSet
from occcore.results import check_written

RUN_FILES = ("lightcurve.ecsv", "timing.json", "limb.json")

# the observer profile: filled once, merged from one or more TOML files (later wins)
PROFILE_KEYS: dict[str, tuple[str, ...]] = {
    "observer": ("name", "second_observer", "more_observers", "email", "address", "phone"),
    "site": ("name", "nearest_city", "state", "country", "country_code", "latitude",
             "longitude", "altitude_m", "datum"),
    "equipment": ("telescope", "aperture_cm", "focal_length_cm", "camera", "video_format",
                  "time_source", "timing_device", "method", "software"),
    "event": ("asteroid", "asteroid_number", "star", "predicted_utc", "outcome"),
    "conditions": ("wind", "temperature_c", "transparency", "stability", "comments"),
}
NUMERIC_KEYS = {("site", "altitude_m"), ("equipment", "aperture_cm"),
                ("equipment", "focal_length_cm"), ("event", "asteroid_number"),
                ("conditions", "wind"), ("conditions", "temperature_c")}


@attrs.frozen
class ReportOutcome:
    files: tuple[Path, ...]
    failures: tuple[tuple[str, str], ...]      # (reporter, reason)


def load_profile(paths: Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """Merge observer-profile TOML files; unknown sections or keys are errors."""
    from occcore.geometry import angle_deg
    from astropy import units as u

    profile: dict[str, dict[str, Any]] = {}
    for path in paths:
        path = Path(path)
        data = read_toml(path, "observer profile", InputError)
        for section, table in data.items():
            if section not in PROFILE_KEYS:
                raise InputError(f"{path}: unknown section [{section}]"
                                 f"{did_you_mean(section, PROFILE_KEYS)}; known: "
                                 f"{', '.join(PROFILE_KEYS)}")
            if not isinstance(table, dict):
                raise InputError(f"{path}: [{section}] must be a table")
            for key, value in table.items():
                if key not in PROFILE_KEYS[section]:
                    raise InputError(f"{path}: [{section}] unknown key {key!r}"
                                     f"{did_you_mean(key, PROFILE_KEYS[section])}")
                if (section, key) in NUMERIC_KEYS and not isinstance(value, (int, float)):
                    raise InputError(f"{path}: [{section}] {key} must be a number, got {value!r}")
                if section == "site" and key in ("latitude", "longitude"):
                    # checked here, where the file that gave it is known
                    try:
                        degrees = angle_deg(value, u.deg)
                    except InputError as exc:
                        raise InputError(f"{path}: [site] {key}: {exc}") from None
                    if key == "latitude" and abs(degrees) > 90:
                        raise InputError(f"{path}: [site] latitude {value!r} is beyond +-90")
                    profile.setdefault(section, {})[f"{key}_deg"] = degrees
                profile.setdefault(section, {})[key] = value
    return profile


def find_run_files(run_dir: Path) -> dict[str, Path]:
    """The newest of each run file in ``run_dir`` or one level below."""
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a directory")
    found: dict[str, Path] = {}
    for name in RUN_FILES:
        candidates = [run_dir / name] + sorted(run_dir.glob(f"*/{name}"))
        candidates = [c for c in candidates if c.is_file()]
        if candidates:
            found[name] = max(candidates, key=lambda c: c.stat().st_mtime)
    if not found:
        raise InputError(f"{run_dir}: no {', '.join(RUN_FILES)} here or one level below; "
                         "run occcore reduce, fit or limb with -o first")
    return found


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not readable JSON: {exc}") from None


def _read_timing(path: Path) -> TimingResult:
    try:
        return TimingResult.from_json(_read_json(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a timing.json of this occcore ({exc}); run occcore fit "
                         "again") from None


def _read_limb(path: Path) -> LimbFit:
    try:
        return LimbFit.from_json(_read_json(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a limb.json of this occcore ({exc}); run occcore limb "
                         "again") from None


def _ecsv_flux_columns(path: Path) -> list[str]:
    """Aperture names of a lightcurve.ecsv (its ``flux_<name>`` columns), from the header."""
    names = []
    with open(path, errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            m = re.search(r"name:\s*flux_(?!err_)([^,}\s]+)", line)
            if m:
                names.append(m.group(1))
    return names


def _run_curves(session, files: dict[str, Path], timing: TimingResult | None):
    """(the analysed light curve, every aperture's flux); the ECSV reader caches the parsed
    table, so reading every aperture parses the file once."""
    ecsv = files.get("lightcurve.ecsv")
    source = Path(timing.source if timing is not None else "")
    column = timing.column if timing is not None else None
    exposure = timing.diagnostics.exposure_s if timing is not None else None
    lightcurve, apertures = None, {}

    def read(path, **options):
        options = {k: v for k, v in options.items() if v is not None}
        return session.read_lightcurve(path, None, options)[0]

    if ecsv is not None:
        elsewhere = source.is_file() and source.resolve() != ecsv.resolve()
        apertures = {n: read(ecsv, column=f"flux_{n}") for n in _ecsv_flux_columns(ecsv)}
        if not elsewhere:
            lightcurve = read(ecsv, column=column, exposure_s=exposure)
    if source.is_file() and lightcurve is None:
        lightcurve = read(source, column=column, exposure_s=exposure,
                          date=timing.immersion.time.utc.isot[:10] if timing is not None and
                          timing.immersion is not None else None)
    return lightcurve, apertures


def load_run(run_dir, profile_paths: Sequence[str | Path] = (), session=None) -> ReportInput:
    """Everything a reporter may use from a run directory (``session``: whose light-curve
    readers to use; default built-ins)."""
    if session is None:
        from occcore.api import Session
        from occcore.config import load_config
        with Session(config=load_config(cwd=Path("/nonexistent")), no_plugins=True) as own:
            return load_run(run_dir, profile_paths, own)
    run_dir = Path(run_dir)
    files = find_run_files(run_dir)
    timing = _read_timing(files["timing.json"]) if "timing.json" in files else None
    limb = _read_limb(files["limb.json"]) if "limb.json" in files else None
    steps: list[dict] = []
    if "lightcurve.ecsv" in files:
        run_json = files["lightcurve.ecsv"].parent / "run.json"
        if run_json.is_file():
            recorded = _read_json(run_json).get("metadata", {}).get("provenance", {})
            steps += recorded.get("steps", []) if isinstance(recorded, dict) else recorded
    if timing is not None:
        steps += [p.to_dict() for p in timing.provenance]
    if limb is not None:
        steps += [p.to_dict() for p in limb.provenance]
    lightcurve, apertures = _run_curves(session, files, timing)
    return ReportInput(directory=run_dir, lightcurve=lightcurve, apertures=apertures,
                       timing=timing, limb=limb, profile=load_profile(profile_paths),
                       steps=tuple(steps), occcore_version=__version__)


def write_reports(session, run: ReportInput, names: Sequence[str], outdir) -> ReportOutcome:
    """Run every reporter in ``names``; collect failures instead of stopping at one."""
    outdir = Path(outdir)
    if not names:
        raise UsageError("no report format given; known: " +
                         ", ".join(r.name for r in session.registry.implementations("reporter")))
    reporters = [session.registry.get("reporter", n) for n in names]
    context = session.context("report")
    files: list[Path] = []
    failures: list[tuple[str, str]] = []
    with OutputSet(outdir) as out:     # the reports appear together when every writer is done
        for registered in reporters:
            options = session.options("report", registered)
            try:
                written = registered.spec.write(run, out.stage, options=options, context=context)
                problem = check_written(written)
                if problem:
                    raise TypeError(problem)
                files.extend(out.final(Path(p)) for p in written)
            except KeyboardInterrupt:
                raise
            except Exception as exc:   # one reporter's failure must not lose the others
                failures.append((registered.name, f"{type(exc).__name__}: {exc}"))
        out.commit()
    return ReportOutcome(files=tuple(files), failures=tuple(failures))


def report_after_step(session, outdir) -> list[Path]:
    """The ``[report] writers`` of the configuration, run on a step's output directory."""
    names = session.config.chain("report")
    if not names or outdir is None:
        return []
    run = load_run(outdir, [Path(p).expanduser() for p in session.config.get("report.observer")],
                   session)
    outcome = write_reports(session, run, names, outdir)
    raise_failures(outcome)
    return list(outcome.files)


def raise_failures(outcome: ReportOutcome) -> None:
    if outcome.failures:
        lines = "\n".join(f"  {name}: {reason}" for name, reason in outcome.failures)
        written = f" ({len(outcome.files)} file(s) written by the others)" if outcome.files else ""
        raise StepFailed(f"step 'report': {len(outcome.failures)} reporter(s) failed{written}:\n"
                         f"{lines}")
