"""OpenCV's bicubic resize (``cv2.INTER_CUBIC`` on float32) as two matrix products.

siamfc-pytorch upsamples each 17×17 response map with ``cv2.resize(..., INTER_CUBIC)``, whose kernel
uses A = −0.75 (``jax.image.resize`` uses A = −0.5 and gives different peaks). A separable resize is
``R_y · map · R_xᵀ`` with one (out, in) weight matrix per axis, computed here once on the host in
float32 the way OpenCV computes its coefficients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.lax import PrecisionLike

_CUBIC_A = np.float32(-0.75)  # OpenCV's bicubic constant


def _cubic_coefficients(fraction: np.ndarray) -> np.ndarray:
    """OpenCV's four bicubic tap weights (n, 4) for sub-pixel offsets ``fraction`` (n,) in [0, 1)."""
    a = _CUBIC_A
    x = fraction.astype(np.float32)
    one = np.float32(1)
    w0 = ((a * (x + one) - 5 * a) * (x + one) + 8 * a) * (x + one) - 4 * a
    w1 = ((a + 2) * x - (a + 3)) * x * x + one
    w2 = ((a + 2) * (one - x) - (a + 3)) * (one - x) * (one - x) + one
    w3 = one - w0 - w1 - w2  # OpenCV closes the sum to exactly one this way
    return np.stack([w0, w1, w2, w3], axis=-1).astype(np.float32)


def cubic_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float32 matrix of OpenCV's bicubic resize along one axis.

    Output sample ``i`` reads the source position ``(i + 0.5) · in/out − 0.5`` (pixel centres aligned)
    with taps at ``floor(position) − 1 … + 2``; taps outside the input repeat the edge pixel
    (OpenCV's replicated border), so their weights add onto the edge column.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got in_size={in_size}, out_size={out_size}")
    position = ((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5).astype(np.float32)
    start = np.floor(position).astype(np.int64)
    weights = _cubic_coefficients(position - start)
    matrix = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    for tap in range(4):
        np.add.at(matrix, (rows, np.clip(start - 1 + tap, 0, in_size - 1)), weights[:, tap])
    return matrix


def upsample(responses: jax.Array, out_size: int, precision: PrecisionLike = None) -> jax.Array:
    """Bicubic upsampling of ``responses`` (S, h, w) to (S, out_size, out_size), as ``cv2.resize``.

    ``precision`` is the matmul precision (``"highest"`` for exact float32 on GPUs).
    """
    _, height, width = responses.shape
    rows = jnp.asarray(cubic_resize_matrix(height, out_size))
    cols = jnp.asarray(cubic_resize_matrix(width, out_size))
    resized_cols = jnp.einsum("shw,ow->sho", responses, cols, precision=precision)
    return jnp.einsum("oh,shw->sow", rows, resized_cols, precision=precision)
