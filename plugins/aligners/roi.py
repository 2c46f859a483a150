"""The Occultation Portal's find_source_in_roi: each star is the brightest source in a box
(ROIBOX) around its position in the previous frame, refined by a thresholded centroid.

Slower than the tracker (one frame at a time) but independent of it. The occulted target
is never located by its own light: it moves with the mean shift of the other stars.
"""
from __future__ import annotations

import attrs
import numpy as np

from occcore.model import FrameFlag, Track
from occcore.plugin import AlignerSpec, NotApplicable, hookimpl
from occplugins._cutouts import cutouts, peaks, robust_background, thresholded_centroid


@attrs.frozen(kw_only=True)
class RoiOptions:
    roibox_px: int = attrs.field(default=20, validator=attrs.validators.ge(3))
    min_snr: float = 5.0
    max_lost_fraction: float = 0.5


def _align(request, *, options, context):
    options = options or RoiOptions()
    series = request.series
    n = len(series)
    x0, y0 = request.positions()
    followers = np.array([i for i, a in enumerate(request.apertures) if a.role != "target"])
    if len(followers) == 0:
        raise NotApplicable("no star other than the target to follow")
    half = options.roibox_px
    window = int(np.ceil(1.5 * request.fwhm_px)) + 1
    last_x, last_y = x0[followers].astype(float), y0[followers].astype(float)
    shift_x = np.full(n, np.nan)
    shift_y = np.full(n, np.nan)
    flags = np.zeros(n, np.uint32)
    order = list(range(request.reference_index, n)) + list(range(request.reference_index - 1, -1, -1))
    for count, k in enumerate(order):
        if k == request.reference_index - 1:
            last_x, last_y = x0[followers].astype(float), y0[followers].astype(float)
        frame = series.batch(k, k + 1)
        tiles, ox, oy, inside = cutouts(frame, last_x[None], last_y[None], half, np.float32)
        bg, noise = robust_background(tiles, inside)
        prow, pcol, value, _ = peaks(np.where(inside, tiles, bg[..., None, None]))
        found = (value - 9 * bg) > options.min_snr * 3 * noise
        cx, cy, w = thresholded_centroid(frame, (ox + pcol).astype(float), (oy + prow).astype(float),
                                         window, bg, noise)
        found = found[0] & (w[0] > 0)
        if not found.any():
            flags[k] |= np.uint32(FrameFlag.ALIGN_UNCERTAIN)
            continue
        dx = cx[0] - x0[followers]
        dy = cy[0] - y0[followers]
        shift_x[k] = dx[found].mean()
        shift_y[k] = dy[found].mean()
        if not found.all():
            flags[k] |= np.uint32(FrameFlag.ALIGN_UNCERTAIN)
        last_x = np.where(found, cx[0], x0[followers] + shift_x[k])
        last_y = np.where(found, cy[0], y0[followers] + shift_y[k])
        if count % 500 == 0:
            context.progress(count, n, "roi tracking")
    known = np.isfinite(shift_x)
    if known.mean() < 1 - options.max_lost_fraction:
        raise NotApplicable(f"stars found in only {known.sum()} of {n} frames")
    frames = np.arange(n)
    shift_x = np.interp(frames, frames[known], shift_x[known])
    shift_y = np.interp(frames, frames[known], shift_y[known])
    return Track(names=request.names, x=x0[None] + shift_x[:, None], y=y0[None] + shift_y[:, None],
                 flags=flags, reference_index=request.reference_index, method="roi")


@hookimpl
def occcore_aligners():
    yield AlignerSpec(name="roi", summary="brightest source in a box around each star "
                      "(Occultation Portal find_source_in_roi)", align=_align, options=RoiOptions)
