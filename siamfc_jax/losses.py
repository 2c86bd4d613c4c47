"""SiamFC training targets and the balanced logistic loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from siamfc_jax.config import LossConfig


def logistic_labels(
    height: int, width: int, total_stride: int, config: LossConfig = LossConfig()
) -> np.ndarray:
    """Label map (height, width) float32 for a response centred on the target.

    ``total_stride`` is the network's pixels of search image per response cell (the backbone's
    ``output_stride``). A cell is positive (1) when its L1 distance from the map centre, in response
    cells, is at most ``r_pos / total_stride``; cells closer than ``r_neg / total_stride`` but not
    positive are 0.5 (and get no weight in the loss); the rest are negative (0). With the defaults
    (r_pos 16 px, r_neg 0) and stride 8 a 15×15 training response has 13 positives.
    """
    x = np.arange(width) - (width - 1) / 2
    y = np.arange(height) - (height - 1) / 2
    distance = np.abs(x)[None, :] + np.abs(y)[:, None]
    r_pos = config.r_pos / total_stride
    r_neg = config.r_neg / total_stride
    labels = np.where(distance <= r_pos, 1.0, np.where(distance < r_neg, 0.5, 0.0))
    return labels.astype(np.float32)


def balanced_logistic_loss(
    responses: jax.Array, labels: jax.Array, neg_weight: float = 1.0
) -> jax.Array:
    """Binary cross-entropy on logits, positives and negatives each carrying half the total weight.

    Args:
      responses: logits (N, h, w, 1) (or any shape ``labels`` broadcasts to).
      labels: 1 (positive), 0 (negative) or 0.5 (ignored), broadcastable to ``responses``.
      neg_weight: relative weight of the negative class (1.0 = balanced).

    Returns:
      The weighted sum of per-cell losses, weights normalised to sum to 1 over the whole batch. With
      identical label maps per sample this equals the mean over samples of each sample's loss, so
      the mean of per-shard losses is the global-batch loss.
    """
    labels = jnp.broadcast_to(labels, responses.shape).astype(responses.dtype)
    positive = (labels == 1).astype(responses.dtype)
    negative = (labels == 0).astype(responses.dtype)
    # log(1 + exp(-|z|)) form: stable for large logits of either sign.
    per_cell = jnp.maximum(responses, 0) - responses * labels + jnp.log1p(jnp.exp(-jnp.abs(responses)))

    def total(values: jax.Array) -> jax.Array:
        # Per-sample sums first, then over the batch: XLA:CPU reduces sequentially, and one flat
        # float32 sum over the whole batch drifts by ~1e-5 relative from PyTorch's.
        return jnp.sum(jnp.sum(values.reshape(values.shape[0], -1), axis=1))

    num_pos, num_neg = total(positive), total(negative)
    # Every positive carries 1/num_pos and every negative neg_weight/num_neg before the weights are
    # normalised to sum to one, so the normaliser is the number of classes present (weighted).
    pos_term = jnp.where(num_pos > 0, total(per_cell * positive) / jnp.maximum(num_pos, 1), 0.0)
    neg_term = jnp.where(num_neg > 0, total(per_cell * negative) / jnp.maximum(num_neg, 1), 0.0)
    normaliser = (num_pos > 0) + neg_weight * (num_neg > 0)
    return (pos_term + neg_weight * neg_term) / normaliser
