"""Drift-scan occultation timing by John Broughton's method (the analysis engine).

One long CCD exposure from a stationary telescope trails every star across the chip;
an occultation is a gap in the target's trail. This module finds the trail, builds
its profile along the trail (the mean of a few rows across it, sampled along the line
with bilinear interpolation when the trail is tilted), and locates the trail start,
disappearance (D), reappearance (R) and trail end where the profile crosses 49 % of the
way from the local lower to the local upper level (each edge with its own levels).

Positions become times two ways:

* ``linear``: proportionally between the trail ends and the shutter open/close times;
* ``sidereal``: through right ascension (plate scale and declination, or a WCS): one
  pixel is ``plate_scale / (15 cos dec)`` sidereal seconds, times 0.99727 solar
  seconds; the mismatch between the derived and the measured end of exposure is shared
  equally between both ends (every time shifted by half of it), as in Broughton's
  worked Lutetia example.

The 1-sigma error of each edge comes from the roughness of the unocculted trail: the
scatter of the profile about its local mean divided by the slope of the edge (from the
edge width measured on the trail ends), plus the error of the two levels, propagated
through the conversion together with the errors of the trail ends.

``fit_psf_edges`` fits the trail profile with each edge a step convolved with the
trail's along-trail PSF (a Gaussian whose width is fitted on the trail ends, integrated
over each pixel); with ``psf_sigma_px=0`` the same code is the plain square well.

numpy only at import; scipy and astropy are imported inside the functions.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import numpy as np

SIDEREAL_TO_SOLAR = 0.99727
"""One sidereal second in solar (UTC) seconds (Broughton's factor)."""
LEVEL_FRACTION = 0.49
"""Where an edge is measured: 49 % of the way from the lower to the upper level."""
EDGES = ("start", "disappearance", "reappearance", "end")


class DriftScanError(ValueError):
    """An analysis failure; the reader turns it into an InputError naming the file."""


# -- records ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Edge:
    """One measured edge of the trail: position along the trail ``s_px`` (and in the
    image), the local levels, the crossing level and the 1-sigma position error."""

    name: str
    s_px: float
    x_px: float
    y_px: float
    lower: float
    upper: float
    level: float
    err_px: float
    rising: bool
    crossings: int
    note: str = ""


@attrs.frozen(kw_only=True)
class Conversion:
    """Edge times (seconds after the shutter opened) by one conversion method."""

    method: str
    times_s: dict
    err_s: dict
    seconds_per_px: float
    mismatch_s: float = 0.0      # measured minus derived end of exposure (sidereal only)
    note: str = ""


@attrs.frozen(kw_only=True)
class DriftScanResult:
    """The analysis of one drift-scan image (see ``to_dict`` for the JSON form)."""

    source: str
    angle_deg: float
    trail_point_xy: tuple[float, float]       # a point on the trail's centre line
    trail_n_px: float                          # the centre line's offset across the trail
    profile_rows: int
    edge_sigma_px: float                       # Gaussian width of the sampled edges (erf fit)
    psf_sigma_px: float                        # along-trail PSF width, pixel box removed
    cross_sigma_px: float                      # cross-trail width of the trail
    roughness: float                           # profile scatter on the unocculted trail
    roughness_correlation: float               # lag-1 autocorrelation of that scatter
    sky: float
    edges: dict
    shutter_open_utc: str
    shutter_close_utc: str
    exposure_s: float
    linear: Conversion
    sidereal: Conversion | None
    primary: str
    event_detected: bool
    s_px: np.ndarray = attrs.field(repr=False)
    profile: np.ndarray = attrs.field(repr=False)
    notes: tuple[str, ...] = ()

    @property
    def conversion(self) -> Conversion:
        return self.sidereal if self.primary == "sidereal" else self.linear

    def time_s(self, s_px):
        """Seconds after opening of positions ``s_px`` along the trail (primary method)."""
        return position_to_time_s(self, np.asarray(s_px, float), self.primary)

    def to_dict(self) -> dict:
        from astropy import units as u
        from astropy.time import Time
        opened = Time(self.shutter_open_utc, scale="utc")
        conv = self.conversion

        def utc(t):
            return None if t is None else Time(opened + t * u.s, precision=3).isot

        out = {
            "method": "Broughton drift scan, 49 % level crossings",
            "primary_conversion": self.primary,
            "event_detected": self.event_detected,
            "shutter_open_utc": self.shutter_open_utc,
            "shutter_close_utc": self.shutter_close_utc,
            "exposure_s": self.exposure_s,
            "trail": {"angle_deg": self.angle_deg, "point_xy": list(self.trail_point_xy),
                      "profile_rows": self.profile_rows, "edge_sigma_px": self.edge_sigma_px,
                      "psf_sigma_px": self.psf_sigma_px,
                      "cross_sigma_px": self.cross_sigma_px, "roughness": self.roughness,
                      "roughness_lag1_correlation": self.roughness_correlation,
                      "sky": self.sky},
            "edges": {name: attrs.asdict(edge) for name, edge in self.edges.items()},
            "times_utc": {name: utc(conv.times_s.get(name)) for name in self.edges},
            "times_s": dict(conv.times_s),
            "err_s": dict(conv.err_s),
            "conversions": {c.method: attrs.asdict(c) for c in (self.linear, self.sidereal)
                            if c is not None},
            "notes": list(self.notes),
        }
        for name in ("disappearance", "reappearance"):
            out[name] = None if name not in self.edges else {
                "utc": utc(conv.times_s[name]), "s_after_open": conv.times_s[name],
                "err_s": conv.err_s[name], "err90_s": 1.645 * conv.err_s[name],
                "x_px": self.edges[name].x_px, "y_px": self.edges[name].y_px}
        if self.event_detected:
            out["duration_s"] = conv.times_s["reappearance"] - conv.times_s["disappearance"]
        return out


# -- image statistics and geometry ---------------------------------------------------------------


def sky_level(image: np.ndarray) -> tuple[float, float]:
    """Sigma-clipped median and standard deviation of the sky (trails are a minority)."""
    values = np.asarray(image, float).ravel()
    values = values[np.isfinite(values)]
    centre, spread = np.median(values), 1.4826 * np.median(np.abs(values - np.median(values)))
    for _ in range(5):
        keep = np.abs(values - centre) < 3 * max(spread, 1e-12)
        if keep.sum() < 10:
            break
        centre = np.median(values[keep])
        spread = 1.4826 * np.median(np.abs(values[keep] - centre))
    return float(centre), float(max(spread, 1e-12))


def _axes(angle_deg: float):
    a = math.radians(angle_deg)
    return np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])


def to_image(s, n, angle_deg: float):
    """(x, y) of along/across-trail coordinates ``s``, ``n``."""
    along, across = _axes(angle_deg)
    s, n = np.asarray(s, float), np.asarray(n, float)
    return s * along[0] + n * across[0], s * along[1] + n * across[1]


def to_trail(x, y, angle_deg: float):
    along, across = _axes(angle_deg)
    x, y = np.asarray(x, float), np.asarray(y, float)
    return x * along[0] + y * along[1], x * across[0] + y * across[1]


def cross_profile(residual: np.ndarray, angle_deg: float, bin_px: float = 0.5):
    """Mean of the sky-subtracted image in bins of the across-trail coordinate."""
    h, w = residual.shape
    yy, xx = np.mgrid[0:h, 0:w]
    _, n = to_trail(xx, yy, angle_deg)
    n0 = n.min()
    index = ((n - n0) / bin_px).astype(np.int64).ravel()
    total = np.bincount(index, weights=residual.ravel())
    count = np.bincount(index)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    centres = n0 + (np.arange(len(mean)) + 0.5) * bin_px
    return centres, mean, count


def search_direction(residual: np.ndarray, step_deg: float = 0.5) -> float:
    """The trail direction (-90, 90] that makes the trails sharpest across."""
    best, best_angle = -np.inf, 0.0
    for angle in np.arange(-90 + step_deg, 90 + step_deg / 2, step_deg):
        _, mean, count = cross_profile(residual, angle, 1.0)
        score = np.max(np.where(count > 5, mean * np.sqrt(count), 0))
        if score > best:
            best, best_angle = score, float(angle)
    return best_angle


def find_trails(residual: np.ndarray, angle_deg: float, sky_sigma: float,
                min_snr: float = 8.0) -> list[dict]:
    """Trails as peaks of the across-trail mean profile, brightest first."""
    centres, mean, count = cross_profile(residual, angle_deg, 0.5)
    noise = sky_sigma / np.sqrt(np.maximum(count, 1))
    snr = np.where(count > 5, mean / noise, 0)
    peaks = []
    for k in range(2, len(mean) - 2):
        if snr[k] >= min_snr and mean[k] == np.max(mean[k - 2:k + 3]) and mean[k] > 0:
            lo, hi = max(0, k - 3), min(len(mean), k + 4)
            weights = np.clip(mean[lo:hi], 0, None)
            n0 = float(np.sum(weights * centres[lo:hi]) / np.sum(weights))
            peaks.append({"n_px": n0, "snr": float(snr[k]), "mean": float(mean[k])})
    peaks.sort(key=lambda p: -p["snr"])
    merged = []
    for p in peaks:   # neighbouring bins of one broad trail
        if all(abs(p["n_px"] - q["n_px"]) > 2.0 for q in merged):
            merged.append(p)
    return merged


def sample_band(image: np.ndarray, angle_deg: float, n_offsets, s_values) -> np.ndarray:
    """Bilinear samples ``(len(n_offsets), len(s_values))`` along lines of the trail;
    NaN outside the image."""
    from scipy.ndimage import map_coordinates
    s_grid, n_grid = np.meshgrid(np.asarray(s_values, float), np.asarray(n_offsets, float))
    x, y = to_image(s_grid, n_grid, angle_deg)
    h, w = image.shape
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    values = map_coordinates(np.asarray(image, float), [y.ravel(), x.ravel()], order=1,
                             mode="nearest").reshape(x.shape)
    return np.where(inside, values, np.nan)


def s_span(shape, angle_deg: float) -> tuple[float, float]:
    h, w = shape
    corners_s, _ = to_trail(np.array([0, w - 1, 0, w - 1]), np.array([0, 0, h - 1, h - 1]),
                            angle_deg)
    return float(np.floor(corners_s.min())), float(np.ceil(corners_s.max()))


def trail_profile(image: np.ndarray, angle_deg: float, n_px: float, rows: int, sky: float,
                  s_range=None):
    """(s, mean over ``rows`` lines 1 px apart centred on the trail, sky subtracted)."""
    lo, hi = s_range or s_span(image.shape, angle_deg)
    s = np.arange(lo, hi + 1.0)
    offsets = n_px + np.arange(rows) - (rows - 1) / 2
    band = sample_band(image, angle_deg, offsets, s)
    valid = np.all(np.isfinite(band), axis=0)
    return s[valid], band[:, valid].mean(axis=0) - sky


def refine_line(image, angle_deg: float, n_px: float, sky: float, half_px: float = 4.0):
    """Fit the trail's centre line: centroid across the trail at each s, weighted by the
    trail's brightness there; returns (angle_deg, n_px, cross_sigma_px)."""
    lo, hi = s_span(image.shape, angle_deg)
    s = np.arange(lo, hi + 1.0)
    offsets = np.arange(-half_px, half_px + 0.25, 0.5)
    band = sample_band(image, angle_deg, n_px + offsets, s) - sky
    valid = np.all(np.isfinite(band), axis=0)
    if valid.sum() < 10:   # the line runs along the frame's border: keep it as it is
        return angle_deg, n_px, 1.5
    band, s = band[:, valid], s[valid]
    flux = np.clip(band, 0, None).sum(axis=0)
    strong = flux > 0.5 * np.percentile(flux, 90)
    if strong.sum() < 10:
        return angle_deg, n_px, 1.5
    weights = np.clip(band[:, strong], 0, None)
    centroid = (weights * offsets[:, None]).sum(0) / weights.sum(0)
    slope, intercept = np.polyfit(s[strong], centroid, 1, w=np.sqrt(flux[strong]))
    second = (weights * (offsets[:, None] - centroid[None, :]) ** 2).sum(0) / weights.sum(0)
    cross_sigma = float(np.sqrt(max(np.median(second) - 1 / 12, 0.09)))
    new_angle = angle_deg + math.degrees(math.atan(slope))
    # the line n = n_px + intercept + slope * s, expressed in the rotated frame
    x0, y0 = to_image(0.0, n_px + intercept, angle_deg)
    _, n_new = to_trail(x0, y0, new_angle)
    return float(new_angle), float(n_new), cross_sigma


# -- edges ---------------------------------------------------------------------------------------


def _smooth(values, width: int):
    if width <= 1:
        return values
    kernel = np.ones(width) / width
    return np.convolve(np.pad(values, width // 2, mode="edge"), kernel, mode="valid")[:len(values)]


def approximate_edges(s, p, min_depth_sigma: float = 6.0, margin_px: float = 4.0):
    """Coarse start, end and (if any) the most significant gap of a mesa profile."""
    smooth = _smooth(p, 3)
    top = np.percentile(smooth, 90)
    high = smooth > 0.5 * top
    idx = np.flatnonzero(high)
    if len(idx) < 10:
        raise DriftScanError("no trail along this line (profile never rises)")
    start_i, end_i = idx[0], idx[-1]
    inside = slice(start_i + int(margin_px) + 2, end_i - int(margin_px) - 1)
    plateau = p[inside]
    upper = np.median(plateau)
    rough = 1.4826 * np.median(np.abs(np.diff(plateau))) / np.sqrt(2)
    out = {"start": float(s[start_i]), "end": float(s[end_i]), "upper": float(upper),
           "rough": float(max(rough, 1e-12))}
    width = 3
    sm = _smooth(plateau, width)
    k = int(np.argmin(sm))
    depth = upper - sm[k]
    # the smoothed plateau's own scatter: correlated roughness (scintillation) included
    scatter = 1.4826 * np.median(np.abs(sm - np.median(sm)))
    significance = depth / max(scatter, out["rough"] / np.sqrt(width))
    out["gap_significance"] = float(significance)
    if significance < min_depth_sigma:
        return out
    threshold = upper - 0.5 * depth
    below = sm < threshold
    a = k
    while a > 0 and below[a - 1]:
        a -= 1
    b = k
    while b < len(sm) - 1 and below[b + 1]:
        b += 1
    s_in = s[inside]
    out["disappearance"] = float(s_in[a]) - 0.5
    out["reappearance"] = float(s_in[b]) + 0.5
    out["bottom"] = float(sm[k])
    return out


def _crossings(s, p, level):
    d = p - level
    sign = np.sign(d)
    k = np.flatnonzero(sign[:-1] * sign[1:] <= 0)
    k = k[(d[k] != d[k + 1])]
    return s[k] + (level - p[k]) / (p[k + 1] - p[k]) * (s[k + 1] - s[k])


def _mean_err(values, rho: float):
    n = len(values)
    n_eff = max(1.0, n * (1 - rho) / (1 + rho))
    return float(np.std(values, ddof=1) / np.sqrt(n_eff)) if n > 1 else float("nan")


def locate_edge(s, p, name: str, approx_px: float, rising: bool, *, transition_px: float,
                window_px: float, slope_sigma_px: float, rough_upper: float,
                rough_lower: float, rho: float, fraction: float = LEVEL_FRACTION,
                limits=(-np.inf, np.inf)) -> Edge:
    """Where the profile crosses ``fraction`` of the way from the local lower to the local
    upper level near ``approx_px``; levels from windows beyond ``transition_px`` on
    each side (kept inside ``limits``, e.g. the gap)."""
    centre = approx_px
    note = ""
    for _ in range(2):
        left = (s >= max(centre - transition_px - window_px, limits[0]))
        left &= s <= centre - transition_px
        right = (s >= centre + transition_px)
        right &= s <= min(centre + transition_px + window_px, limits[1])
        if left.sum() < 2 or right.sum() < 2:
            # a gap shorter than the transition: its deepest samples stand for its level
            short = (s > limits[0]) & (s < limits[1])
            side = left if rising else right
            if short.sum() >= 1 and side.sum() < 2:
                side = short & (p <= np.percentile(p[short], 50))
                if rising:
                    left = side
                else:
                    right = side
                note = "gap shorter than the edge transition: lower level from its deepest samples"
            if left.sum() < 1 or right.sum() < 1:
                raise DriftScanError(f"{name}: not enough profile on both sides of the edge "
                                     f"at s = {approx_px:.1f} px")
        lower_v, upper_v = (p[left], p[right]) if rising else (p[right], p[left])
        lower, upper = float(np.mean(lower_v)), float(np.mean(upper_v))
        level = lower + fraction * (upper - lower)
        near = (s >= centre - transition_px - 1) & (s <= centre + transition_px + 1)
        found = _crossings(s[near], p[near], level)
        if len(found) == 0:
            note = "no crossing of the level near the edge; coarse position kept"
            position = centre
            break
        position = float(np.median(found))
        if abs(position - centre) < 0.05:
            break
        centre = position
    step = upper - lower
    if step <= 0:
        raise DriftScanError(f"{name}: the profile does not change across the edge "
                             f"(lower {lower:.1f}, upper {upper:.1f})")
    from statistics import NormalDist
    z = NormalDist().inv_cdf(fraction)
    slope = step * math.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * slope_sigma_px)
    # photon noise: the variance at the crossing lies between those of the two levels
    noise_at_level = math.sqrt((1 - fraction) * rough_lower ** 2 + fraction * rough_upper ** 2)
    level_err = math.hypot((1 - fraction) * _mean_err(lower_v, rho) if len(lower_v) > 1 else
                           (1 - fraction) * rough_lower,
                           fraction * _mean_err(upper_v, rho) if len(upper_v) > 1 else
                           fraction * rough_upper)
    err = math.hypot(noise_at_level, level_err) / slope
    if len(found) == 0:
        err = max(err, transition_px)
    elif len(found) > 1:
        err = max(err, 0.5 * float(np.ptp(found)))
        note = note or f"{len(found)} crossings of the level (noisy edge); their median used"
    return Edge(name=name, s_px=position, x_px=0.0, y_px=0.0, lower=lower, upper=upper,
                level=level, err_px=float(err), rising=rising, crossings=int(len(found)),
                note=note)


def _erf_edge(s, lower, upper, s0, sigma, rising):
    from scipy.special import ndtr
    z = (s - s0) / sigma
    return lower + (upper - lower) * (ndtr(z) if rising else ndtr(-z))


def edge_width_px(s, p, approx_px: float, rising: bool, half_window_px: float,
                  sigma0: float) -> float | None:
    """Gaussian width of one trail end (an erf fitted to the profile), or None."""
    from scipy.optimize import least_squares
    near = np.abs(s - approx_px) <= half_window_px
    if near.sum() < 8:
        return None
    ss, pp = s[near], p[near]
    hi, lo = np.percentile(pp, 90), np.percentile(pp, 10)
    x0 = [lo, hi, approx_px, sigma0]
    try:
        fit = least_squares(lambda q: _erf_edge(ss, q[0], q[1], q[2], abs(q[3]) + 1e-3, rising)
                            - pp, x0)
    except Exception:   # noqa: BLE001 - a failed fit only loses this width estimate
        return None
    sigma = abs(fit.x[3]) + 1e-3
    return float(sigma) if fit.success and 0.2 < sigma < 4 * half_window_px else None


def _lag1(values):
    v = values - np.mean(values)
    denom = np.sum(v * v)
    return float(np.sum(v[1:] * v[:-1]) / denom) if denom > 0 else 0.0


def roughness(s, p, exclude, window_px: float):
    """Scatter of the unocculted trail about its running mean (window ``window_px``),
    and its lag-1 autocorrelation. ``exclude`` is a list of (lo, hi) spans to skip."""
    keep = np.ones(len(s), bool)
    for lo, hi in exclude:
        keep &= ~((s >= lo) & (s <= hi))
    width = max(3, int(window_px) | 1)
    values = p
    runs, current = [], []
    for k in range(len(s)):
        if keep[k]:
            current.append(k)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    residuals = []
    for run in runs:
        if len(run) < width:
            continue
        seg = values[run]
        trend = np.convolve(seg, np.ones(width) / width, mode="valid")
        half = width // 2
        residuals.append((seg[half:len(seg) - half] - trend) * math.sqrt(width / (width - 1)))
    if not residuals:
        return float("nan"), 0.0
    r = np.concatenate(residuals)
    rho = float(np.clip(np.mean([_lag1(x) for x in residuals if len(x) > 3] or [0.0]), 0, 0.8))
    return float(1.4826 * np.median(np.abs(r - np.median(r)))), rho


# -- position -> time ----------------------------------------------------------------------------


def linear_times(positions_px: dict, errors_px: dict, exposure_s: float,
                 shutter_err_s: float = 0.0) -> Conversion:
    """Times proportional between the trail start (shutter open) and end (close)."""
    s0, s1 = positions_px["start"], positions_px["end"]
    length = s1 - s0
    k = exposure_s / length
    times, errs = {}, {}
    for name, pos in positions_px.items():
        f = (pos - s0) / length
        times[name] = f * exposure_s
        var = (k * errors_px[name]) ** 2 if name not in ("start", "end") else 0.0
        if name not in ("start", "end"):
            var += (k * (1 - f) * errors_px["start"]) ** 2 + (k * f * errors_px["end"]) ** 2
            var += ((1 - f) * shutter_err_s) ** 2 + (f * shutter_err_s) ** 2
        else:
            var = shutter_err_s ** 2
        errs[name] = math.sqrt(var)
    return Conversion(method="linear", times_s=times, err_s=errs, seconds_per_px=k,
                      note="proportional between the trail ends and the shutter times")


def sidereal_times(ra_offsets_sidereal_s: dict, exposure_s: float, errors_sidereal_s=None,
                   shutter_err_s: float = 0.0) -> Conversion:
    """Broughton's distortion-free conversion: RA offsets from the trail start (sidereal
    seconds, positive along the drift) times 0.99727, then every time shifted by half the
    mismatch between the measured and the derived end of exposure."""
    derived = {k: SIDEREAL_TO_SOLAR * v for k, v in ra_offsets_sidereal_s.items()}
    mismatch = exposure_s - (derived["end"] - derived["start"])
    times = {k: v - derived["start"] + 0.5 * mismatch for k, v in derived.items()}
    times["start"], times["end"] = 0.0, exposure_s
    errs = {}
    e = errors_sidereal_s or {k: 0.0 for k in derived}
    for name in derived:
        if name in ("start", "end"):
            errs[name] = shutter_err_s
            continue
        # t = (open + close)/2 + 0.99727 (ra - (ra_start + ra_end)/2)
        var = (SIDEREAL_TO_SOLAR * e[name]) ** 2
        var += (0.5 * SIDEREAL_TO_SOLAR * e["start"]) ** 2 + (0.5 * SIDEREAL_TO_SOLAR * e["end"]) ** 2
        var += 0.5 * shutter_err_s ** 2
        errs[name] = math.sqrt(var)
    span = ra_offsets_sidereal_s["end"] - ra_offsets_sidereal_s["start"]
    return Conversion(method="sidereal", times_s=times, err_s=errs,
                      seconds_per_px=float("nan"), mismatch_s=float(mismatch),
                      note=f"RA x 0.99727; end-of-exposure mismatch {mismatch:+.3f} s "
                      f"shared equally between both ends (trail {span:.3f} sidereal s)")


def position_to_time_s(result: DriftScanResult, s_px, method: str):
    """Seconds after opening of positions along the trail, by ``method``."""
    e = result.edges
    conv = result.linear if method == "linear" else result.sidereal
    if method == "linear":
        return (s_px - e["start"].s_px) * conv.seconds_per_px
    # sidereal: the local scale between the measured edges (a WCS may vary it)
    known = sorted((edge.s_px, conv.times_s[name]) for name, edge in e.items())
    ks, kt = np.array([a for a, _ in known]), np.array([b for _, b in known])
    return np.interp(s_px, ks, kt, left=np.nan, right=np.nan)


# -- the analysis ----------------------------------------------------------------------------------


def saturation_check(image, angle_deg, n_px, s_lo, s_hi, saturation_adu):
    """Fraction of the pixels on the trail's centre line at or above the saturation level."""
    if saturation_adu is None:
        return 0.0
    s = np.arange(s_lo, s_hi + 1.0)
    h, w = image.shape
    x, y = to_image(s, np.full_like(s, n_px), angle_deg)
    xi = np.clip(np.rint(x).astype(int), 0, w - 1)
    yi = np.clip(np.rint(y).astype(int), 0, h - 1)
    core = np.asarray(image, float)[yi, xi]
    return float(np.mean(core >= 0.995 * saturation_adu))


def analyse(image: np.ndarray, *, exposure_s: float, shutter_open_utc: str,
            shutter_close_utc: str | None = None, direction_deg: float | str = 0.0,
            refine_direction: bool = True, target_xy=None, profile_rows: int = 4,
            dec_deg: float | None = None, plate_scale_arcsec: float | None = None,
            pixel_to_ra_deg: Callable | None = None, saturation_adu: float | None = None,
            level_fraction: float = LEVEL_FRACTION, level_window_px: float = 15.0,
            shutter_err_s: float = 0.0, min_gap_sigma: float = 6.0,
            name: str = "<image>") -> DriftScanResult:
    """Find the target trail, measure its edges and time them (see the module doc).

    ``pixel_to_ra_deg(x, y)`` (e.g. from a WCS) gives a distortion-free sidereal
    conversion; else ``dec_deg`` and ``plate_scale_arcsec`` give a uniform one.
    Raises :class:`DriftScanError` with a plain explanation when the image cannot be
    measured.
    """
    image = np.asarray(image, float)
    if image.ndim != 2 or min(image.shape) < 8:
        raise DriftScanError(f"expected a 2-D image of at least 8 x 8 pixels, got shape "
                             f"{image.shape}")
    if exposure_s <= 0:
        raise DriftScanError(f"the shutter closes {-exposure_s:.3f} s before it opens "
                             "(shutter_close_utc must be after shutter_open_utc)")
    notes = []
    sky, sky_sigma = sky_level(image)
    residual = image - sky
    if direction_deg == "auto":
        angle = search_direction(residual)
        notes.append(f"direction measured from the trails: {angle:.2f} deg; the star is "
                     "assumed to move towards the end with the larger x (set direction_deg "
                     "to say otherwise)")
    else:
        angle = float(direction_deg)
    trails = find_trails(residual, angle, sky_sigma)
    if not trails and refine_direction and direction_deg != "auto":
        angle = search_direction(residual)
        trails = find_trails(residual, angle, sky_sigma)
    if not trails:
        raise DriftScanError("no star trail found (no band across the image stands out of "
                             f"the sky noise of {sky_sigma:.3g} ADU)")

    def measure_line(n_px, angle):
        cross = 1.5
        if refine_direction:
            for _ in range(2):
                angle, n_px, cross = refine_line(image, angle, n_px, sky)
        s, p = trail_profile(image, angle, n_px, profile_rows, sky)
        return angle, n_px, cross, s, p

    chosen = None
    if target_xy is not None:
        _, n_target = to_trail(target_xy[0], target_xy[1], angle)
        near = [t for t in trails if abs(t["n_px"] - float(n_target)) <= 6.0]
        if not near:
            raise DriftScanError(f"no star trail within 6 px of the target position "
                                 f"({target_xy[0]}, {target_xy[1]}); trails found at "
                                 f"across-trail offsets {[round(t['n_px'], 1) for t in trails]}")
        near.sort(key=lambda t: abs(t["n_px"] - float(n_target)))
        line = measure_line(near[0]["n_px"], angle)
        chosen = (line, approximate_edges(line[3], line[4], min_gap_sigma))
    else:
        best = None
        for trail in trails[:12]:
            try:
                line = measure_line(trail["n_px"], angle)
                approx = approximate_edges(line[3], line[4], min_gap_sigma)
            except DriftScanError:
                continue
            if "disappearance" in approx and (best is None or approx["gap_significance"] >
                                              best[1]["gap_significance"]):
                best = (line, approx)
        if best is None:
            raise DriftScanError(f"{len(trails)} trails found but none has a gap; give the "
                                 "target's position (target = x,y) to measure a trail without one")
        chosen = best
    (angle, n_px, cross_sigma, s, p), approx = chosen

    # the trail must begin and end inside the frame: the shutter times need both ends
    margin = 2.5 * cross_sigma + 2
    if approx["start"] - s[0] < margin or s[-1] - approx["end"] < margin:
        xs, ys = to_image(approx["start"], n_px, angle)
        xe, ye = to_image(approx["end"], n_px, angle)
        raise DriftScanError(f"the target trail leaves the frame (it runs from ({xs:.1f}, "
                             f"{ys:.1f}) to ({xe:.1f}, {ye:.1f}) and the image ends within "
                             f"{margin:.1f} px of that); the exposure must start and end "
                             "with the star inside the frame")
    fraction = saturation_check(image, angle, n_px, approx["start"], approx["end"],
                                saturation_adu)
    if fraction > 0.01:
        raise DriftScanError(f"the target trail is saturated ({100 * fraction:.0f} % of its "
                             f"core pixels at or above {saturation_adu:g} ADU); its profile "
                             "cannot be measured")

    # edge width from the trail ends (sharpest, largest contrast)
    half = 4 * cross_sigma + 6
    widths = [w for w in (edge_width_px(s, p, approx["start"], True, half, cross_sigma),
                          edge_width_px(s, p, approx["end"], False, half, cross_sigma)) if w]
    psf_sigma = float(np.mean(widths)) if widths else math.sqrt(cross_sigma ** 2 + 1 / 12)
    if not widths:
        notes.append("edge width taken from the trail's cross-section (end fits failed)")
    transition = math.ceil(2.5 * psf_sigma) + 1.0
    event = "disappearance" in approx
    exclude = [(approx["start"] - transition - 1e9, approx["start"] + transition),
               (approx["end"] - transition, approx["end"] + 1e9)]
    if event:
        exclude.append((approx["disappearance"] - transition, approx["reappearance"] + transition))
    rough, rho = roughness(s, p, exclude, level_window_px)
    if not np.isfinite(rough):
        rough, rho = approx["rough"], 0.0
    sky_mask = (s < approx["start"] - transition) | (s > approx["end"] + transition)
    sky_rough = float(np.std(p[sky_mask], ddof=1)) if sky_mask.sum() > 3 else rough
    gap_rough = rough
    if event:
        inside = (s > approx["disappearance"] + transition) & (s < approx["reappearance"] - transition)
        if inside.sum() > 4:
            gap_rough = float(np.std(p[inside], ddof=1))
        else:   # photon noise scales with the square root of the level
            ratio = max(approx["bottom"], 0) / max(approx["upper"], 1e-12)
            gap_rough = math.sqrt(sky_rough ** 2 + ratio * max(rough ** 2 - sky_rough ** 2, 0))

    common = dict(transition_px=transition, window_px=level_window_px,
                  slope_sigma_px=psf_sigma, rho=rho, fraction=level_fraction)
    edges = {"start": locate_edge(s, p, "start", approx["start"], True, rough_upper=rough,
                                  rough_lower=sky_rough, **common)}
    if event:
        d_approx, r_approx = approx["disappearance"], approx["reappearance"]
        edges["disappearance"] = locate_edge(s, p, "disappearance", d_approx, False,
                                             rough_upper=rough, rough_lower=gap_rough,
                                             limits=(edges["start"].s_px + transition, r_approx),
                                             **common)
        edges["reappearance"] = locate_edge(s, p, "reappearance", r_approx, True,
                                            rough_upper=rough, rough_lower=gap_rough,
                                            limits=(d_approx, approx["end"] - transition),
                                            **common)
    edges["end"] = locate_edge(s, p, "end", approx["end"], False, rough_upper=rough,
                               rough_lower=sky_rough, **common)
    for edge_name, edge in list(edges.items()):
        x, y = to_image(edge.s_px, n_px, angle)
        edges[edge_name] = attrs.evolve(edge, x_px=float(x), y_px=float(y))
        if edge.note:
            notes.append(f"{edge_name}: {edge.note}")
    if event and edges["reappearance"].s_px <= edges["disappearance"].s_px:
        raise DriftScanError("the gap's reappearance is not after its disappearance "
                             "(gap too short or too shallow to measure)")
    if not event:
        notes.append(f"no gap in the target trail (deepest dip {approx['gap_significance']:.1f} "
                     f"sigma, threshold {min_gap_sigma}): no occultation detected")

    positions = {k: e.s_px for k, e in edges.items()}
    errors = {k: e.err_px for k, e in edges.items()}
    linear = linear_times(positions, errors, exposure_s, shutter_err_s)
    sidereal = None
    if pixel_to_ra_deg is not None or (dec_deg is not None and plate_scale_arcsec):
        if pixel_to_ra_deg is not None:
            ra = {k: float(pixel_to_ra_deg(e.x_px, e.y_px)) for k, e in edges.items()}
            offsets = {k: ((ra["start"] - v + 180) % 360 - 180) * 240.0 for k, v in ra.items()}
            if offsets["end"] < 0:       # the drift runs towards larger RA on this chip
                offsets = {k: -v for k, v in offsets.items()}
            scale = offsets["end"] / (positions["end"] - positions["start"])
            how = "WCS"
        else:
            scale = plate_scale_arcsec / (15.0 * math.cos(math.radians(dec_deg)))
            offsets = {k: (v - positions["start"]) * scale for k, v in positions.items()}
            how = f"plate scale {plate_scale_arcsec} arcsec/px at dec {dec_deg} deg"
        sidereal = sidereal_times(offsets, exposure_s, {k: scale * v for k, v in errors.items()},
                                  shutter_err_s)
        sidereal = attrs.evolve(sidereal, seconds_per_px=SIDEREAL_TO_SOLAR * scale,
                                note=f"{how}; {sidereal.note}")
        relative = sidereal.mismatch_s / exposure_s
        if abs(relative) > 0.01:
            notes.append(f"the trail is {100 * relative:+.1f} % shorter than the shutter times "
                         "and the sidereal rate predict: check the plate scale, declination "
                         "and shutter times")
    if shutter_err_s == 0:
        notes.append("errors do not include the shutter-time uncertainty (shutter_err_s = 0)")
    return DriftScanResult(
        source=name, angle_deg=float(angle), trail_point_xy=tuple(map(float, to_image(0.0, n_px, angle))),
        trail_n_px=float(n_px), profile_rows=profile_rows, edge_sigma_px=psf_sigma,
        psf_sigma_px=math.sqrt(max(psf_sigma ** 2 - 1 / 12, 0.01)),
        cross_sigma_px=float(cross_sigma), roughness=float(rough), roughness_correlation=rho,
        sky=float(sky), edges=edges, shutter_open_utc=shutter_open_utc,
        shutter_close_utc=shutter_close_utc or "", exposure_s=float(exposure_s),
        linear=linear, sidereal=sidereal, primary="sidereal" if sidereal else "linear",
        event_detected=event, s_px=s, profile=p, notes=tuple(notes))


# -- light curve and PSF-model fit -------------------------------------------------------------


def trail_lightcurve(result: DriftScanResult, name: str = "driftscan"):
    """The trail's profile between its ends as a light curve against time.

    One reading per profile sample (1 px along the trail); its time is the instant the
    star's image centre crossed that sample (``instant="mid"``) and ``exposure_s`` the
    time one pixel spans. Each reading is further smoothed by the seeing: a Gaussian of
    ``meta["driftscan"]["psf_sigma_s"]`` (the along-trail PSF width in seconds).
    ``flux`` is the sky-subtracted mean over ``profile_rows`` rows in ADU, ``flux_err``
    the trail's roughness; ``meta["driftscan"]`` holds the direct 49 % D/R results.
    """
    from astropy.time import Time

    from occcore.model import FrameTimes, LightCurve
    e = result.edges
    keep = (result.s_px >= e["start"].s_px) & (result.s_px <= e["end"].s_px)
    s = result.s_px[keep]
    t = np.asarray(result.time_s(s), float)
    conv = result.conversion
    k = conv.seconds_per_px
    meta = result.to_dict()
    meta["psf_sigma_s"] = result.psf_sigma_px * k
    meta["seconds_per_px"] = k
    # how the errors of the trail ends enter any time on this axis (see fit_psf_edges)
    meta["ends_err_s"] = {"start": k * e["start"].err_px, "end": k * e["end"].err_px}
    times = FrameTimes(epoch=Time(result.shutter_open_utc, scale="utc"), offsets_s=t,
                       instant="mid", source="unknown",
                       note=f"drift-scan profile timed by the {result.primary} conversion "
                       "between the shutter times; exposure_s = the time one pixel spans")
    return LightCurve(times=times, exposure_s=float(k), flux=result.profile[keep],
                      flux_err=np.full(len(s), result.roughness), name=name,
                      meta={"driftscan": meta, "s_px": s.tolist()})


def _psi(u):
    from scipy.special import ndtr
    return u * ndtr(u) + np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)


def boxed_step(t, t0, sigma_s: float, box_s: float):
    """A unit step at ``t0`` smoothed by a Gaussian (``sigma_s``) and averaged over a box
    of ``box_s`` centred on each ``t``; ``sigma_s = 0`` is the plain (square-well) step."""
    t = np.asarray(t, float)
    if sigma_s <= 0:
        return np.clip((t + 0.5 * box_s - t0) / box_s, 0.0, 1.0)
    hi = (t + 0.5 * box_s - t0) / sigma_s
    lo = (t - 0.5 * box_s - t0) / sigma_s
    return sigma_s / box_s * (_psi(hi) - _psi(lo))


def _interval(grid, chi2, best, levels=(1.0, 4.0, 9.0)):
    """(minus, plus) at each Delta chi2 level from a profile curve; inf when not reached."""
    out = []
    lo_side, hi_side = grid <= best, grid >= best
    floor = np.min(chi2)
    for level in levels:
        target = floor + level
        below = np.flatnonzero(lo_side & (chi2 >= target))
        above = np.flatnonzero(hi_side & (chi2 >= target))
        if len(below):
            i = below[-1]
            x = np.interp(target, [chi2[i + 1], chi2[i]], [grid[i + 1], grid[i]])
            minus = best - x
        else:
            minus = math.inf
        if len(above):
            i = above[0]
            x = np.interp(target, [chi2[i - 1], chi2[i]], [grid[i - 1], grid[i]])
            plus = x - best
        else:
            plus = math.inf
        out.append((float(max(minus, 1e-9)), float(max(plus, 1e-9))))
    return out


def fit_psf_edges(lightcurve, *, psf_sigma_s: float | None = None, square_well: bool = False,
                  window_s: float | None = None, grid_points: int = 81) -> dict:
    """Fit D and R on a drift-scan light curve with each edge a step convolved with the
    trail's along-trail PSF and averaged over each reading (``square_well=True``: no
    PSF, the plain square well, for comparison).

    The model is ``U1 (1 - G_D) + B (G_D - G_R) + U2 G_R`` (levels before, inside and
    after the gap, solved linearly for every pair of edge times). Errors: profile
    likelihood over a grid of (D, R), chi2 from the curve's roughness inflated for the
    roughness' correlation, at Delta chi2 = 1, 4, 9; then the errors of the trail ends
    (which fix the time axis) are added in quadrature. Times are seconds after the
    light curve's epoch (the shutter opening). Returns plain values.
    """
    meta = lightcurve.meta.get("driftscan", {})
    if not meta.get("event_detected"):
        raise DriftScanError("the drift-scan light curve has no gap to fit")
    t = lightcurve.times.offsets_s
    flux = lightcurve.flux
    box = float(lightcurve.exposure_s)
    sigma = 0.0 if square_well else float(psf_sigma_s if psf_sigma_s is not None
                                          else meta["psf_sigma_s"])
    d0 = meta["disappearance"]["s_after_open"]
    r0 = meta["reappearance"]["s_after_open"]
    step0 = max(meta["disappearance"]["err_s"], meta["reappearance"]["err_s"], 0.2 * box)
    window = window_s if window_s is not None else max(20 * box, 6 * sigma + 10 * box)
    use = (t >= d0 - window) & (t <= r0 + window)
    tt, ff = t[use], flux[use]
    noise = float(np.median(lightcurve.flux_err)) if lightcurve.flux_err is not None else \
        float(np.std(np.diff(ff)) / math.sqrt(2))
    inflation = 1.0
    scale = 1.0 / noise ** 2

    def chi2_grid(d_values, r_values):
        gd = np.stack([boxed_step(tt, d, sigma, box) for d in d_values])   # (nd, n)
        gr = np.stack([boxed_step(tt, r, sigma, box) for r in r_values])   # (nr, n)
        a = np.empty((len(d_values), len(r_values), len(tt), 3))
        a[..., 0] = (1 - gd)[:, None, :]
        a[..., 1] = gd[:, None, :] - gr[None, :, :]
        a[..., 2] = gr[None, :, :]
        ata = np.einsum("ijnk,ijnl->ijkl", a, a)
        atb = np.einsum("ijnk,n->ijk", a, ff)
        ata += np.eye(3) * 1e-9 * np.trace(ata, axis1=-2, axis2=-1)[..., None, None]
        coef = np.linalg.solve(ata, atb[..., None])[..., 0]
        resid = ff[None, None, :] - np.einsum("ijnk,ijk->ijn", a, coef)
        chi2 = np.sum(resid ** 2, axis=-1) * scale
        chi2[d_values[:, None] >= r_values[None, :]] = np.inf   # R after D
        return chi2, coef

    half = 6 * step0
    for _ in range(4):
        d_grid = d0 + np.linspace(-half, half, grid_points)
        r_grid = r0 + np.linspace(-half, half, grid_points)
        chi2, coef = chi2_grid(d_grid, r_grid)
        i, j = np.unravel_index(np.argmin(chi2), chi2.shape)
        prof_d, prof_r = chi2.min(axis=1), chi2.min(axis=0)
        edge_ok = 0 < i < grid_points - 1 and 0 < j < grid_points - 1
        reach = min(prof_d[0], prof_d[-1], prof_r[0], prof_r[-1]) - chi2[i, j] >= 9
        if edge_ok and reach:
            break
        d0, r0 = d_grid[i], r_grid[j]
        half *= 2
    best_d, best_r = float(d_grid[i]), float(r_grid[j])
    # refine on a fine grid around the best point
    fine = 2 * half / (grid_points - 1)
    d_fine = best_d + np.linspace(-2 * fine, 2 * fine, 21)
    r_fine = best_r + np.linspace(-2 * fine, 2 * fine, 21)
    chi2_f, coef_f = chi2_grid(d_fine, r_fine)
    fi, fj = np.unravel_index(np.argmin(chi2_f), chi2_f.shape)
    best_d, best_r = float(d_fine[fi]), float(r_fine[fj])
    levels = coef_f[fi, fj]
    # the roughness is correlated (scintillation, image motion): chi2 is inflated by the
    # variance of residual sums over blocks as long as an edge, relative to white noise
    model = (levels[0] * (1 - boxed_step(tt, best_d, sigma, box))
             + levels[1] * (boxed_step(tt, best_d, sigma, box) - boxed_step(tt, best_r, sigma, box))
             + levels[2] * boxed_step(tt, best_r, sigma, box))
    resid = ff - model
    block = max(2, int(round(2.5 * max(sigma, box) / box)))
    usable = len(resid) // block * block
    if usable >= 4 * block:
        sums = resid[:usable].reshape(-1, block).sum(axis=1)
        inflation = math.sqrt(float(np.clip(np.mean(sums ** 2) / (block * np.mean(resid ** 2)),
                                            1.0, 6.0)))
    chi2 /= inflation ** 2
    chi2_f /= inflation ** 2
    prof_d, prof_r = chi2.min(axis=1), chi2.min(axis=0)
    d_int = _interval(d_grid, prof_d - chi2.min() + chi2_f.min(), best_d)
    r_int = _interval(r_grid, prof_r - chi2.min() + chi2_f.min(), best_r)

    exposure = float(meta.get("exposure_s", t[-1] - t[0]))
    ends = meta.get("ends_err_s", {"start": 0.0, "end": 0.0})
    linear = meta.get("primary_conversion", "linear") == "linear"

    def ends_var(time_s):
        if linear:
            f = time_s / exposure
            return ((1 - f) * ends["start"]) ** 2 + (f * ends["end"]) ** 2
        return 0.25 * (ends["start"] ** 2 + ends["end"] ** 2)

    def widen(intervals, time_s):
        extra = ends_var(time_s)
        return [tuple(math.sqrt(v ** 2 + n * n * extra) for v in pair)
                for n, pair in zip((1, 2, 3), intervals, strict=False)]

    d_int, r_int = widen(d_int, best_d), widen(r_int, best_r)
    return {"model": "square-well" if square_well else "psf-step",
            "psf_sigma_s": sigma, "disappearance_s": best_d, "reappearance_s": best_r,
            "disappearance_err_s": d_int[0], "disappearance_err2_s": d_int[1],
            "disappearance_err3_s": d_int[2], "reappearance_err_s": r_int[0],
            "reappearance_err2_s": r_int[1], "reappearance_err3_s": r_int[2],
            "upper_before": float(levels[0]), "bottom": float(levels[1]),
            "upper_after": float(levels[2]), "chi2": float(chi2_f.min() * inflation ** 2),
            "dof": int(len(tt) - 5), "noise": noise, "noise_inflation": inflation}
