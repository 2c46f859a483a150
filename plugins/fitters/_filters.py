"""The linear filters of the timing engine, without importing scipy.signal unless an AR
recursion needs it: that import (it pulls in scipy.stats) costs about 0.4 s, a quarter of an
``occcore fit`` command, and a curve whose noise model is white (AR(0)) never needs it.

* ``whiten``: the AR prediction error e[t] = x[t] - sum a_k x[t-k] (a finite filter);
* ``colour``: its inverse x[t] = e[t] + sum a_k x[t-k] (scipy's lfilter, imported here);
* ``smooth``: a same-length convolution with a symmetric kernel (FFT), ends held.
Every filter starts from rest (zero initial state), as lfilter does.
"""
from __future__ import annotations

import numpy as np


def whiten(x: np.ndarray, ar: np.ndarray) -> np.ndarray:
    """e[t] = x[t] - sum_k ar[k-1] x[t-k] along the last axis (x[t] = 0 before the start)."""
    x = np.asarray(x, float)
    out = x.copy()
    for k, coefficient in enumerate(np.asarray(ar, float), start=1):
        if k >= x.shape[-1]:
            break
        out[..., k:] -= coefficient * x[..., :-k]
    return out


def colour(e: np.ndarray, ar: np.ndarray) -> np.ndarray:
    """x[t] = e[t] + sum_k ar[k-1] x[t-k] along the last axis, from rest."""
    e = np.asarray(e, float)
    if not len(ar):
        return e.copy()
    from scipy.signal import lfilter          # the recursion has no numpy form
    return lfilter([1.0], np.concatenate([[1.0], -np.asarray(ar, float)]), e, axis=-1)


def smooth(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``kernel`` (odd length, centred), same length as ``x``; beyond
    its ends ``x`` is held at its end values."""
    pad = len(kernel)
    padded = np.pad(np.asarray(x, float), pad, mode="edge")
    full_length = len(padded) + len(kernel) - 1
    size = 1 << int(np.ceil(np.log2(full_length)))
    full = np.fft.irfft(np.fft.rfft(padded, size) * np.fft.rfft(kernel, size), size)
    start = (len(kernel) - 1) // 2 + pad
    return full[start:start + len(x)]
