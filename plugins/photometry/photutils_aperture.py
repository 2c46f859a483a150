"""Aperture photometry with photutils, one frame at a time (exact overlap).

The same geometry, sky estimator and error model as the sep method (see ``_common``):
``aperture_photometry(method='exact')`` for the sum and ``ApertureStats`` on the annulus
(pixel-centre membership) for the sky. Slower, and an independent check of sep.
"""
from __future__ import annotations

import attrs
import numpy as np

from occcore.model import FrameFlag, Photometry
from occcore.plugin import PhotometrySpec, hookimpl
from occplugins.photometry._common import SIGMA_CLIP, flux_error


@attrs.frozen(kw_only=True)
class PhotutilsOptions:
    pass


def _measure(request, *, options, context):
    from astropy.stats import SigmaClip
    from photutils.aperture import (ApertureStats, CircularAnnulus, CircularAperture,
                                    aperture_photometry)

    series, track = request.series, request.track
    n, k = track.x.shape
    height, width = series.height, series.width
    flux = np.full((n, k), np.nan)
    err = np.full((n, k), np.nan)
    sky = np.full((n, k), np.nan)
    flags = np.zeros(n, np.uint32)
    clip = None if request.sky_method == "median" else SigmaClip(
        sigma=SIGMA_CLIP["sigma"], maxiters=SIGMA_CLIP["maxiters"], cenfunc="median",
        stdfunc="std")
    for i in range(n):
        frame = np.asarray(series[i], dtype=np.float64)
        for j, ap in enumerate(request.apertures):
            x, y = track.x[i, j], track.y[i, j]
            reach = ap.annulus_px[1] + 1
            if not (reach <= x <= width - 1 - reach and reach <= y <= height - 1 - reach):
                flags[i] |= np.uint32(FrameFlag.EDGE)
                continue
            total = aperture_photometry(frame, CircularAperture((x, y), ap.radius_px),
                                        method="exact")["aperture_sum"][0]
            stats = ApertureStats(frame, CircularAnnulus((x, y), *ap.annulus_px), sigma_clip=clip)
            level = stats.median if clip is None else stats.mean
            area = np.pi * ap.radius_px ** 2
            flux[i, j] = total - level * area
            sky[i, j] = level
            n_sky = np.ma.count(stats.data_cutout)   # annulus pixels left after clipping
            err[i, j] = flux_error(flux[i, j], area, stats.std, n_sky, request.gain_e_per_adu,
                                   request.read_noise_e, request.sky_method)
        if i % 200 == 0:
            context.progress(i, n, "photometry")
    return Photometry(names=track.names, flux=flux, flux_err=err, sky=sky, flags=flags,
                      method="photutils")


@hookimpl
def occcore_photometry():
    yield PhotometrySpec(name="photutils", summary="photutils exact circular apertures, "
                         "ApertureStats annulus sky", measure=_measure, options=PhotutilsOptions,
                         requires=("photutils",))
