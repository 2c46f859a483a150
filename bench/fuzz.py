"""Fuzz occcore's readers and loaders by hand: outcomes per target and distinct crash places.

    .venv/bin/python bench/fuzz.py --cases 2000 --seed 1
    .venv/bin/python bench/fuzz.py --cases 500 --seed 3 --target fits-single --target ser-plain

Each case runs in a forked child with a time and memory limit (see occcore/testing/fuzz.py).
Every crash place is printed with one reproducing recipe (replay it with
``occcore.testing.fuzz.apply_recipe`` on the target's seed).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from occcore.testing import fuzz


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", action="append", choices=sorted(fuzz.TARGETS),
                        help="only these targets (repeatable); default: all")
    parser.add_argument("--time-limit", type=float, default=3.0, help="seconds per case")
    parser.add_argument("--memory-limit", type=int, default=1024, help="MiB per case")
    parser.add_argument("--in-process", action="store_true",
                        help="run cases in this process (SIGALRM + RLIMIT_AS; about 4x faster "
                        "than a fork per case, but a hang inside C code is not interrupted)")
    parser.add_argument("--json", help="write every crash, hang and blow-up to this JSON file")
    args = parser.parse_args(argv)
    from occcore.registry import load_registry
    load_registry(no_plugins=True)   # import every plugin module once, before forking
    import astropy.time  # noqa: F401
    results = []
    for name in args.target or list(fuzz.TARGETS):
        started = time.perf_counter()
        result = fuzz.fuzz(name, args.cases, args.seed, time_limit_s=args.time_limit,
                           memory_limit_mb=args.memory_limit, fork=not args.in_process)
        results.append(result)
        print(f"{name}: {args.cases} cases in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
    print(fuzz.summary_table(results))
    for r in results:
        failures = r.failures()
        if not failures:
            continue
        print(f"\n== {r.target}: distinct crash places, hangs and blow-ups")
        seen = {}
        for o in failures:
            key = (o.outcome, o.error_type if o.outcome == "crash" else "", o.place)
            seen.setdefault(key, []).append(o)
        for (outcome, etype, place), hits in sorted(seen.items(), key=lambda kv: -len(kv[1])):
            first = hits[0]
            print(f"{len(hits):5d}  {outcome:<6} {etype} at {place or '-'}")
            print(f"       e.g. case {first.case} {first.seed_file}: {first.message[:160]!r}")
            print(f"       recipe {json.dumps(first.recipe)[:300]}")
    if args.json:
        import attrs
        with open(args.json, "w") as fh:
            json.dump([attrs.asdict(o) for r in results for o in r.failures()], fh, default=str,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
