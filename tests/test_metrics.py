"""Tracking metrics: hand-computed cases, and the siamfc-pytorch reference summary.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from siamfc_jax.evaluation.metrics import (
    SUCCESS_THRESHOLDS,
    auc,
    center_error,
    centers,
    evaluate,
    iou,
    precision_at,
    success_curve,
)
from siamfc_jax.sequences.annotations import read_boxes
from siamfc_jax.sequences.readers import open_sequence
from tests.conftest import shared_path


def test_iou_hand_computed():
    box = [1.0, 1.0, 10.0, 10.0]
    assert iou(box, box) == pytest.approx(1.0, abs=1e-15)
    # Touching edges share no area: [1, 11) and [11, 21).
    assert iou(box, [11.0, 1.0, 10.0, 10.0]) == 0.0
    assert iou(box, [50.0, 50.0, 5.0, 5.0]) == 0.0
    # Shifted by half its width: intersection 5 x 10 = 50, union 100 + 100 - 50 = 150.
    assert iou(box, [6.0, 1.0, 10.0, 10.0]) == pytest.approx(1.0 / 3.0, abs=1e-15)
    # A 2x2 box inside a 4x4 box: 4 / 16.
    assert iou([0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 2.0, 2.0]) == pytest.approx(0.25, abs=1e-15)
    # Both empty: defined as 0, not NaN.
    assert iou([3.0, 3.0, 0.0, 0.0], [3.0, 3.0, 0.0, 0.0]) == 0.0


def test_iou_broadcasts_and_is_symmetric():
    a = np.array([[1.0, 1.0, 10.0, 10.0], [5.0, 5.0, 2.0, 8.0]])
    b = np.array([[6.0, 1.0, 10.0, 10.0], [4.0, 6.0, 4.0, 4.0]])
    np.testing.assert_allclose(iou(a, b), iou(b, a), rtol=0, atol=1e-15)
    # Second pair: x overlap [5, 7) = 2, y overlap [6, 10) = 4, intersection 8, union 16 + 16 - 8.
    np.testing.assert_allclose(iou(a, b), [1.0 / 3.0, 8.0 / 24.0], rtol=0, atol=1e-15)


def test_centers_and_center_error_hand_computed():
    # Centre of a 1-indexed box is xy + (wh - 1) / 2: pixels 1..10 have centre 5.5.
    np.testing.assert_allclose(centers([1.0, 1.0, 10.0, 10.0]), [5.5, 5.5], rtol=0, atol=0)
    # (5.5, 5.5) to (8.5, 9.5): a 3-4-5 triangle.
    assert center_error([1.0, 1.0, 10.0, 10.0], [4.0, 5.0, 10.0, 10.0]) == pytest.approx(5.0)
    # Same corner, different sizes: (2, 2) to (3, 3).
    assert center_error([1.0, 1.0, 3.0, 3.0], [1.0, 1.0, 5.0, 5.0]) == pytest.approx(np.sqrt(2))


def test_success_curve_is_strictly_greater_and_auc_is_its_mean():
    ious = np.array([0.0, 0.5, 1.0, 0.75])
    curve = success_curve(ious)
    assert curve.shape == (21,)
    expected = np.array([np.mean(ious > t) for t in np.linspace(0, 1, 21)])
    np.testing.assert_array_equal(curve, expected)
    assert curve[0] == 0.75  # IoU 0 is not a success at threshold 0
    assert curve[10] == 0.5  # IoU 0.5 is not a success at threshold 0.5
    assert curve[20] == 0.0  # nothing is above 1
    assert auc(ious) == pytest.approx(expected.mean(), abs=1e-15)
    np.testing.assert_allclose(SUCCESS_THRESHOLDS[:3], [0.0, 0.05, 0.1], rtol=0, atol=1e-15)


def test_precision_counts_errors_at_most_the_threshold():
    assert precision_at([0.0, 20.0, 20.0001, 35.0], 20) == 0.5
    assert precision_at([19.9, 25.0]) == 0.5


def test_evaluate_skips_unusable_ground_truth():
    gt = np.array(
        [
            [1.0, 1.0, 10.0, 10.0],
            [np.nan, np.nan, np.nan, np.nan],
            [0.0, 0.0, 0.0, 0.0],
            [6.0, 1.0, 10.0, 10.0],
            [1.0, 1.0, 10.0, 10.0],
        ]
    )
    pred = np.array(
        [
            [1.0, 1.0, 10.0, 10.0],
            [1.0, 1.0, 10.0, 10.0],
            [1.0, 1.0, 10.0, 10.0],
            [1.0, 1.0, 10.0, 10.0],
            [40.0, 1.0, 10.0, 10.0],
        ]
    )
    result = evaluate(pred, gt, absent=[False, False, False, False, True])
    # Frames 0 and 3 remain: IoU 1 and 1/3, centre errors 0 and 5.
    assert result["frames"] == 2
    assert result["mean_iou"] == pytest.approx((1.0 + 1.0 / 3.0) / 2, abs=1e-15)
    assert result["precision"] == 1.0
    # Success: IoU 1 counts for thresholds 0..0.95 (20 of 21), 1/3 for 0..0.3 (7 of 21).
    assert result["auc"] == pytest.approx((20 + 7) / (2 * 21), abs=1e-15)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        evaluate(pred[:3], gt)
    with pytest.raises(ValueError, match="usable"):
        evaluate(pred[1:3], gt[1:3])


@pytest.mark.parametrize(
    ("name", "sequence_dir"),
    [("Crossing", "siamfc/data/sequences/Crossing"), ("bag", "siamfc/data/sequences/bag")],
)
def test_reproduces_reference_summary(name, sequence_dir):
    reference_dir = shared_path("siamfc/reference/siamfc_pytorch")
    summary = json.loads((reference_dir / "summary.json").read_text())[name]
    sequence = open_sequence(shared_path(sequence_dir))
    pred = read_boxes(reference_dir / f"{name}.txt")
    result = evaluate(pred, sequence.boxes)
    # Frame counts include the first frame; AUC and precision are counts over frames, so the 4-decimal
    # rounding of the reference .txt boxes cannot change them: they must agree to rounding of floats.
    assert result["frames"] == summary["frames"]
    assert result["auc"] == pytest.approx(summary["auc"], abs=1e-9)
    assert result["precision"] == pytest.approx(summary["prec20"], abs=1e-9)
    # summary.json was computed from the unrounded boxes; rounding each coordinate to 1e-4 px moves
    # the mean IoU by about 3e-7 at most here (measured: 2.7e-7 Crossing, 1.5e-7 bag).
    assert result["mean_iou"] == pytest.approx(summary["mean_iou"], abs=1e-6)
