"""Small plugins written for the tests: good, broken in each way, and duplicated."""
import attrs
import numpy as np
from astropy.time import Time

from occcore.model import FrameSeries
from occcore.plugin import (AlignerSpec, Match, NotApplicable, ReaderSpec, hookimpl)

TOY_MAGIC = b"TOYIMG01"


def toy_identify(probe):
    if probe.head.startswith(TOY_MAGIC):
        return Match.SIGNATURE, "toy magic"
    return None


def toy_open(source, *, options, context):
    data = source.path.read_bytes()
    if not data.startswith(TOY_MAGIC):
        raise NotApplicable("no toy magic")
    n = data[8]
    frames = np.frombuffer(data[9:9 + n * 4], np.uint8).reshape(n, 2, 2)
    return FrameSeries.from_arrays(frames, times=Time("2022-02-02T02:02:02", scale="utc"),
                                   offsets_s=np.arange(n) * 0.5, exposure_s=0.5,
                                   time_instant="start", format="toy", reader="toy",
                                   source_name=str(source.path))


def write_toy(path, n=3):
    path.write_bytes(TOY_MAGIC + bytes([n]) + bytes(range(n * 4)))
    return path


class ToyReader:
    @hookimpl
    def occcore_readers(self):
        yield ReaderSpec(name="toy", summary="toy images", patterns=("*.toy",),
                         identify=toy_identify, open=toy_open)


class TwinToyReader:
    """Registers the same name 'toy' as ToyReader."""

    @hookimpl
    def occcore_readers(self):
        yield ReaderSpec(name="toy", summary="another toy", patterns=("*.toy",),
                         identify=toy_identify, open=toy_open)


class RaisingIdentify:
    @hookimpl
    def occcore_readers(self):
        def identify(probe):
            raise RuntimeError("identify exploded")
        yield ReaderSpec(name="exploding", summary="bad identify", identify=identify,
                         open=toy_open)


class ReturnsNone:
    @hookimpl
    def occcore_readers(self):
        return None


class YieldsWrongType:
    @hookimpl
    def occcore_readers(self):
        yield AlignerSpec(name="oops", summary="wrong kind", align=lambda *a, **k: None)


class RaisesInHook:
    @hookimpl
    def occcore_readers(self):
        raise RuntimeError("cannot register")
        yield  # pragma: no cover


class UnknownHook:
    @hookimpl
    def occcore_reader(self):   # typo: not a hook
        return []


class FutureApi:
    @hookimpl
    def occcore_readers(self):
        yield ReaderSpec(name="future", summary="needs api 99", open=toy_open, api=99)


@attrs.frozen
class DummyOptions:
    level: int = 1


def _dummy_align(request, *, options, context):
    return ("aligned", options.level)


class Aligners:
    @hookimpl
    def occcore_aligners(self):
        yield AlignerSpec(name="dummy", summary="dummy aligner", align=_dummy_align,
                          options=DummyOptions)
        yield AlignerSpec(name="needs-missing", summary="needs a module that is not there",
                          align=_dummy_align, requires=("no_such_module_xyz",))


class Observer:
    def __init__(self):
        self.events = []

    @hookimpl
    def occcore_on_event(self, event):
        self.events.append(event)


class BrokenObserver:
    @hookimpl
    def occcore_on_event(self, event):
        raise RuntimeError("observer bug")
