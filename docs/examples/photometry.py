import numpy as np

from occcore.model import Photometry
from occcore.plugin import NotApplicable, PhotometrySpec, hookimpl


def _measure(request, *, options, context):
    """Sum of a square box (side 2 r + 1) minus its median border, Poisson errors."""
    series, track = request.series, request.track
    n, m = series.n_frames, len(request.apertures)
    flux, err, sky = (np.full((n, m), np.nan) for _ in range(3))
    for i, frame in enumerate(series):
        for j, ap in enumerate(request.apertures):
            r, cx, cy = int(ap.radius_px), round(track.x[i, j]), round(track.y[i, j])
            if cy - r - 1 < 0 or cx - r - 1 < 0 or cy + r + 2 > series.height or \
                    cx + r + 2 > series.width:
                continue                      # off the frame: NaN, as the check allows
            box = frame[cy - r - 1:cy + r + 2, cx - r - 1:cx + r + 2].astype(float)
            border = np.r_[box[0], box[-1], box[1:-1, 0], box[1:-1, -1]]
            sky[i, j] = np.median(border)
            inner = box[1:-1, 1:-1]
            flux[i, j] = inner.sum() - sky[i, j] * inner.size
            err[i, j] = np.sqrt(max(inner.sum(), 1.0) / request.gain_e_per_adu)
    if not np.isfinite(flux).any():
        raise NotApplicable("every aperture is off the frame")
    return Photometry(names=track.names, flux=flux, flux_err=err, sky=sky,
                      flags=np.zeros(n, np.uint32), method="box")


@hookimpl
def occcore_photometry():
    yield PhotometrySpec(name="box", summary="square-box sums", measure=_measure)
