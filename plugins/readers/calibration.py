"""Pre-reduction of FITS lights with master bias, dark and flat frames.

As in the Occultation Portal's pre-reduction: frames are split by ``IMAGETYP``; each
master is the pixel-wise median of its frames (darks after bias subtraction, flats
after bias and exposure-scaled dark subtraction, then normalised to a median of 1).
A light becomes ``(light - bias - dark * t_light / t_dark) / flat`` in float32. Masters
can also come from other files (``read.options.fits.bias/dark/flat`` paths or globs,
formerly ``[calibrate]``). The input files are only read, never written.
"""
from __future__ import annotations

import glob
from pathlib import Path

import attrs
import numpy as np

from occcore.plugin import InputError

TYPES = ("light", "bias", "dark", "flat")


def split_by_type(infos, classify) -> dict[str, list]:
    groups: dict[str, list] = {t: [] for t in TYPES}
    for info in infos:
        groups[classify(info.imagetyp)].append(info)
    return groups


def _median_stack(infos, read_planes) -> np.ndarray:
    stack = np.concatenate([read_planes(i, 0, i.n_planes) for i in infos]).astype(np.float32)
    return np.median(stack, axis=0)


@attrs.frozen
class Calibrator:
    bias: np.ndarray | None
    dark: np.ndarray | None        # bias-subtracted, per second of exposure when scaled
    dark_exposure_s: float | None
    flat: np.ndarray | None        # normalised to median 1
    note: str

    def apply(self, frames: np.ndarray, exposure_s: float | None) -> np.ndarray:
        out = frames.astype(np.float32)
        if self.bias is not None:
            out -= self.bias
        if self.dark is not None:
            scale = 1.0
            if self.dark_exposure_s and exposure_s:
                scale = exposure_s / self.dark_exposure_s
            out -= np.float32(scale) * self.dark
        if self.flat is not None:
            out /= self.flat
        return out


def _files(pattern: str, name: str) -> list[Path]:
    paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise InputError(f"read.options.fits.{name} = {pattern!r} matches no file")
    return paths


def build(groups, settings, scan, read_planes, source_name: str) -> Calibrator | None:
    """Masters from the source's own calibration frames and/or the configured files."""
    if not settings or not settings.get("enabled"):
        return None
    for kind in ("bias", "dark", "flat"):
        if settings.get(kind):
            groups[kind] = groups[kind] + [scan(p) for p in _files(settings[kind], kind)]
    if not any(groups[k] for k in ("bias", "dark", "flat")):
        raise InputError(f"{source_name}: calibration is enabled but no bias, dark or flat frame "
                         "was found (IMAGETYP) or configured")
    shape = (groups["light"][0].height, groups["light"][0].width)
    for kind in ("bias", "dark", "flat"):
        for info in groups[kind]:
            if (info.height, info.width) != shape:
                raise InputError(f"{info.path}: {kind} frame is {info.width}x{info.height}, "
                                 f"lights are {shape[1]}x{shape[0]}")
    bias = _median_stack(groups["bias"], read_planes) if groups["bias"] else None
    dark = dark_exposure = None
    if groups["dark"]:
        dark = _median_stack(groups["dark"], read_planes)
        if bias is not None:
            dark = dark - bias
        exposures = [i.exposure_s for i in groups["dark"] if i.exposure_s]
        dark_exposure = float(np.median(exposures)) if exposures else None
    flat = None
    if groups["flat"]:
        flat = _median_stack(groups["flat"], read_planes)
        if bias is not None:
            flat = flat - bias
        if dark is not None:
            exposures = [i.exposure_s for i in groups["flat"] if i.exposure_s]
            if exposures and dark_exposure:
                flat = flat - dark * np.float32(np.median(exposures) / dark_exposure)
        level = float(np.median(flat))
        if not level > 0:
            raise InputError(f"{source_name}: master flat has median {level}; cannot normalise")
        flat = flat / np.float32(level)
        flat[flat <= 0] = np.nan   # dead pixels become NaN rather than infinities
    used = ", ".join(f"{len(groups[k])} {k}" for k in ("bias", "dark", "flat") if groups[k])
    return Calibrator(bias=bias, dark=dark, dark_exposure_s=dark_exposure, flat=flat,
                      note=f"calibrated with master frames from {used} (float32)")
