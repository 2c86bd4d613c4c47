"""Label map and balanced logistic loss against hand counts and the PyTorch reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from siamfc_jax.config import LossConfig
from siamfc_jax.losses import balanced_logistic_loss, logistic_labels
from tests.torch_reference import balanced_loss, labels


def test_label_map_by_hand():
    lab = logistic_labels(15, 15, 8)
    # r_pos / stride = 2 cells: the L1 ball of radius 2 has 1 + 4 + 8 = 13 cells
    assert lab.sum() == 13
    assert lab[7, 7] == 1 and lab[7, 9] == 1 and lab[8, 8] == 1
    assert lab[7, 10] == 0 and lab[9, 8] == 0
    assert set(np.unique(lab)) == {0.0, 1.0}


def test_label_map_with_ignore_band_matches_torch():
    config = LossConfig(r_pos=16, r_neg=32)
    ours = logistic_labels(17, 17, 8, config)
    ref = labels(1, 17, 17, r_pos=16, r_neg=32)[0, 0].numpy()
    np.testing.assert_array_equal(ours, ref)
    assert (ours == 0.5).sum() > 0


@pytest.mark.parametrize("neg_weight", [1.0, 0.3])
def test_balanced_loss_matches_torch(neg_weight):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (8, 15, 15, 1)).astype(np.float32)
    config = LossConfig(r_pos=16, r_neg=24)
    lab = logistic_labels(15, 15, 8, config)
    ours = float(balanced_logistic_loss(logits, lab[None, :, :, None], neg_weight))
    ref = balanced_loss(
        torch.from_numpy(logits.transpose(0, 3, 1, 2).copy()),
        labels(8, 15, 15, r_pos=16, r_neg=24),
        neg_weight,
    ).item()
    # float32 sums of 1,800 terms: agreement to 1e-6 relative
    assert abs(ours - ref) <= 1e-6 * abs(ref)


def test_balanced_loss_hand_computed():
    """Zero logits: every cell costs log 2, and the weights sum to one."""
    lab = logistic_labels(15, 15, 8)[None, :, :, None]
    loss = float(balanced_logistic_loss(np.zeros((2, 15, 15, 1), np.float32), lab))
    assert loss == pytest.approx(np.log(2), rel=1e-6)


def test_balanced_loss_is_stable_for_large_logits():
    lab = logistic_labels(15, 15, 8)[None, :, :, None]
    logits = np.where(lab == 1, 200.0, -200.0).astype(np.float32)
    assert float(balanced_logistic_loss(logits, lab)) == pytest.approx(0.0, abs=1e-30)
    assert np.isfinite(float(balanced_logistic_loss(-logits, lab)))
    assert float(balanced_logistic_loss(-logits, lab)) == pytest.approx(200.0, rel=1e-6)
