"""The arithmetic of the GPU benchmarks: the GOT-10k-scale projection and the drift comparison."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.got10k_scale import FULL_EPOCHS, Measured, project
from benchmarks.gpu_drift import compare


def test_projection_scales_frames_and_pairs_and_keeps_fixed_costs() -> None:
    # 467 training and 9 validation sequences of 150 frames; 2 epochs of 9,340 pairs.
    measured = Measured(
        render_s=10.0,
        startup_s=5.0,
        curate_s=20.0,
        epoch_ends=(40.0, 50.0),  # after curation: the first epoch's line at 40 s, the second's at 50 s
        epoch_train_s=(30.0, 8.0),  # the second epoch: 8 s of steps, 2 s of checkpoint and validation
        end_s=53.0,
        rendered_frames=(467 + 9) * 150,
        curated_frames=467 * 150,
        pairs_per_epoch=9340,
    )
    projection = project(measured)
    assert projection.render_s == pytest.approx(10.0 * (9335 + 180) / 476)
    assert projection.startup_s == 5.0
    assert projection.curate_s == pytest.approx(20.0 * 9335 / 467)
    assert projection.first_epoch_overhead_s == pytest.approx(40.0 - 10.0)
    assert projection.epoch_s == pytest.approx(8.0 * 9335 / 9340 + 2.0)
    assert projection.export_s == pytest.approx(3.0)
    assert projection.train_s == pytest.approx(30.0 + FULL_EPOCHS * projection.epoch_s + 3.0)
    assert projection.total_s == pytest.approx(
        projection.render_s + 5.0 + projection.curate_s + projection.train_s
    )


def test_projection_needs_two_epochs() -> None:
    one = Measured(1.0, 1.0, 1.0, (5.0,), (4.0,), 6.0, 10, 10, 8)
    with pytest.raises(ValueError, match="2 epochs"):
        project(one)


def test_compare_finds_where_boxes_differ_and_part() -> None:
    a = np.tile([10.0, 10.0, 100.0, 100.0], (5, 1))
    b = a.copy()
    b[2, 0] += 0.02  # differs by more than 0.01 px, still IoU > 0.99
    b[3, 0] += 5.0  # IoU about 0.95
    figures = compare(a, b)
    assert figures["differs_at"] == 2 and figures["parts_at"] == 3
    assert figures["min_iou"] == pytest.approx(95 / 105)
    assert compare(a, a) == {"mean_iou": 1.0, "min_iou": 1.0, "parts_at": None, "differs_at": None}
