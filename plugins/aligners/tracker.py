"""The fast default tracker: follows the field in batches of frames.

For a block of frames it cuts a search box around each tracking star (every star that
is not the occulted target) at the predicted field shift, finds the smoothed peak in
every frame at once, refines the peaks with thresholded centroids, and combines the
stars into one shared shift per frame (weighted by brightness). The target's position
is the reference position plus that shift, never its own centroid, so it is right
while the star is occulted.

When the stars leave the search box (a jump, fast drift), the tracker restarts at that
frame from the last good shift and, if that fails, searches a box four times wider,
then the whole frame, accepting a candidate only when the other stars are found at
the same shift. Frames it cannot pin down are flagged ALIGN_UNCERTAIN (and their
positions interpolated), not dropped; after ``max_lost_frames`` in a row it declines
so that the next aligner of the chain takes over.
"""
from __future__ import annotations

import attrs
import numpy as np

from occcore.model import FrameFlag, Track
from occcore.plugin import AlignerSpec, NotApplicable, hookimpl
from occplugins._cutouts import cutouts, peaks, robust_background, thresholded_centroid


@attrs.frozen(kw_only=True)
class TrackerOptions:
    search_px: int = attrs.field(default=10, validator=attrs.validators.ge(3))
    window_px: int = attrs.field(default=0, validator=attrs.validators.ge(0))   # 0: from FWHM
    batch_frames: int = attrs.field(default=128, validator=attrs.validators.ge(1))
    min_snr: float = 5.0
    max_lost_frames: int = 25
    max_star_dispersion_px: float = 1.5
    max_stars: int = 5


@attrs.frozen
class _Stars:
    """Tracking stars on the reference frame."""

    index: np.ndarray          # positions in the request's aperture list
    x: np.ndarray
    y: np.ndarray
    peak: np.ndarray           # smoothed (3x3 sum) peak above background on the reference
    noise: np.ndarray          # per-pixel noise near each star
    weight: np.ndarray


def _reference_stars(request, options) -> _Stars:
    x0, y0 = request.positions()
    roles = [a.role for a in request.apertures]
    candidates = np.array([i for i, role in enumerate(roles) if role != "target"])
    if len(candidates) == 0:
        raise NotApplicable("no star other than the target to follow the field with")
    ref = request.series.batch(request.reference_index, request.reference_index + 1)
    half = options.search_px
    tiles, _, _, inside = cutouts(ref, x0[None, candidates], y0[None, candidates], half)
    bg, noise = robust_background(tiles, inside)
    prow, pcol, value, _ = peaks(np.where(inside, tiles, bg[..., None, None]))
    peak = (value - 9 * bg)[0]
    snr = peak / (3 * noise[0])
    usable = snr >= options.min_snr
    if not usable.any():
        raise NotApplicable("no tracking star stands out on the reference frame "
                            f"(best SNR {snr.max():.1f})")
    order = np.argsort(-peak[usable])[:options.max_stars]
    keep = candidates[usable][order]
    sel = np.flatnonzero(usable)[order]
    return _Stars(index=keep, x=x0[keep], y=y0[keep], peak=peak[sel], noise=noise[0, sel],
                  weight=peak[sel] / peak[sel].max())


def _coarse(block, stars: _Stars, shift, options):
    """Per frame and star: peak shift, found mask (M, T) for a block at one prediction."""
    m = len(block)
    cx = np.broadcast_to(stars.x + shift[0], (m, len(stars.x)))
    cy = np.broadcast_to(stars.y + shift[1], (m, len(stars.x)))
    tiles, ox, oy, inside = cutouts(block, cx, cy, options.search_px, dtype=np.float32)
    values = tiles.reshape(m, len(stars.x), -1)
    bg = np.median(values, axis=-1)
    prow, pcol, value, border = peaks(np.where(inside, tiles, bg[..., None, None]))
    height = value - 9 * bg
    threshold = np.maximum(options.min_snr * 3 * stars.noise, 0.15 * stars.peak)
    found = (height > threshold) & ~border
    dx = ox + pcol - stars.x
    dy = oy + prow - stars.y
    return dx, dy, found, bg


def _combine(dx, dy, found, weight):
    """Weighted mean shift over found stars; NaN where none was found."""
    w = np.where(found, weight, 0.0)
    total = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sx = (w * dx).sum(axis=-1) / total
        sy = (w * dy).sum(axis=-1) / total
    return np.where(total > 0, sx, np.nan), np.where(total > 0, sy, np.nan)


def _frames_ok(dx, dy, found, tolerance):
    """A frame is trusted when its brightest star is found and the found stars agree."""
    sx, sy = _combine(dx, dy, found, np.ones(dx.shape[-1]))
    spread = np.where(found, np.hypot(dx - sx[:, None], dy - sy[:, None]), 0.0).max(axis=-1)
    return found[:, 0] & (spread <= tolerance)


def _wide_search(frame, stars: _Stars, shift, options):
    """Re-acquire the field in one frame: candidates for the brightest star in a wide box,
    each checked against the other stars. Returns the shift or None."""
    height, width = frame.shape[1:]
    for half in (4 * options.search_px, max(height, width)):
        cx = np.array([[stars.x[0] + shift[0]]])
        cy = np.array([[stars.y[0] + shift[1]]])
        tiles, ox, oy, inside = cutouts(frame, cx, cy, min(half, max(height, width)),
                                        dtype=np.float32)
        bg = float(np.median(tiles[inside]))
        work = np.where(inside, tiles, bg)[0, 0]
        for _ in range(6):
            prow, pcol, value, _ = peaks(work[None, None])
            if value[0, 0] - 9 * bg < options.min_snr * 3 * stars.noise[0]:
                break
            candidate = (ox[0, 0] + pcol[0, 0] - stars.x[0], oy[0, 0] + prow[0, 0] - stars.y[0])
            dx, dy, found, _ = _coarse(frame, stars, candidate, options)
            if found[0].all() and _frames_ok(dx, dy, found, 2.0)[0]:
                return candidate
            r0, c0 = prow[0, 0], pcol[0, 0]
            work[max(0, r0 - 3):r0 + 4, max(0, c0 - 3):c0 + 4] = bg   # try the next peak
    return None


def _track(request, *, options, context):
    options = options or TrackerOptions()
    series = request.series
    n = len(series)
    stars = _reference_stars(request, options)
    window = options.window_px or int(np.ceil(1.5 * request.fwhm_px)) + 1
    shift_x = np.full(n, np.nan)
    shift_y = np.full(n, np.nan)
    flags = np.zeros(n, np.uint32)
    uncertain = np.uint32(FrameFlag.ALIGN_UNCERTAIN)
    prediction = (0.0, 0.0)
    lost_in_a_row = 0
    start = 0
    while start < n:
        stop = min(n, start + options.batch_frames)
        block = series.batch(start, stop)
        dx, dy, found, bg = _coarse(block, stars, prediction, options)
        ok = _frames_ok(dx, dy, found, 2.0)
        good = len(ok) if ok.all() else int(np.argmin(ok))
        if good:
            sel = slice(0, good)
            coarse_x, coarse_y = _combine(dx[sel], dy[sel], found[sel], stars.weight)
            fx, fy, w = thresholded_centroid(block[sel], stars.x + coarse_x[:, None],
                                             stars.y + coarse_y[:, None], window,
                                             bg[sel], np.broadcast_to(stars.noise, bg[sel].shape))
            fine_dx, fine_dy = fx - stars.x, fy - stars.y
            fine_found = found[sel] & (w > 0)
            sx, sy = _combine(fine_dx, fine_dy, fine_found, stars.weight)
            spread = np.where(fine_found, np.hypot(fine_dx - sx[:, None], fine_dy - sy[:, None]),
                              0.0).max(axis=-1)
            shift_x[start:start + good] = sx
            shift_y[start:start + good] = sy
            flags[start:start + good][spread > options.max_star_dispersion_px] |= uncertain
            prediction = (float(sx[-1]), float(sy[-1]))
            lost_in_a_row = 0
            start += good
            context.progress(start, n, "tracking")
            continue
        # the first frame of this block could not be pinned down at the prediction
        frame = block[:1]
        candidate = _wide_search(frame, stars, prediction, options)
        if candidate is not None and candidate != prediction:
            prediction = (float(candidate[0]), float(candidate[1]))
            continue                                   # redo this frame at the new shift
        flags[start] |= uncertain
        lost_in_a_row += 1
        if lost_in_a_row > options.max_lost_frames:
            raise NotApplicable(f"lost the field at frame {start - lost_in_a_row + 1} "
                                f"({lost_in_a_row} frames in a row without the tracking stars)")
        start += 1
    known = np.isfinite(shift_x)
    if not known.any():
        raise NotApplicable("the tracking stars were not found in any frame")
    frames = np.arange(n)
    shift_x = np.interp(frames, frames[known], shift_x[known])
    shift_y = np.interp(frames, frames[known], shift_y[known])
    x0, y0 = request.positions()
    return Track(names=request.names, x=x0[None, :] + shift_x[:, None],
                 y=y0[None, :] + shift_y[:, None], flags=flags,
                 reference_index=request.reference_index, method="tracker")


@hookimpl
def occcore_aligners():
    yield AlignerSpec(name="tracker", summary="fast batch tracker: shared shift from the bright "
                      "stars, jump recovery by widening the search", align=_track,
                      options=TrackerOptions)
