"""Vectorised cut-outs and centroids around many stars in many frames at once.

Shared by the in-tree aligners and the sep photometry. Coordinates are 0-based numpy
pixel coordinates: x is the column, y the row, and (0.0, 0.0) is the centre of the
first pixel (the convention of sep and photutils).
"""
from __future__ import annotations

import numpy as np


def cutouts(block: np.ndarray, cx: np.ndarray, cy: np.ndarray, half: int, dtype=np.float64):
    """Square cut-outs of side ``2 * half + 1`` centred on the pixel nearest (cx, cy).

    ``block`` is ``(M, H, W)``; ``cx``/``cy`` are ``(M, K)``. Returns ``tiles`` (M, K, n, n),
    the integer origin ``(ox, oy)`` (M, K) of each tile, and ``inside`` (M, K, n, n), which
    is False for pixels outside the frame (their values are copies of the nearest edge).
    """
    m, height, width = block.shape
    n = 2 * half + 1
    good = np.isfinite(cx) & np.isfinite(cy)
    ox = np.where(good, np.rint(np.nan_to_num(cx)), -10 * n).astype(np.int64) - half
    oy = np.where(good, np.rint(np.nan_to_num(cy)), -10 * n).astype(np.int64) - half
    offsets = np.arange(n)
    rows = oy[..., None] + offsets
    cols = ox[..., None] + offsets
    inside = (((rows >= 0) & (rows < height))[..., :, None]
              & ((cols >= 0) & (cols < width))[..., None, :])
    rows = np.clip(rows, 0, height - 1)
    cols = np.clip(cols, 0, width - 1)
    frames = np.arange(m)[:, None, None, None]
    tiles = np.asarray(block[frames, rows[..., :, None], cols[..., None, :]], dtype=dtype)
    return tiles, ox, oy, inside


def box_sum3(tiles: np.ndarray) -> np.ndarray:
    """3x3 box sums over the last two axes ('valid' region: each side shrinks by 2)."""
    rows = tiles[..., :-2, :] + tiles[..., 1:-1, :] + tiles[..., 2:, :]
    return rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]


def peaks(tiles: np.ndarray):
    """Position (row, col, in tile pixels) and value of the 3x3-smoothed maximum of each tile,
    and whether it lies on the border of the smoothed region (the star may be outside)."""
    smooth = box_sum3(tiles)
    flat = smooth.reshape(smooth.shape[:-2] + (-1,))
    idx = np.argmax(flat, axis=-1)
    side = smooth.shape[-1]
    prow, pcol = np.divmod(idx, side)
    value = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
    border = (prow == 0) | (pcol == 0) | (prow == side - 1) | (pcol == side - 1)
    return prow + 1, pcol + 1, value, border


def thresholded_centroid(block: np.ndarray, cx: np.ndarray, cy: np.ndarray, half: int,
                         background: np.ndarray, noise: np.ndarray, iterations: int = 2,
                         threshold_sigma: float = 2.0):
    """Centroids of stars near (cx, cy): intensity-weighted mean position of the pixels more
    than ``threshold_sigma`` noise above the background, re-centred ``iterations`` times.

    ``background``/``noise`` are per pixel, shaped (M, K). Returns (x, y, total weight).
    """
    x, y = cx.astype(np.float64), cy.astype(np.float64)
    weight_sum = np.zeros_like(x)
    offsets = np.arange(2 * half + 1)
    for _ in range(iterations):
        tiles, ox, oy, inside = cutouts(block, x, y, half)
        weights = tiles - (background + threshold_sigma * noise)[..., None, None]
        weights = np.where(inside & (weights > 0), weights, 0.0)
        weight_sum = weights.sum(axis=(-2, -1))
        safe = np.where(weight_sum > 0, weight_sum, 1.0)
        new_x = ox + (weights.sum(axis=-2) * offsets).sum(axis=-1) / safe
        new_y = oy + (weights.sum(axis=-1) * offsets).sum(axis=-1) / safe
        found = weight_sum > 0
        x = np.where(found, new_x, x)
        y = np.where(found, new_y, y)
    return x, y, weight_sum


def robust_background(tiles: np.ndarray, inside: np.ndarray | None = None):
    """Median and MAD-based noise of each tile's pixels (per (M, K))."""
    values = tiles.reshape(tiles.shape[:-2] + (-1,))
    if inside is not None:
        values = np.where(inside.reshape(values.shape), values, np.nan)
        median = np.nanmedian(values, axis=-1)
        mad = np.nanmedian(np.abs(values - median[..., None]), axis=-1)
    else:
        median = np.median(values, axis=-1)
        mad = np.median(np.abs(values - median[..., None]), axis=-1)
    return median, np.maximum(1.4826 * mad, 1e-6)
