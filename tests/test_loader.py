"""PairLoader: global batches, the same for a (seed, epoch) whatever the workers, drop_last."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamfc_jax.config import PairConfig
from siamfc_jax.pipeline.loader import PairLoader
from siamfc_jax.pipeline.pairs import FrameCrops, PairSampler
from siamfc_jax.pipeline.tfds_builder import load_curated, prepare
from siamfc_jax.sequences.datasets import GOT10k
from tests.conftest import write_noise_got10k

NUM_SEQUENCES, NUM_FRAMES = 5, 6
CONFIG = PairConfig(pairs_per_seq=3)  # 15 pairs per epoch: batches of 4 leave 3 pairs over


@pytest.fixture(scope="module")
def got10k_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("GOT-10k")
    return write_noise_got10k(
        root, NUM_SEQUENCES, NUM_FRAMES, 0,
        lambda number, index: (20 + 5 * index, 30 + 2 * number, 30 + number, 28 + index),
    )


@pytest.fixture(scope="module")
def curated(got10k_root, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    return load_curated(prepare("got10k", data_dir, manual_dir=got10k_root, workers=1, progress=False))


def _collect(loader: PairLoader, epoch: int) -> list[dict[str, np.ndarray]]:
    return list(loader.epoch(epoch))


def _assert_same(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a["exemplar"], b["exemplar"])
        np.testing.assert_array_equal(a["search"], b["search"])


def test_batches_are_the_sampler_pairs_in_order(curated):
    loader = PairLoader(curated, batch_size=4, seed=1, workers=0, config=CONFIG, threads=2)
    assert loader.steps_per_epoch == 3  # 15 // 4: the last 3 pairs are dropped
    batches = _collect(loader, 2)
    assert len(batches) == 3
    for batch in batches:
        assert set(batch) == {"exemplar", "search"}
        assert batch["exemplar"].shape == (4, 127, 127, 3) and batch["exemplar"].dtype == np.uint8
        assert batch["search"].shape == (4, 239, 239, 3) and batch["search"].dtype == np.uint8
    sampler = PairSampler(curated, CONFIG, seed=1)
    for step in (0, 2):
        for offset in range(4):
            pair = sampler.pair(2, 4 * step + offset)
            np.testing.assert_array_equal(batches[step]["exemplar"][offset], pair["exemplar"])
            np.testing.assert_array_equal(batches[step]["search"][offset], pair["search"])


def test_same_seed_and_epoch_same_batches_whatever_the_workers(curated):
    reference = _collect(PairLoader(curated, 4, seed=3, workers=0, config=CONFIG, threads=1), 1)
    _assert_same(reference, _collect(PairLoader(curated, 4, seed=3, workers=0, config=CONFIG, threads=3), 1))
    _assert_same(reference, _collect(PairLoader(curated, 4, seed=3, workers=2, config=CONFIG), 1))


def test_other_epoch_or_seed_other_batches(curated):
    loader = PairLoader(curated, 4, seed=3, workers=0, config=CONFIG)
    first, second = _collect(loader, 0), _collect(loader, 1)
    other_seed = _collect(PairLoader(curated, 4, seed=4, workers=0, config=CONFIG), 0)
    for other in (second, other_seed):
        assert not any(
            np.array_equal(a["search"], b["search"]) for a, b in zip(first, other, strict=True)
        )


def test_batches_span_epochs_and_resume(curated):
    loader = PairLoader(curated, 4, seed=0, workers=0, config=CONFIG)
    expected = _collect(loader, 1)[1:] + _collect(loader, 2)
    _assert_same(expected, list(loader.batches(first_epoch=1, num_epochs=2, first_step=1)))


def test_processes_make_disjoint_slices_of_the_global_batch(curated):
    """Multi-host: the per-process slices, stacked in process order, are the global batches."""
    whole = _collect(PairLoader(curated, 4, seed=5, workers=0, config=CONFIG), 0)
    slices = [
        _collect(PairLoader(curated, 4, seed=5, config=CONFIG, process_index=p, process_count=2), 0)
        for p in range(2)
    ]
    for step, batch in enumerate(whole):
        for key in ("exemplar", "search"):
            assert slices[0][step][key].shape[0] == 2
            stacked = np.concatenate([slices[0][step][key], slices[1][step][key]])
            np.testing.assert_array_equal(stacked, batch[key])
    with pytest.raises(ValueError, match="split evenly over 3 processes"):
        PairLoader(curated, 4, config=CONFIG, process_index=0, process_count=3)


def test_on_the_fly_source_has_the_same_interface(got10k_root):
    source = FrameCrops(GOT10k(got10k_root))
    loader = PairLoader(source, 5, seed=2, workers=0, config=CONFIG, threads=2)
    batches = _collect(loader, 0)
    assert len(batches) == 3 and batches[0]["search"].shape == (5, 239, 239, 3)
    _assert_same(batches, _collect(PairLoader(source, 5, seed=2, workers=0, config=CONFIG, threads=1), 0))


def test_argument_errors(curated):
    with pytest.raises(ValueError, match="fewer than one batch"):
        PairLoader(curated, 16, config=CONFIG)
    with pytest.raises(ValueError, match="batch_size"):
        PairLoader(curated, 0)
    with pytest.raises(ValueError, match="workers"):
        PairLoader(curated, 2, workers=-1)
    loader = PairLoader(curated, 4, config=CONFIG)
    with pytest.raises(ValueError, match="first_step"):
        next(loader.batches(first_step=3))
