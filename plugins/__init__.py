"""In-tree plugins of occcore, installed as the ``occplugins`` package.

They use only the public plugin API (``occcore.plugin`` and ``occcore.model``) and are
registered through the same path as third-party plugins. A test enforces both.
"""

BUILTIN_PLUGINS = (
    "occplugins.readers.fits",
    "occplugins.readers.ser",
    "occplugins.readers.archive",
    "occplugins.timesources.container",
    "occplugins.lightcurves.ecsv",
    "occplugins.lightcurves.pymovie",
    "occplugins.lightcurves.tangra",
    "occplugins.lightcurves.limovie",
    "occplugins.lightcurves.sora",
    "occplugins.readers.adv",
    "occplugins.readers.avi",
    "occplugins.aligners.tracker",
    "occplugins.aligners.astroalign_transform",
    "occplugins.aligners.roi",
    "occplugins.aligners.coordfile",
    "occplugins.photometry.sep_aperture",
    "occplugins.photometry.photutils_aperture",
    "occplugins.fitters.square",
    "occplugins.fitters.diffraction",
    "occplugins.fitters.limb",
    "occplugins.reporters.sora",
    "occplugins.reporters.iota_es",
    "occplugins.reporters.pymovie_csv",
    "occplugins.reporters.vizier",
    "occplugins.reporters.na_excel",
    "occplugins.reporters.plots",
    "occplugins.timesources.vti",
)
