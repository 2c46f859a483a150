"""occcore: plugin-based reduction of stellar-occultation recordings.

Where everything lives::

    occcore/
      plugin.py      the plugin-author API: spec records, the table of kinds (KINDS),
                     hookimpl, Match/Probe/Source, NotApplicable and the error types
      model.py       the data model every step hands on: FrameSeries, FrameTimes,
                     TimeStamps, LightCurve, TimingResult/Edge, Chord, LimbFit ...
      hookspecs.py   the hooks plugins implement (one per kind, plus occcore_on_event)
      results.py     what makes each kind's result good (used by the chains and the
                     conformance contracts alike)
      registry.py    loading built-in and third-party plugins (pluggy)
      chain.py       fallback chains: try implementations in order, record every attempt
      identify.py    sources (file, directory, glob, list) and format identification
      config.py      the configuration (TOML), its schema derived from KINDS
      validate.py    the one checker for every TOML input (config, profiles, chords)
      api.py         Session: reading, the time chain, and one call per step
      steps/         the steps: reduce, timing (occcore fit), limb, report, demo
      cli.py         the `occcore` command, a thin layer over Session
      output.py      atomic, all-or-nothing outputs; JSON conversion
      plotting.py    every figure (light curve, timing, limb)
      chords.py, geometry.py, lightcurve.py
                     chords from TOML and their sky-plane projection; light curves from
                     photometry (the Occultation Portal's equations)
      synthetic/     seeded synthetic data with a known truth (no pytest): star fields,
                     light curves, chords, OSD overlays, ADV/AVI writers, garbage inputs
      testing/       the conformance kit for plugin authors (a pytest plugin)
    plugins/         the in-tree plugins, installed as `occplugins`, one folder per kind:
                     readers/ lightcurves/ timesources/ aligners/ photometry/ fitters/
                     reporters/

The plugin-author API is :mod:`occcore.plugin` and :mod:`occcore.model`; the Python API
for users is :class:`occcore.api.Session`.
"""
__version__ = "0.2.0"
