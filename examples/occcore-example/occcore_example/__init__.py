"""occcore-example: a third-party occcore plugin, the one real example of the docs.

It registers a frame reader (``kiwi``), a light-curve reader (``tlc``) and a timing
fitter (``halfway``). It imports only the public API (``occcore.plugin``,
``occcore.model``), numpy and attrs at import; astropy is imported where it is used.
"""
from occcore.plugin import LightCurveReaderSpec, ReaderSpec, TimingFitterSpec, hookimpl

from occcore_example import halfway, kiwi, tlc


@hookimpl
def occcore_readers():
    yield ReaderSpec(name="kiwi", summary="Kiwi OSD video (.kwv, a made-up format)",
                     patterns=("*.kwv",), identify=kiwi.identify, open=kiwi.open_kiwi)


@hookimpl
def occcore_lightcurve_readers():
    yield LightCurveReaderSpec(name="tlc", summary="tiny light curve text (.tlc, made up)",
                               patterns=("*.tlc",), identify=tlc.identify, read=tlc.read,
                               options=tlc.TlcOptions)


@hookimpl
def occcore_timing_fitters():
    yield TimingFitterSpec(name="halfway", summary="edges at the half-way crossings "
                           "(no error bars)", fit=halfway.fit)
