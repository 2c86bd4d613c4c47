"""Square crops at several sizes around one centre, resized to a fixed side (device, jittable).

This reproduces :func:`siamfc_jax.pipeline.crops.crop_and_resize` (a constant-border square cut from the
frame, then ``cv2.resize(..., INTER_LINEAR)`` on uint8) on the device for all sizes at once. OpenCV's
uint8 bilinear resize works in fixed point: each output sample's source position is
``(i + 0.5) * size / out - 0.5`` rounded to float32, the two taps per axis get 11-bit weights, rows
are blended first in integers and the vertical blend is done the way OpenCV's SIMD kernel does it
(each row sum shifted right by 4, multiplied by the 16-bit weight keeping the high half, then
rounded down by 2 more bits). Reproducing that arithmetic gives OpenCV's pixels, except that a
source position lying within float32 rounding of a weight-rounding tie may round the other way
(one grey level, in about 1 pixel in 10^5 in the tests).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

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


def _square_taps(
    center_yx: jax.Array, size: jax.Array, out_size: int
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The frame rows and columns one square's output pixels read, and their weights.

    Returns ``(rows, cols, first_weight, second_weight)``: rows and columns (out_size, 2) int32
    in frame pixels (outside the frame where the square is), weights (out_size,) int32. Rows and
    columns of a square share their taps.
    """
    side = jnp.maximum(jnp.round(size), 1).astype(jnp.int32)
    top_left = jnp.round(center_yx.astype(jnp.float32) - (side - 1).astype(jnp.float32) / 2).astype(jnp.int32)
    first, second, first_weight, second_weight = (tap[0] for tap in _linear_taps(side[None], out_size))
    offsets = jnp.stack([first, second], axis=-1)
    return offsets + top_left[0], offsets + top_left[1], first_weight, second_weight


def _per_square(function: Callable[..., Any], *arrays: jax.Array) -> Any:
    """``function`` of each square's slice of ``arrays`` (leading axis S), stacked; on the CPU
    one square at a time.

    Vectorised over the squares, XLA:CPU fuses the taps' arithmetic, and the gathers of pixels,
    into the loops that consume them, and so recomputes them for every value those write (the taps
    for each of the S x out² x 3 pixels; a gather's indices as a tensor of the output's size). The
    results of a loop (a ``lax.map`` of S steps) are materialised instead: each computed once.
    (AlexNetV1's 3 search crops of a 360 x 240 frame alone, 2-core AMD EPYC: the taps 5-8 ms
    vectorised, 3.5-4.5 ms in a loop; 2-core Xeon: the pixels' gather 1.7 ms in one gather of
    per-pixel indices, 1.2 ms as a row gather, then a column gather, in a loop.) On other
    backends the squares stay vectorised: an accelerator spreads the recomputation over its cores,
    and each step of a loop would cost a kernel launch.
    """
    if jax.default_backend() != "cpu":
        return jax.vmap(function)(*arrays)
    return lax.map(lambda sliced: function(*sliced), arrays)


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
    # (S, out, 2) rows and columns, (S, out) weights; a square's rows and columns share weights.
    rows, cols, first_weight, second_weight = _per_square(
        functools.partial(_square_taps, center_yx, out_size=out_size), sizes
    )
    # The frame inside a one-pixel border of the fill colour: every row or column outside the
    # frame reads the border, so a pixel outside reads the fill, as OpenCV's constant border does.
    border = jnp.clip(jnp.round(fill), 0, 255).astype(jnp.uint8)
    framed = lax.dynamic_update_slice(jnp.broadcast_to(border, (height + 2, width + 2, 3)), image, (1, 1, 0))
    rows = jnp.clip(rows + 1, 0, height + 1).reshape(-1, 2 * out_size)
    cols = jnp.clip(cols + 1, 0, width + 1).reshape(-1, 2 * out_size)

    def square_pixels(square_rows: jax.Array, square_cols: jax.Array) -> jax.Array:
        # The rows the square reads, whole (a copy of each), then their columns.
        return jnp.take(jnp.take(framed, square_rows, axis=0), square_cols, axis=1)

    pixels = _per_square(square_pixels, rows, cols).astype(jnp.int32)  # (S, out·2, out·2, 3)
    pixels = pixels.reshape(-1, out_size, 2, out_size, 2, 3)  # (S, y, row tap, x, column tap, 3)

    # Horizontal pass: exact integers up to 255 * 2**11.
    blended_rows = (
        pixels[..., 0, :] * first_weight[:, None, None, :, None]
        + pixels[..., 1, :] * second_weight[:, None, None, :, None]
    )  # (S, y, row tap, x, 3)
    upper, lower = blended_rows[:, :, 0], blended_rows[:, :, 1]
    # Vertical pass, OpenCV's SIMD rounding: ((w * (v >> 4)) >> 16) per tap, then (sum + 2) >> 2.
    vertical = (
        ((first_weight[:, :, None, None] * (upper >> 4)) >> 16)
        + ((second_weight[:, :, None, None] * (lower >> 4)) >> 16)
        + 2
    ) >> 2
    return jnp.clip(vertical, 0, 255).astype(jnp.float32)
