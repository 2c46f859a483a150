"""A seeded, bounded, in-process fuzzer for readers and loaders.

It mutates valid seed inputs (truncation, bit flips, byte runs, FITS header-card edits,
absurd sizes in binary headers, non-UTF-8 bytes, huge lines and fields in text, wrong
types in TOML), calls a target on each mutated input in a forked child with a time
limit and a memory limit, and classifies what happened:

* ``ok``      the target returned;
* ``clean``   an :class:`occcore.errors.OccCoreError` with exit code 2 whose message
  names the file (a fallback chain whose every failure is such an error counts too);
* ``crash``   any other exception (its type, message and innermost traceback frame,
  the "place", are recorded; an occcore error that does not name the file is a crash);
* ``hang``    the case ran past the time limit;
* ``blowup``  the case hit the memory limit (MemoryError, or killed by the OS).

A target is ``(name, make_seeds, call)``: ``make_seeds(directory)`` writes valid inputs
and returns their paths (files, or directories whose files are mutated one at a time),
``call(path)`` reads one input the way a user would. Every case is reproducible: its
``recipe`` is a list of ``(mutator, parameters)`` that :func:`apply_recipe` replays on the
seed's bytes, so a crash becomes a regression test without storing a binary file::

    from occcore.testing.fuzz import fuzz_reader
    result = fuzz_reader("kiwi", seeds=make_kiwi_samples, cases=300, seed=1)
    assert not result.failures()

No pytest import here: ``bench/fuzz.py`` uses it from the command line.
"""
from __future__ import annotations

import io
import os
import pickle
import random
import resource
import shutil
import signal
import tarfile
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

OUTCOMES = ("ok", "clean", "crash", "hang", "blowup")
FAILURES = ("crash", "hang", "blowup")

# --------------------------------------------------------------------------------------
# mutators: (data: bytes, **params) -> bytes; random_params picks the parameters


FITS_KEYS = ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "BZERO", "BSCALE",
             "DATE-OBS", "TIME-OBS", "DATE-BEG", "DATE-AVG", "DATE-END", "MJD-OBS", "TIMESYS",
             "EXPTIME", "EXPOSURE", "FRM-TIME", "IMAGETYP", "GPS_SFLG", "GPS_SUTC", "OBS-DATE",
             "EXTEND")
FITS_VALUES = ("'T'", "'abc'", "T", "F", "-1", "0", "1", "3", "7", "2147483647", "-2147483648",
               "1000000000000", "1E308", "-1E308", "1E20", "NAN", "'GPS'", "'TAI'", "'XYZ'", "''",
               "'9999-99-99T99:99:99'", "'-4000-01-01T00:00:00'", "'2024-05-05T01:02:03'",
               "'99999-01-01T00:00:00'", "'0001-01-01T00:00:00'", "'2024'", "'24/13/99'",
               "1E15", "-1E15", "99999999", "'\xff\xfe'", "(1, 2)", "'Bias'", "'Dark Frame'",
               "'Flat'", "'2024-05-05'", "'12:00:61'", "2.5")
INT_VALUES = (0, -1, 1, 2, 3, 255, 65535, 2 ** 31 - 1, -2 ** 31, 2 ** 32 - 1, 2 ** 40, 2 ** 62,
              -2 ** 62, 2 ** 63 - 1, -2 ** 63, 10 ** 12)
TOML_VALUES = ('"abc"', "12", "-1", "1e400", "nan", "inf", "true", "[1, 2]", '["x"]', "{a = 1}",
               '"1900-13-45T99:00:00"', '"-36 99 99"', "1979-05-27T07:32:00Z", '""',
               "99999999999999999999", '"' + "9" * 5000 + '"', "[]", "0", "1e-300")
TEXT_FIELDS = ("nan", "inf", "-inf", "1e999", "abc", "", "-", "1e-400", "9" * 400,
               "99:99:99.99", "[25:61:61.000]", "2460000000000.5", "-1e308", "\x00", "\u00e9")


def _put(data: bytes, offset: int, chunk: bytes) -> bytes:
    offset = max(0, min(offset, len(data)))
    return data[:offset] + chunk + data[offset + len(chunk):]


def truncate(data: bytes, keep: int) -> bytes:
    return data[:keep]


def bitflip(data: bytes, offset: int, bit: int) -> bytes:
    if not data:
        return data
    offset %= len(data)
    return _put(data, offset, bytes([data[offset] ^ (1 << bit)]))


def byte_run(data: bytes, offset: int, length: int, value: int, insert: bool = False) -> bytes:
    chunk = bytes([value]) * length
    return data[:offset] + chunk + data[offset:] if insert else _put(data, offset, chunk)


def int_field(data: bytes, offset: int, width: int, value: int, order: str = "little") -> bytes:
    value %= 1 << (8 * width)
    return _put(data, offset, value.to_bytes(width, order))


def non_utf8(data: bytes, offset: int, length: int) -> bytes:
    rnd = random.Random(offset * 7919 + length)
    chunk = bytes(rnd.randrange(0x80, 0x100) for _ in range(length))
    return data[:offset] + chunk + data[offset:]


def huge_line(data: bytes, offset: int, length: int, char: str = "9") -> bytes:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data[:line_start] + char.encode() * length + b"\n" + data[line_start:]


def fits_card(data: bytes, key: str, value: str) -> bytes:
    """Set ``KEY = value`` in the primary header (added before END when missing)."""
    card = f"{key:<8}= {value:>20}".encode("latin-1", "replace")[:80].ljust(80)
    end = None
    for pos in range(0, min(len(data), 2880 * 40), 80):
        head = data[pos:pos + 8]
        if head.rstrip() == key.encode():
            return _put(data, pos, card)
        if head == b"END     ":
            end = pos
            break
    if end is None:
        return data
    if (end + 80) % 2880 == 0:      # END is the block's last card: keep the block size
        return _put(data, end - 80, card) if end >= 80 else data
    return _put(_put(data, end, card), end + 80, b"END".ljust(80))


def fits_delete(data: bytes, key: str) -> bytes:
    for pos in range(0, min(len(data), 2880 * 40), 80):
        head = data[pos:pos + 8]
        if head.rstrip() == key.encode():
            return _put(data, pos, b" " * 80)
        if head == b"END     ":
            break
    return data


def text_field(data: bytes, line: int, field: int, value: str) -> bytes:
    lines = data.split(b"\n")
    if not lines:
        return data
    line %= len(lines)
    sep = b"," if b"," in lines[line] else None
    parts = lines[line].split(sep) if sep else lines[line].split()
    if not parts:
        return data
    parts[field % len(parts)] = value.encode("utf-8")
    lines[line] = (sep or b" ").join(parts)
    return b"\n".join(lines)


def toml_value(data: bytes, line: int, value: str) -> bytes:
    lines = data.split(b"\n")
    assigns = [i for i, ln in enumerate(lines) if b"=" in ln and not ln.lstrip().startswith(b"#")]
    if not assigns:
        return data
    i = assigns[line % len(assigns)]
    key = lines[i].split(b"=", 1)[0]
    lines[i] = key + b"= " + value.encode("utf-8")
    return b"\n".join(lines)


def toml_drop(data: bytes, line: int) -> bytes:
    lines = data.split(b"\n")
    assigns = [i for i, ln in enumerate(lines) if b"=" in ln]
    if not assigns:
        return data
    del lines[assigns[line % len(assigns)]]
    return b"\n".join(lines)


def archive_member(data: bytes, fmt: str, member: int, recipe: list) -> bytes:
    """Repack a zip / tar.gz with one member's bytes mutated by ``recipe``."""
    try:
        return _repack(data, fmt, member, recipe)
    except Exception:           # zipfile, tarfile, zlib: any damage
        return data             # an earlier mutation broke the archive: leave it broken


def _repack(data: bytes, fmt: str, member: int, recipe: list) -> bytes:
    if fmt == "zip":
        src = zipfile.ZipFile(io.BytesIO(data))
        infos = src.infolist()
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for k, info in enumerate(infos):
                body = src.read(info)
                if k == member % len(infos):
                    body = apply_recipe(body, recipe)
                dst.writestr(info.filename, body)
        return out.getvalue()
    src = tarfile.open(fileobj=io.BytesIO(data))
    members = [m for m in src.getmembers() if m.isfile()]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as dst:
        for k, m in enumerate(members):
            body = src.extractfile(m).read()
            if k == member % len(members):
                body = apply_recipe(body, recipe)
            info = tarfile.TarInfo(m.name)
            info.size = len(body)
            dst.addfile(info, io.BytesIO(body))
    return out.getvalue()


MUTATORS: dict[str, Callable[..., bytes]] = {
    f.__name__: f for f in (truncate, bitflip, byte_run, int_field, non_utf8, huge_line,
                            fits_card, fits_delete, text_field, toml_value, toml_drop,
                            archive_member)}


def apply_recipe(data: bytes, recipe: Sequence) -> bytes:
    """Replay a case's mutations: ``[(mutator name, {parameters}), ...]``."""
    for name, params in recipe:
        data = MUTATORS[name](data, **params)
    return data


def _generic(rng: random.Random, data: bytes) -> tuple[str, dict]:
    n = max(1, len(data))
    pick = rng.random()
    if pick < 0.3:
        return "truncate", {"keep": rng.randrange(0, n)}
    if pick < 0.6:
        return "bitflip", {"offset": rng.randrange(n), "bit": rng.randrange(8)}
    if pick < 0.85:
        return "byte_run", {"offset": rng.randrange(n), "length": rng.choice((1, 4, 16, 300, 4096)),
                            "value": rng.choice((0, 0xFF, 0x20, 0x7F, rng.randrange(256))),
                            "insert": rng.random() < 0.3}
    return "non_utf8", {"offset": rng.randrange(n), "length": rng.choice((1, 3, 64))}


def _fits_mutation(rng, data):
    pick = rng.random()
    if pick < 0.6:
        return "fits_card", {"key": rng.choice(FITS_KEYS), "value": rng.choice(FITS_VALUES)}
    if pick < 0.7:
        return "fits_delete", {"key": rng.choice(FITS_KEYS + ("END",))}
    return _generic(rng, data)


SER_INT_OFFSETS = (14, 18, 22, 26, 30, 34, 38)


def _ser_mutation(rng, data):
    pick = rng.random()
    if pick < 0.45:
        return "int_field", {"offset": rng.choice(SER_INT_OFFSETS), "width": 4,
                             "value": rng.choice(INT_VALUES)}
    if pick < 0.6:   # the header's dates and the trailer's time stamps
        offset = rng.choice((162, 170, len(data) - 8 * rng.randrange(1, 4)))
        return "int_field", {"offset": max(0, offset), "width": 8, "value": rng.choice(INT_VALUES)}
    return _generic(rng, data)


def _text_mutation(rng, data):
    pick = rng.random()
    lines = data.count(b"\n") + 1
    if pick < 0.35:
        return "text_field", {"line": rng.randrange(lines), "field": rng.randrange(4),
                              "value": rng.choice(TEXT_FIELDS)}
    if pick < 0.5:
        return "huge_line", {"offset": rng.randrange(max(1, len(data))),
                             "length": rng.choice((10_000, 1_000_000)),
                             "char": rng.choice(("9", "a", ",", " "))}
    return _generic(rng, data)


def _toml_mutation(rng, data):
    pick = rng.random()
    if pick < 0.5:
        return "toml_value", {"line": rng.randrange(100), "value": rng.choice(TOML_VALUES)}
    if pick < 0.6:
        return "toml_drop", {"line": rng.randrange(100)}
    if pick < 0.7:
        return "huge_line", {"offset": rng.randrange(max(1, len(data))), "length": 100_000}
    return _generic(rng, data)


def _archive_mutation(fmt):
    def mutate(rng, data):
        if rng.random() < 0.6:
            inner = [_fits_mutation(rng, b"\0" * 8640) for _ in range(rng.randrange(1, 3))]
            return "archive_member", {"fmt": fmt, "member": rng.randrange(8), "recipe": inner}
        return _generic(rng, data)
    return mutate


KIND_MUTATIONS = {"fits": _fits_mutation, "ser": _ser_mutation, "text": _text_mutation,
                  "toml": _toml_mutation, "binary": lambda rng, data: _generic(rng, data),
                  "zip": _archive_mutation("zip"), "tar.gz": _archive_mutation("tar.gz")}


def random_recipe(rng: random.Random, data: bytes, kind: str) -> list:
    recipe = []
    mutate = KIND_MUTATIONS[kind]
    for _ in range(rng.choice((1, 1, 2, 3))):
        step = mutate(rng, data)
        recipe.append(step)
        data = MUTATORS[step[0]](data, **step[1])
    return recipe


# --------------------------------------------------------------------------------------
# targets


@attrs.frozen
class Target:
    """A fuzz target: ``make_seeds(directory) -> [paths]`` and ``call(path)``."""

    name: str
    make_seeds: Callable[[Path], list]
    call: Callable[[Path], object]
    kind: str = "binary"            # which mutations fit its seeds (see KIND_MUTATIONS)
    reader: bool = True             # a reader target: the tests expect 0 failures


TARGETS: dict[str, Target] = {}


def register(target: Target) -> Target:
    TARGETS[target.name] = target
    return target


_SESSION_PARTS: dict = {}


FUZZ_SETS = ("read.options.archive.limit_gb=0.05", "read.options.ser.frame_rate_hz=25")
OLD_FUZZ_SETS = ("read.archive_limit_gb=0.05", "read.options.ser.frame_rate_hz=25")


def _fuzz_config(load_config):
    """A 50 MB archive limit (the per-case memory limit is larger) and a SER frame rate."""
    from occcore.api import Session
    from occcore.errors import OccCoreError
    cwd = Path(tempfile.gettempdir())
    try:
        config = load_config(cwd=cwd, sets=FUZZ_SETS)
        Session(config=config, registry=_SESSION_PARTS["registry"]).close()
        return config
    except OccCoreError:      # a reader without these options (an older occcore)
        return load_config(cwd=cwd, sets=OLD_FUZZ_SETS)


def open_with_session(path: Path, reader: str | None = None) -> object:
    """Open ``path`` as the CLI does (identification + reader chain), read every frame."""
    from occcore.api import Session, series_info
    from occcore.config import load_config
    if "registry" not in _SESSION_PARTS:
        from occcore.registry import load_registry
        _SESSION_PARTS["registry"] = load_registry(no_plugins=True)
        _SESSION_PARTS["config"] = _fuzz_config(load_config)
    with Session(config=_SESSION_PARTS["config"], registry=_SESSION_PARTS["registry"]) as s:
        series = s.open(path, reader=reader)
        with series:
            info = series_info(series)
            step = max(1, 64)
            for a in range(0, series.n_frames, step):
                series.batch(a, min(series.n_frames, a + step))
        return info


def _fits_seeds(directory: Path, what: str) -> list[Path]:
    import numpy as np
    from astropy import units as u

    from occcore.synthetic import write_fits_cube, write_fits_series
    from occcore.synthetic.samples import EPOCH
    frames = (np.arange(3 * 12 * 10, dtype=np.uint16).reshape(3, 12, 10) * 7)
    times = EPOCH + np.arange(3) * 0.04 * u.s
    if what == "single":
        return [write_fits_series(directory / "single", frames[:1], times[:1], exposure_s=0.04,
                                  extra={"TIMESYS": "UTC"})[0]]
    if what == "cube":
        return [write_fits_cube(directory / "cube.fits", frames, EPOCH, exposure_s=0.04,
                                frame_time_s=0.04)]
    write_fits_series(directory / "series", frames, times, exposure_s=0.04)
    return [directory / "series"]


def _ser_seeds(directory: Path, trailer: bool) -> list[Path]:
    import numpy as np
    from astropy import units as u

    from occcore.synthetic import write_ser
    from occcore.synthetic.samples import EPOCH
    frames = (np.arange(4 * 8 * 10, dtype=np.uint16).reshape(4, 8, 10) * 50)
    times = EPOCH + np.arange(4) * 0.04 * u.s
    return [write_ser(directory / ("trailer.ser" if trailer else "plain.ser"), frames,
                      times if trailer else None, depth=12, start_utc=EPOCH)]


def _archive_seeds(directory: Path, fmt: str) -> list[Path]:
    members = _fits_seeds(directory, "series")[0]
    if fmt == "zip":
        out = directory / "frames.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(members.iterdir()):
                zf.write(p, f"frames/{p.name}")
    else:
        out = directory / "frames.tar.gz"
        with tarfile.open(out, "w:gz") as tf:
            for p in sorted(members.iterdir()):
                tf.add(p, f"frames/{p.name}")
    shutil.rmtree(members)
    return [out]


def _lightcurve_seeds(directory: Path) -> list[Path]:
    pymovie = directory / "pymovie.csv"
    rows = [f"{k},[01:02:{3 + 0.04 * k:06.3f}],{1000 + (k % 7) * 3},{500 + k}" for k in range(40)]
    pymovie.write_text("# PyMovie Version 3.7.1\n# date at frame 0: 2024-03-01\n"
                       "FrameNum,timeInfo,signal-target,signal-ref\n" + "\n".join(rows) + "\n")
    sora = directory / "sora.dat"
    sora.write_text("\n".join(f"{2460370.5 + k * 0.04 / 86400:.9f} {1.0 - 0.9 * (10 <= k < 20):.4f} 0.02"
                              for k in range(40)) + "\n")
    return [pymovie, sora]


CHORDS_TOML = """[event]
name = "synthetic"

[star]
ra = "18 55 15.65251"
dec = "-31 31 21.6706"
epoch = "2017-06-22T21:18:48.2"

[body.elements]
closest_approach_utc = "2017-06-22T21:18:48.2"
closest_approach_arcsec = 0.0487
position_angle_deg = 359.72
velocity_kms = -22.00
distance_au = 14.66

[[chord]]
name = "A"
latitude = "-21 17 58.170"
longitude = "+16 49 17.710"
height_m = 1416
immersion = "2017-06-22T21:21:20.329"
immersion_err_s = 0.32
emersion = "2017-06-22T21:21:30.343"
emersion_err_s = 0.34

[[chord]]
name = "B"
latitude = "-21 36 26.040"
longitude = "+15 59 33.750"
height_m = 1220
immersion = "2017-06-22T21:21:22.213"
immersion_err_s = 0.10
emersion = "2017-06-22T21:21:30.143"
emersion_err_s = 0.10
"""

PROFILE_TOML = """[observer]
name = "Ada Observer"
email = "ada@example.org"

[site]
latitude = "-36 50 41.3"
longitude = "+174 45 55.8"
altitude_m = 50
"""

CONFIG_TOML = """[run]
seed = 3

[read]
archive_limit_gb = 1.5

[align]
chain = ["tracker"]

[timing]
chain = ["square"]
"""


def _text_seed(name: str, text: str):
    def make(directory: Path) -> list[Path]:
        path = directory / name
        path.write_text(text)
        return [path]
    return make


def _load_lightcurve(path):
    from occcore.lcio import read_lightcurve
    return read_lightcurve(path)


def _load_chords(path):
    from occcore.chords import load_chords
    return load_chords(path)


def _load_profile(path):
    try:
        from occcore.steps.report import load_profile
    except ImportError:          # before the steps package
        from occcore.report import load_profile
    return load_profile([path])


def _load_config(path):
    from occcore.config import load_config
    return load_config(path)


for _name, _seeds, _kind in (
        ("fits-single", lambda d: _fits_seeds(d, "single"), "fits"),
        ("fits-cube", lambda d: _fits_seeds(d, "cube"), "fits"),
        ("fits-series", lambda d: _fits_seeds(d, "series"), "fits"),
        ("ser-trailer", lambda d: _ser_seeds(d, True), "ser"),
        ("ser-plain", lambda d: _ser_seeds(d, False), "ser"),
        ("zip-fits", lambda d: _archive_seeds(d, "zip"), "zip"),
        ("targz-fits", lambda d: _archive_seeds(d, "tar.gz"), "tar.gz")):
    register(Target(_name, _seeds, open_with_session, kind=_kind))
register(Target("lightcurve", _lightcurve_seeds, _load_lightcurve, kind="text", reader=False))
register(Target("chords", _text_seed("chords.toml", CHORDS_TOML), _load_chords, kind="toml",
                reader=False))
register(Target("profile", _text_seed("observer.toml", PROFILE_TOML), _load_profile,
                kind="toml", reader=False))
register(Target("config", _text_seed("occcore.toml", CONFIG_TOML), _load_config, kind="toml",
                reader=False))


# --------------------------------------------------------------------------------------
# running and classifying


@attrs.frozen
class Outcome:
    target: str
    case: int
    recipe: list
    seed_file: str
    outcome: str
    error_type: str = ""
    message: str = ""
    place: str = ""               # innermost traceback frame: "file:line in function"
    seconds: float = 0.0


class _CaseTimeout(BaseException):
    """Raised by SIGALRM in the child: the case ran too long."""


def _place(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    f = frames[-1]
    parts = Path(f.filename).parts
    short = "/".join(parts[-3:]) if len(parts) >= 3 else f.filename
    return f"{short}:{f.lineno} in {f.name}"


def _names_file(exc: BaseException, path: Path) -> bool:
    text = str(exc)
    return path.name in text or str(path) in text


def classify(exc: BaseException | None, path: Path) -> tuple[str, str, str, str]:
    """(outcome, error type, message, place) of one call's exception (None when it returned)."""
    from occcore.errors import OccCoreError
    if exc is None:
        return "ok", "", "", ""
    if isinstance(exc, _CaseTimeout):
        return "hang", "timeout", "", _place(exc)
    if isinstance(exc, MemoryError):
        return "blowup", "MemoryError", str(exc)[:300], _place(exc)
    inner = exc.__cause__
    if isinstance(exc, OccCoreError) and isinstance(inner, BaseExceptionGroup):
        # a fallback chain: judge the errors of its implementations
        for sub in inner.exceptions:
            outcome = classify(sub, path)
            if outcome[0] != "clean":
                return outcome
        return "clean", type(exc).__name__, str(exc)[:300], ""
    if isinstance(exc, OccCoreError) and exc.exit_code == 2:
        if _names_file(exc, path):
            return "clean", type(exc).__name__, str(exc)[:300], ""
        return "crash", f"{type(exc).__name__} (file not named)", str(exc)[:300], _place(exc)
    return "crash", type(exc).__name__, str(exc)[:300], _place(exc)


def _child(target: Target, path: Path, time_limit_s: float, memory_limit_mb: int, wfd: int):
    def on_alarm(signum, frame):
        raise _CaseTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    import logging
    import warnings
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        with open("/proc/self/statm") as fh:
            vm_bytes = int(fh.read().split()[0]) * resource.getpagesize()
        limit = vm_bytes + memory_limit_mb * (1 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (OSError, ValueError):
        pass
    signal.setitimer(signal.ITIMER_REAL, time_limit_s)
    started = time.perf_counter()
    try:
        target.call(path)
        result = classify(None, path)
    except BaseException as exc:      # noqa: B902 - the fuzzer records every exception
        try:
            result = classify(exc, path)
        except BaseException as again:
            result = ("crash", type(again).__name__, "while classifying", _place(again))
    signal.setitimer(signal.ITIMER_REAL, 0)
    payload = pickle.dumps(result + (time.perf_counter() - started,))
    os.write(wfd, payload)
    os.close(wfd)
    os._exit(0)


def run_case_in_process(target: Target, path: Path, *, time_limit_s: float = 3.0,
                        memory_limit_mb: int = 1024) -> tuple[str, str, str, str, float]:
    """Run ``target.call(path)`` here, under SIGALRM and a temporary RLIMIT_AS.

    Four times faster than a fork on a loaded machine; a hang inside C code is not
    interrupted, so use :func:`run_case` (the default) for long hand-run campaigns."""
    import logging
    import warnings

    def on_alarm(signum, frame):
        raise _CaseTimeout()

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_limit = resource.getrlimit(resource.RLIMIT_AS)
    level = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    started = time.perf_counter()
    try:
        with open("/proc/self/statm") as fh:
            vm_bytes = int(fh.read().split()[0]) * resource.getpagesize()
        cap = vm_bytes + memory_limit_mb * (1 << 20)
        if old_limit[1] == resource.RLIM_INFINITY or cap < old_limit[1]:
            resource.setrlimit(resource.RLIMIT_AS, (cap, old_limit[1]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signal.setitimer(signal.ITIMER_REAL, time_limit_s)
            try:
                target.call(path)
                result = classify(None, path)
            except BaseException as exc:   # noqa: B902 - every exception is an outcome
                if isinstance(exc, KeyboardInterrupt):
                    raise
                result = classify(exc, path)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old_limit)
        signal.signal(signal.SIGALRM, old_handler)
        logging.disable(level)
    return result + (time.perf_counter() - started,)


def run_case(target: Target, path: Path, *, time_limit_s: float = 3.0,
             memory_limit_mb: int = 1024) -> tuple[str, str, str, str, float]:
    """Run ``target.call(path)`` in a forked child; (outcome, type, message, place, seconds)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                      # the child
        os.close(rfd)
        try:
            _child(target, path, time_limit_s, memory_limit_mb, wfd)
        finally:
            os._exit(1)
    os.close(wfd)
    started = time.monotonic()
    deadline = started + time_limit_s + 2.0
    chunks = []
    status = None
    os.set_blocking(rfd, False)
    while True:
        try:
            chunk = os.read(rfd, 1 << 16)
            if chunk:
                chunks.append(chunk)
            elif status is not None or chunk == b"":
                pass
        except BlockingIOError:
            pass
        done, status_now = os.waitpid(pid, os.WNOHANG)
        if done:
            status = status_now
            while True:
                try:
                    chunk = os.read(rfd, 1 << 16)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(rfd)
            return "hang", "killed after the time limit", "", "", time.monotonic() - started
        time.sleep(0.002)
    os.close(rfd)
    if chunks:
        try:
            return pickle.loads(b"".join(chunks))
        except Exception:
            pass
    seconds = time.monotonic() - started
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGKILL:
            return "blowup", "killed (SIGKILL, out of memory?)", "", "", seconds
        return "crash", f"signal {sig}", "", f"signal {signal.Signals(sig).name}", seconds
    return "blowup", f"child exited {os.WEXITSTATUS(status)} without a result (memory?)", "", \
        "", seconds


@attrs.frozen
class FuzzResult:
    target: str
    outcomes: tuple[Outcome, ...]

    def counts(self) -> Counter:
        return Counter(o.outcome for o in self.outcomes)

    def failures(self, kinds: Sequence[str] = FAILURES) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome in kinds]

    def places(self) -> Counter:
        """Distinct crash places (error type + innermost frame) and how often each was hit."""
        return Counter(f"{o.error_type} at {o.place}" for o in self.outcomes
                       if o.outcome == "crash")


def _seed_files(seed_path: Path) -> list[Path]:
    if seed_path.is_dir():
        return sorted(p for p in seed_path.rglob("*") if p.is_file())
    return [seed_path]


def make_case(seed_path: Path, recipe: list, workdir: Path, member: str | None = None) -> Path:
    """Write a mutated copy of a seed (file, or directory with one member mutated)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if seed_path.is_dir():
        out = workdir / seed_path.name
        shutil.copytree(seed_path, out)
        victim = out / member
        victim.write_bytes(apply_recipe(victim.read_bytes(), recipe))
        return out
    out = workdir / seed_path.name
    out.write_bytes(apply_recipe(seed_path.read_bytes(), recipe))
    return out


def _warm_up(target: Target, seed_paths: list[Path]) -> None:
    """Call the target once per seed in this process, so that every lazy import and cache
    is in place before the children are forked (each case then costs milliseconds)."""
    import logging
    import warnings
    level = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path in seed_paths:
                try:
                    target.call(path)
                except Exception:
                    pass
    finally:
        logging.disable(level)


def fuzz(target: Target | str, cases: int = 1000, seed: int = 0, *, time_limit_s: float = 3.0,
         memory_limit_mb: int = 1024, seeds: list | None = None, fork: bool = True,
         progress: Callable[[int, int], None] | None = None) -> FuzzResult:
    """Run ``cases`` mutated inputs of ``target``'s seeds; reproducible from ``seed``.

    ``fork=False`` runs the cases in this process (see :func:`run_case_in_process`)."""
    runner = run_case if fork else run_case_in_process
    target = TARGETS[target] if isinstance(target, str) else target
    rng = random.Random(f"{target.name}:{seed}")
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="occfuzz-") as tmp:
        tmp = Path(tmp)
        seed_dir = tmp / "seeds"
        seed_dir.mkdir()
        seed_paths = [Path(p) for p in (seeds if seeds is not None else target.make_seeds(seed_dir))]
        _warm_up(target, seed_paths)
        for k in range(cases):
            seed_path = rng.choice(seed_paths)
            files = _seed_files(seed_path)
            victim = rng.choice(files)
            member = str(victim.relative_to(seed_path)) if seed_path.is_dir() else None
            recipe = random_recipe(rng, victim.read_bytes(), target.kind)
            case_dir = tmp / f"case-{k}"
            path = make_case(seed_path, recipe, case_dir, member)
            result = runner(target, path, time_limit_s=time_limit_s,
                            memory_limit_mb=memory_limit_mb)
            outcomes.append(Outcome(target.name, k, recipe,
                                    seed_path.name + (f"/{member}" if member else ""), *result))
            shutil.rmtree(case_dir, ignore_errors=True)
            if progress is not None:
                progress(k + 1, cases)
    return FuzzResult(target.name, tuple(outcomes))


def fuzz_reader(reader_name: str, seeds: Callable[[Path], list] | list, cases: int = 300,
                seed: int = 0, *, kind: str = "binary", **kw) -> FuzzResult:
    """Fuzz one reader (chosen by name, through ``Session.open``) on the samples ``seeds`` writes.

    ``seeds`` is ``make_seeds(directory) -> [paths]`` (for example a ``ReaderContract``'s
    ``make_samples``, whose ``ReaderSample`` objects are accepted) or a list of paths.
    """
    def make(directory):
        made = seeds(directory) if callable(seeds) else list(seeds)
        return [getattr(s, "path", s) for s in made]

    target = Target(f"reader:{reader_name}", make,
                    lambda path: open_with_session(path, reader=reader_name), kind=kind)
    return fuzz(target, cases, seed, **kw)


def summary_table(results: Sequence[FuzzResult]) -> str:
    head = f"{'target':<14}" + "".join(f"{o:>8}" for o in OUTCOMES) + f"{'places':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        c = r.counts()
        lines.append(f"{r.target:<14}" + "".join(f"{c.get(o, 0):>8}" for o in OUTCOMES)
                     + f"{len(r.places()):>8}")
    return "\n".join(lines)

