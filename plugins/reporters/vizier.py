"""``vizier``: the five-line light-curve file of the VizieR B/occ archive.

    Date: Y-M-D hh:mm:ss.ss: <duration s>: <number of readings>
    Star: <HIP>: <SAO>: <XZ80Q>: <Kepler2>: <Tycho2 a-b-c>: <UCAC4 a-b>
    Observer: +-lonD:lonM:lonS: +-latD:latM:latS: <altitude m>: <name>
    Object: Asteroid: <number>: <name>
    Values:<v1>:<v2>:...

The date is the start of the first reading's exposure, rounded to 0.01 s; the values are
scaled so that the largest is 9524 (the archive's convention) and unmeasured readings are
left empty; the curve is trimmed to ``margin_readings`` either side of the event (0 keeps
all). Unused star catalogues are 0 (Tycho-2 ``0-0-1``, UCAC4 ``0-0``); exactly one id
comes from the profile's ``[event] star`` (``UCAC4 350-187717``, ``TYC 1234-567-1``,
``HIP 1234``, ``SAO 123``).
"""
from __future__ import annotations

import re
from pathlib import Path

import attrs
import numpy as np

from occcore.model import ReportInput
from occcore.plugin import NotApplicable, ReporterSpec, hookimpl, write_text
from occplugins.reporters import _common

SCALE_MAX = 9524
CATALOGUES = ("HIP", "SAO", "XZ80Q", "Kepler2", "TYC", "UCAC4")
UNUSED = {"HIP": "0", "SAO": "0", "XZ80Q": "0", "Kepler2": "0", "TYC": "0-0-1", "UCAC4": "0-0"}
ALIASES = {"TYCHO2": "TYC", "TYCHO-2": "TYC", "XZ": "XZ80Q", "K2": "Kepler2",
           "KEPLER2": "Kepler2"}


@attrs.frozen
class VizierOptions:
    margin_readings: int = attrs.field(default=100, validator=attrs.validators.ge(0))


def star_ids(star: str) -> list[str]:
    ids = dict(UNUSED)
    if star:
        m = re.match(r"^\s*([A-Za-z0-9-]+?)\s+(\S+)\s*$", star)
        catalogue = None
        if m:
            catalogue = ALIASES.get(m.group(1).upper(), m.group(1).upper())
        if catalogue not in ids:
            raise NotApplicable(f"star {star!r}: give one of {', '.join(CATALOGUES)} and its id")
        ids[catalogue] = m.group(2)
    return [ids[c] for c in CATALOGUES]


def _dms(value_deg: float, width: int) -> str:
    sign, d, m, s = _common.sexagesimal(value_deg, 1)
    return f"{sign}{d:0{width}d}:{m:02d}:{s:04.1f}"


def vizier_text(run: ReportInput, options: VizierOptions) -> tuple[str, str]:
    lc = _common.require_lightcurve(run)
    starts = _common.start_offsets_s(lc)
    flux = np.asarray(lc.flux, float)
    keep = slice(None)
    found = [_common.edge(run, e) for e in ("immersion", "emersion")]
    edges = [e.offset_s(lc.times.epoch) for e in found if e is not None]
    if options.margin_readings and edges:
        mids = _common.mid_offsets_s(lc)
        first = max(int(np.searchsorted(mids, min(edges))) - options.margin_readings, 0)
        last = int(np.searchsorted(mids, max(edges))) + options.margin_readings
        keep = slice(first, last)
    starts, flux = starts[keep], flux[keep]
    midnight, seconds = _common.seconds_of_day(lc, starts)
    cycle = float(np.median(np.diff(starts))) if len(starts) > 1 else _common.exposure_s(lc)
    duration = seconds[-1] - seconds[0] + cycle
    peak = np.nanmax(flux)
    if not np.isfinite(peak) or peak <= 0:
        raise NotApplicable("the light curve has no positive value to scale to 9524")
    values = [str(int(round(v / peak * SCALE_MAX))) if np.isfinite(v) else " " for v in flux]
    event, site, observer = run.section("event"), run.section("site"), run.section("observer")
    if "latitude_deg" not in site or "longitude_deg" not in site:
        raise NotApplicable("the observer profile has no [site] latitude and longitude")
    day = midnight.utc.isot[:10]
    y, mo, d = (int(x) for x in day.split("-"))
    lines = [
        f"Date: {y}-{mo}-{d} {_common.clock(seconds[0], 2)}: {duration:.2f}: {len(values)}",
        "Star: " + ": ".join(star_ids(str(event.get("star", "")))),
        f"Observer: {_dms(site['longitude_deg'], 3)}: {_dms(site['latitude_deg'], 2)}: "
        f"{int(round(float(site.get('altitude_m', 0))))}: {observer.get('name', '')}",
        f"Object: Asteroid: {event.get('asteroid_number', 0)}: {event.get('asteroid', '')}",
        "Values:" + ":".join(values),
    ]
    stamp = _common.clock(seconds[0], 2).replace(":", "").replace(".", "_")
    name = f"({event.get('asteroid_number', 0)})_{day.replace('-', '')}_{stamp}.dat"
    return "\r\n".join(lines) + "\r\n", name


def read_vizier(path) -> dict:
    """The five lines back: start (ISO, 0.01 s), duration, count, star ids, site, object, values."""
    lines = Path(path).read_text().splitlines()
    if len(lines) != 5 or not lines[0].startswith("Date: "):
        raise ValueError(f"{path}: not a five-line VizieR light-curve file")
    date, clock, duration, count = re.match(
        r"Date: (\d+-\d+-\d+) (\d\d:\d\d:\d\d\.\d+): ([\d.]+): (\d+)$", lines[0]).groups()
    y, m, d = (int(x) for x in date.split("-"))
    observer = lines[2][len("Observer: "):].split(": ")
    obj = lines[3][len("Object: "):].split(": ")
    values = [None if v.strip() == "" else int(v) for v in lines[4][len("Values:"):].split(":")]
    return {"start_utc": f"{y:04d}-{m:02d}-{d:02d}T{clock}", "duration_s": float(duration),
            "count": int(count), "star": lines[1][len("Star: "):].split(": "),
            "longitude": observer[0], "latitude": observer[1], "altitude_m": int(observer[2]),
            "observer": ": ".join(observer[3:]), "object": obj, "values": values}


def _write(run: ReportInput, destination, *, options, context):
    text, name = vizier_text(run, options or VizierOptions())
    return [write_text(Path(destination) / name, text)]


@hookimpl
def occcore_reporters():
    yield ReporterSpec(name="vizier", summary="five-line VizieR B/occ light-curve file",
                       options=VizierOptions, write=_write)
