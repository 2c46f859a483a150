"""The timing engine, one module per phase; each phase is a plain function on numpy arrays
and can be called and tested alone. This module gathers their public names.

* ``_readings``: exposure windows [start, end) and camera integration (``readings_of``,
  ``block_integration``, ``integrate_blocks``).
* ``_detection``: the square-wave likelihood search over every (D, R) (``detect``,
  ``detect_long``, ``runners_up``).
* ``_detrend``: the baseline polynomial (degree by BIC) and the detrending that alternates
  with detection (``normalise``, ``detrend_and_detect``).
* ``_noise``: sigmas and an AR model of the residuals (``noise_model``) and the Gaussian AR
  noise-induced-event probability (``false_positive_probability``, for comparison).
* ``_edges``: the edge fit and its profile-likelihood or Monte-Carlo intervals
  (``Problem``, ``fit_edges``, ``monte_carlo_errors``).
* ``_significance``: the false-positive probability calibrated on the curve's own residuals
  (block bootstrap); ``_sensitivity``: what a negative could have detected.
* ``_models``: the square-well and diffraction intensities.

A model function maps (D, R) to the normalised intensity I of every reading, 1 outside the
event and 0 deep inside; the reading is ``m = A + (B - A) I`` with baseline B and bottom A.
"""
from __future__ import annotations

from occplugins.fitters._detection import Candidate, _aicc, detect, detect_long, runners_up
from occplugins.fitters._detrend import (Detrended, detrend_and_detect, gap_degree, normalise,
                                         polynomial_trend, smooth_alternative)
from occplugins.fitters._edges import (LEVELS, EdgeFit, Problem, fit_edges, monte_carlo_errors,
                                       solve_levels)
from occplugins.fitters._noise import (Noise, correlated_noise, false_positive_probability,
                                       noise_model)
from occplugins.fitters._readings import Readings, block_integration, integrate_blocks, readings_of

__all__ = ["LEVELS", "Candidate", "Detrended", "EdgeFit", "Noise", "Problem", "Readings",
           "_aicc", "block_integration", "correlated_noise", "detect", "detect_long",
           "detrend_and_detect", "gap_degree", "false_positive_probability", "fit_edges", "integrate_blocks",
           "monte_carlo_errors", "noise_model", "normalise", "polynomial_trend", "readings_of",
           "runners_up", "smooth_alternative", "solve_levels"]
