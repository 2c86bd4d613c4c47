"""The siamfc_crops TFDS dataset: prepared end to end on tiny GOT-10k folders, read back without TF."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamfc_jax.config import PairConfig
from siamfc_jax.pipeline.curate import curate_frame, decode_jpeg, encode_jpeg, frame_filter
from siamfc_jax.pipeline.tfds_builder import SiamfcCropsConfig, keyed_config, load_curated, prepare
from siamfc_jax.sequences.datasets import GOT10k
from siamfc_jax.sequences.frames import DataError, read_image
from siamfc_jax.synthetic.config import SyntheticConfig
from tests.test_datasets import vid_root  # noqa: F401

FRAME_SIZE = (160, 120)
# (boxes, cover) per sequence; frame 2 of the first is absent (NaN), frame 1 of the second too small.
SEQUENCES = {
    "GOT-10k_Train_000001": (
        ["11,21,30,40", "13,22,31,40", "nan,nan,nan,nan", "17,25,33,42", "19,26,33,41"],
        [8, 8, 0, 7, 8],
    ),
    "GOT-10k_Train_000002": (["51,31,40,30", "52,31,12,12", "55,33,41,31", "56,33,40,30"], [8, 8, 8, 2]),
    "GOT-10k_Train_000003": (["101,51,45,45", "100,50,45,46", "99,49,46,46"], [8, 8, 8]),
}
VALIDATION = {"GOT-10k_Val_000001": (["31,31,40,40", "33,32,40,40"], [8, 8])}
JPEG_QUALITY = 95
# Mean absolute difference (grey levels) between a stored crop and the uncompressed crop of these
# smooth frames at JPEG quality 95.
JPEG_MEAN_TOLERANCE = 2.0


def smooth_frame(seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).uniform(0, 255, (FRAME_SIZE[1], FRAME_SIZE[0], 3)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 3.0)  # std ~ 7 around 128: stretch the contrast
    return np.clip((blurred - 128) * 8 + 128, 0, 255).astype(np.uint8)


def write_got10k(root: Path, subset: str, sequences: dict, seed: int) -> None:
    for number, (name, (boxes, cover)) in enumerate(sequences.items()):
        directory = root / subset / name
        directory.mkdir(parents=True)
        for index in range(len(boxes)):
            frame = smooth_frame(seed + 100 * number + index)
            cv2.imwrite(str(directory / f"{index + 1:08d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        (directory / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
        (directory / "cover.label").write_text("".join(f"{c}\n" for c in cover))
        (directory / "absence.label").write_text("".join(f"{int(c == 0)}\n" for c in cover))
    (root / subset / "list.txt").write_text("".join(f"{name}\n" for name in sequences))


@pytest.fixture(scope="module")
def got10k_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("GOT-10k")
    write_got10k(root, "train", SEQUENCES, seed=0)
    write_got10k(root, "val", VALIDATION, seed=1000)
    return root


@pytest.fixture(scope="module")
def prepared(got10k_root, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    # Two processes: the parallel curation path.
    builder = prepare("got10k", data_dir, manual_dir=got10k_root, workers=2, progress=False)
    return builder, data_dir


def test_records_are_the_curated_frames(prepared, got10k_root):
    builder, _ = prepared
    records = builder.as_data_source(split="train")
    dataset = GOT10k(got10k_root, "train")
    expected = []
    for sequence_index, sequence in enumerate(dataset):
        valid = frame_filter(sequence.boxes, FRAME_SIZE, sequence.cover)
        for frame_index, box in enumerate(sequence.boxes):
            if np.all(np.isfinite(box)):
                expected.append((sequence_index, sequence, frame_index, bool(valid[frame_index])))
    assert len(records) == len(expected) == 11
    for position, (sequence_index, sequence, frame_index, valid) in enumerate(expected):
        record = records[position]
        assert (record["sequence"], record["frame"]) == (sequence_index, frame_index)
        assert record["name"] == sequence.name.encode() and record["valid"] == valid
        curated = curate_frame(read_image(sequence.frames[frame_index]), sequence.boxes[frame_index])
        np.testing.assert_array_equal(record["box"], curated.box)
        np.testing.assert_array_equal(record["frame_box"], sequence.boxes[frame_index])
        stored = decode_jpeg(record["crop"])
        # The stored bytes are OpenCV's JPEG of the curated crop: decoding is exact ...
        np.testing.assert_array_equal(stored, decode_jpeg(encode_jpeg(curated.crop, JPEG_QUALITY)))
        # ... and differs from the uncompressed crop by the JPEG loss only.
        difference = np.abs(stored.astype(np.int16) - curated.crop).mean()
        assert difference <= JPEG_MEAN_TOLERANCE, difference


def test_metadata_lists_frames_and_valid_frames(prepared):
    builder, _ = prepared
    metadata = builder.info.metadata
    assert metadata["curation"] == {
        "format": 1,
        "exemplar_sz": 127,
        "instance_sz": 255,
        "context": 0.5,
        "min_target_side": 20.0,
        "interpolation": "INTER_LINEAR",
        "jpeg_quality": JPEG_QUALITY,
    }
    train = metadata["splits"]["train"]
    assert train["names"] == list(SEQUENCES)
    assert train["frames"] == [[[0, 2], [3, 5]], [[0, 4]], [[0, 3]]]
    # Cover 7 > max(1, 0.3 * 8) passes; the 12 x 12 box and the cover-2 frame do not.
    assert train["valid"] == [[[0, 2], [3, 5]], [[0, 1], [2, 3]], [[0, 3]]]
    assert metadata["splits"]["validation"]["names"] == list(VALIDATION)
    assert builder.info.splits["validation"].num_examples == 2


def test_load_curated_reads_the_directory(prepared):
    builder, _ = prepared
    source = load_curated(builder.data_dir)
    assert source.names == tuple(SEQUENCES)
    np.testing.assert_array_equal(source.sequence(0).valid_frames, [0, 1, 3, 4])
    np.testing.assert_array_equal(source.sequence(1).valid_frames, [0, 2])
    crop = source.sequence(0).crop(3, np.random.default_rng(0))
    record = builder.as_data_source(split="train")[2]  # frame 3 of the first sequence
    np.testing.assert_array_equal(crop, decode_jpeg(record["crop"]))
    assert load_curated(builder, "validation").names == tuple(VALIDATION)


def test_prepare_is_idempotent(prepared, got10k_root):
    builder, data_dir = prepared
    shards = sorted(Path(builder.data_dir).glob("*.array_record*"))
    stamps = [path.stat().st_mtime_ns for path in shards]
    again = prepare("got10k", data_dir, manual_dir=got10k_root, workers=1, progress=False)
    assert again.data_dir == builder.data_dir
    assert [path.stat().st_mtime_ns for path in shards] == stamps


def test_one_sequence_per_shard(got10k_root, tmp_path):
    """Records keep (sequence, frame) order across shards, and no TensorFlow is needed to write them."""
    config = SiamfcCropsConfig(name="sharded", kind="folder", sequences_per_shard=1)
    builder = prepare(config, tmp_path, manual_dir=got10k_root / "train", workers=1, progress=False)
    assert builder.info.splits["train"].shard_lengths == [4, 4, 3]
    records = builder.as_data_source(split="train")
    order = [(records[i]["sequence"], records[i]["frame"]) for i in range(len(records))]
    assert order == [(0, 0), (0, 1), (0, 3), (0, 4), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 2)]
    assert load_curated(builder).names == tuple(SEQUENCES)
    assert "tensorflow" not in sys.modules


def test_synthetic_config(tmp_path):
    synthetic = SyntheticConfig(
        num_sequences=2, frames_per_sequence=3, frame_size=(128, 96), target_size_range=(24.0, 40.0)
    )
    config = SiamfcCropsConfig(name="tiny", synthetic=synthetic, validation_sequences=1)
    builder = prepare(config, tmp_path, workers=1, progress=False)
    generated = next((tmp_path / "downloads").glob("siamfc_synthetic_*"))
    train = GOT10k(generated, "train")
    assert load_curated(builder).names == train.names == ("SYN_000001", "SYN_000002")
    assert load_curated(builder, "validation").names == ("SYN_000001",)
    records = builder.as_data_source(split="train")
    sequence = train[1]
    record = records[3]
    assert (record["sequence"], record["frame"]) == (1, 0)
    curated = curate_frame(read_image(sequence.frames[0]), sequence.boxes[0])
    np.testing.assert_array_equal(decode_jpeg(record["crop"]), decode_jpeg(encode_jpeg(curated.crop, 95)))


def test_errors_name_the_problem(prepared, tmp_path):
    builder, _ = prepared
    with pytest.raises(DataError, match=r"nowhere: no such directory \(expected for got10k: the GOT-10k"):
        prepare("got10k", tmp_path / "data", manual_dir=tmp_path / "nowhere", workers=1, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: an empty folder, no sequences in it \(expected for folder"):
        prepare("folder", tmp_path / "data", manual_dir=tmp_path / "empty", workers=1, progress=False)
    with pytest.raises(DataError, match="no prepared TFDS dataset"):
        load_curated(tmp_path / "nothing")
    with pytest.raises(DataError, match=r"curated with context=0\.5"):
        load_curated(builder, config=PairConfig(context=0.4))
    with pytest.raises(DataError, match="no split 'test'"):
        load_curated(builder, "test")


def test_each_source_gets_its_own_dataset(got10k_root, tmp_path):
    """Two folders curated in turn into one data dir: the second is curated from its own files (its
    broken ground truth is read and reported), never taken from the first one's crops; a changed
    file of a source makes a new dataset too."""
    data_dir = tmp_path / "tfds"
    first = prepare("folder", data_dir, manual_dir=got10k_root / "train", workers=1, progress=False)
    assert load_curated(first).names == tuple(SEQUENCES)
    assert first.info.metadata["source"]["root"] == str((got10k_root / "train").resolve())
    other = tmp_path / "other"
    write_got10k(other, "train", VALIDATION, seed=7)
    second = prepare("folder", data_dir, manual_dir=other / "train", workers=1, progress=False)
    assert second.data_dir != first.data_dir
    assert load_curated(second).names == tuple(VALIDATION)
    broken = other / "train" / "GOT-10k_Val_000001" / "groundtruth.txt"
    broken.write_text("31,31,40\n33,32,40,40\n")
    with pytest.raises(DataError, match=str(broken)):
        prepare("folder", data_dir, manual_dir=other / "train", workers=1, progress=False)


def test_keyed_config_follows_the_source_and_the_settings(got10k_root, tmp_path):
    name = keyed_config("got10k", got10k_root).name
    assert name.startswith("got10k_") and name == keyed_config("got10k", got10k_root).name
    geometry = SiamfcCropsConfig(name="got10k", kind="got10k", pair=PairConfig(context=0.25))
    assert keyed_config(geometry, got10k_root).name != name
    copy = tmp_path / "copy"
    shutil.copytree(got10k_root, copy)
    assert keyed_config("got10k", copy).name != name
    stamp = (copy / "val" / "list.txt").stat().st_mtime_ns
    before = keyed_config("got10k", copy).name
    os.utime(copy / "val" / "list.txt", ns=(stamp + 10**9, stamp + 10**9))  # only the time changes
    assert keyed_config("got10k", copy).name != before
    synthetic = keyed_config("synthetic").name
    assert synthetic != keyed_config(SiamfcCropsConfig(name="synthetic", validation_sequences=3)).name


def test_a_changed_vid_annotation_is_read_again(vid_root, tmp_path):  # noqa: F811
    """ImageNet VID's parsed annotation index is kept per source: an annotation edited in place
    is curated from its new box, not from the index parsed before."""
    data_dir = tmp_path / "tfds"
    first = prepare("vid", data_dir, manual_dir=vid_root, workers=1, progress=False)
    assert list(first.as_data_source(split="train")[0]["frame_box"]) == [10, 20, 20, 30]
    annotation = next((vid_root / "Annotations").rglob("000000.xml"))
    annotation.write_text(annotation.read_text().replace("<xmin>10</xmin>", "<xmin>12</xmin>"))
    second = prepare("vid", data_dir, manual_dir=vid_root, workers=1, progress=False)
    assert list(second.as_data_source(split="train")[0]["frame_box"]) == [12, 20, 18, 30]


def test_default_data_dir_is_in_the_cache_folder(tmp_path, monkeypatch, got10k_root):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    builder = prepare("folder", manual_dir=got10k_root / "train", workers=1, progress=False)
    assert Path(builder.data_dir).is_relative_to(tmp_path / "cache" / "siamfc_jax" / "tfds" / "siamfc_crops")


def test_command_line_reports_missing_manual_dir(capsys):
    from siamfc_jax.pipeline import tfds_builder

    assert tfds_builder.main(["--config", "got10k"]) == 2  # siamfc_jax.cli: a bad command line
    assert capsys.readouterr().err.splitlines() == ["error: argument --manual-dir: --config got10k needs it"]
