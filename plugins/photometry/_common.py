"""What the in-tree photometry methods share: the sky estimate and the error model.

Sky: the pixels whose *centres* lie in the annulus ``r_in <= d <= r_out`` (photutils'
``center`` method); their median, or their sigma-clipped mean (astropy SigmaClip, 3 sigma,
5 iterations, median centre, standard deviation), and their standard deviation.

Error of a net flux F (ADU) in an aperture of area A with n_sky sky pixels:
``var = max(F, 0) / gain + A * s^2 + A^2 * s^2 * c / n_sky`` where ``s^2`` is the
per-pixel sky variance (measured in the annulus, never below the read noise
``(read_noise_e / gain)^2``) and ``c`` is pi/2 for a median sky and 1 for a mean.
"""
from __future__ import annotations

import numpy as np

SIGMA_CLIP = {"sigma": 3.0, "maxiters": 5, "cenfunc": "median", "stdfunc": "std"}


def annulus_stats(values: np.ndarray, mask: np.ndarray, method: str):
    """Sky level, sky standard deviation and pixel count per row of ``values`` (rows: M, N)."""
    count = mask.sum(axis=-1)
    if method == "median":
        ranked = np.sort(np.where(mask, values, np.inf), axis=-1)
        lo = np.clip((count - 1) // 2, 0, None)
        hi = np.clip(count // 2, 0, None)
        take = np.take_along_axis
        level = 0.5 * (take(ranked, lo[..., None], -1)[..., 0] + take(ranked, hi[..., None], -1)[..., 0])
        used = mask
    else:
        from astropy.stats import sigma_clip
        clipped = sigma_clip(np.ma.MaskedArray(values, ~mask), axis=-1, **SIGMA_CLIP)
        used = ~np.ma.getmaskarray(clipped)
        level = np.ma.filled(clipped.mean(axis=-1), np.nan)
        count = used.sum(axis=-1)
    safe = np.maximum(count, 1)
    mean = np.where(used, values, 0.0).sum(axis=-1) / safe
    var = np.where(used, (values - mean[..., None]) ** 2, 0.0).sum(axis=-1) / safe
    level = np.where(count > 0, level, np.nan)
    return level, np.sqrt(var), count


def flux_error(flux, area, sky_std, n_sky, gain_e_per_adu, read_noise_e, method):
    pixel_var = np.maximum(sky_std ** 2, (read_noise_e / gain_e_per_adu) ** 2)
    factor = np.pi / 2 if method == "median" else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (np.maximum(flux, 0) / gain_e_per_adu + area * pixel_var
               + area ** 2 * pixel_var * factor / n_sky)
    return np.sqrt(var)
