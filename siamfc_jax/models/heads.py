"""The SiamFC head: cross-correlation of exemplar features over search features."""

from __future__ import annotations

import jax

from siamfc_jax.models.layers import PrecisionLike
from siamfc_jax.ops.conv import correlate


def cross_correlate(
    exemplar_features: jax.Array,
    search_features: jax.Array,
    out_scale: float = 0.001,
    precision: PrecisionLike = None,
    method: str = "products",
) -> jax.Array:
    """Slide each exemplar feature map over its search feature maps; scale by ``out_scale``.

    Args:
      exemplar_features: (n, hz, wz, c).
      search_features: (n·k, hx, wx, c); search map ``i`` is correlated with exemplar ``i % n``
        (training: k = 1, one search per exemplar; tracking: n = 1, k scales).
      out_scale: the fixed response scale (0.001 in SiamFC; it keeps the initial logits small).
      precision: convolution precision (``"highest"`` for exact float32 on GPUs).
      method: ``"lax"`` or ``"products"`` (:data:`siamfc_jax.ops.plan.CORRELATIONS`; a
        :class:`~siamfc_jax.ops.plan.ConvPlan`'s ``correlation``).

    Returns:
      Responses (n·k, hx − hz + 1, wx − wz + 1, 1).

    With ``method="lax"`` all pairs run as one convolution: the n exemplars become the kernels of an
    n-group convolution over the search maps stacked along channels.
    """
    n, c = exemplar_features.shape[0], exemplar_features.shape[-1]
    m, c_search = search_features.shape[0], search_features.shape[-1]
    if c_search != c:
        raise ValueError(f"exemplar has {c} channels but search has {c_search}")
    if m % n:
        raise ValueError(f"{m} search maps cannot be split evenly over {n} exemplars")
    return correlate(exemplar_features, search_features, precision, method)[..., None] * out_scale
