"""Aperture photometry with sep, batched: the cut-outs of every star in a block of frames are
stacked into one image and measured with one ``sep.sum_circle`` call (exact overlap).

The sky comes from the annulus pixels (see ``_common``). A star whose aperture or annulus
leaves the frame gets a NaN flux and the EDGE flag.
"""
from __future__ import annotations

import attrs
import numpy as np

from occcore.model import FrameFlag, Photometry
from occcore.plugin import PhotometrySpec, hookimpl
from occplugins._cutouts import cutouts
from occplugins.photometry._common import annulus_stats, flux_error


@attrs.frozen(kw_only=True)
class SepOptions:
    batch_frames: int = attrs.field(default=256, validator=attrs.validators.ge(1))


def measure_block(block, x, y, radius, r_in, r_out, sky_method):
    """Raw sums, sky level, sky std, sky pixel count and edge flags for (M, K) positions."""
    import sep

    m, k = x.shape
    half = int(np.ceil(np.max(r_out))) + 1
    n = 2 * half + 1
    tiles, ox, oy, inside = cutouts(block, x, y, half)
    local_x = x - ox
    local_y = y - oy
    stacked = np.ascontiguousarray(tiles.reshape(m * k * n, n))
    rows = (np.arange(m * k) * n).reshape(m, k)
    r_b = np.broadcast_to(radius, (m, k))
    total, _, _ = sep.sum_circle(stacked, local_x.ravel(), (local_y + rows).ravel(),
                                 r_b.ravel(), subpix=0)
    grid = np.arange(n)
    d2 = ((grid[None, None, None, :] - local_x[..., None, None]) ** 2
          + (grid[None, None, :, None] - local_y[..., None, None]) ** 2)
    in_annulus = (d2 >= (np.broadcast_to(r_in, (m, k)) ** 2)[..., None, None]) & \
                 (d2 <= (np.broadcast_to(r_out, (m, k)) ** 2)[..., None, None])
    # a pixel touches the aperture when its centre is within r + sqrt(2)/2
    touches = d2 <= ((r_b + 0.7072) ** 2)[..., None, None]
    edge = ((touches | in_annulus) & ~inside).any(axis=(-2, -1))
    sky, sky_std, n_sky = annulus_stats(tiles.reshape(m, k, -1),
                                        (in_annulus & inside).reshape(m, k, -1), sky_method)
    return total.reshape(m, k), sky, sky_std, n_sky, edge


def _measure(request, *, options, context):
    options = options or SepOptions()
    series, track = request.series, request.track
    radius = np.array([a.radius_px for a in request.apertures])
    r_in = np.array([a.annulus_px[0] for a in request.apertures])
    r_out = np.array([a.annulus_px[1] for a in request.apertures])
    n, k = track.x.shape
    flux = np.empty((n, k))
    err = np.empty((n, k))
    sky = np.empty((n, k))
    flags = np.zeros(n, np.uint32)
    area = np.pi * radius ** 2
    for start in range(0, n, options.batch_frames):
        stop = min(n, start + options.batch_frames)
        block = series.batch(start, stop)
        total, level, std, count, edge = measure_block(
            block, track.x[start:stop], track.y[start:stop], radius, r_in, r_out,
            request.sky_method)
        net = total - level * area
        net[edge] = np.nan
        flux[start:stop] = net
        sky[start:stop] = level
        err[start:stop] = flux_error(net, area, std, count, request.gain_e_per_adu,
                                     request.read_noise_e, request.sky_method)
        flags[start:stop][edge.any(axis=1)] |= np.uint32(FrameFlag.EDGE)
        context.progress(stop, n, "photometry")
    return Photometry(names=request.track.names, flux=flux, flux_err=err, sky=sky, flags=flags,
                      method="sep")


@hookimpl
def occcore_photometry():
    yield PhotometrySpec(name="sep", summary="sep exact circular apertures, batched; annulus sky",
                         measure=_measure, options=SepOptions, requires=("sep",))
