import numpy as np

from occcore.model import Track
from occcore.plugin import AlignerSpec, hookimpl


def _align(request, *, options, context):
    """Stars never move: every frame keeps the apertures' reference positions."""
    n = request.series.n_frames
    x = np.array([[a.x for a in request.apertures]] * n)
    y = np.array([[a.y for a in request.apertures]] * n)
    return Track(names=[a.name for a in request.apertures], x=x, y=y,
                 flags=np.zeros(n, np.uint32), reference_index=request.reference_index,
                 method="fixed")


@hookimpl
def occcore_aligners():
    yield AlignerSpec(name="fixed", summary="no motion: reference positions", align=_align)
