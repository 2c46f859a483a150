"""Seeded synthetic drift-scan images with a known truth (John Broughton's CCD method).

A stationary telescope takes one long exposure; every star trails across the chip at
the sidereal rate ``15.0411" per solar second x cos(dec) / plate scale``. The target's
trail has a gap (the occultation) of known start and end.

The image is the time integral of each star's pixel-integrated Gaussian PSF along its
path: the exposure is cut exactly at the shutter times and at the disappearance and
reappearance, and each piece is integrated with 3-point Gauss-Legendre nodes every
``node_step_px`` of motion. A Gaussian PSF is smooth, so the sub-pixel positions of the
trail ends and of both gap edges are reproduced exactly (to ~1e-6 of a pixel), not
rounded to pixels. Scintillation (a correlated multiplicative flux modulation) and image
motion (a correlated along-track jitter) roughen the trail as real seeing does; then
sky, photon noise, read noise, gain and bias, and clipping at the ADC maximum.

Never imports pytest.
"""
from __future__ import annotations

import attrs
import numpy as np

SIDEREAL_TO_SOLAR = 0.99727          # one sidereal second in solar (UTC) seconds
ARCSEC_PER_SOLAR_S = 15.0 / SIDEREAL_TO_SOLAR


def drift_rate_px_per_s(dec_deg: float, plate_scale_arcsec: float) -> float:
    """Drift rate of a star on the chip, pixels per solar second."""
    return ARCSEC_PER_SOLAR_S * np.cos(np.radians(dec_deg)) / plate_scale_arcsec


@attrs.frozen(kw_only=True)
class DriftScanTruth:
    """What generated a drift-scan image. Times are seconds after the shutter opened;
    positions are 0-based pixel coordinates of the trail's centre line."""

    shutter_open_utc: str
    shutter_close_utc: str
    exposure_s: float
    rate_px_per_s: float
    angle_deg: float
    psf_sigma_px: float
    dec_deg: float
    plate_scale_arcsec: float
    disappearance_s: float
    reappearance_s: float
    remaining_fraction: float
    target_flux_e_per_s: float
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    disappearance_xy: tuple[float, float]
    reappearance_xy: tuple[float, float]
    other_trails: tuple[tuple[float, float, float], ...]   # (x0, y0, flux e-/s)
    saturated: bool = False

    def position(self, t_s: float) -> tuple[float, float]:
        """Trail centre at ``t_s`` seconds after opening (no jitter)."""
        s = self.rate_px_per_s * t_s
        a = np.radians(self.angle_deg)
        return (self.start_xy[0] + s * np.cos(a), self.start_xy[1] + s * np.sin(a))


def _correlated(rng, n: int, dt_s: float, rms: float, tau_s: float) -> np.ndarray:
    """Gaussian noise of standard deviation ``rms`` with a Gaussian correlation of width
    ``tau_s`` on a grid of step ``dt_s`` (white noise smoothed, then renormalised)."""
    if rms <= 0:
        return np.zeros(n)
    width = max(tau_s / dt_s, 1e-9)
    half = int(np.ceil(4 * width))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / width) ** 2)
    white = rng.normal(0, 1, n + 2 * half)
    smooth = np.convolve(white, kernel / np.sqrt(np.sum(kernel ** 2)), mode="valid")
    return rms * smooth[:n]


def _nodes(pieces, step_s: float):
    """Gauss-Legendre (3-point) nodes and weights over consecutive time pieces."""
    gl_x = np.array([-np.sqrt(0.6), 0.0, np.sqrt(0.6)])
    gl_w = np.array([5 / 9, 8 / 9, 5 / 9])
    t_all, w_all, piece_all = [], [], []
    for k, (a, b) in enumerate(pieces):
        if b <= a:
            continue
        n = max(1, int(np.ceil((b - a) / step_s)))
        edges = np.linspace(a, b, n + 1)
        mid = 0.5 * (edges[1:] + edges[:-1])
        half = 0.5 * (edges[1:] - edges[:-1])
        t_all.append((mid[:, None] + half[:, None] * gl_x[None, :]).ravel())
        w_all.append((half[:, None] * gl_w[None, :]).ravel())
        piece_all.append(np.full(3 * n, k))
    return np.concatenate(t_all), np.concatenate(w_all), np.concatenate(piece_all)


def _render_trail(image, x, y, weight_e, sigma_px):
    """Add a trail: ``weight_e`` electrons at each node centre (x, y), each spread by the
    pixel-integrated Gaussian (separable: erf differences in x and in y) over the pixels
    within 6 sigma of the node; accumulated with one bincount."""
    from scipy.special import erf
    height, width = image.shape
    half = int(np.ceil(6 * sigma_px)) + 1
    offsets = np.arange(-half, half + 1)
    scale = 1.0 / (np.sqrt(2) * sigma_px)
    cols = np.floor(x).astype(np.int64)[:, None] + offsets[None, :]
    rows = np.floor(y).astype(np.int64)[:, None] + offsets[None, :]
    px = 0.5 * (erf((cols + 0.5 - x[:, None]) * scale) - erf((cols - 0.5 - x[:, None]) * scale))
    py = 0.5 * (erf((rows + 0.5 - y[:, None]) * scale) - erf((rows - 0.5 - y[:, None]) * scale))
    value = weight_e[:, None, None] * py[:, :, None] * px[:, None, :]
    inside = ((rows[:, :, None] >= 0) & (rows[:, :, None] < height)
              & (cols[:, None, :] >= 0) & (cols[:, None, :] < width))
    index = rows[:, :, None] * width + cols[:, None, :]
    image += np.bincount(index[inside], weights=value[inside],
                         minlength=height * width).reshape(height, width)


def drift_scan_image(*, height: int = 40, width: int = 320, exposure_s: float = 50.0,
                     dec_deg: float = 20.0, plate_scale_arcsec: float = 2.8,
                     angle_deg: float = 0.5, start_xy=(25.3, 19.6),
                     target_flux_e_per_s: float = 20000.0, remaining_fraction: float = 0.1,
                     disappearance_s: float = 21.37, reappearance_s: float = 25.81,
                     fwhm_px: float = 3.0, scintillation: float = 0.02,
                     scintillation_tau_s: float = 0.3, jitter_px: float = 0.1,
                     jitter_tau_s: float = 0.3,
                     other_trails=((40.2, 8.4, 15000.0), (-120.0, 31.0, 30000.0),
                                   (190.7, 18.5, 1500.0)),
                     sky_e: float = 150.0, read_noise_e: float = 8.0,
                     gain_e_per_adu: float = 1.5, bias_adu: float = 300.0,
                     adc_max_adu: int = 65535, node_step_px: float = 1.0, noise: bool = True,
                     shutter_open_utc: str = "2024-05-06T09:02:35.520",
                     dtype=np.uint16, seed: int = 0):
    """A drift-scan image ``(height, width)``, a FITS header dict and the truth.

    ``start_xy`` is where the target's trail starts (shutter opening); ``angle_deg`` the
    trail direction measured from +x towards +y. ``other_trails`` are ``(x0, y0, flux)``
    of other stars at shutter opening: they trail parallel to the target, may start or
    end outside the frame, and may run close to (and across the rows of) the target.
    ``remaining_fraction`` is the flux left during the gap (10**(-0.4 * drop_mag)).
    ``noise=False`` gives the expected image (no photon or read noise).
    """
    from astropy import units as u
    from astropy.time import Time

    rng = np.random.default_rng(seed)
    rate = drift_rate_px_per_s(dec_deg, plate_scale_arcsec)
    sigma = fwhm_px / 2.3548
    angle = np.radians(angle_deg)
    step_s = node_step_px / rate
    image = np.zeros((height, width))

    # one fine grid carries the seeing: scintillation and along-track image motion
    grid_dt = min(step_s / 3, 0.02)
    grid_t = np.arange(0, exposure_s + 2 * grid_dt, grid_dt)
    scint = _correlated(rng, len(grid_t), grid_dt, scintillation, scintillation_tau_s)
    jitter = _correlated(rng, len(grid_t), grid_dt, jitter_px, jitter_tau_s)

    def path(x0, y0, t):
        s = rate * t + np.interp(t, grid_t, jitter)
        return x0 + s * np.cos(angle), y0 + s * np.sin(angle)

    def modulation(t):
        return np.clip(1 + np.interp(t, grid_t, scint), 0, None)

    t, w, piece = _nodes([(0.0, disappearance_s), (disappearance_s, reappearance_s),
                          (reappearance_s, exposure_s)], step_s)
    flux = target_flux_e_per_s * modulation(t) * np.where(piece == 1, remaining_fraction, 1.0)
    x, y = path(start_xy[0], start_xy[1], t)
    _render_trail(image, x, y, flux * w, sigma)
    t_other, w_other, _ = _nodes([(0.0, exposure_s)], 2 * step_s)   # no edges to resolve
    for x0, y0, f in other_trails:
        xo, yo = path(x0, y0, t_other)
        _render_trail(image, xo, yo, f * modulation(t_other) * w_other, sigma)

    if noise:
        electrons = rng.poisson(image + sky_e).astype(np.float64)
        electrons += rng.normal(0, read_noise_e, image.shape)
    else:   # the expected image (for bias checks); seeing roughness is still drawn
        electrons = image + sky_e
    adu = electrons / gain_e_per_adu + bias_adu
    saturated = bool(np.any(adu >= adc_max_adu))
    if np.issubdtype(np.dtype(dtype), np.integer):
        adu = np.clip(np.rint(adu), 0, adc_max_adu)
    adu = adu.astype(dtype)

    opened = Time(shutter_open_utc, scale="utc")
    closed = opened + exposure_s * u.s

    def at(t_s):
        s = rate * t_s
        return (float(start_xy[0] + s * np.cos(angle)), float(start_xy[1] + s * np.sin(angle)))

    truth = DriftScanTruth(
        shutter_open_utc=Time(opened, precision=6).isot,
        shutter_close_utc=Time(closed, precision=6).isot, exposure_s=exposure_s,
        rate_px_per_s=rate, angle_deg=angle_deg, psf_sigma_px=sigma, dec_deg=dec_deg,
        plate_scale_arcsec=plate_scale_arcsec, disappearance_s=disappearance_s,
        reappearance_s=reappearance_s, remaining_fraction=remaining_fraction,
        target_flux_e_per_s=target_flux_e_per_s, start_xy=at(0.0), end_xy=at(exposure_s),
        disappearance_xy=at(disappearance_s), reappearance_xy=at(reappearance_s),
        other_trails=tuple(tuple(map(float, o)) for o in other_trails), saturated=saturated)
    header = {"DATE-OBS": Time(opened, precision=6).isot, "EXPTIME": float(exposure_s),
              "IMAGETYP": "Light Frame", "OBJECT": "synthetic drift scan",
              "GAIN": float(gain_e_per_adu)}
    return adu, header, truth


def write_drift_scan_fits(path, image, header: dict):
    """Write the image (and header cards) as one FITS file; returns the path."""
    from pathlib import Path

    from astropy.io import fits
    hdr = fits.Header()
    for key, value in header.items():
        hdr[key] = value
    fits.PrimaryHDU(np.asarray(image), header=hdr).writeto(path, overwrite=True)
    return Path(path)


def drift_scan_samples(directory):
    """Contract samples for the ``driftscan`` reader (one seeded image)."""
    from pathlib import Path

    from occcore.plugin import Match
    from occcore.testing.contracts import ReaderSample   # only when a contract test asks
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    image, header, _ = drift_scan_image(seed=1)
    path = write_drift_scan_fits(directory / "driftscan.fits", image, header)
    return [ReaderSample(path=path, level=Match.SIGNATURE, n_frames=1, height=image.shape[0],
                         width=image.shape[1])]
