"""Hook specifications for occcore plugins.

Every data hook is a *registration hook*: it takes no arguments, is called once when
the registry is built, and yields records from :mod:`occcore.plugin`. occcore (not
pluggy) decides which registered implementation runs, in the order the user's
configuration gives, and records every attempt.

Rules that hold for every hook:

* Do not import heavy libraries at module import or inside the hook; import them in
  the implementation callable, so ``occcore --help`` works when one binary wheel is
  broken.
* Do not give hookimpl parameters default values (pluggy 1.6 and 1.7 differ there).
* An exception raised inside a registration hook, or a yielded object that is not the
  record type, disables that plugin's records for the hook with a warning; it is
  shown as ``broken`` by ``occcore plugins`` and never stops occcore.

.. versionadded:: 0.1
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from occcore.plugin import (AlignerSpec, Event, LightCurveReaderSpec, LimbFitterSpec,
                                PhotometrySpec,
                                ReaderSpec, ReporterSpec, TimeSourceSpec,
                                TimingFitterSpec)

hookspec = pluggy.HookspecMarker("occcore")

# -- registration hooks -------------------------------------------------------------------


@hookspec
def occcore_readers() -> Iterable[ReaderSpec]:
    """Register readers that turn a source (file, directory, glob, archive) into a
    :class:`~occcore.model.FrameSeries`.

    When: once, when the registry is built. Identification then asks every reader's
    ``identify(probe)`` and ranks the answers (extension < signature < content);
    opening runs the ranked readers as a fallback chain.

    Yield: one :class:`~occcore.plugin.ReaderSpec` per format.

    The ``kiwi`` reader of ``examples/occcore-example``, quoted by cog (its ``identify``
    and ``open_kiwi`` are quoted in :mod:`occcore.plugin`).

    Example::

        [[[cog
        import sys; sys.path.insert(0, "docs"); import quote
        quote.python("occcore_example/__init__.py", "occcore_readers", indent=8, fence=False,
                     docstring=True)
        ]]]
        # examples/occcore-example/occcore_example/__init__.py
        @hookimpl
        def occcore_readers():
            yield ReaderSpec(name="kiwi", summary="Kiwi OSD video (.kwv, a made-up format)",
                             patterns=("*.kwv",), identify=kiwi.identify, open=kiwi.open_kiwi)
        [[[end]]]
    """
    yield from ()


@hookspec
def occcore_lightcurve_readers() -> Iterable[LightCurveReaderSpec]:
    """Register readers of light-curve files (one signal against time): occcore ECSV,
    PyMovie/PyOTE CSV, Tangra, Limovie, SORA text, or your own dialect.

    When: once. ``occcore fit FILE`` identifies the file like frame readers do
    (extension < signature < content) unless ``--reader NAME`` (or ``[lightcurve]
    chain``) names one.

    Yield: :class:`~occcore.plugin.LightCurveReaderSpec` records whose ``read(source, *,
    options, context)`` returns a :class:`~occcore.model.LightCurve`.

    Example::

        @hookimpl
        def occcore_lightcurve_readers():
            yield LightCurveReaderSpec(name="my-csv", summary="my photometer's CSV",
                                       patterns=("*.mycsv",), identify=_identify, read=_read)
    """
    yield from ()


@hookspec
def occcore_time_sources() -> Iterable[TimeSourceSpec]:
    """Register time sources that give every frame of a series its time stamp.

    When: once. Used in the order of ``[time] chain``; the first that does not decline
    replaces the series' times, and the provenance says so.

    Yield: :class:`~occcore.plugin.TimeSourceSpec` records whose ``stamp(series, *,
    options, context)`` returns a :class:`~occcore.model.TimeStamps`.

    Example::

        @hookimpl
        def occcore_time_sources():
            yield TimeSourceSpec(name="my-vti", summary="my inserter's OSD", stamp=_stamp)
    """
    yield from ()


@hookspec
def occcore_aligners() -> Iterable[AlignerSpec]:
    """Register aligners (trackers) that give each star's position in every frame.

    When: once. Used in the order of the config's ``[align] chain``.

    Yield: :class:`~occcore.plugin.AlignerSpec` records whose ``align(request, *,
    options, context)`` returns a :class:`~occcore.model.Track`.

    Example::

        @hookimpl
        def occcore_aligners():
            yield AlignerSpec(name="my-tracker", summary="...", align=_align)
    """
    yield from ()


@hookspec
def occcore_photometry() -> Iterable[PhotometrySpec]:
    """Register photometry methods.

    When: once. Used in the order of ``[photometry] chain``.

    Yield: :class:`~occcore.plugin.PhotometrySpec` records whose ``measure(request, *,
    options, context)`` returns a :class:`~occcore.model.Photometry`.

    Example::

        @hookimpl
        def occcore_photometry():
            yield PhotometrySpec(name="psf", summary="PSF fitting", measure=_measure)
    """
    yield from ()


@hookspec
def occcore_timing_fitters() -> Iterable[TimingFitterSpec]:
    """Register fitters that time the immersion and emersion of a light curve.

    When: once. Used in the order of ``[timing] chain``.

    Yield: :class:`~occcore.plugin.TimingFitterSpec` records whose ``fit(lightcurve, *,
    options, context)`` returns a :class:`~occcore.model.TimingResult`; raise
    :class:`~occcore.plugin.NotApplicable` when the curve holds no event.

    Example::

        @hookimpl
        def occcore_timing_fitters():
            yield TimingFitterSpec(name="square", summary="square well", fit=_fit)
    """
    yield from ()


@hookspec
def occcore_limb_fitters() -> Iterable[LimbFitterSpec]:
    """Register fitters of the occulting body's limb from chords.

    When: once. Used in the order of ``[limb] chain``.

    Yield: :class:`~occcore.plugin.LimbFitterSpec` records whose ``fit(chords, *,
    options, context)`` returns a :class:`~occcore.model.LimbFit`.

    Example::

        @hookimpl
        def occcore_limb_fitters():
            yield LimbFitterSpec(name="ellipse", summary="ellipse", fit=_fit)
    """
    yield from ()


@hookspec
def occcore_reporters() -> Iterable[ReporterSpec]:
    """Register report writers (SORA files, IOTA forms, CSV, plots).

    When: once. **All** writers named in ``[report] writers`` run; failures are
    collected, not a fallback chain.

    Yield: :class:`~occcore.plugin.ReporterSpec` records whose ``write(run,
    destination, *, options, context)`` returns the paths written.

    Example::

        @hookimpl
        def occcore_reporters():
            yield ReporterSpec(name="my-form", summary="...", write=_write)
    """
    yield from ()


# -- observer hook --------------------------------------------------------------------------


@hookspec
def occcore_on_event(event: Event) -> None:
    """Observe progress and log events (:class:`~occcore.plugin.Event`).

    When: at every step start, attempt, step end and progress tick of a run. occcore
    calls each observer separately; an exception in one is logged and never fatal.

    Return: nothing.

    Example::

        @hookimpl
        def occcore_on_event(event):
            if event.kind == "step-finished":
                print(event.step, event.message)
    """


def registration_hooks() -> dict[str, str]:
    """Kind name -> registration hook name (derived from :data:`occcore.plugin.KINDS`)."""
    from occcore.plugin import KINDS
    return {k.name: k.hook for k in KINDS}
