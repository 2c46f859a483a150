"""Chords from a TOML file: sites and times projected onto the sky plane, or (f, g) points
given directly; then the limb fit, the time-shift fit and what follows from the limb.

The file format is documented in the README ("occcore limb"). Each positive chord gives
its immersion and emersion points with errors |v| sigma_t (SORA's convention: the full
sky-plane speed times the timing error); a negative chord gives its observed path, sampled
only while the camera was exposing (its readout gaps are left out).
"""
from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from astropy import units as u
from astropy.time import Time

from occcore.validate import FREE, Key, check_table, read_toml
from occcore.errors import InputError, UsageError
from occcore.geometry import (AU_KM, ARCSEC_PER_RAD, Geometry, angle_deg,
                              elements_from, read_ephemeris, star_from)
from occcore.model import Chord, LimbFit, Site

_NUMBER = (int, float)
_ANGLE = (str, int, float)
_TIME = (str, _dt.datetime)


def _non_negative(value):
    return None if value >= 0 else "must be >= 0"


def _numbers(value):
    return None if all(isinstance(v, _NUMBER) and not isinstance(v, bool) for v in value) \
        else "must be a list of numbers"


def _gap_list(value):
    ok = all(isinstance(g, list) and len(g) == 2 and all(isinstance(t, _TIME) for t in g)
             for g in value)
    return None if ok else "must be a list of [start, end] times"


CHORD_SCHEMA = {
    "name": Key("", (str,)), "observer": Key("", (str,)), "positive": Key(True, (bool,)),
    "latitude": Key(0.0, _ANGLE), "longitude": Key(0.0, _ANGLE), "height_m": Key(0.0, _NUMBER),
    "immersion": Key("", _TIME), "emersion": Key("", _TIME),
    "immersion_err_s": Key(0.0, _NUMBER, check=_non_negative),
    "emersion_err_s": Key(0.0, _NUMBER, check=_non_negative),
    "clock_offset_s": Key(0.0, _NUMBER),
    "time_shift": Key("fit", (str,), check=lambda v: None if v == "fit" else "must be 'fit'"),
    "start": Key("", _TIME), "end": Key("", _TIME),
    "gaps": Key([], (list,), check=_gap_list),
    "exposure_s": Key(0.0, _NUMBER, check=lambda v: None if v > 0 else "must be > 0"),
    "cycle_s": Key(0.0, _NUMBER, check=lambda v: None if v > 0 else "must be > 0"),
    "step_s": Key(0.0, _NUMBER, check=lambda v: None if v > 0 else "must be > 0"),
    "f_km": Key([], (list,), check=_numbers), "g_km": Key([], (list,), check=_numbers),
    "err_km": Key([], (list,), check=_numbers),
}
CHORD_KEYS = set(CHORD_SCHEMA)
SCHEMA = {
    "event": FREE,
    "star": {"ra": Key("", _ANGLE), "dec": Key("", _ANGLE), "epoch": Key("J2016.0", (str,)),
             "pm_ra_cosdec_mas_yr": Key(0.0, _NUMBER), "pm_dec_mas_yr": Key(0.0, _NUMBER),
             "parallax_mas": Key(0.0, _NUMBER), "name": Key("", (str,))},
    "body": {"ephemeris": Key("", (str,)), "H": Key(0.0, _NUMBER), "name": Key("", (str,)),
             "elements": {"closest_approach_utc": Key("", _TIME),
                          "position_angle_deg": Key(0.0, _NUMBER),
                          "velocity_kms": Key(0.0, _NUMBER), "distance_au": Key(0.0, _NUMBER),
                          "closest_approach_km": Key(0.0, _NUMBER),
                          "closest_approach_arcsec": Key(0.0, _NUMBER)}},
    "fit": FREE,
    "chord": Key([], (list,)),
}
SECTIONS = set(SCHEMA)


@attrs.frozen
class ChordFile:
    path: Path
    event: dict
    geometry: Geometry | None
    chords: tuple[Chord, ...]
    fit: dict
    body: dict
    notes: tuple[str, ...] = ()
    time_shifts: dict = attrs.field(factory=dict)


def _time(value, where: str) -> Time:
    try:
        return Time(str(value), scale="utc")
    except ValueError:
        raise InputError(f"{where}: {value!r} is not an ISO time") from None


def _site(table: dict, where: str) -> Site:
    try:
        return Site(name=table.get("name", where), latitude_deg=angle_deg(table["latitude"], u.deg),
                    longitude_deg=angle_deg(table["longitude"], u.deg),
                    height_m=float(table.get("height_m", 0.0)))
    except KeyError as exc:
        raise InputError(f"{where}: needs {exc.args[0]!r} (or f_km/g_km points)") from None
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def _observed_times(table: dict, where: str, default_step_s: float) -> Time:
    """Sample instants of a negative chord: exposures only, gaps left out."""
    start = _time(table["start"], f"{where}.start")
    end = _time(table["end"], f"{where}.end")
    span = float((end - start).to_value("s"))
    if span <= 0:
        raise InputError(f"{where}: end is not after start")
    step = float(table.get("step_s", min(default_step_s, span / 10)))
    offsets = np.arange(0.0, span + step / 2, step)
    keep = np.ones_like(offsets, bool)
    if "exposure_s" in table and "cycle_s" in table:
        exposure, cycle = float(table["exposure_s"]), float(table["cycle_s"])
        keep &= np.mod(offsets, cycle) <= exposure
    for k, gap in enumerate(table.get("gaps", [])):
        if len(gap) != 2:
            raise InputError(f"{where}: gaps[{k}] must be [start, end]")
        g0 = float((_time(gap[0], where) - start).to_value("s"))
        g1 = float((_time(gap[1], where) - start).to_value("s"))
        keep &= ~((offsets > g0) & (offsets < g1))
    return start + offsets[keep] * u.s


def load_chords(path) -> ChordFile:
    path = Path(path)
    data = read_toml(path, "chords file", InputError)
    check_table(data, SCHEMA, str(path), error=InputError)
    notes: list[str] = []
    star = star_from(data["star"], f"{path} [star]") if "star" in data else None
    body = dict(data.get("body", {}))
    geometry = None
    if "ephemeris" in body:
        ephemeris = read_ephemeris((path.parent / body["ephemeris"]))
        geometry = Geometry(star=star, ephemeris=ephemeris)
    elif "elements" in body:
        geometry = Geometry(star=star, elements=elements_from(body["elements"],
                                                              f"{path} [body]"))
    chords = []
    for k, table in enumerate(data.get("chord", [])):
        if not isinstance(table, dict):
            raise InputError(f"{path}: [[chord]] {k + 1} must be a table, not {table!r:.40}")
        where = f"{path} chord {k + 1} ({table.get('name', '?')})"
        check_table(table, CHORD_SCHEMA, where, error=InputError)
        chords.append(_chord(table, where, geometry, notes))
    if not chords:
        raise InputError(f"{path}: no [[chord]] entries")
    shifts = {}
    to_shift = [c for c, t in zip(chords, data.get("chord", []), strict=True)
                if t.get("time_shift") == "fit"]
    if to_shift:
        chords, shifts = fit_time_shifts(chords, {c.name for c in to_shift}, geometry, notes)
    return ChordFile(path=path, event=dict(data.get("event", {})), geometry=geometry,
                     chords=tuple(chords), fit=dict(data.get("fit", {})), body=body,
                     notes=tuple(notes), time_shifts=shifts)


def _chord(table: dict, where: str, geometry: Geometry | None, notes: list[str]) -> Chord:
    name = str(table.get("name", where))
    positive = bool(table.get("positive", "start" not in table))
    if "f_km" in table:
        f = np.asarray(table["f_km"], float)
        g = np.asarray(table["g_km"], float)
        err = np.asarray(table.get("err_km", np.zeros(len(f))), float)
        if not (len(f) == len(g) == len(err)) or not len(f):
            raise InputError(f"{where}: f_km, g_km and err_km need the same, non-zero length")
        return Chord(name=name, positive=positive, f_km=f, g_km=g, err_km=err if positive else None,
                     meta={"given": "fg"})
    if geometry is None:
        raise InputError(f"{where}: sites and times need [star] and [body] (ephemeris or "
                         "elements) to be projected; or give f_km/g_km")
    site = _site(table, where)
    offset = float(table.get("clock_offset_s", 0.0)) * u.s
    if positive:
        missing = [k for k in ("immersion", "emersion") if k not in table]
        if missing:
            raise InputError(f"{where}: a positive chord needs {', '.join(missing)}")
        times = Time([_time(table["immersion"], where), _time(table["emersion"], where)]) + offset
        errors_s = np.array([float(table.get("immersion_err_s", 0.0)),
                             float(table.get("emersion_err_s", 0.0))])
        if np.any(errors_s < 0):
            raise InputError(f"{where}: timing errors must be >= 0")
        f, g = geometry.fg(site.latitude_deg, site.longitude_deg, site.height_m, times, notes)
        vf, vg = geometry.velocity(site.latitude_deg, site.longitude_deg, site.height_m, times)
        speed = np.hypot(vf, vg)
        return Chord(name=name, positive=True, site=site, f_km=f, g_km=g, err_km=speed * errors_s,
                     times_utc=[t.isot for t in times], time_err_s=errors_s.tolist(),
                     vf_kms=vf, vg_kms=vg, clock_offset_s=float(offset.to_value("s")))
    if "start" not in table or "end" not in table:
        raise InputError(f"{where}: a negative chord needs start and end")
    times = _observed_times(table, where, 0.2) + offset
    f, g = geometry.fg(site.latitude_deg, site.longitude_deg, site.height_m, times, notes)
    return Chord(name=name, positive=False, site=site, f_km=f, g_km=g,
                 times_utc=[times[0].isot, times[-1].isot],
                 clock_offset_s=float(offset.to_value("s")), meta={"samples": len(times)})


def fit_time_shifts(chords: list[Chord], unreliable: set[str], geometry, notes):
    """Shift the chords with unreliable clocks so that their centres fall on the line through
    the centres of the others (an ellipse's chords in one direction have collinear centres).

    Returns the shifted chords and {name: shift in seconds}."""
    reliable = [c for c in chords if c.positive and c.name not in unreliable]
    if len(reliable) < 2:
        raise InputError("the time-shift fit needs at least two positive chords with reliable "
                         "clocks")
    centres = np.array([[c.f_km.mean(), c.g_km.mean()] for c in reliable])
    direction = np.array([reliable[0].f_km[1] - reliable[0].f_km[0],
                          reliable[0].g_km[1] - reliable[0].g_km[0]])
    direction /= np.linalg.norm(direction)
    # the line of centres through the reliable chords (least squares)
    mean = centres.mean(axis=0)
    _, _, vt = np.linalg.svd(centres - mean)
    line = vt[0]
    shifts = {}
    out = []
    for c in chords:
        if c.name not in unreliable:
            out.append(c)
            continue
        centre = np.array([c.f_km.mean(), c.g_km.mean()])
        # move along the chord direction until the centre meets the line
        normal = np.array([-line[1], line[0]])
        denom = float(direction @ normal)
        if abs(denom) < 1e-9:
            raise InputError(f"chord {c.name}: parallel to the line of centres; no time shift")
        along_km = -float((centre - mean) @ normal) / denom
        speed = float(np.hypot(np.mean(c.vf_kms if c.vf_kms is not None else [0.0]),
                               np.mean(c.vg_kms if c.vg_kms is not None else [0.0]))) or 1.0
        signed_dir = np.sign(float(np.array([c.f_km[1] - c.f_km[0],
                                             c.g_km[1] - c.g_km[0]]) @ direction)) or 1.0
        shift_s = signed_dir * along_km / speed
        shifts[c.name] = shift_s
        out.append(attrs.evolve(c, f_km=c.f_km + along_km * direction[0],
                                g_km=c.g_km + along_km * direction[1],
                                time_shift_s=float(shift_s)))
    return out, shifts


def derived(fit: LimbFit, chord_file: ChordFile) -> dict[str, Any]:
    """Equivalent radius, astrometric offset and position of the body, albedo from H."""
    a, e = fit.equatorial_radius_km, fit.oblateness
    out: dict[str, Any] = {"equivalent_radius_km": a * math.sqrt(1 - e)}
    ea = fit.errors.get("equatorial_radius_km")
    if ea:
        out["equivalent_radius_km_err"] = [x * math.sqrt(1 - e) for x in ea]
    geometry = chord_file.geometry
    times = [Time(t) for c in chord_file.chords if c.positive for t in c.times_utc]
    if geometry is not None and times:
        reference = Time(chord_file.event.get("reference_utc", Time(times).mean().isot),
                         scale="utc")
        distance = geometry.distance_km(reference)
        mas = ARCSEC_PER_RAD * 1000 / distance
        out["reference_utc"] = reference.isot
        out["distance_au"] = distance / AU_KM
        out["offset_ra_cosdec_mas"] = fit.center_f_km * mas
        out["offset_dec_mas"] = fit.center_g_km * mas
        for key, par in (("offset_ra_cosdec_mas_err", "center_f_km"),
                         ("offset_dec_mas_err", "center_g_km")):
            if par in fit.errors:
                out[key] = [x * mas for x in fit.errors[par]]
        if geometry.star is not None:
            out.update(_body_position(geometry, reference, fit, distance))
    h = chord_file.body.get("H")
    if h is not None:
        diameter = 2 * out["equivalent_radius_km"]
        out["geometric_albedo"] = (1329.0 / diameter * 10 ** (-float(h) / 5)) ** 2
    return out


def _body_position(geometry: Geometry, t: Time, fit: LimbFit, distance_km: float) -> dict:
    """The body's geocentric RA/Dec at ``t``: the ephemeris (or elements) plus the fitted
    offset of the limb centre."""
    ra_s, dec_s = geometry.star.geocentric(t)
    if geometry.ephemeris is not None:
        ra_b, dec_b, _ = geometry.ephemeris.at(t)
        ra_b, dec_b = float(ra_b[0]), float(dec_b[0])
    else:
        f0, g0 = geometry.elements.geocentre_fg(t)
        # body relative to the star: minus the geocentre's (f, g), as angles
        ra_b = ra_s + (-float(f0[0]) / distance_km) / math.cos(dec_s)
        dec_b = dec_s + (-float(g0[0]) / distance_km)
    ra = ra_b + (fit.center_f_km / distance_km) / math.cos(dec_b)
    dec = dec_b + fit.center_g_km / distance_km
    from astropy.coordinates import SkyCoord
    c = SkyCoord(ra=ra * u.rad, dec=dec * u.rad)
    return {"body_ra_deg": float(c.ra.deg), "body_dec_deg": float(c.dec.deg),
            "body_position": c.to_string("hmsdms", precision=4)}


def fit_options_table(chord_file: ChordFile) -> tuple[str | None, dict]:
    """The [fit] table split into the chosen model and the limb fitter's options."""
    table = dict(chord_file.fit)
    model = table.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise UsageError(f"{chord_file.path}: [fit] model must be a name")
    return model, table
