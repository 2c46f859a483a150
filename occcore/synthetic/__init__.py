"""Seeded synthetic data with a known truth, for tests and the demo.

* :func:`star_field` — frames of Gaussian stars (pixel-integrated) with drift, jumps,
  sky, photon and read noise, and an occultation of one star between two instants.
* :func:`square_well_lightcurve` — a light curve with known immersion and emersion,
  integrated over each exposure.
* :func:`ellipse_chords` — chord end points on a known ellipse, with noise, plus
  negative chords.
* writers: :func:`write_fits_series`, :func:`write_fits_cube`, :func:`write_ser`.
* :func:`garbage_files` — empty, random and truncated inputs.

Everything takes a ``seed`` and is reproducible bit for bit.
"""
from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
from astropy.time import Time
from scipy.special import erf

from occcore.model import FrameTimes, LightCurve, ellipse_radius_km

SER_TICKS_AT_UNIX_EPOCH = 621_355_968_000_000_000


# -- star fields -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StarFieldTruth:
    """What generated a star field: positions per frame and fluxes."""

    x: np.ndarray              # (n_frames, n_stars), 0-based pixel column of the centre
    y: np.ndarray              # (n_frames, n_stars), 0-based pixel row
    flux: np.ndarray           # (n_frames, n_stars), electrons in the star (after occultation)
    times: FrameTimes
    exposure_s: float
    names: tuple[str, ...]
    immersion_s: float | None = None     # offsets after times.epoch (start of exposure clock)
    emersion_s: float | None = None
    occulted: str | None = None


def _pixel_profile(centre: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Fraction of a 1-D Gaussian falling in each pixel: (n, size)."""
    edges = np.arange(size + 1) - 0.5
    cdf = 0.5 * (1 + erf((edges[None, :] - centre[:, None]) / (np.sqrt(2) * sigma)))
    return np.diff(cdf, axis=1)


def occulted_fraction(t_start: np.ndarray, exposure_s: float, immersion_s: float,
                      emersion_s: float) -> np.ndarray:
    """Fraction of each exposure [t, t + exposure] spent inside [immersion, emersion]."""
    lo = np.maximum(t_start, immersion_s)
    hi = np.minimum(t_start + exposure_s, emersion_s)
    return np.clip(hi - lo, 0, None) / exposure_s


def star_field(*, n_frames: int = 200, height: int = 120, width: int = 160,
               stars=((60.0, 50.0, 20000.0), (100.0, 70.0, 40000.0), (40.0, 90.0, 60000.0)),
               names=("target", "reference", "guide"), fwhm_px: float = 3.0,
               sky_e: float = 100.0, read_noise_e: float = 5.0, gain_e_per_adu: float = 1.0,
               bias_adu: float = 200.0, drift_px_per_frame=(0.05, -0.03), walk_px: float = 0.05,
               jumps=(), occultation: tuple[int, float, float, float] | None = None,
               exposure_s: float = 0.04, cadence_s: float | None = None,
               epoch: str = "2024-03-01T02:03:04.500", seed: int = 0,
               dtype=np.uint16) -> tuple[np.ndarray, StarFieldTruth]:
    """Frames ``(n, height, width)`` and their truth.

    ``jumps`` is a sequence of ``(frame, dx, dy)``: the whole field moves by (dx, dy)
    from that frame on. ``occultation`` is ``(star index, immersion_s, emersion_s,
    remaining fraction)`` with times in seconds after the start of frame 0; each frame's
    flux is the exposure-weighted mix. Times stamp the start of each exposure.
    """
    rng = np.random.default_rng(seed)
    cadence_s = exposure_s if cadence_s is None else cadence_s
    base = np.asarray(stars, float)
    n_stars = len(base)
    steps = rng.normal(0, walk_px, size=(n_frames, 2)) + np.asarray(drift_px_per_frame)
    steps[0] = 0
    offset = np.cumsum(steps, axis=0)
    for frame, dx, dy in jumps:
        offset[frame:] += (dx, dy)
    x = base[None, :, 0] + offset[:, 0:1]
    y = base[None, :, 1] + offset[:, 1:2]
    flux = np.repeat(base[None, :, 2], n_frames, axis=0)
    t_start = np.arange(n_frames) * cadence_s
    imm = em = None
    occulted = None
    if occultation is not None:
        index, imm, em, remaining = occultation
        frac = occulted_fraction(t_start, exposure_s, imm, em)
        flux[:, index] *= 1 - frac * (1 - remaining)
        occulted = names[index]
    sigma = fwhm_px / 2.3548
    frames = np.empty((n_frames, height, width), np.float64)
    for k in range(n_frames):
        px = _pixel_profile(x[k], width, sigma)          # (n_stars, width)
        py = _pixel_profile(y[k], height, sigma)         # (n_stars, height)
        image = np.einsum("s,sh,sw->hw", flux[k], py, px) + sky_e
        frames[k] = image
    electrons = rng.poisson(frames).astype(np.float64) + rng.normal(0, read_noise_e, frames.shape)
    adu = electrons / gain_e_per_adu + bias_adu
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        adu = np.clip(np.rint(adu), info.min, info.max)
    times = FrameTimes(epoch=Time(epoch, scale="utc"), offsets_s=t_start, instant="start",
                       source="gps", uncertainty_s=1e-4)
    truth = StarFieldTruth(x=x, y=y, flux=flux, times=times, exposure_s=exposure_s,
                           names=tuple(names[:n_stars]), immersion_s=imm, emersion_s=em,
                           occulted=occulted)
    return adu.astype(dtype), truth


# -- light curves ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LightCurveTruth:
    immersion_s: float
    emersion_s: float
    baseline: float
    bottom: float
    sigma: float


def square_well_lightcurve(*, n_points: int = 300, cadence_s: float = 0.1,
                           exposure_s: float | None = None, immersion_s: float = 12.34,
                           emersion_s: float = 17.89, baseline: float = 1.0, bottom: float = 0.1,
                           sigma: float = 0.05, epoch: str = "2024-03-01T02:03:04.000",
                           time_instant: str = "mid", seed: int = 0
                           ) -> tuple[LightCurve, LightCurveTruth]:
    """A square-well occultation integrated over each exposure, with Gaussian noise.

    Times are seconds after ``epoch``; the truth is in the same clock.
    """
    rng = np.random.default_rng(seed)
    exposure_s = cadence_s if exposure_s is None else exposure_s
    stamp = np.arange(n_points) * cadence_s
    shift = {"start": 0.0, "mid": 0.5, "end": 1.0}[time_instant] * exposure_s
    frac = occulted_fraction(stamp - shift, exposure_s, immersion_s, emersion_s)
    flux = baseline - (baseline - bottom) * frac + rng.normal(0, sigma, n_points)
    times = FrameTimes(epoch=Time(epoch, scale="utc"), offsets_s=stamp, instant=time_instant,
                       source="gps", uncertainty_s=1e-4)
    lc = LightCurve(times=times, exposure_s=exposure_s, flux=flux,
                    flux_err=np.full(n_points, sigma), name="synthetic",
                    frame=np.arange(n_points))
    return lc, LightCurveTruth(immersion_s=immersion_s, emersion_s=emersion_s,
                               baseline=baseline, bottom=bottom, sigma=sigma)


# -- chords --------------------------------------------------------------------------------------


def _limb_crossings(g_line: float, f0, g0, a, e, pa_deg):
    """The two f where the line g = g_line meets the ellipse (None if it misses)."""
    dg = g_line - g0
    grid = np.linspace(-2.5 * a, 2.5 * a, 40001)
    r = np.hypot(grid, dg)
    inside = r <= ellipse_radius_km(np.arctan2(dg, grid), a, e, pa_deg)
    idx = np.flatnonzero(inside)
    if len(idx) == 0:
        return None
    return grid[idx[0]] + f0, grid[idx[-1]] + f0


def ellipse_chords(*, center_f_km: float = 5.0, center_g_km: float = -10.0,
                   equatorial_radius_km: float = 150.0, oblateness: float = 0.1,
                   position_angle_deg: float = 30.0, n_chords: int = 5, err_km=(1.0, 6.0),
                   n_negative: int = 1, seed: int = 0):
    """Chords parallel to f across a known ellipse, their ends moved by Gaussian errors;
    negative chords just outside the limb. Returns (list of Chord, truth dict)."""
    from occcore.model import Chord
    rng = np.random.default_rng(seed)
    a, e, pa = equatorial_radius_km, oblateness, position_angle_deg
    theta = np.linspace(0, 2 * np.pi, 4001)
    r = ellipse_radius_km(theta, a, e, pa)
    g_top = center_g_km + np.max(r * np.sin(theta))
    g_bottom = center_g_km + np.min(r * np.sin(theta))
    chords = []
    for k in range(n_chords):
        g_line = rng.uniform(g_bottom + 0.05 * (g_top - g_bottom), g_top - 0.05 * (g_top - g_bottom))
        f_lo, f_hi = _limb_crossings(g_line, center_f_km, center_g_km, a, e, pa)
        errors = rng.uniform(err_km[0], err_km[1], 2)
        f = np.array([f_lo, f_hi]) + rng.normal(0, errors)
        chords.append(Chord(name=f"chord{k + 1}", positive=True, f_km=f,
                            g_km=np.array([g_line, g_line]), err_km=errors))
    for k in range(n_negative):
        # just outside the limb, on either side, within a few percent of the size
        above = rng.uniform() < 0.5
        margin = rng.uniform(0.01, 0.06) * (g_top - g_bottom)
        g_line = g_top + margin if above else g_bottom - margin
        path = np.linspace(center_f_km - 2 * a, center_f_km + 2 * a, 401)
        chords.append(Chord(name=f"negative{k + 1}", positive=False, f_km=path,
                            g_km=np.full_like(path, g_line)))
    truth = dict(center_f_km=center_f_km, center_g_km=center_g_km, equatorial_radius_km=a,
                 oblateness=e, position_angle_deg=pa)
    return chords, truth


# -- writers -----------------------------------------------------------------------------------


def _fits_header(extra: dict | None):
    from astropy.io import fits
    header = fits.Header()
    for key, value in (extra or {}).items():
        header[key] = value
    return header


def write_fits_series(directory, frames: np.ndarray, times: Time | None, *,
                      exposure_s: float | None, prefix: str = "frame_", extra: dict | None = None,
                      names=None) -> list[Path]:
    """One FITS file per frame (astropy writes uint16 as BITPIX 16 with BZERO 32768)."""
    from astropy.io import fits
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, frame in enumerate(frames):
        header = _fits_header(extra)
        if times is not None:
            header["DATE-OBS"] = Time(times[k].utc, precision=6).isot
        if exposure_s is not None:
            header["EXPTIME"] = exposure_s
        header["IMAGETYP"] = header.get("IMAGETYP", "Light Frame")
        name = names[k] if names is not None else f"{prefix}{k:05d}.fits"
        fits.PrimaryHDU(np.asarray(frame), header=header).writeto(directory / name,
                                                                  overwrite=True)
        paths.append(directory / name)
    return paths


def write_fits_cube(path, frames: np.ndarray, start: Time, *, exposure_s: float,
                    frame_time_s: float | None = None, extra: dict | None = None) -> Path:
    from astropy.io import fits
    header = _fits_header(extra)
    header["DATE-OBS"] = Time(start.utc, precision=6).isot
    header["EXPTIME"] = exposure_s
    if frame_time_s is not None:
        header["FRM-TIME"] = frame_time_s
    fits.PrimaryHDU(np.asarray(frames), header=header).writeto(path, overwrite=True)
    return Path(path)


def unix_to_ticks(times: Time) -> np.ndarray:
    """Astropy times -> .NET ticks (100 ns since 0001-01-01), exact to the tick."""
    unix = times.utc
    whole = np.floor(unix.unix).astype(np.int64)
    frac = (unix - Time(whole, format="unix", scale="utc")).to_value("s")
    return whole * 10_000_000 + np.rint(frac * 1e7).astype(np.int64) + SER_TICKS_AT_UNIX_EPOCH


def write_ser(path, frames: np.ndarray, times: Time | None, *, depth: int | None = None,
              endian_flag: int = 0, big_endian_data: bool = False, color_id: int = 0,
              header_frame_count: int | None = None, truncate_bytes: int = 0,
              observer: str = "synthetic", instrument: str = "occcore.testing",
              start_utc: Time | None = None, trailer_kind_bits: int = 0) -> Path:
    """Write a SER file. ``frames`` is (n, h, w) or (n, h, w, 3) for RGB/BGR (color 100/101).

    ``endian_flag`` goes into the header as is; ``big_endian_data`` chooses the bytes.
    ``trailer_kind_bits`` sets the top two bits of each time stamp (DateTimeKind).
    """
    frames = np.asarray(frames)
    n = len(frames)
    height, width = frames.shape[1:3]
    if depth is None:
        depth = 8 if frames.dtype == np.uint8 else 16
    header = bytearray(178)
    header[0:14] = b"LUCAM-RECORDER"
    count = n if header_frame_count is None else header_frame_count
    ints = np.array([0, color_id, endian_flag, width, height, depth, count], "<i4")
    header[14:42] = ints.tobytes()
    for offset, text in ((42, observer), (82, instrument), (122, "telescope")):
        header[offset:offset + 40] = text.encode("ascii")[:40].ljust(40, b"\0")
    start = start_utc if start_utc is not None else (times[0] if times is not None else None)
    if start is not None:
        ticks = int(unix_to_ticks(Time([start]))[0])
        header[162:170] = np.array([ticks], "<i8").tobytes()
        header[170:178] = np.array([ticks], "<i8").tobytes()
    sample = "u1" if depth <= 8 else (">u2" if big_endian_data else "<u2")
    body = frames.astype(sample).tobytes()
    data = bytes(header) + body
    if times is not None:
        ticks = unix_to_ticks(times) | (np.int64(trailer_kind_bits) << 62)
        data += ticks.astype("<i8").tobytes()
    if truncate_bytes:
        data = data[:-truncate_bytes]
    Path(path).write_bytes(data)
    return Path(path)


def garbage_files(directory) -> dict[str, Path]:
    """Inputs no reader should accept: empty, random bytes, text, a lone FITS header."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)
    out = {
        "empty": directory / "empty.bin",
        "random": directory / "random.bin",
        "text": directory / "notes.txt",
        "random.fits": directory / "random.fits",
        "random.ser": directory / "random.ser",
    }
    out["empty"].write_bytes(b"")
    out["random"].write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    out["text"].write_text("this is not an image\n" * 50)
    out["random.fits"].write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    out["random.ser"].write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    return out


def truncated_copy(path, directory, keep_fraction: float = 0.6) -> Path:
    """A copy of ``path`` cut to a fraction of its size (the original is untouched)."""
    data = Path(path).read_bytes()
    out = Path(directory) / f"truncated_{Path(path).name}"
    out.write_bytes(data[:max(1, int(len(data) * keep_fraction))])
    return out


# -- diffraction light curves ----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DiffractionTruth:
    immersion_s: float
    emersion_s: float
    baseline: float
    bottom: float
    sigma: float
    velocity_kms: float
    distance_au: float
    star_diameter_km: float
    wavelength_um: float
    bandwidth_um: float
    exposure_s: float


def diffraction_lightcurve(*, n_before: int = 100, n_event: int = 30, n_after: int = 100,
                           exposure_s: float = 0.1, cycle_s: float | None = None,
                           velocity_kms: float = 20.0, distance_au: float = 15.0,
                           star_diameter_km: float = 0.0, wavelength_um: float = 0.7,
                           bandwidth_um: float = 0.3, snr: float = 10.0, bottom: float = 0.0,
                           epoch: str = "2024-03-01T02:03:04.000", seed: int = 0,
                           time_instant: str = "mid") -> tuple[LightCurve, DiffractionTruth]:
    """A bar occultation computed by brute force, independently of occcore's fitter: the
    Fresnel intensity of both edges at once on a fine grid over the whole curve, three
    wavelengths across the band, a uniform stellar disk, each exposure averaged by
    trapezoids; then white Gaussian noise of sigma = (baseline - bottom) / snr."""
    from scipy.special import fresnel
    rng = np.random.default_rng(seed)
    cycle_s = exposure_s if cycle_s is None else cycle_s
    n = n_before + n_event + n_after
    start = np.arange(n) * cycle_s
    phase = rng.uniform(0, 1, 2)
    immersion = (n_before + phase[0]) * cycle_s
    emersion = immersion + (n_event - 1 + phase[1]) * cycle_s + 0.5 * cycle_s
    au_km = 1.495978707e8
    n_lambda = 5
    edges_um = np.linspace(wavelength_um - bandwidth_um / 2, wavelength_um + bandwidth_um / 2,
                           n_lambda + 1)
    lams = 0.5 * (edges_um[1:] + edges_um[:-1]) if bandwidth_um > 0 else np.array([wavelength_um])
    fresnels = np.sqrt(lams * 1e-9 * distance_au * au_km / 2)
    radius_s = star_diameter_km / 2 / velocity_kms
    dt = min(fresnels.min() / velocity_kms / 25, exposure_s / 25,
             radius_s / 25 if radius_s > 0 else np.inf)
    lo, hi = start[0] - 1.0, start[-1] + exposure_s + 1.0
    dt = max(dt, (hi - lo) / 4_000_000)
    t = np.arange(lo, hi, dt)
    x = velocity_kms * t
    intensity = np.zeros_like(t)
    for f in fresnels:
        s1, c1 = fresnel((x - velocity_kms * immersion) / f)
        s2, c2 = fresnel((x - velocity_kms * emersion) / f)
        dc, ds = c1 - c2, s1 - s2
        intensity += (1 - 0.5 * (dc + ds)) ** 2 + (0.5 * (dc - ds)) ** 2
    intensity /= len(fresnels)
    if radius_s > dt:
        m = int(radius_s / dt)
        tau = dt * np.arange(-m, m + 1)
        kernel = np.sqrt(np.clip(1 - (tau / radius_s) ** 2, 0, None))
        kernel /= kernel.sum()
        intensity = np.convolve(np.pad(intensity, m, mode="edge"), kernel, mode="valid")
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (intensity[1:] + intensity[:-1]) * dt)])
    cum = np.interp(np.concatenate([start, start + exposure_s]), t, cumulative)
    mean_intensity = (cum[n:] - cum[:n]) / exposure_s
    sigma = (1.0 - bottom) / snr
    flux = bottom + (1.0 - bottom) * mean_intensity + rng.normal(0, sigma, n)
    shift = {"start": 0.0, "mid": 0.5, "end": 1.0}[time_instant] * exposure_s
    times = FrameTimes(epoch=Time(epoch, scale="utc"), offsets_s=start + shift,
                       instant=time_instant, source="gps", uncertainty_s=1e-4)
    lc = LightCurve(times=times, exposure_s=exposure_s, flux=flux, name="synthetic",
                    frame=np.arange(n))
    truth = DiffractionTruth(immersion_s=immersion, emersion_s=emersion, baseline=1.0,
                             bottom=bottom, sigma=sigma, velocity_kms=velocity_kms,
                             distance_au=distance_au, star_diameter_km=star_diameter_km,
                             wavelength_um=wavelength_um, bandwidth_um=bandwidth_um,
                             exposure_s=exposure_s)
    return lc, truth


# -- reports -------------------------------------------------------------------------------------

SAMPLE_PROFILE = {
    "observer": {"name": "Ada Observer", "email": "ada@example.org", "address": "1 Dome Road"},
    "site": {"nearest_city": "Springfield", "country_code": "NZ", "latitude": "-36 50 41.3",
             "longitude": "+174 45 55.8", "latitude_deg": -(36 + 50 / 60 + 41.3 / 3600),
             "longitude_deg": 174 + 45 / 60 + 55.8 / 3600, "altitude_m": 81.0, "datum": "WGS84"},
    "equipment": {"telescope": "SCT", "aperture_cm": 28, "focal_length_cm": 280,
                  "camera": "QHY174M GPS", "time_source": "GPS", "method": "video"},
    "event": {"asteroid": "Theobalda", "asteroid_number": 778, "star": "UCAC4 361-199861",
              "predicted_utc": "2024-03-01T02:03:15"},
    "conditions": {"wind": 2, "temperature_c": 14.5, "transparency": 1, "stability": 2,
                   "comments": "synthetic run"},
}


def report_input(directory, *, positive: bool = True, seed: int = 0, with_limb: bool = False):
    """A ReportInput with a known truth: a square-well light curve (or a flat one), a timing
    summary holding the true edges with 1/2/3-sigma errors of 1/2/3 ms, every profile
    section filled; optionally a limb summary over synthetic chords."""
    from astropy import units as u

    from occcore.model import Edge, LimbFit, ReportInput, TimingResult, iso_utc
    lc, truth = square_well_lightcurve(n_points=400, cadence_s=0.04, immersion_s=6.123457,
                                       emersion_s=9.876543, bottom=0.1 if positive else 1.0,
                                       sigma=0.03, seed=seed)
    target = attrs.evolve(lc, flux=lc.flux * 20000.0, flux_err=lc.flux_err * 20000.0,
                          name="target", meta={"column": "flux_target"})
    reference = attrs.evolve(lc, flux=np.full(len(lc.flux), 30000.0), flux_err=None,
                             name="reference", meta={"column": "flux_reference"})
    ratio = attrs.evolve(lc, meta={"column": "ratio"}, name="ratio")
    epoch = lc.times.epoch
    timing = TimingResult(model="square", outcome="negative",
                          reason="no significant event (synthetic)")
    if positive:
        edges = {edge: Edge(time=epoch + t * u.s,
                            **{f"err{k}_s": (0.001 * k, 0.0012 * k) for k in (1, 2, 3)})
                 for edge, t in (("immersion", truth.immersion_s),
                                 ("emersion", truth.emersion_s))}
        timing = TimingResult(model="square", outcome="positive", chi2=398.0, dof=396,
                              snr=30.0, baseline=1.0, bottom=0.1, **edges)
    steps = ({"step": "timing", "implementation": "square",
              "attempts": [{"implementation": "diffraction", "status": "declined"},
                           {"implementation": "square", "status": "ok"}]},)
    limb = None
    if with_limb:
        chords, shape = ellipse_chords(n_chords=4, n_negative=1, seed=seed)
        # the shadow moves along +f at 20 km/s: a point's time is epoch + f / 20 s
        speed_kms = 20.0

        def at(f_km):
            return iso_utc(epoch + (f_km / speed_kms) * u.s)

        described = []
        for c in chords:
            if c.positive:
                described.append(attrs.evolve(
                    c, times_utc=[at(f) for f in c.f_km], vf_kms=[speed_kms] * 2,
                    vg_kms=[0.0, 0.0], time_err_s=(c.err_km / speed_kms).tolist()))
            else:
                described.append(attrs.evolve(c, times_utc=[at(c.f_km[0]), at(c.f_km[-1])]))
        limb = LimbFit(model="ellipse", chi2=3.2, dof=3, event={"name": "synthetic"}, **shape,
                       errors={p: (1.0, 1.5) for p in shape}, chords=described)
    return ReportInput(directory=Path(directory), lightcurve=ratio,
                       apertures={"target": target, "reference": reference}, timing=timing,
                       limb=limb, profile=SAMPLE_PROFILE, steps=steps,
                       occcore_version="test"), truth
