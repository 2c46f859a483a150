"""Occultation light-curve models integrated over each exposure window.

Square well: the fraction of each window [a, b) the star spends behind the body.

Diffraction (SORA's model): Fresnel diffraction by an opaque bar (amplitude opacity p),
averaged over the passband, convolved with the strip brightness of a uniform stellar disk
projected at the body, then averaged over each exposure window (so dead time between
windows is modelled). For an event wider than a few Fresnel scales the two edges do not
interfere, and an edge's intensity is a function of (t - edge) alone: occcore computes the
deviation from the geometric step once per fit, integrates it into a cumulative table, and
each model evaluation is then the geometric overlap plus four table look-ups per reading.
Narrow events use the full bar on a fine grid.

Units: times in seconds, distances in km, wavelengths in micrometres (converted to km).
"""
from __future__ import annotations

import math

import attrs
import numpy as np
from scipy import signal, special

AU_KM = 1.495978707e8


def fresnel_scale_km(wavelength_um: float, distance_au: float) -> float:
    """F = sqrt(lambda D / 2)."""
    return math.sqrt(wavelength_um * 1e-9 * distance_au * AU_KM / 2)


def wavelengths_um(center_um: float, bandwidth_um: float, n: int) -> np.ndarray:
    """Midpoints of n equal sub-bands of [center - bandwidth/2, center + bandwidth/2]."""
    if bandwidth_um <= 0 or n <= 1:
        return np.array([center_um])
    edges = np.linspace(center_um - bandwidth_um / 2, center_um + bandwidth_um / 2, n + 1)
    return 0.5 * (edges[:-1] + edges[1:])


def overlap(a: np.ndarray, b: np.ndarray, d: float, r: float) -> np.ndarray:
    """Length of [a, b) inside [d, r)."""
    return np.clip(np.minimum(b, r) - np.maximum(a, d), 0.0, None)


def square_intensity(a: np.ndarray, b: np.ndarray, d: float, r: float) -> np.ndarray:
    return 1.0 - overlap(a, b, d, r) / (b - a)


_FRESNEL_U = 80.0
_FRESNEL_DU = 0.0005
_FRESNEL_TABLE: tuple[np.ndarray, np.ndarray] | None = None


def fresnel_cs(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fresnel integrals (S, C) by linear interpolation in a complex table built once
    (|u| <= 80, single precision: errors below 1e-7), asymptotic forms beyond; several times
    faster than scipy.special.fresnel."""
    global _FRESNEL_TABLE
    if _FRESNEL_TABLE is None:
        grid = np.arange(-_FRESNEL_U, _FRESNEL_U + _FRESNEL_DU, _FRESNEL_DU)
        s_tab, c_tab = special.fresnel(grid)
        z = (c_tab + 1j * s_tab).astype(np.complex64)
        _FRESNEL_TABLE = (z[:-1], np.diff(z))
    z0, dz = _FRESNEL_TABLE
    pos = (u + _FRESNEL_U) * (1.0 / _FRESNEL_DU)
    far = (pos < 0) | (pos >= len(z0))
    i = pos.astype(np.int64)
    if far.any():
        i = np.clip(i, 0, len(z0) - 1)
    z = np.take(z0, i) + (pos - i).astype(np.float32) * np.take(dz, i)
    if far.any():
        uf = u[far]
        phase = 0.5 * np.pi * uf * uf
        z[far] = np.sign(uf) * (0.5 + 0.5j) + (np.sin(phase) - 1j * np.cos(phase)) / (np.pi * uf)
    return z.imag.astype(np.float64), z.real.astype(np.float64)


def _edge_amplitude(dc: np.ndarray, ds: np.ndarray, opacity: float) -> np.ndarray:
    """|A|^2 with A = 1 - (p/2)(dC + dS) + i (p/2)(dC - dS) (SORA's bar_fresnel)."""
    re = 1.0 - 0.5 * opacity * (dc + ds)
    im = 0.5 * opacity * (dc - ds)
    return re * re + im * im


def star_kernel(radius_s: float, dt: float) -> np.ndarray | None:
    """Strip brightness of a uniform disk of radius ``radius_s`` (in seconds), sampled at dt;
    None when the disk spans less than a few samples (it then changes nothing)."""
    if radius_s <= 2 * dt:
        return None
    m = int(radius_s / dt)
    tau = dt * np.arange(-m, m + 1)          # symmetric: the convolution must not shift
    k = np.sqrt(np.clip(1 - (tau / radius_s) ** 2, 0, None))
    return k / k.sum()


@attrs.frozen
class Optics:
    """What shapes an edge: shadow velocity, Fresnel scales, the star, the opacity."""

    velocity_kms: float
    fresnel_km: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=np.array_equal))  # per wavelength
    star_diameter_km: float = 0.0
    opacity: float = 1.0

    @property
    def inside(self) -> float:
        return (1.0 - self.opacity) ** 2

    def edge_time_s(self) -> float:
        """The time scale of an edge: Fresnel scale and star radius, crossed at this speed."""
        return (float(np.max(self.fresnel_km)) + self.star_diameter_km / 2) / self.velocity_kms


@attrs.frozen
class EdgeTable:
    """Cumulative deviation of an edge's intensity from the geometric step, Delta(tau)."""

    tau: np.ndarray
    cumulative: np.ndarray

    def __call__(self, tau: np.ndarray) -> np.ndarray:
        return np.interp(tau, self.tau, self.cumulative, left=0.0, right=self.cumulative[-1])


def immersion_table(optics: Optics, exposure_s: float) -> EdgeTable:
    """Delta(tau) for an immersion edge at tau = 0 (dark for tau > 0)."""
    v = optics.velocity_kms
    f_max = float(np.max(optics.fresnel_km))
    # far fringes average out over an exposure; keep those that survive to ~1e-3
    u_max = float(np.clip(math.sqrt(1000 * f_max / (v * max(exposure_s, 1e-6))), 16, 80))
    radius_s = optics.star_diameter_km / 2 / v
    half = u_max * f_max / v + radius_s
    dt = (2 / u_max) * (float(np.min(optics.fresnel_km)) / v) / 8
    if radius_s > 0:
        dt = min(dt, max(radius_s / 100, dt / 5))   # a star far below the fringe scale changes nothing
    m = int(min(half / dt, 200_000))
    dt = half / m
    tau = dt * np.arange(-m, m + 1)          # the edge (tau = 0) is a node ...
    mid = tau[:-1] + dt / 2                  # ... so no cell straddles the step: midpoint rule
    intensity = np.zeros_like(mid)
    for f in optics.fresnel_km:
        s, c = special.fresnel(v * mid / f)
        intensity += _edge_amplitude(c + 0.5, s + 0.5, optics.opacity)
    intensity /= len(optics.fresnel_km)
    kernel = star_kernel(radius_s, dt)
    if kernel is not None:
        intensity = signal.fftconvolve(np.pad(intensity, len(kernel), mode="edge"), kernel,
                                       mode="same")[len(kernel):-len(kernel)]
    deviation = intensity - np.where(mid < 0, 1.0, optics.inside)
    cumulative = np.concatenate([[0.0], np.cumsum(deviation * dt)])
    return EdgeTable(tau=tau, cumulative=cumulative)


def emersion_table(optics: Optics, exposure_s: float, imm: EdgeTable | None = None) -> EdgeTable:
    """Delta(tau) for an emersion edge at tau = 0 (dark for tau < 0): the mirror image of the
    immersion table (pass it when the optics are the same)."""
    imm = imm if imm is not None else immersion_table(optics, exposure_s)
    total = imm.cumulative[-1]
    tau = -imm.tau[::-1]
    cumulative = total - imm.cumulative[::-1]
    return EdgeTable(tau=tau, cumulative=cumulative)


class SquareModel:
    """Normalised intensity of each reading for a square well."""

    name = "square"

    def __init__(self, start: np.ndarray, end: np.ndarray):
        self.a, self.b = start, end

    def __call__(self, d: float, r: float) -> np.ndarray:
        return square_intensity(self.a, self.b, d, r)


class DiffractionModel:
    """Normalised intensity of each reading for a diffracting bar (see module docstring)."""

    name = "diffraction"

    def __init__(self, start: np.ndarray, end: np.ndarray, optics_d: Optics, optics_r: Optics,
                 full_bar: bool = False):
        self.a, self.b = start, end
        self.optics_d, self.optics_r = optics_d, optics_r
        exposure = float(np.median(end - start))
        self.full_bar = full_bar
        if not full_bar:
            self.table_d = immersion_table(optics_d, exposure)
            self.table_r = emersion_table(optics_r, exposure,
                                          self.table_d if optics_r == optics_d else None)
        self.inside = optics_d.inside

    def intensity(self, d: float, r: float) -> np.ndarray:
        if self.full_bar:
            return self._full_bar(d, r)
        a, b = self.a, self.b
        integral = (b - a) - (1.0 - self.inside) * overlap(a, b, d, r)
        integral += self.table_d(b - d) - self.table_d(a - d)
        integral += self.table_r(b - r) - self.table_r(a - r)
        return integral / (b - a)

    def __call__(self, d: float, r: float) -> np.ndarray:
        i = self.intensity(d, r)
        return (i - self.inside) / (1.0 - self.inside) if self.inside < 1 else i

    def _full_bar(self, d: float, r: float) -> np.ndarray:
        """Both edges at once on a fine grid (for events a few Fresnel scales wide)."""
        optics = self.optics_d
        v = 0.5 * (self.optics_d.velocity_kms + self.optics_r.velocity_kms)
        f_min, f_max = float(np.min(optics.fresnel_km)), float(np.max(optics.fresnel_km))
        radius_s = optics.star_diameter_km / 2 / v
        exposure = float(np.median(self.b - self.a))
        u_max = float(np.clip(math.sqrt(1000 * f_max / (v * max(exposure, 1e-6))), 16, 30))
        pad = u_max * f_max / v + radius_s
        lo = max(min(d, r) - pad, float(self.a.min()) - pad)
        hi = min(max(d, r) + pad, float(self.b.max()) + pad)
        # the fringes set the resolution; a bar narrower than that is not resolved optically
        dt = (2 / u_max) * (f_min / v) / 6
        if radius_s > 0:
            dt = min(dt, max(radius_s / 100, dt / 5))   # a star far below the fringe scale changes nothing
        n = int(min((hi - lo) / dt, 300_000)) + 2
        t = np.linspace(lo, hi, n)
        dt = t[1] - t[0]
        intensity = np.zeros_like(t)
        for f in optics.fresnel_km:
            s1, c1 = fresnel_cs(v * (t - d) / f)
            s2, c2 = fresnel_cs(v * (t - r) / f)
            intensity += _edge_amplitude(c1 - c2, s1 - s2, optics.opacity)
        intensity /= len(optics.fresnel_km)
        kernel = star_kernel(radius_s, dt)
        if kernel is not None:
            intensity = signal.fftconvolve(np.pad(intensity, len(kernel), mode="edge"), kernel,
                                           mode="same")[len(kernel):-len(kernel)]
        cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (intensity[1:] + intensity[:-1]) * dt)])

        def integral(x):
            inside_grid = np.interp(x, t, cumulative)
            below = np.minimum(x, lo) - lo          # before the grid: full light
            above = np.maximum(x, hi) - hi          # after the grid: full light
            return inside_grid + below + above

        return (integral(self.b) - integral(self.a)) / (self.b - self.a)
