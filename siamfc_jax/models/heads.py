"""The SiamFC head: cross-correlation of exemplar features over search features."""

from __future__ import annotations

import jax
from jax import lax

from siamfc_jax.models.layers import PrecisionLike


def cross_correlate(
    exemplar_features: jax.Array,
    search_features: jax.Array,
    out_scale: float = 0.001,
    precision: PrecisionLike = None,
) -> jax.Array:
    """Slide each exemplar feature map over its search feature maps; scale by ``out_scale``.

    Args:
      exemplar_features: (n, hz, wz, c).
      search_features: (n·k, hx, wx, c); search map ``i`` is correlated with exemplar ``i % n``
        (training: k = 1, one search per exemplar; tracking: n = 1, k scales).
      out_scale: the fixed response scale (0.001 in SiamFC; it keeps the initial logits small).
      precision: convolution precision (``"highest"`` for exact float32 on GPUs).

    Returns:
      Responses (n·k, hx − hz + 1, wx − wz + 1, 1).

    All pairs run as one convolution: the n exemplars become the kernels of an n-group convolution
    over the search maps stacked along channels.
    """
    n, c = exemplar_features.shape[0], exemplar_features.shape[-1]
    m, hx, wx, c_search = search_features.shape
    if c_search != c:
        raise ValueError(f"exemplar has {c} channels but search has {c_search}")
    if m % n:
        raise ValueError(f"{m} search maps cannot be split evenly over {n} exemplars")
    k = m // n
    stacked = (
        search_features.reshape(k, n, hx, wx, c).transpose(0, 2, 3, 1, 4).reshape(k, hx, wx, n * c)
    )
    kernels = exemplar_features.transpose(1, 2, 3, 0)  # HWIO: output channel j sees group j
    responses = lax.conv_general_dilated(
        stacked,
        kernels,
        window_strides=(1, 1),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=n,
        precision=precision,
    )
    ho, wo = responses.shape[1:3]
    return responses.transpose(0, 3, 1, 2).reshape(m, ho, wo, 1) * out_scale
