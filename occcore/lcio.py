"""Reading light-curve files from scripts: :func:`read_lightcurve`.

The formats themselves are plugins (kind ``lightcurve-reader``, ``plugins/lightcurves``);
this is the one-call entry point over them (built-in readers only unless a ``session``
with third-party plugins is given)."""
from occcore.api import read_lightcurve

__all__ = ["read_lightcurve"]
