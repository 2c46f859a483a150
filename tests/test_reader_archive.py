import hashlib
import io
import os
import tarfile
import threading
import zipfile

import numpy as np
import pytest
from astropy import units as u
from astropy.time import Time

from occcore.api import Session
from occcore.config import load_config
from occcore.errors import InputError, LimitExceeded
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


# -- hostile archives (issue 14) ----------------------------------------------------------------

LIMIT = 10_000_000                         # read.options.archive.limit_gb = 0.01
LIMIT_SET = "read.options.archive.limit_gb=0.01"


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_bytes(root):
    total = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
            except OSError:
                pass
    return total


class WrittenBytes:
    """The most bytes ever present in the session's work directory while a block runs:
    polled every millisecond, and measured again just before the reader deletes a tree."""

    def __init__(self, workdir, monkeypatch):
        from occplugins.readers import archive
        self.workdir = workdir
        self.peak = 0
        real_rmtree = archive.shutil.rmtree

        def measured_rmtree(path, *a, **kw):
            self.peak = max(self.peak, _tree_bytes(self.workdir))
            return real_rmtree(path, *a, **kw)
        monkeypatch.setattr(archive.shutil, "rmtree", measured_rmtree)

    def __enter__(self):
        self.stop = threading.Event()

        def poll():
            while not self.stop.is_set():
                self.peak = max(self.peak, _tree_bytes(self.workdir))
                self.stop.wait(0.001)
        self.thread = threading.Thread(target=poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, _tree_bytes(self.workdir))


def _zip_bomb_bytes(tmp_path, megabytes=60):
    path = tmp_path / "bomb-part.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("big.fits", "w") as fh:
            for _ in range(megabytes):
                fh.write(b"\0" * 1_000_000)
    data = path.read_bytes()
    path.unlink()
    assert len(data) < megabytes * 2000
    return data


def _small_ser(tmp_path):
    frames = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5) * 100
    return write_ser(tmp_path / "cap.ser", frames, T0 + np.arange(3) * 0.02 * u.s)


def _polyglot(tmp_path, kind):
    ser = _small_ser(tmp_path)
    if kind == "7z":
        py7zr = pytest.importorskip("py7zr")
        archive = tmp_path / "poly.7z"
        with py7zr.SevenZipFile(archive, "w") as zf:
            zf.write(ser, "cap.ser")
    else:
        archive = tmp_path / ("poly.tar" if kind == "tar" else "poly.tar.gz")
        with tarfile.open(archive, "w" if kind == "tar" else "w:gz") as tf:
            tf.add(ser, "cap.ser")
    ser.unlink()
    archive.write_bytes(archive.read_bytes() + _zip_bomb_bytes(tmp_path))
    assert zipfile.is_zipfile(archive)         # a zip reader sees the bomb at the end
    return archive


def _open_measured(tmp_path, monkeypatch, archive, *sets):
    digest = _digest(archive)
    before = sorted(p.name for p in tmp_path.iterdir())
    with session(tmp_path, LIMIT_SET, *sets) as s:
        with WrittenBytes(s.workdir, monkeypatch) as written:
            try:
                with s.open(archive) as series:
                    outcome = series
            except InputError as exc:
                outcome = exc
    assert _digest(archive) == digest                                 # input untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == before       # nothing beside it
    return outcome, written.peak


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "7z"])
def test_polyglot_with_an_appended_zip_bomb_stops_at_the_limit(tmp_path, monkeypatch, kind):
    archive = _polyglot(tmp_path, kind)
    outcome, written = _open_measured(tmp_path, monkeypatch, archive)
    assert written <= LIMIT
    # the first bytes say tar/7z: that archive (one small SER) is what is read
    assert not isinstance(outcome, Exception), outcome
    assert outcome.format == "ser" and outcome.n_frames == 3


def test_an_extractor_that_disagrees_with_the_first_bytes_is_refused(tmp_path, monkeypatch):
    archive = _polyglot(tmp_path, "tar")
    outcome, written = _open_measured(tmp_path, monkeypatch, archive,
                                      'read.options.archive.extractors=["pyunpack"]')
    assert isinstance(outcome, InputError) and "polyglot" in str(outcome)
    assert written == 0


def test_pyunpack_is_held_to_the_limit_while_it_writes(tmp_path, monkeypatch):
    pytest.importorskip("pyunpack")
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(_zip_bomb_bytes(tmp_path))
    monkeypatch.setattr("occplugins.readers.archive._list_members",
                        lambda *a: [])                   # the directory would refuse it first
    outcome, written = _open_measured(tmp_path, monkeypatch, archive,
                                      'read.options.archive.extractors=["pyunpack"]')
    assert isinstance(outcome, LimitExceeded) and "size limit" in str(outcome)
    assert written <= LIMIT


def test_gz_bomb_ends_with_the_limit_message(tmp_path, monkeypatch):
    import gzip
    archive = tmp_path / "frame.fits.gz"
    with gzip.open(archive, "wb") as fh:
        for _ in range(60):
            fh.write(b"\0" * 1_000_000)
    outcome, written = _open_measured(tmp_path, monkeypatch, archive)
    assert isinstance(outcome, LimitExceeded), outcome
    assert "size limit" in str(outcome) and "no implementation succeeded" not in str(outcome)
    assert "frame.fits.gz" in str(outcome)
    assert written <= LIMIT


def test_fits_reader_decompresses_gz_with_a_limit(tmp_path):
    """A .fits.gz whose header announces 800 MB: refused from the header, nothing inflated."""
    import gzip
    header = "".join(f"{k:<8}= {v:>20}".ljust(80) for k, v in (
        ("SIMPLE", "T"), ("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", 20000), ("NAXIS2", 20000)))
    header = (header + "END".ljust(80)).ljust(2880).encode()
    archive = tmp_path / "big.fits.gz"
    with gzip.open(archive, "wb") as fh:
        fh.write(header)
        for _ in range(20):
            fh.write(b"\0" * 1_000_000)
    with session(tmp_path, "read.options.fits.max_decompressed_gb=0.01") as s:
        with pytest.raises(LimitExceeded, match="announces 0.8 GB") as err:
            s.open(archive, reader="fits")
        assert "big.fits.gz" in str(err.value)
        assert _tree_bytes(s.workdir) < 10_000


def test_deep_nesting_ends_with_the_limit_message(tmp_path):
    ser = _small_ser(tmp_path)
    data, name = ser.read_bytes(), "cap.ser"
    for level in range(150):
        buffer = tmp_path / "level.zip"
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr(name, data)
        data, name = buffer.read_bytes(), f"level{level}.zip"
    archive = tmp_path / "nested.zip"
    archive.write_bytes(data)
    buffer.unlink()
    ser.unlink()
    with session(tmp_path) as s, pytest.raises(LimitExceeded, match="nested more than 4 deep") as err:
        s.open(archive)
    message = str(err.value)
    assert message.startswith(f"{archive}!level148.zip!level147.zip!")
    assert "occcore-" not in message                     # no private work path


def test_member_count_limit(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for k in range(30):
            zf.writestr(f"f{k}.txt", b"x")
    with session(tmp_path, "read.options.archive.max_members=10") as s:
        with pytest.raises(LimitExceeded, match="more than 10 members"):
            s.open(archive)


def _tar_with(tmp_path, name, entries):
    archive = tmp_path / name
    with tarfile.open(archive, "w") as tf:
        for member, kind, target in entries:
            info = tarfile.TarInfo(member)
            if kind == "file":
                info.size = len(target)
                tf.addfile(info, io.BytesIO(target))
                continue
            info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
            info.linkname = target
            tf.addfile(info)
    return archive


@pytest.mark.parametrize("entries", [
    # lexically inside, physically outside: d -> . makes d/d/d the root, then ../.. leaves it
    [("d", "sym", "."), ("up", "sym", "d/d/d/../../.."), ("up/escaped.txt", "file", b"x")],
    [("d", "sym", "."), ("up", "sym", "d/d/d/../../..")],
    # a hard link's target is relative to the archive root, not to the member's folder
    [("a/b/c/h", "hard", "../../etc/passwd")],
    # a file written through a link to the outside
    [("out", "sym", "../.."), ("out/escaped.txt", "file", b"x")],
], ids=["symlink-chain-then-file", "symlink-chain", "hard-link-base", "write-through-link"])
def test_link_tricks_are_refused(tmp_path, monkeypatch, entries):
    archive = _tar_with(tmp_path, "links.tar", entries)
    outcome, written = _open_measured(tmp_path, monkeypatch, archive)
    assert isinstance(outcome, InputError) and "refused" in str(outcome), outcome
    assert "outside" in str(outcome) and "links.tar" in str(outcome)
    assert written == 0
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_links_inside_are_accepted(tmp_path):
    ser = _small_ser(tmp_path)
    archive = _tar_with(tmp_path, "ok.tar", [("data/cap.ser", "file", ser.read_bytes()),
                                              ("latest", "sym", "data/cap.ser")])
    ser.unlink()
    with session(tmp_path) as s, s.open(archive) as series:
        assert series.format == "ser" and len(series) == 3


def test_member_errors_name_the_archive_and_the_member(tmp_path, fits_files):
    paths, _ = fits_files
    archive = tmp_path / "obs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for k, p in enumerate(paths):
            data = p.read_bytes()
            if k == 1:
                data = data.replace(b"NAXIS2  =                    6", b"NAXIS2  =                  'T'")
            zf.writestr(f"frames/f{k + 1:03d}.fits", data)
    with session(tmp_path) as s, pytest.raises(InputError) as err:
        s.open(archive)
    message = str(err.value)
    assert f"{archive}!frames/f002.fits" in message and "NAXIS2 = 'T' is not an integer" in message
    assert str(s.workdir) not in message and "archive-0-" not in message


def test_old_archive_limit_key_still_works_and_the_option_wins(tmp_path):
    from occplugins.readers.archive import ArchiveOptions, _settings
    assert _settings(ArchiveOptions(), {"read": {"archive_limit_gb": 0.5}}) == 0.5
    assert _settings(ArchiveOptions(limit_gb=2.0), {"read": {"archive_limit_gb": 0.5}}) == 2.0
    assert _settings(ArchiveOptions(), {}) == 20.0
