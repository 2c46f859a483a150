import os
import tarfile
import zipfile

import numpy as np
import pytest
from astropy import units as u
from astropy.time import Time

from occcore.api import Session
from occcore.config import load_config
from occcore.errors import InputError
from occcore.synthetic import write_fits_series, write_ser

T0 = Time("2024-05-05T01:02:03.456789", scale="utc")


def session(tmp_path, *sets):
    return Session(config=load_config(cwd=tmp_path, sets=sets), no_plugins=True)


@pytest.fixture
def fits_files(tmp_path):
    frames = np.arange(4 * 6 * 5, dtype=np.uint16).reshape(4, 6, 5)
    return write_fits_series(tmp_path / "src", frames, T0 + np.arange(4) * 0.5 * u.s,
                             exposure_s=0.5), frames


def test_zip_of_fits_is_a_fits_series(tmp_path, fits_files):
    paths, frames = fits_files
    archive = tmp_path / "obs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in reversed(paths):
            zf.write(p, f"night/{p.name}")
    with session(tmp_path) as s:
        series = s.open(archive)
        assert series.format == "fits" and len(series) == 4
        assert np.array_equal(series.batch(0, 4), frames)
        assert series.meta["archive"]["kind"] == "zip"
        extracted = series.meta["archive"]["extracted_to"]
        assert extracted.startswith(str(s.workdir))        # never beside the input
        series.close()
    assert not os.path.exists(extracted)                     # the private workdir is cleaned up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.zip", "src"]


def test_7z_holding_one_ser_is_a_ser(tmp_path):
    py7zr = pytest.importorskip("py7zr")
    frames = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5) * 100
    ser = write_ser(tmp_path / "cap.ser", frames, T0 + np.arange(3) * 0.02 * u.s)
    archive = tmp_path / "cap.7z"
    with py7zr.SevenZipFile(archive, "w") as zf:
        zf.write(ser, "cap.ser")
    with session(tmp_path) as s, s.open(archive) as series:
        assert series.format == "ser" and np.array_equal(series[2], frames[2])
        assert Time(series.start_utc(), precision=6).isot == "2024-05-05T01:02:03.456789"


def test_tar_gz_of_fits(tmp_path, fits_files):
    paths, frames = fits_files
    archive = tmp_path / "obs.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for p in paths:
            tf.add(p, p.name)
    with session(tmp_path) as s, s.open(archive) as series:
        assert len(series) == 4 and np.array_equal(series[1], frames[1])


def test_single_gzip_fits(tmp_path, fits_files):
    import gzip
    paths, frames = fits_files
    archive = tmp_path / "one.fits.gz"
    archive.write_bytes(gzip.compress(paths[0].read_bytes()))
    with session(tmp_path) as s, s.open(archive) as series:
        assert len(series) == 1 and np.array_equal(series[0], frames[0])


def _zip_with(tmp_path, name, data=b"x" * 10):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), data)
    return archive


@pytest.mark.parametrize("member", ["../../escaped.fits", "/tmp/absolute.fits", "a/../../b.fits"])
def test_zip_slip_is_refused(tmp_path, member):
    archive = _zip_with(tmp_path, member)
    with session(tmp_path) as s:
        with pytest.raises(InputError, match="refused") as err:
            s.open(archive)
        assert str(archive) in str(err.value)
        assert not any(s.workdir.rglob("*.fits"))
    assert not (tmp_path.parent / "escaped.fits").exists()
    assert not os.path.exists("/tmp/absolute.fits")


def test_link_pointing_outside_is_refused(tmp_path):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("frames/passwd")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../../../etc/passwd"
        tf.addfile(info)
    with session(tmp_path) as s, pytest.raises(InputError, match="outside the archive"):
        s.open(archive)
    archive = tmp_path / "zlink.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("frames/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with session(tmp_path) as s, pytest.raises(InputError, match="outside the archive"):
        s.open(archive)


def test_size_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.fits", b"\0" * 20_000_000)
    assert archive.stat().st_size < 100_000
    with session(tmp_path, "read.archive_limit_gb=0.01") as s:
        with pytest.raises(InputError, match="limit"):
            s.open(archive)
        assert not any(s.workdir.rglob("big.fits"))


def test_lying_size_is_caught_while_streaming(tmp_path):
    import gzip
    archive = tmp_path / "bomb.bin.gz"                   # a single gz has no size in advance
    archive.write_bytes(gzip.compress(b"\0" * 20_000_000))
    with session(tmp_path, "read.archive_limit_gb=0.005") as s:
        with pytest.raises(InputError, match="size limit"):
            s.open(archive)


def test_rar_without_tools_says_what_to_install(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "rarfile", None)
    archive = tmp_path / "x.rar"
    archive.write_bytes(b"Rar!\x1a\x07\x01\x00" + b"\0" * 100)
    with session(tmp_path) as s, pytest.raises(InputError, match="pip install rarfile"):
        s.open(archive)


def test_corrupt_archive_names_the_file(tmp_path, fits_files):
    paths, _ = fits_files
    archive = tmp_path / "obs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(paths[0], paths[0].name)
    archive.write_bytes(archive.read_bytes()[:200])
    with session(tmp_path) as s, pytest.raises(InputError) as err:
        s.open(archive)
    assert "obs.zip" in str(err.value)
