"""Two formulations of SiamFC's convolutions, chosen per backend.

``"lax"`` runs every convolution as one ``lax.conv_general_dilated`` (grouped ones through
``feature_group_count``) and the batched correlation head as one ``groups=n`` convolution: the
natural form, and the fast one on GPUs and TPUs. XLA:CPU lowers these to generic spatial
convolutions that reach a fraction of its matrix-multiply speed; grouped ones are slower still, and
the gradient of the ``groups=n`` head takes about 20× its forward pass. ``"matmul"`` computes the
same sums as matrix products: each convolution gathers its input patches (im2col, per group) and
multiplies them by the kernel, and the head sums one product per exemplar cell. On a 2-core CPU
this makes a SiamFC training step about 3× faster (``benchmarks/train_speed.py``).

``"auto"`` picks ``"matmul"`` on CPU and ``"lax"`` elsewhere. Both give the same numbers up to
float32 summation order (``tests/test_conv.py``).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

ConvImpl = Literal["auto", "lax", "matmul"]
CONV_IMPLS = ("auto", "lax", "matmul")


def resolve_conv_impl(impl: str) -> str:
    """``"lax"`` or ``"matmul"`` for ``impl``; ``"auto"`` follows the default backend."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        return "matmul" if jax.default_backend() == "cpu" else "lax"
    return impl


def conv2d(
    x: jax.Array,
    kernel: jax.Array,
    stride: int = 1,
    groups: int = 1,
    precision: lax.PrecisionLike = None,
    impl: str = "auto",
) -> jax.Array:
    """``VALID`` 2-D convolution, optionally grouped, as PyTorch's ``Conv2d`` without bias.

    Args:
      x: (N, H, W, C) input.
      kernel: (k, k, C // groups, O) HWIO kernel; output channel ``o`` reads input group
        ``o // (O // groups)``.
      stride: the same stride along H and W.
      groups: number of channel groups.
      precision: matrix-multiply precision (``"highest"`` for exact float32 on GPUs).
      impl: ``"lax"``, ``"matmul"`` or ``"auto"`` (see the module docstring).

    Returns:
      (N, (H − k) // stride + 1, (W − k) // stride + 1, O).
    """
    if resolve_conv_impl(impl) == "lax":
        return lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(stride, stride),
            padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=groups,
            precision=precision,
        )
    k, _, group_in, out_features = kernel.shape
    n, h, w, _ = x.shape
    out_h, out_w = (h - k) // stride + 1, (w - k) // stride + 1
    group_out = out_features // groups
    rows = [slice(i, i + stride * (out_h - 1) + 1, stride) for i in range(k)]
    cols = [slice(j, j + stride * (out_w - 1) + 1, stride) for j in range(k)]
    outputs = []
    for g in range(groups):
        x_group = x[..., g * group_in : (g + 1) * group_in]
        # Patch column order (kernel row, kernel column, channel) is the HWIO kernel's row order,
        # so the kernel needs only a reshape.
        patches = jnp.concatenate([x_group[:, row, col] for row in rows for col in cols], axis=-1)
        kernel_group = kernel[..., g * group_out : (g + 1) * group_out].reshape(k * k * group_in, group_out)
        outputs.append(jnp.dot(patches.reshape(-1, k * k * group_in), kernel_group, precision=precision))
    return jnp.concatenate(outputs, axis=-1).reshape(n, out_h, out_w, out_features)


def correlate(
    exemplar_features: jax.Array,
    search_features: jax.Array,
    precision: lax.PrecisionLike = None,
    impl: str = "auto",
) -> jax.Array:
    """Each exemplar feature map slid over its search maps (no scaling).

    Args:
      exemplar_features: (n, hz, wz, c).
      search_features: (n·k, hx, wx, c); map ``i`` is correlated with exemplar ``i % n``.
      precision, impl: as for :func:`conv2d`.

    Returns:
      (n·k, hx − hz + 1, wx − wz + 1) responses.
    """
    n, hz, wz, c = exemplar_features.shape
    m, hx, wx, _ = search_features.shape
    k = m // n
    out_h, out_w = hx - hz + 1, wx - wz + 1
    # One exemplar (tracking) is an ordinary convolution, which XLA:CPU runs well; only batched
    # exemplars (training) take the per-cell products.
    if resolve_conv_impl(impl) == "lax" or n == 1:
        stacked = search_features.reshape(k, n, hx, wx, c).transpose(0, 2, 3, 1, 4).reshape(k, hx, wx, n * c)
        kernels = exemplar_features.transpose(1, 2, 3, 0)  # HWIO: output channel j sees group j
        responses = conv2d(stacked, kernels, 1, n, precision, "lax")
        return responses.transpose(0, 3, 1, 2).reshape(m, out_h, out_w)
    searches = search_features.reshape(k, n, hx, wx, c)
    responses = sum(
        jnp.einsum(
            "knhwc,nc->knhw",
            searches[:, :, i : i + out_h, j : j + out_w],
            exemplar_features[:, i, j],
            precision=precision,
        )
        for i in range(hz)
        for j in range(wz)
    )
    return responses.reshape(m, out_h, out_w)
