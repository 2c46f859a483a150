"""Sample files for the in-tree readers' contracts and the cross-format check.

``READER_SAMPLES[name](directory)`` writes the samples of one built-in reader;
``format_zoo(directory)`` writes one sample of every format with its owner, so a
reader's contract can check it claims nobody else's files.
"""
from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.time import Time

from occcore.plugin import Match
from occcore.synthetic import star_field, write_fits_cube, write_fits_series, write_ser

EPOCH = Time("2024-03-01T02:03:04.123456", scale="utc")


def _frames(n=6, height=24, width=32, seed=1, dtype=np.uint16):
    frames, _ = star_field(n_frames=n, height=height, width=width,
                           stars=((10.0, 12.0, 5000.0), (22.0, 8.0, 9000.0)),
                           names=("target", "reference"), seed=seed, dtype=dtype)
    return frames


def _times(n, step_s=0.04):
    return EPOCH + np.arange(n) * step_s * u.s


def fits_samples(directory: Path):
    from occcore.testing.contracts import ReaderSample
    directory.mkdir(parents=True, exist_ok=True)
    frames = _frames()
    single = write_fits_series(directory / "one", frames[:1], _times(1), exposure_s=0.04)[0]
    series_dir = directory / "series"
    write_fits_series(series_dir, frames, _times(6), exposure_s=0.04)
    cube = write_fits_cube(directory / "cube.fits", frames, EPOCH, exposure_s=0.04,
                           frame_time_s=0.04)
    return [ReaderSample(path=single, level=Match.SIGNATURE, n_frames=1, height=24, width=32),
            ReaderSample(path=series_dir, level=Match.CONTENT, n_frames=6, height=24, width=32),
            ReaderSample(path=cube, level=Match.CONTENT, n_frames=6, height=24, width=32)]


def ser_samples(directory: Path):
    from occcore.testing.contracts import ReaderSample
    directory.mkdir(parents=True, exist_ok=True)
    frames16 = _frames()
    frames8 = (_frames(dtype=np.float64) / 64).clip(0, 255).astype(np.uint8)
    a = write_ser(directory / "mono16.ser", frames16, _times(6))
    b = write_ser(directory / "mono8.ser", frames8, _times(6))
    return [ReaderSample(path=a, level=Match.CONTENT, n_frames=6, height=24, width=32),
            ReaderSample(path=b, level=Match.CONTENT, n_frames=6, height=24, width=32)]


def archive_samples(directory: Path):
    from occcore.testing.contracts import ReaderSample
    directory.mkdir(parents=True, exist_ok=True)
    fits_files = write_fits_series(directory / "members", _frames(), _times(6), exposure_s=0.04)
    zipped = directory / "frames.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in fits_files:
            zf.write(p, p.name)
    ser = write_ser(directory / "one.ser", _frames(), _times(6))
    tarred = directory / "video.tar.gz"
    with tarfile.open(tarred, "w:gz") as tf:
        tf.add(ser, ser.name)
    return [ReaderSample(path=zipped, level=Match.SIGNATURE, n_frames=6, height=24, width=32),
            ReaderSample(path=tarred, level=Match.SIGNATURE, n_frames=6, height=24, width=32)]


def avi_samples(directory: Path):
    from occcore.synthetic.avi import write_avi
    from occcore.testing.contracts import ReaderSample
    directory.mkdir(parents=True, exist_ok=True)
    frames8 = (_frames(dtype=np.float64) / 64).clip(0, 255).astype(np.uint8)
    a = write_avi(directory / "mono8.avi", frames8, codec="ffv1")
    b = write_avi(directory / "mono16.avi", _frames(), codec="ffvhuff-16")
    return [ReaderSample(path=a, level=Match.CONTENT, n_frames=6, height=24, width=32),
            ReaderSample(path=b, level=Match.CONTENT, n_frames=6, height=24, width=32)]


READER_SAMPLES = {"fits": fits_samples, "ser": ser_samples, "archive": archive_samples,
                  "avi": avi_samples}
"""Built-in reader name -> writer of its contract samples."""


def format_zoo(directory: Path) -> list[tuple[str, Path]]:
    """(owner reader, file) for one single-file sample of every built-in format."""
    out = []
    for owner, make in READER_SAMPLES.items():
        for sample in make(directory / owner):
            if sample.path.is_file():
                out.append((owner, sample.path))
                break
    return out


def adv_samples(directory: Path):
    """An ADV v2 QuickLZ file and an ADV v1 12-bit difference-coded file."""
    from occcore.synthetic.adv import write_adv
    from occcore.testing.contracts import ReaderSample
    directory.mkdir(parents=True, exist_ok=True)
    frames = _frames()
    a = write_adv(directory / "v2_quicklz.adv", frames, _times(6), version=2,
                  compression="QUICKLZ")
    b = write_adv(directory / "v1_diff12.adv", frames % 4096, _times(6), version=1,
                  layout="FULL-IMAGE-DIFFERENTIAL-CODING", bpp=12, compression="LAGARITH16")
    return [ReaderSample(path=a, level=Match.CONTENT, n_frames=6, height=24, width=32),
            ReaderSample(path=b, level=Match.CONTENT, n_frames=6, height=24, width=32)]


def aav_samples(directory: Path):
    """An AAV v2 8-bit QuickLZ file and an AAV v1 difference-coded file."""
    from occcore.synthetic.adv import write_adv
    from occcore.testing.contracts import ReaderSample
    directory.mkdir(parents=True, exist_ok=True)
    frames8 = (_frames(dtype=np.float64) / 64).clip(0, 255).astype(np.uint8)
    a = write_adv(directory / "v2.aav", frames8, _times(6), version=2, container="aav",
                  compression="QUICKLZ")
    b = write_adv(directory / "v1_diff.aav", frames8, _times(6), version=1, container="aav",
                  layout="FULL-IMAGE-DIFFERENTIAL-CODING", compression="QUICKLZ")
    return [ReaderSample(path=a, level=Match.CONTENT, n_frames=6, height=24, width=32),
            ReaderSample(path=b, level=Match.CONTENT, n_frames=6, height=24, width=32)]


READER_SAMPLES.update({"adv": adv_samples, "aav": aav_samples})
