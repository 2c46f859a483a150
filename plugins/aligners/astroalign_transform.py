"""Alignment by astroalign: a similarity transform (shift, rotation, scale) from each frame
to the reference, found by matching triangles of detected stars.

Robust to large jumps and rotation, but it detects sources in every frame (tens of ms
each), so it is a fallback. The star positions in a frame are the reference positions
mapped through the inverse transform; frames where no transform is found are flagged
ALIGN_UNCERTAIN and interpolated.
"""
from __future__ import annotations

import attrs
import numpy as np

from occcore.model import FrameFlag, Track
from occcore.plugin import AlignerSpec, NotApplicable, hookimpl


@attrs.frozen(kw_only=True)
class AstroalignOptions:
    detection_sigma: float = 5.0
    max_control_points: int = 50
    min_area: int = 5
    max_failed_fraction: float = 0.5
    max_scale_change: float = 0.02     # a wrong triangle match shows up as a scale change


def _control_points(image, options):
    """The brightest sources of the reference frame, detected once (sep)."""
    import sep

    background = sep.Background(image)
    sources = sep.extract(image - background.back(), options.detection_sigma,
                          err=background.globalrms, minarea=options.min_area)
    order = np.argsort(-sources["flux"])[:options.max_control_points]
    return np.column_stack([sources["x"][order], sources["y"][order]])


def _align(request, *, options, context):
    import astroalign

    options = options or AstroalignOptions()
    series = request.series
    n = len(series)
    x0, y0 = request.positions()
    reference = np.ascontiguousarray(series[request.reference_index], dtype=np.float32)
    ref_points = _control_points(reference, options)
    if len(ref_points) < 3:
        raise NotApplicable(f"only {len(ref_points)} stars detected on the reference frame; "
                            "astroalign needs at least 3")
    x = np.full((n, len(x0)), np.nan)
    y = np.full((n, len(x0)), np.nan)
    flags = np.zeros(n, np.uint32)
    points = np.column_stack([x0, y0])
    for k in range(n):
        if k == request.reference_index:
            x[k], y[k] = x0, y0
            continue
        frame = np.ascontiguousarray(series[k], dtype=np.float32)
        try:
            transform, _ = astroalign.find_transform(
                frame, ref_points, max_control_points=options.max_control_points,
                detection_sigma=options.detection_sigma, min_area=options.min_area)
        except Exception:   # MaxIterError, too few stars: this frame only
            flags[k] |= np.uint32(FrameFlag.ALIGN_UNCERTAIN)
            continue
        if abs(transform.scale - 1) > options.max_scale_change:
            flags[k] |= np.uint32(FrameFlag.ALIGN_UNCERTAIN)
            continue
        mapped = transform.inverse(points)
        x[k], y[k] = mapped[:, 0], mapped[:, 1]
        if k % 50 == 0:
            context.progress(k, n, "astroalign")
    known = np.isfinite(x[:, 0])
    if known.mean() < 1 - options.max_failed_fraction:
        raise NotApplicable(f"astroalign found a transform for only {known.sum()} of {n} frames")
    frames = np.arange(n)
    for j in range(len(x0)):
        x[:, j] = np.interp(frames, frames[known], x[known, j])
        y[:, j] = np.interp(frames, frames[known], y[known, j])
    return Track(names=request.names, x=x, y=y, flags=flags,
                 reference_index=request.reference_index, method="astroalign")


@hookimpl
def occcore_aligners():
    yield AlignerSpec(name="astroalign", summary="astroalign similarity transform of each frame "
                      "to the reference", align=_align, options=AstroalignOptions,
                      requires=("astroalign", "sep"))
