"""The synthetic tracking world: determinism, ground truth checked against the pixels, GOT-10k files."""

from __future__ import annotations

import ast
import dataclasses
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamfc_jax.sequences.datasets import GOT10k
from siamfc_jax.sequences.readers import read_got10k
from siamfc_jax.synthetic.command import main
from siamfc_jax.synthetic.config import (
    DEMO_SEQUENCE_NAME,
    SyntheticConfig,
    SyntheticDataError,
    cover_label,
    sequence_name,
)
from siamfc_jax.synthetic.demo import ensure_demo_sequence
from siamfc_jax.synthetic.render import render_sequence
from siamfc_jax.synthetic.writer import write_got10k

BACKGROUND = (255, 0, 255)

# Only the target (and, where a test enables them, occluders) over a flat background: no clutter,
# look-alikes, light changes, blur or noise, so that every pixel differing from the background colour
# belongs to the target.
PLAIN = SyntheticConfig(
    num_sequences=4,
    frames_per_sequence=12,
    seed=7,
    flat_background=BACKGROUND,
    distractor_prob=0.0,
    max_clutter_objects=0,
    occlusion_prob=0.0,
    illumination_prob=0.0,
    motion_blur_prob=0.0,
    noise_std_range=(0.0, 0.0),
    rotation_prob=1.0,
    scale_change_prob=1.0,
    fast_motion_prob=0.5,
)


def target_pixels(frame: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose colour differs from the flat background."""
    return np.any(frame != np.array(BACKGROUND, np.uint8), axis=2)


def _box_of(mask: np.ndarray) -> np.ndarray:
    """1-indexed [x, y, w, h] of a mask, computed independently of the generator (OTB convention)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0] + 1, rows[0] + 1, cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1], float)


def test_cover_label_matches_got10k_eighths():
    # Hand-computed: 0 only when nothing is visible, 8 only when all is, else ceil(8 r) in 1..7.
    cases = {
        (0, 100): 0,
        (1, 100): 1,
        (12, 100): 1,
        (13, 100): 2,
        (30, 100): 3,
        (50, 100): 4,
        (51, 100): 5,
        (87, 100): 7,
        (99, 100): 7,
        (100, 100): 8,
    }
    for (visible, total), expected in cases.items():
        assert cover_label(visible, total) == expected, (visible, total)


def test_same_index_renders_the_same_sequence_and_other_indices_differ():
    config = dataclasses.replace(SyntheticConfig(), frames_per_sequence=6, seed=3)
    frames_a, boxes_a, cover_a, absence_a = render_sequence(config, 2)
    frames_b, boxes_b, cover_b, absence_b = render_sequence(config, 2)
    assert len(frames_a) == 6 and frames_a[0].shape == (240, 320, 3)
    assert frames_a[0].dtype == np.uint8
    for frame_a, frame_b in zip(frames_a, frames_b, strict=True):
        np.testing.assert_array_equal(frame_a, frame_b)
    np.testing.assert_array_equal(boxes_a, boxes_b)
    np.testing.assert_array_equal(cover_a, cover_b)
    np.testing.assert_array_equal(absence_a, absence_b)

    frames_c, boxes_c, _, _ = render_sequence(config, 3)
    assert not np.array_equal(boxes_a, boxes_c)
    assert np.mean(np.abs(frames_a[0].astype(int) - frames_c[0])) > 10
    frames_d, _, _, _ = render_sequence(dataclasses.replace(config, seed=4), 2)
    assert np.mean(np.abs(frames_a[0].astype(int) - frames_d[0])) > 10


def test_boxes_match_the_target_pixels():
    # Tolerance: 1 px per coordinate, and exact in at least 95% of the frames (a boundary pixel of
    # the target could blend to exactly the background colour; in practice all are exact).
    truncated = exact = 0
    for index in range(PLAIN.num_sequences):
        frames, boxes, cover, absence = render_sequence(PLAIN, index)
        assert boxes.shape == (PLAIN.frames_per_sequence, 4)
        for frame, box, visible_eighths in zip(frames, boxes, cover, strict=True):
            mask = target_pixels(frame)
            np.testing.assert_allclose(box, _box_of(mask), atol=1.0)
            exact += np.array_equal(box, _box_of(mask))
            touches_border = box[0] == 1 or box[1] == 1 or box[0] + box[2] - 1 == 320
            touches_border |= box[1] + box[3] - 1 == 240
            # Without occluders the target is hidden only by the frame border.
            if visible_eighths < 8:
                assert touches_border
                truncated += 1
        assert cover[0] == 8
        assert not absence.any()
    frame_count = PLAIN.num_sequences * PLAIN.frames_per_sequence
    assert 0 < truncated < frame_count  # the border-clipping path is exercised too
    assert exact >= 0.95 * frame_count


def test_occluders_hide_part_of_the_target_and_cover_says_how_much():
    # Occluders draw from their own random stream: enabling them leaves the target (and its boxes)
    # unchanged, so the pixels that change inside the target's mask are the occluded ones.
    occluded = dataclasses.replace(PLAIN, occlusion_prob=1.0, rotation_prob=0.0)
    plain = dataclasses.replace(occluded, occlusion_prob=0.0)
    occluded_frames = 0
    for index in range(6):
        frames_plain, boxes_plain, cover_plain, _ = render_sequence(plain, index)
        frames, boxes, cover, absence = render_sequence(occluded, index)
        np.testing.assert_array_equal(boxes, boxes_plain)
        assert cover[0] == 8
        # min_visibility = 0.3: at least ceil(8 * 0.3) = 3 eighths stay visible.
        assert cover.min() >= math.ceil(8 * occluded.min_visibility)
        assert not absence.any()
        for frame_plain, frame, plain_eighths, eighths in zip(
            frames_plain, frames, cover_plain, cover, strict=True
        ):
            if plain_eighths < 8:  # truncated by the frame border: visibility not measurable here
                continue
            target = target_pixels(frame_plain)
            hidden = target & np.any(frame != frame_plain, axis=2)
            visible_ratio = 1.0 - hidden.sum() / target.sum()
            # One eighth of tolerance: an occluder pixel may match the target's colour.
            assert abs(cover_label(round(visible_ratio * 10_000), 10_000) - eighths) <= 1
            if visible_ratio < 0.85:
                assert eighths < 8
                occluded_frames += 1
            if eighths == 8:
                # Unoccluded: the target's interior is untouched (its anti-aliased rim, up to 2 px
                # wide, blends with whatever lies behind: maybe an occluder sent behind the target).
                interior = cv2.erode(target.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
                assert not (hidden & interior).any()
    assert occluded_frames > 0


def read_meta(path: Path) -> dict[str, str]:
    """meta_info.ini as the GOT-10k toolkit reads it: header line skipped, ``key: value`` lines."""
    lines = path.read_text().strip().split("\n")[1:]
    return dict(line.split(": ") for line in lines)


def test_write_got10k_layout_is_readable(tmp_path):
    config = dataclasses.replace(
        SyntheticConfig(),
        num_sequences=3,
        frames_per_sequence=5,
        seed=11,
        jpeg_quality_range=(90, 95),
    )
    subset_dir = write_got10k(tmp_path, config, "val", workers=1, progress=False)
    quality_flag = cv2.IMWRITE_JPEG_QUALITY
    assert subset_dir == tmp_path / "val"
    names = (subset_dir / "list.txt").read_text().split("\n")
    assert names == ["SYN_000001", "SYN_000002", "SYN_000003", ""]
    dataset = GOT10k(tmp_path, "val")
    assert dataset.names == ("SYN_000001", "SYN_000002", "SYN_000003")
    for index, name in enumerate(names[:-1]):
        folder = subset_dir / name
        frames, boxes, cover, absence = render_sequence(config, index)
        jpgs = sorted(folder.glob("*.jpg"))
        assert [p.name for p in jpgs] == [f"{t:08d}.jpg" for t in range(1, 6)]
        np.testing.assert_allclose(np.loadtxt(folder / "groundtruth.txt", delimiter=","), boxes, atol=5e-5)
        np.testing.assert_array_equal(np.loadtxt(folder / "cover.label", dtype=int), cover)
        np.testing.assert_array_equal(np.loadtxt(folder / "absence.label", dtype=int), absence)
        cut = np.loadtxt(folder / "cut_by_image.label", dtype=int)
        assert set(np.unique(cut)) <= {0, 1}
        meta = read_meta(folder / "meta_info.ini")
        assert ast.literal_eval(meta["resolution"]) == (320, 240)
        assert meta["object_class"] and meta["motion_class"]
        # The JPEG is the rendered frame encoded by OpenCV at a quality in the configured range.
        decoded = cv2.imread(str(jpgs[0]))
        bgr = cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR)
        assert any(
            np.array_equal(decoded, cv2.imdecode(cv2.imencode(".jpg", bgr, [quality_flag, q])[1], 1))
            for q in range(90, 96)
        )
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)

        sequence = dataset[index]
        assert sequence.name == name and len(sequence) == 5
        np.testing.assert_allclose(sequence.boxes, boxes, atol=5e-5)
        np.testing.assert_array_equal(sequence.cover, cover)
        np.testing.assert_array_equal(sequence.absence, absence.astype(bool))
        np.testing.assert_array_equal(sequence.frame(0), decoded)


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_write_got10k_resumes_without_rewriting(tmp_path):
    config = dataclasses.replace(SyntheticConfig(), num_sequences=3, frames_per_sequence=4, seed=5)
    subset_dir = write_got10k(tmp_path, config, workers=2, progress=False)
    before = {name: _snapshot(subset_dir / sequence_name(i)) for i, name in enumerate("abc")}

    write_got10k(tmp_path, config, workers=2, progress=False)
    after = {name: _snapshot(subset_dir / sequence_name(i)) for i, name in enumerate("abc")}
    assert after == before  # same mtimes and bytes: nothing rewritten

    removed = subset_dir / sequence_name(1)
    for path in removed.iterdir():
        path.unlink()
    removed.rmdir()
    (subset_dir / sequence_name(2) / "cover.label").unlink()  # an incomplete sequence
    write_got10k(tmp_path, config, workers=1, progress=False)
    regenerated = {name: _snapshot(subset_dir / sequence_name(i)) for i, name in enumerate("abc")}
    assert regenerated["a"] == before["a"]
    for name in "bc":  # regenerated byte for byte
        assert {k: v[1] for k, v in regenerated[name].items()} == {k: v[1] for k, v in before[name].items()}
    assert not [p for p in subset_dir.iterdir() if p.name.startswith(".")]

    more = dataclasses.replace(config, num_sequences=4)
    write_got10k(tmp_path, more, workers=1, progress=False)
    assert _snapshot(subset_dir / sequence_name(0)) == before["a"]
    assert (subset_dir / "list.txt").read_text().split() == [sequence_name(i) for i in range(4)]

    with pytest.raises(SyntheticDataError, match="different configuration"):
        write_got10k(tmp_path, dataclasses.replace(config, frames_per_sequence=5), progress=False)
    with pytest.raises(SyntheticDataError, match="seed 5"):
        write_got10k(tmp_path, config, subset="val", progress=False)


def test_write_got10k_refuses_a_foreign_dataset(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "list.txt").write_text("GOT-10k_Train_000001\n")
    config = dataclasses.replace(SyntheticConfig(), num_sequences=1, frames_per_sequence=2)
    with pytest.raises(SyntheticDataError, match="did not write"):
        write_got10k(tmp_path, config, progress=False)


def test_demo_sequence_is_generated_once(tmp_path):
    folder = ensure_demo_sequence(tmp_path)
    assert folder == tmp_path / DEMO_SEQUENCE_NAME
    sequence = read_got10k(folder)
    assert len(sequence) == 150 and sequence.boxes.shape == (150, 4)
    assert sequence.frame(0).shape == (288, 384, 3)
    assert sequence.cover.min() < 8  # an occlusion happens
    sizes = np.sqrt(sequence.boxes[:, 2] * sequence.boxes[:, 3])
    assert sizes.max() / sizes.min() > 1.5  # the target changes scale
    before = _snapshot(folder)
    assert ensure_demo_sequence(tmp_path) == folder
    assert _snapshot(folder) == before


def test_config_and_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SyntheticDataError, match="frames_per_sequence"):
        SyntheticConfig(frames_per_sequence=1)
    with pytest.raises(SyntheticDataError, match="occlusion_prob"):
        SyntheticConfig(occlusion_prob=1.5)

    assert main(["--out", os.fspath(tmp_path), "--frames", "1", "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "frames_per_sequence" in error
    assert main(["--out", os.fspath(tmp_path), "--frame-size", "big"]) == 2  # siamfc_jax.cli's convention
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "WIDTHxHEIGHT" in error

    assert (
        main(
            [
                "--out",
                os.fspath(tmp_path),
                "--num-sequences",
                "2",
                "--frames",
                "3",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (tmp_path / "train" / "list.txt").read_text().split() == ["SYN_000001", "SYN_000002"]
