"""Pictures of tracking results: box pixels against hand-computed positions, the MP4 writer read
back with OpenCV, strips, success plots."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from siamfc_jax.evaluation.metrics import SUCCESS_THRESHOLDS
from siamfc_jax.visualize import (
    GROUND_TRUTH_COLOR,
    PREDICTION_COLOR,
    AnnotatedVideoWriter,
    box_corners,
    draw_tracking,
    line_thickness,
    save_figure,
    success_figure,
    tracking_strip,
    write_image,
)


def _outline(shape: tuple[int, int], left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """Boolean (H, W) mask of a 1-pixel rectangle outline with inclusive 0-indexed corners, clipped."""
    mask = np.zeros(shape, bool)
    rows, cols = np.arange(shape[0])[:, None], np.arange(shape[1])[None, :]
    inside_cols = (cols >= left) & (cols <= right)
    inside_rows = (rows >= top) & (rows <= bottom)
    mask |= ((rows == top) | (rows == bottom)) & inside_cols
    mask |= ((cols == left) | (cols == right)) & inside_rows
    return mask


@pytest.mark.parametrize(
    ("box", "corners"),
    [
        # 1-indexed x = 11 is 0-indexed column 10; the last column is 11 + 30 - 1 = 40, i.e. 39.
        ([11, 21, 30, 40], ((10, 20), (39, 59))),
        # Halves round up on both edges: 9.5 -> 10 and 10.5 -> 11 (columns), 4.5 -> 5, 6.5 -> 7.
        ([10.5, 5.5, 2, 3], ((10, 5), (11, 7))),
        # A box thinner than a pixel is one pixel wide.
        ([5, 5, 0.2, 0.2], ((4, 4), (4, 4))),
        ([1, 1, 1, 1], ((0, 0), (0, 0))),
        ([5, 5, 0, 10], None),
        ([5, 5, 10, -1], None),
        ([np.nan, 5, 10, 10], None),
    ],
)
def test_box_corners_hand_computed(box, corners):
    assert box_corners(box) == corners


def test_drawn_box_pixels_at_hand_computed_positions():
    image = np.zeros((80, 100, 3), np.uint8)  # H = 80, W = 100
    drawn = draw_tracking(image, [11, 21, 30, 40], thickness=1)
    expected = _outline((80, 100), 10, 20, 39, 59)
    changed = np.any(drawn != 0, axis=2)
    np.testing.assert_array_equal(changed, expected)
    np.testing.assert_array_equal(drawn[expected], np.tile(PREDICTION_COLOR, (expected.sum(), 1)))
    assert not np.any(image)  # the input is left untouched

    # Thickness 2: the outer ring plus the ring one pixel inside it, nothing outside the box.
    drawn = draw_tracking(image, [11, 21, 30, 40], thickness=2)
    expected |= _outline((80, 100), 11, 21, 38, 58)
    np.testing.assert_array_equal(np.any(drawn != 0, axis=2), expected)


def test_ground_truth_under_prediction_and_clipping():
    image = np.full((50, 60, 3), 7, np.uint8)
    truth, box = [5, 5, 20, 10], [5, 5, 30, 10]  # same left, top and bottom edges
    drawn = draw_tracking(image, box, truth, thickness=1)
    prediction = _outline((50, 60), 4, 4, 33, 13)
    only_truth = _outline((50, 60), 4, 4, 23, 13) & ~prediction  # its right edge, inside the box
    assert only_truth.sum() == 8  # rows 5..12 of column 23
    np.testing.assert_array_equal(drawn[prediction], np.tile(PREDICTION_COLOR, (prediction.sum(), 1)))
    np.testing.assert_array_equal(drawn[only_truth], np.tile(GROUND_TRUTH_COLOR, (only_truth.sum(), 1)))
    untouched = ~(prediction | only_truth)
    assert np.all(drawn[untouched] == 7)

    # A box hanging over the top-left corner: only its right and bottom edges (column and row 13)
    # are inside the image, and nothing is drawn for a NaN ground truth.
    drawn = draw_tracking(image, [-5, -5, 20, 20], [np.nan] * 4, thickness=1)
    expected = _outline((50, 60), -6, -6, 13, 13)
    assert expected.sum() == 14 + 14 - 1
    np.testing.assert_array_equal(np.any(drawn != 7, axis=2), expected)


def test_line_thickness_grows_with_the_image():
    assert line_thickness((80, 100, 3)) == 2
    assert line_thickness((360, 480, 3)) == 2
    assert line_thickness((720, 1280, 3)) == 3
    assert line_thickness((1080, 1920, 3)) == 4


def test_write_image_stores_rgb_as_bgr_file(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    path = tmp_path / "sub" / "picture.png"
    write_image(path, image)
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], image)
    assert [p.name for p in path.parent.iterdir()] == ["picture.png"]  # no temporary left


def test_annotated_video_read_back(tmp_path):
    # Odd frame sides: the writer pads them to even ones for the H.264 encoder (4:2:0 colour).
    height, width, count = 81, 101, 6
    ramp = np.linspace(0, 200, width, dtype=np.float64)
    frames = [
        np.dstack([np.tile(ramp, (height, 1)) * (0.5 + index / 10)] * 3).astype(np.uint8)
        for index in range(count)
    ]
    boxes = [[20 + 5 * index, 30, 40, 30] for index in range(count)]
    path = tmp_path / "video.mp4"
    with AnnotatedVideoWriter(path, (width, height), fps=12.0) as writer:
        for frame, box in zip(frames, boxes, strict=True):
            writer.write(frame, box, lines=("label",))
        assert not path.exists()  # appears only when the block ends
    assert writer.frames_written == count

    # Browser-playable: H.264 in yuv420p, read by OpenCV's own FFmpeg as "avc1"/"h264".
    capture = cv2.VideoCapture(str(path))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
    assert fourcc in ("avc1", "h264"), fourcc
    assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == width + 1
    assert capture.get(cv2.CAP_PROP_FRAME_HEIGHT) == height + 1
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(decoded) == count
    for index, frame in enumerate(decoded):
        annotated = draw_tracking(frames[index], boxes[index], lines=("label",))
        # Lossy H.264 (CRF 20) at this tiny size: measured mean absolute difference 2.7-3.9 grey
        # levels from the annotated frame (7.0-7.8 from the frame without annotation).
        difference = np.abs(frame[:height, :width].astype(np.int64) - annotated)
        assert difference.mean() < 5.0
        # The box's bottom edge (2 px thick) is red: swapped channels would make it blue.
        (left, _), (right, bottom) = box_corners(boxes[index])
        edge = frame[bottom - 1 : bottom + 1, left + 4 : right - 4].reshape(-1, 3).astype(np.float64)
        assert edge[:, 0].mean() > edge[:, 2].mean() + 80


def test_video_writer_leaves_nothing_after_an_error(tmp_path):
    path = tmp_path / "broken.mp4"
    with pytest.raises(ValueError, match="frame is 10x10"), AnnotatedVideoWriter(path, (20, 10)) as writer:
        writer.write(np.zeros((10, 10, 3), np.uint8), None)
    assert list(tmp_path.iterdir()) == []


def test_tracking_strip_layout():
    big = np.zeros((80, 100, 3), np.uint8)
    small = np.zeros((40, 60, 3), np.uint8)
    strip = tracking_strip([big, small], [[11, 21, 30, 40], [1, 1, 10, 10]], tile_height=40, gap=4)
    # Tile widths: 100 * 40 / 80 = 50 and 60 (already 40 high), plus a 4-pixel white gap.
    assert strip.shape == (40, 50 + 4 + 60, 3)
    assert np.all(strip[:, 50:54] == 255)
    # The small frame is not resized: its box outline sits at columns/rows 0..9 of its tile.
    tile = strip[:, 54:]
    assert np.all(tile[9, 3:9] == PREDICTION_COLOR)
    with pytest.raises(ValueError, match="one box per frame"):
        tracking_strip([big], np.zeros((2, 4)))


def test_success_figure_of_many_sequences_labels_the_lowest_ones_and_counts_the_rest():
    # Beyond 10 sequences (OTB-100) a legend of every line would hide the plot: the lowest are named.
    curves = {f"seq{index:02d}": np.full(21, (index * 7 % 25) / 25) for index in range(25)}
    figure = success_figure(curves, SUCCESS_THRESHOLDS, mean_label="mean of 25 sequences")
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    lowest = sorted(curves, key=lambda name: curves[name][0])[:10]
    assert labels[:10] == [f"{name} [{curves[name][0]:.3f}]" for name in curves if name in lowest]
    mean = np.mean(list(curves.values()))
    assert labels[10:] == ["15 more sequences", f"mean of 25 sequences [{mean:.3f}]"]


def test_success_figure_plots_the_curves_and_their_auc(tmp_path):
    first = np.clip(1.2 - SUCCESS_THRESHOLDS, 0, 1)
    second = np.where(SUCCESS_THRESHOLDS < 0.5, 1.0, 0.0)
    figure = success_figure({"a": first, "b": second}, SUCCESS_THRESHOLDS, mean_label="mean")
    axes = figure.axes[0]
    lines = axes.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), first)
    np.testing.assert_allclose(lines[1].get_ydata(), second)
    np.testing.assert_allclose(lines[2].get_ydata(), (first + second) / 2)
    np.testing.assert_allclose(lines[2].get_xdata(), np.linspace(0, 1, 21))
    with pytest.raises(ValueError, match="21 rates for 3 thresholds"):
        success_figure({"a": first}, [0.0, 0.5, 1.0])
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    mean_auc = np.mean((first + second) / 2)
    assert labels == [f"a [{first.mean():.3f}]", f"b [{second.mean():.3f}]", f"mean [{mean_auc:.3f}]"]

    path = tmp_path / "plot.png"
    save_figure(figure, path)
    assert cv2.imread(str(path)).shape == (450, 600, 3)  # 6 x 4.5 inches at 100 dpi
