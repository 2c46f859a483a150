"""The ``occcore`` command line: a thin layer over :mod:`occcore.api`.

Exit codes: 0 ok, 1 a processing step failed, 2 usage, configuration or input error.
"""
from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import traceback
from pathlib import Path
from collections.abc import Sequence

from occcore import __version__
from occcore.errors import OccCoreError

log = logging.getLogger("occcore")


class _Parser(argparse.ArgumentParser):
    def error(self, message):   # argparse's own exit code is already 2; keep one style
        self.print_usage(sys.stderr)
        print(f"occcore: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("common options")
    group.add_argument("--config", metavar="FILE", default=default,
                       help="configuration file (default: ./occcore.toml if present)")
    group.add_argument("--set", metavar="KEY=VALUE", action="append",
                       default=argparse.SUPPRESS if suppress else [],
                       help="override one configuration key, e.g. --set align.chain='[\"roi\"]'")
    group.add_argument("--no-plugins", action="store_true",
                       default=argparse.SUPPRESS if suppress else False,
                       help="load built-in plugins only")
    group.add_argument("--strict", action="store_true",
                       default=argparse.SUPPRESS if suppress else False,
                       help="stop at the first failure in any fallback chain")
    group.add_argument("-v", "--verbose", action="store_true",
                       default=argparse.SUPPRESS if suppress else False,
                       help="show tracebacks and debug messages")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="occcore", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"occcore {__version__}")
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p, suppress=True)
        return p

    p = command("plugins", "list every registered implementation and broken plugin")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("formats", "list the readers and what they recognise")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("identify", "show every reader's verdict on a source")
    p.add_argument("path", nargs="+", help="file, directory, glob or list of files")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("info", "open a source and describe it (frames, size, depth, times)")
    p.add_argument("path", nargs="+", help="file, directory, glob or list of files")
    p.add_argument("--reader", help="use this reader (or a comma list, tried in order)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command("config", "show or check the resolved configuration")
    p.add_argument("action", choices=("show", "check"))
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("reduce", "frames in, light curve out (lightcurve.ecsv, run.json, lightcurve.png)")
    p.add_argument("source", nargs="+", help="file, directory, glob or list of files")
    p.add_argument("-o", "--outdir", required=True, help="output directory")
    p.add_argument("--target", required=True, metavar="X,Y", help="occulted star on the reference frame")
    p.add_argument("--reference", action="append", metavar="X,Y", default=[],
                   help="reference (comparison) star; repeat for an ensemble")
    p.add_argument("--guide", metavar="X,Y", help="guide (tracking) star")
    p.add_argument("--aperture", type=float, metavar="R", help="aperture radius in pixels")
    p.add_argument("--annulus", metavar="RIN,ROUT", help="sky annulus radii in pixels")
    p.add_argument("--reference-frame", type=int, metavar="N", help="reference frame index (0-based)")
    p.add_argument("--one-based", action="store_true", help="positions are 1-based (DS9, JS9)")
    p.add_argument("--reader", help="use this reader (or a comma list)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p = command("fit", "time the immersion and emersion of a light curve")
    p.add_argument("lightcurve", help="occcore ECSV, PyMovie/PyOTE/Tangra/Limovie CSV or SORA text")
    p.add_argument("-o", "--outdir", help="write timing.json and timing.png here")
    p.add_argument("--column", help="the signal column (or aperture / object name)")
    p.add_argument("--model", help="one fitter instead of the [timing] chain (square, diffraction)")
    p.add_argument("--exposure", type=float, metavar="S", help="exposure time in seconds")
    p.add_argument("--dead-time", type=float, metavar="S", help="dead time between exposures")
    p.add_argument("--velocity", type=float, metavar="KMS", help="shadow velocity, km/s")
    p.add_argument("--distance", type=float, metavar="AU", help="distance to the body, AU")
    p.add_argument("--star-diameter", type=float, metavar="KM", help="star diameter at the body, km")
    p.add_argument("--wavelength", type=float, metavar="UM", help="central wavelength, micron")
    p.add_argument("--bandwidth", type=float, metavar="UM", help="passband width, micron")
    p.add_argument("--window", metavar="T0,T1", help="fit only this span (ISO times, or seconds "
                   "after 00:00 UTC of the first day)")
    p.add_argument("--tref", metavar="ISO", help="reference time of files timed in seconds")
    p.add_argument("--date", metavar="YYYY-MM-DD", help="date of files timed by time of day only")
    p.add_argument("--reader", help="light-curve reader (default: identified from the file)")
    p.add_argument("--time-column", type=int, metavar="N",
                   help="0-based time column of a multi-column text file")
    p.add_argument("--frame-rate", type=float, metavar="HZ",
                   help="readings per second, for a curve without time stamps (with --start)")
    p.add_argument("--cadence", type=float, metavar="S",
                   help="seconds between readings, for a curve without time stamps")
    p.add_argument("--start", metavar="ISO", help="UTC time of the first reading (with "
                   "--frame-rate or --cadence)")
    p.add_argument("--timestamps", choices=("rederive", "keep", "refuse"),
                   help="dropped/duplicated/out-of-order stamps: re-derive isolated errors from "
                   "the cadence (default), keep them as read, or refuse the curve")
    p.add_argument("--immersion-velocity", type=float, metavar="KMS",
                   help="limb-normal shadow velocity at immersion, km/s")
    p.add_argument("--emersion-velocity", type=float, metavar="KMS",
                   help="limb-normal shadow velocity at emersion, km/s")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p = command("limb", "fit the limb (ellipse) of the occulting body to chords")
    p.add_argument("chords", help="chords file (TOML; see README)")
    p.add_argument("-o", "--outdir", help="write limb.json and limb.png here")
    p.add_argument("--model", help="one limb fitter instead of the [limb] chain")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p = command("report", "write reports (SORA, IOTA-ES, NA Excel, PyMovie CSV, VizieR, plots) "
                "from a run directory")
    p.add_argument("run_dir", help="directory written by reduce, fit and/or limb (or its parent)")
    p.add_argument("--format", metavar="NAME[,NAME...]",
                   help="reporters to run (default: [report] writers); see 'occcore plugins'")
    p.add_argument("-o", "--outdir", help="output directory (default: RUN_DIR)")
    p.add_argument("--observer", action="append", default=[], metavar="FILE",
                   help="observer profile (TOML); repeat to merge (later wins); "
                   "default: [report] observer")
    p.add_argument("--json", action="store_true", help="print the written files as JSON")
    p = command("demo", "write a synthetic SER occultation, reduce it and compare with the truth")
    p.add_argument("outdir", help="output directory")
    p.add_argument("--frames", type=int, default=1500, help="number of frames (default 1500)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    return parser


def _session(args):
    from occcore.api import Session
    return Session(config_path=args.config, sets=args.set, no_plugins=args.no_plugins,
                   strict=True if args.strict else None)


def _print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cmd_plugins(args) -> int:
    from occcore.api import dumps
    session = _session(args)
    rows = session.registry.rows()
    if args.json:
        print(dumps([r.to_dict() for r in rows]))
        return 0
    _print_table([[r.kind, r.name, r.provider, r.status, r.reason] for r in rows],
                 ["KIND", "NAME", "PROVIDER", "STATUS", "REASON"])
    return 0


def cmd_formats(args) -> int:
    from occcore.api import dumps
    session = _session(args)
    rows = []
    for r in session.registry.implementations("reader"):
        missing = r.missing_modules()
        rows.append({"name": r.name, "summary": r.spec.summary, "patterns": list(r.spec.patterns),
                     "auto_identify": r.spec.auto_identify, "provider": str(r.provider),
                     "available": not missing,
                     "reason": ("missing " + ", ".join(missing)) if missing else ""})
    if args.json:
        print(dumps(rows))
        return 0
    _print_table([[r["name"], " ".join(r["patterns"]) or "-", "yes" if r["auto_identify"] else "no",
                   r["provider"], "yes" if r["available"] else r["reason"], r["summary"]]
                  for r in rows], ["READER", "PATTERNS", "AUTO", "PROVIDER", "AVAILABLE", "SUMMARY"])
    return 0


def _path_arg(paths):
    return paths[0] if len(paths) == 1 else paths


def cmd_identify(args) -> int:
    from occcore.api import dumps
    session = _session(args)
    found = session.identify(_path_arg(args.path))
    if args.json:
        print(dumps(found.to_dict()))
        return 0 if found.winner else 1
    _print_table([[v.reader.name, str(v.reader.provider),
                   v.level.name.lower() if v.level else "-", v.error or v.note]
                  for v in found.verdicts], ["READER", "PROVIDER", "LEVEL", "NOTE"])
    if found.winner:
        print(f"=> {found.winner.reader.name}")
        return 0
    print("=> no reader recognises this source")
    return 1


def cmd_info(args) -> int:
    from occcore.api import dumps
    session = _session(args)
    reader = args.reader.split(",") if args.reader else None
    with session:
        info = session.info(_path_arg(args.path), reader=reader)
    if args.json:
        print(dumps(info))
        return 0
    for key in ("source", "format", "reader", "n_frames", "width", "height", "bit_depth",
                "start_utc", "end_utc", "exposure_s", "time_instant", "time_source",
                "time_uncertainty_s", "flagged_frames"):
        print(f"{key:<20} {info[key]}")
    if info.get("time_note"):
        print(f"{'time_note':<20} {info['time_note']}")
    return 0


def cmd_config(args) -> int:
    from occcore.api import dumps
    session = _session(args)   # loading validates the whole configuration
    if args.action == "check":
        origin = ", ".join(session.config.files + session.config.overrides) or "defaults only"
        print(f"configuration ok ({origin})")
        return 0
    if args.json:
        print(dumps(session.config.data))
    else:
        print(session.config.to_toml(), end="")
    return 0


def _progress_session(args):
    from occcore.api import Session
    from occcore.progress import ProgressBar
    bar = ProgressBar(enabled=None if not args.json else False)
    return Session(config_path=args.config, sets=args.set, no_plugins=args.no_plugins,
                   strict=True if args.strict else None,
                   observers=[bar] if bar.enabled else [])


def cmd_reduce(args) -> int:
    from occcore.api import dumps
    from occcore.steps.reduce import parse_xy, reduce
    target = parse_xy(args.target, "--target")
    references = [parse_xy(r, "--reference") for r in args.reference]
    guide = parse_xy(args.guide, "--guide") if args.guide else None
    annulus = parse_xy(args.annulus, "--annulus") if args.annulus else None
    with _progress_session(args) as session:
        result = reduce(session, _path_arg(args.source), args.outdir, target=target,
                        references=references, guide=guide, aperture_px=args.aperture,
                        annulus_px=annulus, reference_frame=args.reference_frame,
                        one_based=args.one_based,
                        reader=args.reader.split(",") if args.reader else None)
    summary = {**result.summary, "outputs": [str(f) for f in result.files]}
    if args.json:
        print(dumps(summary))
    else:
        print(f"{summary['n_frames']} frames, reference frame {summary['reference_frame']}, "
              f"aligned with {summary['aligner']}, photometry {summary['photometry']}, "
              f"{summary['flagged_frames']} flagged")
        for f in result.files:
            print(f"wrote {f}")
    return 0


def cmd_fit(args) -> int:
    from occcore.api import dumps
    from occcore.model import iso_utc
    from occcore.steps.timing import fit_lightcurve
    physics = {"velocity": args.velocity, "distance": args.distance,
               "star_diameter": args.star_diameter, "wavelength": args.wavelength,
               "bandwidth": args.bandwidth, "immersion_velocity": args.immersion_velocity,
               "emersion_velocity": args.emersion_velocity}
    reading = {"time_column": args.time_column, "frame_rate_hz": args.frame_rate,
               "cadence_s": args.cadence, "start_utc": args.start,
               "timestamps": args.timestamps}
    with _progress_session(args) as session:
        outcome = fit_lightcurve(session, args.lightcurve, outdir=args.outdir, column=args.column,
                                 model=args.model, exposure_s=args.exposure,
                                 dead_time_s=args.dead_time, window=args.window, tref=args.tref,
                                 date=args.date, physics=physics, reader=args.reader,
                                 reading={k: v for k, v in reading.items() if v is not None})
    result = outcome.result
    if args.json:
        print(dumps(outcome.summary))
    elif result.outcome != "positive":
        print(f"{result.outcome}: {result.reason}")
    else:
        quality = [f"chi2 {result.chi2:.1f} / {result.dof}" if math.isfinite(result.chi2)
                   else "", f"SNR {result.snr:.1f}" if math.isfinite(result.snr) else "",
                   f"false-positive probability {result.false_positive_probability:.2g}"
                   if math.isfinite(result.false_positive_probability) else ""]
        print(", ".join([f"positive: model {result.model}"] + [q for q in quality if q]))
        for name, edge in result.edges:
            print(f"{name:<9} {iso_utc(edge.time)} UTC  {edge.err_text(1)} s (1 sigma), "
                  f"{edge.err_text(3)} s (3 sigma)")
    for note in result.diagnostics.notes:
        print(f"note: {note}", file=sys.stderr if args.json else sys.stdout)
    for f in outcome.files:
        print(f"wrote {f}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_limb(args) -> int:
    from occcore.api import dumps
    from occcore.steps.limb import PARAMS, fit_limb
    with _progress_session(args) as session:
        outcome = fit_limb(session, args.chords, outdir=args.outdir, model=args.model)
    fit = outcome.fit
    if args.json:
        print(dumps(outcome.summary))
    else:
        print(f"{fit.model}: chi2 {fit.chi2:.4g} / {fit.dof}")
        for p in PARAMS:
            err = fit.errors.get(p)
            text = f"-{err[0]:.3f} +{err[1]:.3f}" if err else "(fixed)"
            print(f"  {p:<22} {fit.value(p):10.3f} {text}")
        print(f"  {'equivalent_radius_km':<22} {fit.derived['equivalent_radius_km']:10.3f}")
        for note in fit.notes:
            print(f"note: {note}")
    for f in outcome.files:
        print(f"wrote {f}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_report(args) -> int:
    from occcore.api import dumps
    from occcore.steps.report import load_run, raise_failures, write_reports
    with _progress_session(args) as session:
        names = [n.strip() for n in args.format.split(",") if n.strip()] if args.format else \
            session.config.chain("report")
        observer = args.observer or session.config.get("report.observer")
        run = load_run(args.run_dir, [Path(p).expanduser() for p in observer], session)
        outcome = write_reports(session, run, names, args.outdir or args.run_dir)
    if args.json:
        print(dumps({"files": [str(f) for f in outcome.files],
                     "failures": [{"reporter": n, "reason": r} for n, r in outcome.failures]}))
    else:
        for f in outcome.files:
            print(f"wrote {f}")
    raise_failures(outcome)
    return 0


def cmd_demo(args) -> int:
    from occcore.api import dumps
    from occcore.steps.demo import run_demo
    with _progress_session(args) as session:
        report = run_demo(session, args.outdir, n_frames=args.frames)
    if args.json:
        print(dumps(report))
    else:
        print(report["text"])
    return 0


COMMANDS = {"plugins": cmd_plugins, "formats": cmd_formats, "identify": cmd_identify,
            "info": cmd_info, "config": cmd_config, "reduce": cmd_reduce, "fit": cmd_fit,
            "limb": cmd_limb, "report": cmd_report, "demo": cmd_demo}


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("occcore: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = (list(log.handlers), log.level, log.propagate)
    _setup_logging(args.verbose)
    terminate = _terminate_as_interrupt()
    try:
        return _run(parser, args)
    finally:       # called in-process (tests, scripts): leave the logger as it was
        log.handlers[:] = saved[0]
        log.setLevel(saved[1])
        log.propagate = saved[2]
        if terminate is not None:
            signal.signal(signal.SIGTERM, terminate)


def _interrupt(number, frame):
    raise KeyboardInterrupt


def _terminate_as_interrupt():
    """SIGTERM is handled like Ctrl-C: the same clean-up (temporary folders, staged
    outputs) runs. Returns the previous handler (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


def _run(parser, args) -> int:
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except OccCoreError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"occcore: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("occcore: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
