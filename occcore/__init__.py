"""occcore: plugin-based reduction of stellar-occultation recordings.

The plugin-author API is :mod:`occcore.plugin` and :mod:`occcore.model`; the
Python API for users is :mod:`occcore.api`.
"""
__version__ = "0.1.0"
