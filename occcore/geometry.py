"""Sky-plane (tangent-plane) geometry of an occultation, offline.

The tangent plane is perpendicular to the geocentre-star direction; f grows with right
ascension (east), g towards the ICRS north pole. A chord point (f, g) is the observer's
position relative to the body on that plane (SORA's convention), computed with the
orthographic projections of SORA's equations 7-9:

    xi  = rho cos(dec) sin(ra - ra*)
    eta = rho [sin(dec) cos(dec*) - cos(dec) sin(dec*) cos(ra - ra*)]
    f = xi_observer - xi_body,   g = eta_observer - eta_body

The observer is the WGS84 site rotated into GCRS by astropy/ERFA with the Earth-orientation
tables that ship with astropy (``astropy-iers-data``): nothing is downloaded. For dates
beyond those tables UT1-UTC is extrapolated, and the result says so.

The body comes from an ephemeris table (time, RA, Dec, distance; a JPL Horizons text
export works) or from occultation elements: closest-approach time, closest approach,
position angle of the body from the star at that instant (north through east), shadow
velocity (positive prograde = eastward) and distance, with straight-line motion.
"""
from __future__ import annotations

import contextlib
import re
import warnings
from pathlib import Path

import attrs
import numpy as np
from astropy import units as u
from astropy.coordinates import Angle, EarthLocation
from astropy.time import Time
from astropy.utils import iers

from occcore.errors import InputError

AU_KM = 1.495978707e8
ARCSEC_PER_RAD = 206264.80624709636

iers.conf.auto_download = False          # offline: use the tables that ship with astropy


@contextlib.contextmanager
def iers_notes(notes: list[str]):
    """Collect astropy's warnings about Earth-orientation accuracy into ``notes``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = str(w.message)
        if "IERS" in text or "UT1" in text or "polar motion" in text or "leap" in text.lower():
            note = f"Earth orientation: {text.splitlines()[0]}"
            if note not in notes:
                notes.append(note)


def angle_deg(value, unit) -> float:
    """A float, or a sexagesimal string ("18 55 15.65", "-31 31 21.6"), as degrees."""
    if isinstance(value, (int, float)):
        return float(Angle(value, unit=unit).deg)
    try:
        return float(Angle(str(value), unit=unit).deg)
    except (ValueError, u.UnitsError):
        raise InputError(f"cannot read the angle {value!r}") from None


@attrs.frozen(kw_only=True)
class Star:
    """The occulted star: ICRS position at ``epoch`` with optional proper motion/parallax."""

    ra_deg: float
    dec_deg: float
    epoch: Time = attrs.field(factory=lambda: Time("J2016.0"))
    pm_ra_cosdec_mas_yr: float = 0.0
    pm_dec_mas_yr: float = 0.0
    parallax_mas: float = 0.0

    def geocentric(self, t: Time) -> tuple[float, float]:
        """(ra, dec) in radians of the star seen from the geocentre at ``t``: proper motion
        applied, and parallax as the Earth's barycentric offset."""
        from astropy.coordinates import get_body_barycentric
        dt_yr = float((t.tdb - self.epoch.tdb).to_value("yr"))
        ra = np.radians(self.ra_deg)
        dec = np.radians(self.dec_deg)
        # proper motion as a small displacement on the sphere (mas/yr -> rad)
        mas = np.radians(1 / 3.6e6)
        direction = _unit(ra, dec)
        e_ra = np.array([-np.sin(ra), np.cos(ra), 0.0])
        e_dec = np.array([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
        direction = direction + dt_yr * mas * (self.pm_ra_cosdec_mas_yr * e_ra
                                               + self.pm_dec_mas_yr * e_dec)
        if self.parallax_mas > 0:
            distance_au = 1.0 / (self.parallax_mas * mas)
            earth = get_body_barycentric("earth", t).xyz.to_value(u.au)
            direction = direction * distance_au - earth
        direction /= np.linalg.norm(direction)
        return float(np.arctan2(direction[1], direction[0]) % (2 * np.pi)), \
            float(np.arcsin(direction[2]))


def _unit(ra, dec):
    return np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def orthographic(rho, ra, dec, ra_star: float, dec_star: float):
    """SORA's equations 7/8: (xi, eta) of a point at distance ``rho`` and (ra, dec) [rad]."""
    dra = ra - ra_star
    xi = rho * np.cos(dec) * np.sin(dra)
    eta = rho * (np.sin(dec) * np.cos(dec_star) - np.cos(dec) * np.sin(dec_star) * np.cos(dra))
    return xi, eta


def observer_gcrs_km(latitude_deg: float, longitude_deg: float, height_m: float, t: Time,
                     notes: list[str] | None = None) -> np.ndarray:
    """Geocentric GCRS position (km) of a WGS84 site at times ``t``: shape (n, 3)."""
    site = EarthLocation.from_geodetic(lon=longitude_deg * u.deg, lat=latitude_deg * u.deg,
                                       height=height_m * u.m, ellipsoid="WGS84")
    with iers_notes(notes if notes is not None else []):
        position, _ = site.get_gcrs_posvel(Time(t).reshape(-1))
    return position.xyz.to_value(u.km).T


@attrs.frozen
class EphemerisTable:
    """Geocentric body positions at tabulated times, interpolated with cubic splines."""

    times: Time
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    distance_au: np.ndarray
    source: str = ""

    def at(self, t: Time) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ra rad, dec rad, distance km) at ``t``."""
        from scipy.interpolate import CubicSpline
        x = (self.times - self.times[0]).to_value("s")
        xt = np.atleast_1d((Time(t) - self.times[0]).to_value("s"))
        if xt.min() < x[0] - 1e-6 or xt.max() > x[-1] + 1e-6:
            raise InputError(f"{self.source}: the ephemeris covers {self.times[0].isot} to "
                             f"{self.times[-1].isot}, not {Time(t).reshape(-1)[0].isot}")
        ra = np.unwrap(np.radians(self.ra_deg))
        kind = CubicSpline if len(x) >= 4 else (lambda xx, yy: (lambda q: np.interp(q, xx, yy)))
        return (kind(x, ra)(xt) % (2 * np.pi), kind(x, np.radians(self.dec_deg))(xt),
                kind(x, self.distance_au)(xt) * AU_KM)


_HZ_DATE = re.compile(r"^\s*(\d{4}-[A-Za-z]{3}-\d{2}|\d{4}-\d{2}-\d{2})"
                      r"[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d*)?)?)")
_MONTHS = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"], 1)}


def read_ephemeris(path) -> EphemerisTable:
    """A JPL Horizons text export (rows between $$SOE and $$EOE) or a plain table:
    date time, RA (h m s or degrees), Dec (d m s or degrees), distance (au)."""
    path = Path(path)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None
    if any(ln.strip() == "$$SOE" for ln in lines):
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "$$SOE") + 1
        end = next(i for i, ln in enumerate(lines) if ln.strip() == "$$EOE")
        lines = lines[start:end]
    times, ras, decs, dists = [], [], [], []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _HZ_DATE.match(line)
        if not m:
            raise InputError(f"{path}: line {number}: no 'YYYY-MM-DD hh:mm[:ss]' date: {line!r}")
        day, clock = m.groups()
        if re.match(r"\d{4}-[A-Za-z]{3}-\d{2}", day):
            y, mon, d = day.split("-")
            day = f"{y}-{_MONTHS[mon.lower()]:02d}-{d}"
        rest = line[m.end():].replace(",", " ").split()
        rest = [x for x in rest if not re.fullmatch(r"[*A-Za-z]+", x)]   # Horizons flags
        try:
            if len(rest) >= 7:
                ra = angle_deg(" ".join(rest[0:3]), u.hourangle)
                dec = angle_deg(" ".join(rest[3:6]), u.deg)
                dist = float(rest[6])
            else:
                ra, dec, dist = float(rest[0]), float(rest[1]), float(rest[2])
        except (ValueError, IndexError, InputError):
            raise InputError(f"{path}: line {number}: expected RA, Dec and distance (au) after "
                             f"the date: {line!r}") from None
        times.append(f"{day}T{clock}")
        ras.append(ra)
        decs.append(dec)
        dists.append(dist)
    if len(times) < 2:
        raise InputError(f"{path}: fewer than two ephemeris rows")
    return EphemerisTable(times=Time(times, scale="utc"), ra_deg=np.array(ras),
                          dec_deg=np.array(decs), distance_au=np.array(dists), source=str(path))


@attrs.frozen(kw_only=True)
class Elements:
    """Occultation elements with straight-line motion of the body relative to the star."""

    closest_approach: Time
    closest_approach_km: float
    position_angle_deg: float
    velocity_kms: float
    distance_au: float

    def geocentre_fg(self, t: Time) -> tuple[np.ndarray, np.ndarray]:
        """(f, g) of the geocentre relative to the body, km."""
        pa = np.radians(self.position_angle_deg)
        dt = np.atleast_1d((Time(t) - self.closest_approach).to_value("s"))
        # the body at closest approach, relative to the star: ca (sin PA, cos PA)
        xi0 = self.closest_approach_km * np.sin(pa)
        eta0 = self.closest_approach_km * np.cos(pa)
        # it moves perpendicular to that; prograde (v > 0) has an eastward component
        direction = np.array([np.cos(pa), -np.sin(pa)])
        if direction[0] < 0 or (direction[0] == 0 and direction[1] < 0):
            direction = -direction
        xi = xi0 + self.velocity_kms * dt * direction[0]
        eta = eta0 + self.velocity_kms * dt * direction[1]
        return -xi, -eta


@attrs.frozen(kw_only=True)
class Geometry:
    """Everything needed to turn an instant at a site into (f, g)."""

    star: Star | None = None
    ephemeris: EphemerisTable | None = None
    elements: Elements | None = None

    def distance_km(self, t: Time) -> float:
        if self.elements is not None:
            return self.elements.distance_au * AU_KM
        return float(np.mean(self.ephemeris.at(t)[2]))

    def fg(self, latitude_deg: float, longitude_deg: float, height_m: float, t: Time,
           notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(f, g) in km of a site at times ``t``."""
        if self.star is None and self.elements is None:
            raise InputError("the geometry needs a star (and an ephemeris) or elements")
        t = Time(t).reshape(-1)
        reference = t[len(t) // 2]
        if self.star is not None:
            ra_s, dec_s = self.star.geocentric(reference)
        else:
            ra_s, dec_s = 0.0, 0.0     # elements are already star-relative
        r = observer_gcrs_km(latitude_deg, longitude_deg, height_m, t, notes)
        rho = np.linalg.norm(r, axis=1)
        ra_o = np.arctan2(r[:, 1], r[:, 0])
        dec_o = np.arcsin(r[:, 2] / rho)
        xi_o, eta_o = orthographic(rho, ra_o, dec_o, ra_s, dec_s)
        if self.elements is not None:
            if self.star is None:
                raise InputError("occultation elements need the star's position too (its "
                                 "direction defines the plane of the observers)")
            f0, g0 = self.elements.geocentre_fg(t)
            return xi_o + f0, eta_o + g0
        ra_b, dec_b, dist = self.ephemeris.at(t)
        xi_b, eta_b = orthographic(dist, ra_b, dec_b, ra_s, dec_s)
        return xi_o - xi_b, eta_o - eta_b

    def velocity(self, latitude_deg, longitude_deg, height_m, t: Time, dt_s: float = 0.5):
        """(vf, vg) in km/s of a site's (f, g) at ``t``."""
        t = Time(t).reshape(-1)
        f1, g1 = self.fg(latitude_deg, longitude_deg, height_m, t - dt_s * u.s)
        f2, g2 = self.fg(latitude_deg, longitude_deg, height_m, t + dt_s * u.s)
        return (f2 - f1) / (2 * dt_s), (g2 - g1) / (2 * dt_s)


def star_from(table: dict, where: str) -> Star:
    try:
        ra = angle_deg(table["ra"], u.hourangle if isinstance(table["ra"], str) else u.deg)
        dec = angle_deg(table["dec"], u.deg)
    except KeyError as exc:
        raise InputError(f"{where}: [star] needs {exc.args[0]!r}") from None
    epoch = table.get("epoch", "J2016.0")
    return Star(ra_deg=ra, dec_deg=dec, epoch=Time(epoch) if isinstance(epoch, str) else
                Time(epoch, format="jyear"),
                pm_ra_cosdec_mas_yr=float(table.get("pm_ra_cosdec_mas_yr", 0.0)),
                pm_dec_mas_yr=float(table.get("pm_dec_mas_yr", 0.0)),
                parallax_mas=float(table.get("parallax_mas", 0.0)))


def elements_from(table: dict, where: str) -> Elements:
    need = ("closest_approach_utc", "position_angle_deg", "velocity_kms", "distance_au")
    missing = [k for k in need if k not in table]
    if missing:
        raise InputError(f"{where}: [body.elements] needs {', '.join(missing)}")
    distance_au = float(table["distance_au"])
    if "closest_approach_km" in table:
        ca = float(table["closest_approach_km"])
    elif "closest_approach_arcsec" in table:
        ca = float(table["closest_approach_arcsec"]) / ARCSEC_PER_RAD * distance_au * AU_KM
    else:
        raise InputError(f"{where}: [body.elements] needs closest_approach_km or "
                         "closest_approach_arcsec")
    return Elements(closest_approach=Time(table["closest_approach_utc"], scale="utc"),
                    closest_approach_km=ca,
                    position_angle_deg=float(table["position_angle_deg"]),
                    velocity_kms=float(table["velocity_kms"]), distance_au=distance_au)
