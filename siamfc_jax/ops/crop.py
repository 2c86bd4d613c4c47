"""Square crops at several sizes around one centre, resized to a fixed side (device, jittable).

This reproduces :func:`siamfc_jax.pipeline.crops.crop_and_resize` (a constant-border square cut from the
frame, then ``cv2.resize(..., INTER_LINEAR)`` on uint8) with one gather for all sizes. OpenCV's
uint8 bilinear resize works in fixed point: each output sample's source position is
``(i + 0.5) * size / out - 0.5`` rounded to float32, the two taps per axis get 11-bit weights, rows
are blended first in integers and the vertical blend is done the way OpenCV's SIMD kernel does it
(each row sum shifted right by 4, multiplied by the 16-bit weight keeping the high half, then
rounded down by 2 more bits). Reproducing that arithmetic gives OpenCV's pixels, except that a
source position lying within float32 rounding of a weight-rounding tie may round the other way
(one grey level, in about 1 pixel in 10^5 in the tests).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_WEIGHT_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS


def _linear_taps(sides: jax.Array, out_size: int) -> tuple[jax.Array, ...]:
    """Source taps of OpenCV's bilinear resize from ``sides`` (S,) int32 pixels to ``out_size``.

    Returns ``(first, second, first_weight, second_weight)``, each (S, out_size) int32: indices into
    the square (clamped to it, as OpenCV replicates the edge) and weights summing to 2**11.
    """
    out_index = jnp.arange(out_size, dtype=jnp.int32)
    # The source position (i + 0.5) * side / out - 0.5 is the exact ratio numerator / denominator.
    # OpenCV rounds it to float32 (from a double). Adding the fraction to the whole part rounds the
    # same way but near ties, since the float32 addition rounds correctly; a float32 division of
    # the whole ratio would not (XLA's division is approximate).
    numerator = (2 * out_index[None, :] + 1) * sides[:, None] - out_size
    denominator = 2 * out_size
    whole = numerator // denominator
    remainder = numerator - whole * denominator
    position = whole.astype(jnp.float32) + remainder.astype(jnp.float32) / jnp.float32(denominator)
    start = jnp.floor(position)
    fraction = position - start
    scale = jnp.float32(1 << _WEIGHT_BITS)
    second_weight = jnp.round(fraction * scale).astype(jnp.int32)
    first_weight = jnp.round((1 - fraction) * scale).astype(jnp.int32)
    start = start.astype(jnp.int32)
    last = sides[:, None] - 1
    first = jnp.clip(start, 0, last)
    second = jnp.clip(start + 1, 0, last)
    return first, second, first_weight, second_weight


def crop_and_resize(
    image: jax.Array,
    center_yx: jax.Array,
    sizes: jax.Array,
    out_size: int,
    fill: jax.Array,
) -> jax.Array:
    """Squares of sides ``sizes`` centred on ``center_yx``, each resized to ``out_size``.

    Args:
      image: (H, W, 3) uint8 frame.
      center_yx: (2,) centre ``[y, x]`` in 0-indexed pixels.
      sizes: (S,) sides of the squares in pixels; rounded half to even, at least 1.
      out_size: side of the output patches in pixels (static).
      fill: (3,) colour of pixels outside the frame; rounded half to even to 0..255.

    Returns:
      (S, out_size, out_size, 3) float32 holding whole grey levels 0..255, equal to the uint8
      patches of the host crop (OpenCV) for the same arguments.
    """
    height, width = image.shape[:2]
    sides = jnp.maximum(jnp.round(sizes), 1).astype(jnp.int32)
    top_left = jnp.round(
        center_yx.astype(jnp.float32)[None, :] - (sides[:, None] - 1).astype(jnp.float32) / 2
    ).astype(jnp.int32)  # (S, 2)
    row_a, row_b, row_wa, row_wb = _linear_taps(sides, out_size)
    col_a, col_b, col_wa, col_wb = _linear_taps(sides, out_size)

    rows = jnp.stack([row_a, row_b], axis=-1) + top_left[:, 0, None, None]  # (S, out, 2)
    cols = jnp.stack([col_a, col_b], axis=-1) + top_left[:, 1, None, None]
    rows = rows[:, :, :, None, None]  # (S, out, 2, 1, 1)
    cols = cols[:, None, None, :, :]  # (S, 1, 1, out, 2)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    pixels = image[jnp.clip(rows, 0, height - 1), jnp.clip(cols, 0, width - 1)]  # (S,out,2,out,2,3)
    border = jnp.clip(jnp.round(fill), 0, 255).astype(jnp.int32)
    pixels = jnp.where(inside[..., None], pixels.astype(jnp.int32), border)

    # Horizontal pass: exact integers up to 255 * 2**11.
    blended_rows = (
        pixels[:, :, :, :, 0] * col_wa[:, None, None, :, None]
        + pixels[:, :, :, :, 1] * col_wb[:, None, None, :, None]
    )  # (S, out, 2, out, 3)
    upper, lower = blended_rows[:, :, 0], blended_rows[:, :, 1]
    # Vertical pass, OpenCV's SIMD rounding: ((w * (v >> 4)) >> 16) per tap, then (sum + 2) >> 2.
    vertical = (
        ((row_wa[:, :, None, None] * (upper >> 4)) >> 16)
        + ((row_wb[:, :, None, None] * (lower >> 4)) >> 16)
        + 2
    ) >> 2
    return jnp.clip(vertical, 0, 255).astype(jnp.float32)
