"""The kiwi frame reader passes occcore's reader contract."""
import numpy as np
from samples import write_kiwi

from occcore.plugin import Match, Source, StepContext
from occcore.testing.contracts import ReaderContract, ReaderSample


class TestKiwiReader(ReaderContract):
    name = "kiwi"

    def make_samples(self, directory):
        frames = np.random.default_rng(7).integers(0, 256, (5, 4, 6), dtype=np.uint8)
        path = write_kiwi(directory / "clip.kwv", frames)
        return [ReaderSample(path=path, level=Match.CONTENT, n_frames=5, height=4, width=6)]


def test_pixels_and_times_are_the_files(tmp_path, occ_registry):
    frames = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_kiwi(tmp_path / "two.kwv", frames)
    spec = occ_registry.get("reader", "kiwi").spec
    source = Source(paths=[path], kind="file", display_name=path.name)
    with spec.open(source, options=None, context=StepContext()) as series:
        assert np.array_equal(series.batch(0, 2), frames)
        assert series.times.utc(1).isot == "2025-05-05T05:05:05.290"
        assert (series.times.instant, series.times.source) == ("start", "gps")
