"""The rich synthetic world's additions, each against an independent check: photographs, camera
shake, targets leaving the view, small targets and the frame filter that keeps them; real-video
validation sequences for training."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from synthetic_folder import write_folder
from test_synthetic import PLAIN, target_pixels

from siamfc_jax.config import PairConfig, TrainConfig
from siamfc_jax.pipeline.curate import frame_filter
from siamfc_jax.pipeline.sources import crops_config, validation_folder_sequences
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.synthetic.config import world_config
from siamfc_jax.synthetic.photos import PHOTO_FILES, load_photos, photo_crop
from siamfc_jax.synthetic.render import render_sequence

# test_synthetic's PLAIN (only the target over a flat background), longer and nearly still.
STILL = dataclasses.replace(
    PLAIN,
    frames_per_sequence=40,
    seed=11,
    rotation_prob=0.0,
    scale_change_prob=0.0,
    fast_motion_prob=0.0,
    camera_pan_prob=0.0,
    speed_range=(0.001, 0.001),
)


def test_photographs_are_scikit_images_and_an_unrotated_crop_is_a_window_of_them():
    photos = load_photos()
    # Shapes as scikit-image documents them (skimage.data): (rows, columns).
    expected = {
        "astronaut.png": (512, 512), "chelsea.png": (300, 451), "coffee.png": (400, 600),
        "hubble_deep_field.jpg": (872, 1000), "rocket.jpg": (427, 640), "brick.png": (512, 512),
        "camera.png": (512, 512), "grass.png": (512, 512), "gravel.png": (512, 512),
    }
    assert [p.shape[:2] for p in photos] == [expected[name] for name in PHOTO_FILES]
    chelsea = photos[PHOTO_FILES.index("chelsea.png")]
    # Anchor (0.5, 0.5), scale 1, angle 0: a 31 x 41 window centred on pixel ((451-1)/2, (300-1)/2)
    # = (225, 149.5); with an odd width and an even-centred height the rows interpolate halfway.
    crop = photo_crop(chelsea, 31, 41, (0.5, 0.5), 1.0, 0.0)
    rows = 0.5 * (chelsea[134:165] + chelsea[135:166])
    np.testing.assert_allclose(crop, rows[:, 205:246], atol=0.02)  # bilinear weights in 1/32 steps


def test_camera_shake_moves_the_background_and_the_target_together():
    config = dataclasses.replace(
        STILL, flat_background=None, background_clutter_range=(20, 20), camera_shake_prob=1.0
    )
    frames, boxes, _, _ = render_sequence(config, 0)
    moved = 0
    for t in range(1, len(frames)):
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames[t - 1 : t + 1]]
        (dx, dy), _ = cv2.phaseCorrelate(grey[0], grey[1])
        centre_step = (boxes[t, :2] + boxes[t, 2:] / 2) - (boxes[t - 1, :2] + boxes[t - 1, 2:] / 2)
        # The target is all but still: it moves only by the shake, as the background does. 1.5 px
        # of tolerance: shifts are rounded for the background, sub-pixel for the target.
        if np.all(boxes[t, 2:] == boxes[t - 1, 2:]):
            np.testing.assert_allclose(centre_step, (dx, dy), atol=1.5)
        moved += np.hypot(dx, dy) > 2.0
    assert moved > len(frames) // 3


def test_a_target_out_of_view_leaves_only_background_and_is_annotated_absent():
    config = dataclasses.replace(STILL, out_of_view_prob=1.0)
    absent_frames = 0
    for index in range(config.num_sequences):
        frames, _, cover, absence = render_sequence(config, index)
        assert absence[0] == 0 and cover[0] == 8
        for frame, eighths, absent in zip(frames, cover, absence, strict=True):
            visible = target_pixels(frame).any()
            assert absent == (eighths == 0) == (not visible)
            absent_frames += int(absent)
    assert absent_frames > 0


def test_rich_world_has_small_targets_that_the_lowered_frame_filter_keeps():
    config = dataclasses.replace(world_config("rich", 24), frames_per_sequence=8)
    sides = np.concatenate([render_sequence(config, index)[1][:, 2:] for index in range(24)])
    assert np.sum(sides.max(axis=1) < 20) > 0
    # Hand-made boxes in a 320x240 frame: 8x10 fails siamfc-pytorch's 20 px sides, passes at 6.
    boxes = np.array([[10, 10, 8, 10], [10, 10, 30, 30], [10, 10, 5, 10]], float)
    np.testing.assert_array_equal(frame_filter(boxes, (320, 240)), [False, True, False])
    np.testing.assert_array_equal(frame_filter(boxes, (320, 240), min_side=6.0), [True, True, False])


def test_worlds_and_frame_filters_are_curated_under_their_own_names():
    base = TrainConfig()
    assert crops_config(base) == "synthetic"
    rich = dataclasses.replace(base, synthetic_world="rich", synthetic_sequences=1200)
    assert crops_config(rich).name == "synthetic_rich_n1200"
    small = dataclasses.replace(rich, pairs=PairConfig(min_target_side=6.0))
    assert crops_config(small).name == "synthetic_rich_n1200_m6"
    assert crops_config(small).synthetic == world_config("rich", 1200)


def test_validation_folder_sequences_are_the_first_by_name_and_never_the_training_folder(tmp_path):
    root = write_folder(tmp_path / "real")
    sequences = validation_folder_sequences(f"folder:{root}", None, 2)
    assert [s.name for s in sequences] == ["small", "tall"]
    with pytest.raises(DataError, match="training data's folder"):
        validation_folder_sequences(f"folder:{root}", root, 2)
    with pytest.raises(ValueError, match="val_data"):
        TrainConfig(val_data=str(root))
