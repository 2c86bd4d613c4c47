"""Benchmark protocols (OTB, UAV123, GOT-10k, LaSOT) against the GOT-10k toolkit's own functions.

The toolkit (``pip install got10k``, in requirements-test.txt) is imported only here; outside CI a
missing toolkit skips the comparisons, in CI it fails. Figures must agree to 1e-12 (the toolkit
adds machine epsilon to IoU denominators, nothing else differs).
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from siamfc_jax.evaluation.metrics import (
    NORMALIZED_PRECISION_THRESHOLDS,
    Run,
    normalized_center_error,
    protocol_frames,
    protocol_scores,
)
from tests.conftest import in_ci

TOLERANCE = 1e-12


def _toolkit():
    try:
        import got10k.experiments as experiments
        import got10k.utils.metrics as metrics
    except ImportError:
        if in_ci():
            pytest.fail("the got10k toolkit is missing (requirements-test.txt)")
        pytest.skip("the got10k toolkit is not installed")
    return experiments, metrics


def _runs(count: int = 4, seed: int = 0) -> list[Run]:
    """Random tracked sequences of different lengths, with NaN ground truth, absences and covers."""
    rng = np.random.default_rng(seed)
    runs = []
    for index in range(count):
        frames = 30 + 7 * index
        truth = np.column_stack(
            [rng.uniform(-5, 300, frames), rng.uniform(-5, 200, frames), rng.uniform(5, 80, (frames, 2))]
        )
        pred = truth + rng.normal(0, 6 + 4 * index, truth.shape)
        pred[:, 2:] = np.abs(pred[:, 2:]) + 1
        pred[0] = truth[0]
        cover = rng.integers(0, 9, frames)
        cover[0] = 8
        truth[rng.random(frames) < 0.1] = np.nan
        truth[0] = pred[0]
        runs.append(Run(pred, truth, absence=cover == 0, cover=cover, frame_size=(320, 240)))
    return runs


def test_otb_and_uav123_match_the_toolkit():
    experiments, metrics = _toolkit()
    runs = _runs()
    otb = types.SimpleNamespace(nbins_iou=21, nbins_ce=51)
    curves = {"otb": [], "uav123": []}
    for run in runs:
        finite = ~np.any(np.isnan(run.truth), axis=1)
        # OTB sequences have no NaN rows: the OTB protocol is checked on the frames with truth.
        ious = metrics.rect_iou(run.pred[finite].copy(), run.truth[finite].copy())
        errors = metrics.center_error(run.pred[finite], run.truth[finite])
        curves["otb"].append(experiments.ExperimentOTB._calc_curves(otb, ious, errors))
        ious, errors = experiments.ExperimentUAV123._calc_metrics(otb, run.pred.copy(), run.truth.copy())
        curves["uav123"].append(experiments.ExperimentOTB._calc_curves(otb, ious, errors))
    finite_runs = [
        Run(run.pred[mask], run.truth[mask])
        for run in runs
        for mask in [~np.any(np.isnan(run.truth), axis=1)]
    ]
    for protocol, scored in (("otb", finite_runs), ("uav123", runs)):
        success = np.mean([curve[0] for curve in curves[protocol]], axis=0)
        precision = np.mean([curve[1] for curve in curves[protocol]], axis=0)
        ours = protocol_scores(protocol, scored)
        assert ours["auc"] == pytest.approx(np.mean(success), abs=TOLERANCE)
        assert ours["precision"] == pytest.approx(precision[20], abs=TOLERANCE)


def test_got10k_matches_the_toolkit():
    experiments, metrics = _toolkit()
    runs = _runs()
    ious = []
    for run in runs:
        # The toolkit scores frames 1.. with cover > 0, boxes clipped to the frame (NaN rows are
        # not part of GOT-10k's val ground truth: left out here as our protocol leaves them out).
        keep = (run.cover[1:] > 0) & ~np.any(np.isnan(run.truth[1:]), axis=1)
        values = metrics.rect_iou(run.pred[1:].copy(), run.truth[1:].copy(), bound=run.frame_size)
        ious.append(values[keep])
    ious = np.concatenate(ious)
    ao, sr50, _, _ = experiments.ExperimentGOT10k._evaluate(None, ious, np.ones(3))
    ours = protocol_scores("got10k", runs)
    assert ours["ao"] == pytest.approx(ao, abs=TOLERANCE)
    assert ours["sr50"] == pytest.approx(sr50, abs=TOLERANCE)
    assert ours["sr75"] == pytest.approx(np.mean(ious > 0.75), abs=TOLERANCE)
    assert ours["frames"] == len(ious)


def test_lasot_normalized_precision_hand_computed():
    truth = np.array([[1, 1, 10, 20], [1, 1, 10, 20], [np.nan] * 4, [1, 1, 0.5, 4]], float)
    pred = np.array([[1, 1, 10, 20], [2, 3, 10, 20], [0, 0, 5, 5], [2, 1, 0.5, 4]], float)
    # Centre offsets (0, 0), (1, 2) / (10, 20) -> 0.1414, NaN row left out, (1, 0) / max(0.5, 1) -> 1.
    np.testing.assert_allclose(
        normalized_center_error(pred[[0, 1, 3]], truth[[0, 1, 3]]), [0, np.hypot(0.1, 0.1), 1.0]
    )
    scores = protocol_scores("lasot", [Run(pred, truth, absence=np.array([0, 0, 0, 0], bool))])
    thresholds = NORMALIZED_PRECISION_THRESHOLDS
    expected = np.mean((1 + (thresholds >= np.hypot(0.1, 0.1)) + 0) / 3)
    assert scores["normalized_precision"] == pytest.approx(expected, abs=TOLERANCE)
    assert scores["frames"] == 3
    absent = protocol_frames("lasot", Run(pred, truth, absence=np.array([0, 1, 0, 0], bool)))
    assert absent.tolist() == [True, False, False, True]


def test_lasot_matches_the_toolkit_where_it_has_lasot():
    experiments, metrics = _toolkit()
    if not hasattr(metrics, "normalized_center_error"):
        pytest.skip("this got10k release has no LaSOT experiment (0.1.3 on PyPI)")
    runs = _runs()
    lasot = types.SimpleNamespace(nbins_iou=21, nbins_ce=51, nbins_nce=51)
    curves = [
        experiments.ExperimentLaSOT._calc_curves(
            lasot, *experiments.ExperimentLaSOT._calc_metrics(lasot, run.pred.copy(), run.truth.copy())
        )
        for run in runs
    ]
    no_absence = [Run(run.pred, run.truth) for run in runs]
    ours = protocol_scores("lasot", no_absence)
    assert ours["normalized_precision"] == pytest.approx(
        np.mean(np.mean([curve[2] for curve in curves], axis=0)), abs=TOLERANCE
    )
