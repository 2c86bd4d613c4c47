"""Curation: crops equal siamfc-pytorch's crop maths, boxes in crop coordinates, the frame filter."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamfc_jax.config import PairConfig
from siamfc_jax.pipeline.crops import crop_and_resize, crop_window
from siamfc_jax.pipeline.curate import (
    box_in_crop,
    curate_frame,
    curate_sequence,
    decode_jpeg,
    encode_jpeg,
    expand_runs,
    frame_filter,
    runs,
)
from siamfc_jax.sequences.frames import DataError, average_color
from siamfc_jax.sequences.readers import read_got10k


def textured_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def siamfc_crop(frame: np.ndarray, box, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
    """The training crop written out from siamfc-pytorch's description (float64 arithmetic)."""
    x, y, w, h = box
    center = [y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2]
    context = 0.5 * (w + h)
    size = math.sqrt((w + context) * (h + context)) * 255 / 127
    return crop_and_resize(frame, center, size, 255, average_color(frame), interpolation)


@pytest.mark.parametrize(
    "box",
    [
        [101.0, 61.0, 40.0, 30.0],  # inside the frame
        [3.5, 7.25, 55.5, 80.75],  # near the top-left corner: padded with the mean colour
        [280.0, 200.0, 39.0, 39.0],  # past the bottom-right corner
        [150.0, 100.0, 8.0, 160.0],  # thin
    ],
)
def test_curated_crop_equals_crop_and_resize(box):
    frame = textured_frame(240, 320)
    curated = curate_frame(frame, box)
    np.testing.assert_array_equal(curated.crop, siamfc_crop(frame, box))


def test_average_color_is_the_exact_mean():
    for seed in range(3):
        frame = textured_frame(97, 131, seed)
        exact = frame.reshape(-1, 3).sum(axis=0, dtype=np.int64) / (97 * 131)
        # The exact mean up to float64 rounding of the sum (values ~128, ulp 2.8e-14).
        np.testing.assert_allclose(average_color(frame), exact, rtol=0, atol=1e-12)


def test_box_in_crop_hand_computed():
    # w = h = 63.5 makes context 63.5 and the crop side sqrt(127 * 127) * 255 / 127 = 255: scale 1.
    box = [100.25, 80.25, 63.5, 63.5]
    frame = textured_frame(240, 320)
    curated = curate_frame(frame, box)
    # centre x = 99.25 + 31.25 = 130.5, left = round(130.5 - 127) = round(3.5) = 4 (half to even);
    # centre y = 79.25 + 31.25 = 110.5, top = round(110.5 - 127) = round(-16.5) = -16.
    assert curated.window == (-16, 4, 255)
    np.testing.assert_allclose(curated.box, [100.25 - 1 - 4 + 1, 80.25 - 1 + 16 + 1, 63.5, 63.5])
    # Half the scale: a 510-pixel window maps 2 frame pixels to 1 crop pixel.
    np.testing.assert_allclose(box_in_crop([11, 21, 40, 60], (4, 6, 510), 255), [3.0, 9.0, 20, 30])


@pytest.mark.parametrize("box", [[61, 41, 50, 30], [1, 150, 60, 80], [290, 5, 31, 45]])
def test_box_in_crop_matches_drawn_rectangle(box):
    """The box in crop pixels bounds the pixels of a rectangle drawn at the frame box (±1 pixel)."""
    frame = np.full((240, 320, 3), 30, np.uint8)
    x, y, w, h = box
    frame[y - 1 : y - 1 + h, x - 1 : x - 1 + w] = 230
    curated = curate_frame(frame, box)
    rows, cols = np.nonzero(curated.crop[:, :, 0] > 130)
    measured = [cols.min() + 1, rows.min() + 1, cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
    # Bilinear resampling blurs each edge by at most one crop pixel.
    np.testing.assert_allclose(measured, curated.box, atol=1.0)
    # The target is centred: its centre is the crop's centre up to half a frame pixel of rounding.
    cx = curated.box[0] - 1 + (curated.box[2] - 1) / 2
    cy = curated.box[1] - 1 + (curated.box[3] - 1) / 2
    half_frame_pixel = 0.5 * 255 / curated.window[2]
    assert abs(cx - 127) <= half_frame_pixel + 1e-4
    assert abs(cy - 127) <= half_frame_pixel + 1e-4


def test_crop_window_matches_crop_and_resize():
    """The window crop_window reports is the one crop_and_resize cuts (checked by pixel identity)."""
    frame = textured_frame(240, 320, seed=5)
    center, size = (100.3, 150.5), 64.4
    top, left, side = crop_window(center, size)
    expected = frame[top : top + side, left : left + side]
    np.testing.assert_array_equal(crop_and_resize(frame, center, size, side, 0), expected)


def test_frame_filter_hand_cases():
    frame_size = (640, 480)
    cases = [
        ([1, 1, 100, 100], True),
        ([1, 1, 19, 100], False),  # narrower than 20 pixels
        ([1, 1, 320, 240], True),  # exactly half the frame
        ([1, 1, 321, 100], False),  # more than half the frame's width
        ([1, 1, 100, 241], False),  # more than half the frame's height
        ([1, 1, 100, 25], True),  # aspect 4
        ([1, 1, 101, 25], False),  # aspect 4.04
        ([1, 1, 25, 100], True),  # aspect 0.25
        ([1, 1, 25, 101], False),  # aspect 0.2475
        ([1, 1, np.nan, 50], False),  # absent target
    ]
    boxes = [box for box, _ in cases]
    np.testing.assert_array_equal(frame_filter(boxes, frame_size), [keep for _, keep in cases])
    # Size limits in pixels (frame large enough for the relative limits to pass).
    big = (2000, 2000)
    np.testing.assert_array_equal(frame_filter([[1, 1, 500, 500], [1, 1, 501, 300]], big), [True, False])
    # 1 % of a 3000 x 2500 frame is 30 x 25 pixels.
    np.testing.assert_array_equal(
        frame_filter([[1, 1, 29, 40], [1, 1, 30, 25], [1, 1, 40, 24]], (3000, 2500)), [False, True, False]
    )


def test_frame_filter_cover_labels():
    boxes = [[1, 1, 50, 50]] * 5
    # max 8: a frame needs cover > max(1, 2.4).
    np.testing.assert_array_equal(
        frame_filter(boxes, (640, 480), cover=[8, 3, 2, 1, 0]), [True, True, False, False, False]
    )
    # max 2: the threshold is max(1, 0.6) = 1.
    np.testing.assert_array_equal(frame_filter(boxes[:3], (640, 480), cover=[2, 2, 1]), [True, True, False])
    np.testing.assert_array_equal(frame_filter(boxes[:2], (640, 480), cover=[1, 1]), [False, False])


def test_runs_round_trip():
    values = [0, 1, 2, 5, 7, 8]
    assert runs(values) == [[0, 3], [5, 6], [7, 9]]
    np.testing.assert_array_equal(expand_runs(runs(values)), values)
    assert runs([]) == [] and len(expand_runs([])) == 0


def write_sequence(directory: Path, frames: list[np.ndarray], boxes: list[str], cover: list[int]) -> None:
    directory.mkdir(parents=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(directory / f"{index + 1:08d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (directory / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
    (directory / "cover.label").write_text("".join(f"{c}\n" for c in cover))
    (directory / "absence.label").write_text("".join(f"{int(c == 0)}\n" for c in cover))


def test_curate_sequence(tmp_path):
    frames = [textured_frame(120, 160, seed) for seed in range(4)]
    boxes = ["11,21,30,40", "nan,nan,nan,nan", "5,5,10,10", "41,31,35,25"]
    write_sequence(tmp_path / "seq", frames, boxes, cover=[8, 0, 8, 8])
    sequence = read_got10k(tmp_path / "seq")
    curated = curate_sequence(sequence, PairConfig(), jpeg_quality=90)
    # The absent frame has no crop; the 10 x 10 box fails the filter.
    np.testing.assert_array_equal(curated.frames, [0, 2, 3])
    np.testing.assert_array_equal(curated.valid, [True, False, True])
    for position, frame_index in enumerate(curated.frames):
        frame = cv2.cvtColor(cv2.imread(sequence.frames[frame_index]), cv2.COLOR_BGR2RGB)
        expected = curate_frame(frame, sequence.boxes[frame_index])
        np.testing.assert_array_equal(curated.boxes[position], expected.box)
        np.testing.assert_array_equal(
            decode_jpeg(curated.crops[position]), decode_jpeg(encode_jpeg(expected.crop, 90))
        )
        np.testing.assert_array_equal(curated.frame_boxes[position], sequence.boxes[frame_index])


def test_curate_sequence_rejects_mismatched_annotation(tmp_path):
    frames = [textured_frame(120, 160, seed) for seed in range(3)]
    write_sequence(tmp_path / "seq", frames, ["11,21,30,40"] * 2 + ["1,1,30,30"], cover=[8, 8, 8])
    (tmp_path / "seq" / "00000003.jpg").unlink()
    with pytest.raises(DataError, match=r"groundtruth.txt: 3 ground-truth boxes for 2 frames"):
        curate_sequence(read_got10k(tmp_path / "seq"))


def test_curate_frame_rejects_empty_box():
    with pytest.raises(ValueError, match="no area"):
        curate_frame(textured_frame(50, 50), [1, 1, 0, 10])


@pytest.mark.parametrize("sampling", ["420", "422", "444"])
@pytest.mark.parametrize("quality", [60, 95])
def test_decode_jpeg_is_opencv_bgr_decode_with_channels_swapped(sampling, quality):
    """The reference: OpenCV's BGR decode, then its channel order reversed (what frames get)."""
    frame = cv2.GaussianBlur(textured_frame(255, 255, seed=quality), (5, 5), 0)
    factor = {"420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
              "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444}[sampling]
    ok, data = cv2.imencode(
        ".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor]
    )
    assert ok
    reference = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]
    decoded = decode_jpeg(data.tobytes())
    assert decoded.dtype == np.uint8 and decoded.shape == (255, 255, 3)
    np.testing.assert_array_equal(decoded, reference)
    with pytest.raises(ValueError, match="cannot be decoded"):
        decode_jpeg(b"not a jpeg")
