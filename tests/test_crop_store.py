"""The decoded crop store: the same pairs as the JPEG crops, written once, whole or not at all."""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from siamfc_jax.apps import train as train_app
from siamfc_jax.config import ConfigError, PairConfig, TrainConfig
from siamfc_jax.pipeline import crop_store
from siamfc_jax.pipeline.crop_store import CropStore, store_path
from siamfc_jax.pipeline.curate import decode_jpeg
from siamfc_jax.pipeline.loader import PairLoader
from siamfc_jax.pipeline.pairs import PairSampler
from siamfc_jax.pipeline.sources import prepare_training_data
from siamfc_jax.pipeline.tfds_builder import load_curated, prepare, with_crop_store
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.training import loop
from tests.conftest import write_noise_got10k

NUM_SEQUENCES, NUM_FRAMES = 4, 8
CONFIG = PairConfig(pairs_per_seq=6)
BIG = 10**12  # a budget every test split is within


@pytest.fixture(scope="module")
def got10k_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("GOT-10k")
    return write_noise_got10k(
        root,
        NUM_SEQUENCES,
        NUM_FRAMES,
        1,
        lambda number, index: (20 + 4 * index, 25 + 3 * number, 30 + number, 26 + index),
    )


@pytest.fixture(scope="module")
def builder(got10k_root, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    return prepare("got10k", data_dir, manual_dir=got10k_root, workers=1, progress=False)


@pytest.fixture
def dataset_dir(builder, tmp_path) -> Path:
    """A copy of the curated dataset of its own, so that each test writes its own store."""
    copy = tmp_path / "dataset"
    shutil.copytree(builder.data_dir, copy)
    return copy


def _store(directory: Path, max_bytes: int = BIG, lines: list[str] | None = None):
    curated = load_curated(directory, config=CONFIG)
    sink = lines if lines is not None else []
    return with_crop_store(curated, directory, max_bytes, threads=2, log=sink.append)


def test_store_rows_are_the_decoded_records(dataset_dir):
    stored = _store(dataset_dir)
    store = stored.store
    assert store is not None and store.path == dataset_dir / "decoded" / "train.npy"
    assert store.shape == (NUM_SEQUENCES * NUM_FRAMES, 255, 255, 3)
    for record in range(len(store)):
        np.testing.assert_array_equal(store[record], decode_jpeg(stored.jpeg(record)))
    assert not store[0].flags.writeable


def test_pairs_from_the_store_equal_the_jpeg_pairs(dataset_dir):
    jpeg = load_curated(dataset_dir, config=CONFIG)
    stored = _store(dataset_dir)
    assert jpeg.store is None and stored.store is not None
    from_jpeg, from_store = PairSampler(jpeg, CONFIG, seed=3), PairSampler(stored, CONFIG, seed=3)
    for epoch in (0, 1):
        for index in range(len(from_jpeg)):
            expected, pair = from_jpeg.pair(epoch, index), from_store.pair(epoch, index)
            np.testing.assert_array_equal(pair["exemplar"], expected["exemplar"])
            np.testing.assert_array_equal(pair["search"], expected["search"])


def test_loader_workers_read_the_store_and_make_the_same_batches(dataset_dir):
    """Worker processes unpickle the source, map the store themselves and make the JPEG path's batches."""
    jpeg = load_curated(dataset_dir, config=CONFIG)
    stored = _store(dataset_dir)
    expected = list(PairLoader(jpeg, 4, seed=5, workers=0, config=CONFIG).epoch(0))
    for loader in (
        PairLoader(stored, 4, seed=5, workers=2, config=CONFIG),
        PairLoader(stored, 4, seed=5, workers=0, threads=3, config=CONFIG),
    ):
        batches = list(loader.epoch(0))
        assert len(batches) == len(expected)
        for batch, reference in zip(batches, expected, strict=True):
            np.testing.assert_array_equal(batch["exemplar"], reference["exemplar"])
            np.testing.assert_array_equal(batch["search"], reference["search"])


def test_a_store_draw_reads_no_record(dataset_dir):
    stored = _store(dataset_dir)

    class NoReads:
        def __getitem__(self, record):
            raise AssertionError(f"record {record} was read")

    stored._records = NoReads()
    sampler = PairSampler(stored, CONFIG, seed=0)
    for index in range(len(sampler)):
        sampler.pair(0, index)


def test_pickling_carries_the_path_not_the_crops(dataset_dir):
    stored = _store(dataset_dir)
    stored.store[0]  # mapped in this process
    pickled = pickle.dumps(stored)
    assert len(pickled) < stored.store.nbytes / 100
    clone = pickle.loads(pickled)
    assert clone.store._array is None and clone.store.path == stored.store.path
    np.testing.assert_array_equal(clone.store[5], stored.store[5])


def test_the_store_is_written_once_and_reused(dataset_dir, monkeypatch):
    first: list[str] = []
    _store(dataset_dir, lines=first)
    path = store_path(dataset_dir, "train")
    before = path.stat()
    assert len(first) == 1 and first[0].startswith(f"decoded crops: wrote {path}")

    def no_writing(*args, **kwargs):
        raise AssertionError("the store was written again")

    monkeypatch.setattr(crop_store, "write_store", no_writing)
    second: list[str] = []
    again = _store(dataset_dir, lines=second)
    assert again.store is not None and second == [f"decoded crops: {path} (32 crops, 0.0 GB), written before"]
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_truncated_store_is_neither_read_nor_kept(dataset_dir):
    _store(dataset_dir)
    path = store_path(dataset_dir, "train")
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size - 255 * 255 * 3 // 2)
    shape = (NUM_SEQUENCES * NUM_FRAMES, 255, 255, 3)
    with pytest.raises(DataError, match="not a complete crop store"):
        CropStore(path, shape)[0]
    lines: list[str] = []
    stored = _store(dataset_dir, lines=lines)
    assert "not a complete crop store" in lines[0] and lines[1].startswith("decoded crops: wrote")
    assert path.stat().st_size == size
    np.testing.assert_array_equal(stored.store[len(stored.store) - 1], decode_jpeg(stored.jpeg(31)))


def test_a_store_of_other_pixels_is_written_anew(dataset_dir):
    _store(dataset_dir)
    path = store_path(dataset_dir, "train")
    array = np.load(path, mmap_mode="r+")
    array[0] = 0  # a store decoded otherwise, or damaged
    array.flush()
    del array
    lines: list[str] = []
    stored = _store(dataset_dir, lines=lines)
    assert "not what record 0 decodes to" in lines[0]
    np.testing.assert_array_equal(stored.store[0], decode_jpeg(stored.jpeg(0)))


def test_a_killed_writers_temporary_is_removed_not_used(dataset_dir):
    """A writer killed mid-way leaves its temporary beside the store's name: it is never taken for the
    store, and the next writer deletes it."""
    shape = (NUM_SEQUENCES * NUM_FRAMES, 255, 255, 3)
    path = store_path(dataset_dir, "train")
    path.parent.mkdir()
    leftover = path.with_name(f".train.{os.getpid()}-0badc0de.tmp.npy")
    np.lib.format.open_memmap(leftover, mode="w+", dtype=np.uint8, shape=shape).flush()
    lines: list[str] = []
    stored = _store(dataset_dir, lines=lines)
    assert not leftover.exists() and lines[0].startswith("decoded crops: wrote")
    assert sorted(item.name for item in path.parent.iterdir()) == [".train.lock", "train.npy"]
    np.testing.assert_array_equal(stored.store[3], decode_jpeg(stored.jpeg(3)))


def test_a_failed_write_leaves_no_store(dataset_dir, monkeypatch):
    calls = 0

    def failing_decode(data: bytes) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls > 5:
            raise OSError("disk failure")
        return decode_jpeg(data)

    monkeypatch.setattr(crop_store, "decode_jpeg", failing_decode)
    with pytest.raises(OSError, match=r"train\.npy: cannot write"):
        _store(dataset_dir)
    assert sorted(item.name for item in store_path(dataset_dir, "train").parent.iterdir()) == [".train.lock"]


def test_budget_zero_and_a_split_over_budget_decode_jpeg(dataset_dir):
    lines: list[str] = []
    assert _store(dataset_dir, 0, lines).store is None
    split_bytes = NUM_SEQUENCES * NUM_FRAMES * 255 * 255 * 3
    assert _store(dataset_dir, split_bytes - 1, lines).store is None
    assert lines == [
        "decoded crops: off (budget 0); pairs decode the JPEG crops",
        "decoded crops: train (32 crops, 0.0 GB) exceeds the budget of 0.0 GB; pairs decode the JPEG crops",
    ]
    assert not (dataset_dir / "decoded").exists()
    assert _store(dataset_dir, split_bytes).store is not None  # exactly the split's size is within it


def test_a_disk_too_small_decodes_jpeg(dataset_dir, monkeypatch):
    split_bytes = NUM_SEQUENCES * NUM_FRAMES * 255 * 255 * 3
    usage = namedtuple("usage", "total used free")
    free = split_bytes + crop_store.DISK_RESERVE_BYTES - 1
    monkeypatch.setattr(crop_store.shutil, "disk_usage", lambda path: usage(10**12, 10**12 - free, free))
    lines: list[str] = []
    assert _store(dataset_dir, lines=lines).store is None
    assert len(lines) == 1 and "does not fit in the 1.1 GB free" in lines[0]
    assert not store_path(dataset_dir, "train").exists()
    free += 1
    assert _store(dataset_dir).store is not None


def test_a_store_of_another_shape_is_refused(dataset_dir):
    stored = _store(dataset_dir)
    other = CropStore(stored.store.path, (7, 255, 255, 3))
    with pytest.raises(DataError, match="split 'train' has"):
        stored.with_store(other)
    with pytest.raises(DataError, match="not a complete crop store of shape"):
        other[0]


def test_training_data_reads_the_store_within_the_budget(got10k_root, tmp_path):
    config = TrainConfig(
        data=f"got10k:{got10k_root}", data_dir=str(tmp_path / "tfds"), val_sequences=0, pairs=CONFIG
    )
    lines: list[str] = []
    data = prepare_training_data(config, workers=1, progress=False, log=lines.append)
    assert data.train.store is not None and data.validation is None
    assert [line for line in lines if line.startswith("decoded crops: wrote")]
    off = dataclasses.replace(config, decoded_crops_gb=0.0)
    lines.clear()
    assert prepare_training_data(off, workers=1, progress=False, log=lines.append).train.store is None
    assert "decoded crops: off (budget 0); pairs decode the JPEG crops" in lines


def test_every_process_reads_crops_the_same_way(dataset_dir, monkeypatch):
    """With several processes the store is used only where every one of them has it."""
    stored = _store(dataset_dir)
    data = loop.TrainingData(stored, None, (), "test")
    lines: list[str] = []
    assert loop._same_crop_source_everywhere(data, lines.append) is data  # one process
    monkeypatch.setattr(loop, "any_process", lambda flag: True)  # another process has no store
    agreed = loop._same_crop_source_everywhere(data, lines.append)
    assert agreed.train.store is None and lines == [
        "decoded crops: not in every process; every process decodes the JPEG crops"
    ]


def test_budget_setting_and_flag():
    assert TrainConfig().decoded_crops_gb * 1e9 > 1200 * 60 * 255 * 255 * 3  # synthetic_rich fits
    assert TrainConfig().decoded_crops_gb * 1e9 < 1.4e6 * 255 * 255 * 3  # GOT-10k does not
    with pytest.raises(ConfigError, match="decoded_crops_gb"):
        TrainConfig(decoded_crops_gb=-1.0)
    parser, paths = train_app.build_parser()
    args = parser.parse_args(["--decoded-crops-gb", "0"])
    assert train_app.build_config(args, paths).decoded_crops_gb == 0.0
