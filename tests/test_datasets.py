"""Dataset roots: GOT-10k, ImageNet VID 2015, folders of sequences, and dataset spec strings."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from siamfc_jax.sequences import datasets
from siamfc_jax.sequences.datasets import GOT10k, ImageNetVID, SequenceFolder, open_dataset
from siamfc_jax.sequences.frames import DataError, read_image


def write_jpegs(directory: Path, names: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        image = np.full((24, 32, 3), 30 * index, np.uint8)
        assert cv2.imwrite(str(directory / name), image)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_got10k_sequence(directory: Path, boxes: list[str]) -> None:
    write_jpegs(directory, [f"{index + 1:08d}.jpg" for index in range(len(boxes))])
    write_text(directory / "groundtruth.txt", "\n".join(boxes) + "\n")
    write_text(directory / "absence.label", "0\n" * len(boxes))


@pytest.fixture
def got10k_root(tmp_path: Path) -> Path:
    root = tmp_path / "GOT-10k"
    make_got10k_sequence(root / "train" / "GOT-10k_Train_000002", ["1,1,5,5", "2,2,5,5"])
    make_got10k_sequence(root / "train" / "GOT-10k_Train_000001", ["3,3,4,4"] * 3)
    make_got10k_sequence(root / "train" / "not_listed", ["1,1,5,5"])
    # list.txt decides membership and order.
    write_text(root / "train" / "list.txt", "GOT-10k_Train_000002\nGOT-10k_Train_000001\n")
    make_got10k_sequence(root / "val" / "GOT-10k_Val_000001", ["7,7,5,5", "8,8,5,5"])
    return root


def test_got10k_train_follows_list_txt(got10k_root):
    dataset = GOT10k(got10k_root, "train")
    assert dataset.names == ("GOT-10k_Train_000002", "GOT-10k_Train_000001")
    assert len(dataset) == 2
    first = dataset[0]
    np.testing.assert_array_equal(first.boxes, [[1, 1, 5, 5], [2, 2, 5, 5]])
    np.testing.assert_array_equal(first.absence, [False, False])
    assert dataset[-1].name == "GOT-10k_Train_000001" and len(dataset[-1]) == 3
    assert dataset["GOT-10k_Train_000001"].boxes.shape == (3, 4)
    assert [sequence.name for sequence in dataset] == list(dataset.names)
    with pytest.raises(IndexError):
        dataset[2]
    with pytest.raises(KeyError):
        dataset["not_listed"]


def test_got10k_without_list_uses_subfolders(got10k_root):
    dataset = GOT10k(got10k_root, "val")
    assert dataset.names == ("GOT-10k_Val_000001",)
    np.testing.assert_array_equal(dataset[0].init_box, [7, 7, 5, 5])


def test_got10k_errors_name_the_path(tmp_path, got10k_root):
    with pytest.raises(DataError, match=r"nowhere: no such directory \(GOT-10k root\)"):
        GOT10k(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"GOT-10k[/\\]test: no such directory \(GOT-10k test split"):
        GOT10k(got10k_root, "test")
    with pytest.raises(DataError, match="subset must be one of"):
        GOT10k(got10k_root, "training")
    write_text(got10k_root / "train" / "list.txt", "GOT-10k_Train_000009\n")
    with pytest.raises(DataError, match=r"GOT-10k_Train_000009: no such directory"):
        GOT10k(got10k_root)[0]


def vid_xml(folder: str, frame: str, objects: list[tuple[int, str, tuple[int, int, int, int]]]) -> str:
    parts = [
        f"<annotation><folder>{folder}</folder><filename>{frame}</filename>",
        "<source><database>ILSVRC_2015</database></source>",
        "<size><width>32</width><height>24</height></size>",
    ]
    for trackid, wnid, (xmin, ymin, xmax, ymax) in objects:
        parts.append(
            f"<object><trackid>{trackid}</trackid><name>{wnid}</name><bndbox>"
            f"<xmax>{xmax}</xmax><xmin>{xmin}</xmin><ymax>{ymax}</ymax><ymin>{ymin}</ymin>"
            "</bndbox><occluded>0</occluded><generated>0</generated></object>"
        )
    parts.append("</annotation>")
    return "".join(parts)


@pytest.fixture
def vid_root(tmp_path: Path) -> Path:
    """Train: one snippet, 3 frames; object 0 in every frame, object 1 absent from frame 1.

    Val: one flat snippet with one object in one frame.
    """
    root = tmp_path / "ILSVRC2015"
    chunk_snippet = "ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000"
    write_jpegs(root / "Data/VID/train" / chunk_snippet, ["000000.JPEG", "000001.JPEG", "000002.JPEG"])
    annotations = root / "Annotations/VID/train" / chunk_snippet
    cat, dog = "n02121808", "n02084071"
    write_text(
        annotations / "000000.xml",
        vid_xml(chunk_snippet, "000000", [(0, cat, (10, 20, 29, 49)), (1, dog, (0, 0, 9, 4))]),
    )
    write_text(annotations / "000001.xml", vid_xml(chunk_snippet, "000001", [(0, cat, (11, 20, 30, 49))]))
    write_text(
        annotations / "000002.xml",
        vid_xml(chunk_snippet, "000002", [(1, dog, (1, 1, 10, 5)), (0, cat, (12, 21, 31, 50))]),
    )
    val_snippet = "ILSVRC2015_val_00000000"
    write_jpegs(root / "Data/VID/val" / val_snippet, ["000000.JPEG"])
    write_text(
        root / "Annotations/VID/val" / val_snippet / "000000.xml",
        vid_xml(val_snippet, "000000", [(3, cat, (5, 6, 14, 26))]),
    )
    return root


def test_imagenet_vid_one_sequence_per_track(vid_root):
    dataset = ImageNetVID(vid_root, "train")
    assert dataset.names == ("ILSVRC2015_train_00000000.0", "ILSVRC2015_train_00000000.1")
    cat, dog = dataset[0], dataset[1]
    # GOT-10k toolkit convention: w = xmax - xmin + 1, h = ymax - ymin + 1.
    np.testing.assert_array_equal(
        cat.boxes, [[10, 20, 20, 30], [11, 20, 20, 30], [12, 21, 20, 30]]
    )
    # The dog is absent from frame 1, which is left out of its sequence.
    np.testing.assert_array_equal(dog.boxes, [[0, 0, 10, 5], [1, 1, 10, 5]])
    assert [Path(path).name for path in dog.frames] == ["000000.JPEG", "000002.JPEG"]
    assert dict(dog.meta) == {
        "snippet": "ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000",
        "trackid": "1",
        "class": "n02084071",
    }
    expected = cv2.imread(str(Path(dog.frames[1])))[..., ::-1]
    np.testing.assert_array_equal(dog.frame(1), expected)
    np.testing.assert_array_equal(read_image(cat.frames[0]), cat.frame(0))


def test_imagenet_vid_val_is_flat(vid_root):
    dataset = ImageNetVID(vid_root, "val")
    assert dataset.names == ("ILSVRC2015_val_00000000.3",)
    np.testing.assert_array_equal(dataset[0].boxes, [[5, 6, 10, 21]])
    assert Path(dataset[0].frames[0]).is_file()


def test_imagenet_vid_cache_is_reused_and_dataset_untouched(vid_root, tmp_path, monkeypatch):
    before = sorted(path.relative_to(vid_root) for path in vid_root.rglob("*"))
    cache_dir = tmp_path / "cache"
    parsed = ImageNetVID(vid_root, "train", cache_dir=cache_dir)
    cache_files = list(cache_dir.iterdir())
    assert len(cache_files) == 1 and cache_files[0].name.startswith("imagenet_vid_train_")
    assert sorted(path.relative_to(vid_root) for path in vid_root.rglob("*")) == before

    def no_parsing(*args, **kwargs):
        raise AssertionError("the cached index should have been used")

    monkeypatch.setattr(datasets, "_parse_vid_annotations", no_parsing)
    cached = ImageNetVID(vid_root, "train", cache_dir=cache_dir)
    assert cached.names == parsed.names
    for from_cache, from_xml in zip(cached, parsed, strict=True):
        assert from_cache.frames == from_xml.frames
        np.testing.assert_array_equal(from_cache.boxes, from_xml.boxes)
        assert dict(from_cache.meta) == dict(from_xml.meta)


def test_imagenet_vid_malformed_xml_names_the_file(vid_root):
    bad = vid_root / "Annotations/VID/val/ILSVRC2015_val_00000000/000000.xml"
    bad.write_text("<annotation><object><trackid>0</trackid>")
    with pytest.raises(DataError, match=r"000000\.xml: malformed XML"):
        ImageNetVID(vid_root, "val")
    bad.write_text(
        "<annotation><object><trackid>0</trackid><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<ymax>5</ymax></bndbox></object></annotation>"
    )
    with pytest.raises(DataError, match=r"000000\.xml: <xmax> is missing"):
        ImageNetVID(vid_root, "val")


def test_imagenet_vid_missing_folders(tmp_path, vid_root):
    with pytest.raises(DataError, match=r"nowhere: no such directory"):
        ImageNetVID(tmp_path / "nowhere")
    with pytest.raises(DataError, match="subset must be one of"):
        ImageNetVID(vid_root, "test")
    (tmp_path / "partial" / "Data" / "VID" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"Annotations[/\\]VID[/\\]train: no such directory"):
        ImageNetVID(tmp_path / "partial")


def test_sequence_folder_mixes_layouts_and_skips_the_rest(tmp_path):
    root = tmp_path / "mixed"
    write_jpegs(root / "Basketball" / "img", ["0001.jpg", "0002.jpg"])
    write_text(root / "Basketball" / "groundtruth_rect.txt", "1\t1\t5\t5\n2\t2\t5\t5\n")
    make_got10k_sequence(root / "GOT-10k_Val_000001", ["4,4,5,5"])
    write_jpegs(root / "ball", ["00000001.jpg"])
    write_text(root / "ball" / "groundtruth.txt", "0,0,10,0,10,10,0,10\n")
    write_jpegs(root / "unannotated", ["a.jpg"])
    write_text(root / "list.txt", "GOT-10k_Val_000001\n")
    dataset = SequenceFolder(root)
    assert dataset.names == ("Basketball", "GOT-10k_Val_000001", "ball")
    np.testing.assert_array_equal(dataset["ball"].boxes, [[0, 0, 10, 10]])
    np.testing.assert_array_equal(dataset[0].boxes, [[1, 1, 5, 5], [2, 2, 5, 5]])
    with pytest.raises(DataError, match=r"unannotated: no sequence folders"):
        SequenceFolder(root / "unannotated")
    with pytest.raises(DataError, match=r"missing: no such directory"):
        SequenceFolder(root / "missing")


def test_open_dataset_specs(got10k_root, vid_root, tmp_path):
    assert open_dataset(f"got10k:{got10k_root}").names == GOT10k(got10k_root).names
    assert open_dataset(f"got10k/val:{got10k_root}").names == ("GOT-10k_Val_000001",)
    assert len(open_dataset(f"vid:{vid_root}")) == 2
    cache_dir = tmp_path / "cache"
    assert open_dataset(f"vid/val:{vid_root}", cache_dir=cache_dir).names == (
        "ILSVRC2015_val_00000000.3",
    )
    assert len(list(cache_dir.iterdir())) == 1
    assert open_dataset(f"folder:{got10k_root / 'val'}").names == ("GOT-10k_Val_000001",)
    for spec in ("imagenet:/data", f"{got10k_root}", "got10k:", f"folder/val:{got10k_root}"):
        with pytest.raises(DataError, match="dataset"):
            open_dataset(spec)
    with pytest.raises(DataError, match="subset must be one of"):
        open_dataset(f"got10k/training:{got10k_root}")
