import numpy as np

from occcore.model import FrameFlag, TimeStamps
from occcore.plugin import NotApplicable, TimeSourceSpec, hookimpl


def _stamp(series, *, options, context):
    """Trust the reader's stamps only when they came from GPS; flag none."""
    if series.times.source != "gps":
        raise NotApplicable(f"stamps come from {series.times.source}, not gps")
    flags = np.full(series.n_frames, FrameFlag.NONE, np.uint32)
    return TimeStamps(times=series.times, flags=flags, report={"trusted": "gps"})


@hookimpl
def occcore_time_sources():
    yield TimeSourceSpec(name="gps-only", summary="the reader's stamps, when they are GPS",
                         stamp=_stamp)
