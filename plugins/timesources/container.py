"""``container``: the frames' own time stamps, as the reader found them (FITS headers,
SER trailers, ADV GPS stamps, an AVI container's PC clock), checked for dropped,
duplicated and out-of-order frames. The last link of the ``[time] chain``: it never
declines, and what it trusts is what the reader said (source, uncertainty, note)."""
from __future__ import annotations

from occcore.model import TimeStamps, timestamp_quality
from occcore.plugin import TimeSourceSpec, hookimpl


def _stamp(series, *, options, context):
    quality = timestamp_quality(series.times.offsets_s)
    report = {"time_source": series.times.source, "instant": series.times.instant,
              "uncertainty_s": series.times.uncertainty_s, "note": series.times.note,
              "quality": quality.to_json()}
    if not quality.clean:
        context.logger.warning("%s: %s", series.source_name, quality.summary())
    return TimeStamps(times=series.times, flags=quality.flags, report=report)


@hookimpl
def occcore_time_sources():
    yield TimeSourceSpec(name="container", summary="the frames' own stamps (headers, trailers, "
                         "GPS tags, the container's clock), checked for dropped and duplicated "
                         "frames", stamp=_stamp)
