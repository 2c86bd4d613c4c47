"""Winograd's minimal filtering for stride-1 convolutions: fewer multiplications than any im2col.

A ``VALID`` correlation of a 3×3 kernel is computed on tiles of ``m × m`` outputs, each read from an
``α × α`` input tile (``α = m + 2``, tiles ``m`` apart). In the transformed domain a tile costs one
product per transformed pixel, channel and output, so the matrix products shrink from 9 to ``α²/m²``
multiply-adds per output and channel pair: 4 for ``m = 2``, 2.8 for ``m = 3`` (Lavin and Gray,
"Fast Algorithms for Convolutional Neural Networks", 2016)::

    output tile = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        for each channel pair, summed over channels

where ``d`` is an input tile and ``g`` the 3×3 kernel. The sum over channels of the elementwise
products is, per transformed pixel, one matrix product, (tiles, C) × (C, O), and these are the only
products left: the transforms are sums of a few shifted slices, which XLA fuses.

A larger kernel is zero-padded to a multiple of 3 and split into 3×3 sub-kernels at offsets of 3
(conv2's 5×5 becomes four). With ``m = 3`` the sub-kernels' input tiles are whole tiles of one
grid, so their transforms are shared and the products over the sub-kernels are one product with a
4× longer inner dimension. A large image is computed a few tile rows at a time, so that the
transformed pixels (α²/m² times the input and the output) are used while still in the cache.

The transforms come from Toom-Cook interpolation at the points 0, ±1, 2 and ∞, derived here in
exact rational arithmetic (:func:`transforms`); in float32 the result differs from a direct sum by
a few units in 1e-6 of the output's range (``tests/test_conv.py`` checks it against PyTorch in
float64).

A 3×3 kernel's gradients are Winograd's too (:func:`input_gradient`, :func:`kernel_gradient`):
the input's is the forward pass over the output's gradient padded by 2 with the kernel turned
half a turn, and the kernel's is one product per transformed pixel of the transformed input tiles
with the output gradient's tiles (their transform is the output transform's transpose), summed
over the tiles. JAX's transpose of the forward pass computes the same sums, but ran slower than a
direct convolution: a train step's conv3 kernel gradient (8 searches, 2-core Xeon, oneDNN's
matrix products) took 54 ms as JAX's transpose, 29 ms by ``lax`` and 22 ms as written here.
Larger kernels keep JAX's gradients.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# The 3x3 sub-kernel side, and the finite interpolation points (in this order: the small ones first
# keep the transforms' entries small, and so the float32 error).
SUB_KERNEL_SIDE = 3
POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(2))
# One image's products (alpha² transformed pixels per tile, float32) above this are computed in
# blocks of tile rows of about BLOCK_BYTES. 3 AlexNetV1 searches, 2-core AMD EPYC: conv1 (16 MB an
# image) 33 ms as "rows", 43 ms whole, 21 ms in blocks of one tile row; conv3 (4 MB) 11 ms whole,
# 15-18 ms in blocks.
UNBLOCKED_IMAGE_BYTES = 2**23
BLOCK_BYTES = 2**19


def _inverse(matrix: list[list[Fraction]]) -> list[list[Fraction]]:
    """Exact inverse of a square matrix of rationals (Gauss-Jordan with row swaps)."""
    size = len(matrix)
    rows = [list(row) + [Fraction(int(i == j)) for j in range(size)] for i, row in enumerate(matrix)]
    for column in range(size):
        pivot = next(r for r in range(column, size) if rows[r][column] != 0)
        rows[column], rows[pivot] = rows[pivot], rows[column]
        rows[column] = [value / rows[column][column] for value in rows[column]]
        for r in range(size):
            if r != column and rows[r][column] != 0:
                factor = rows[r][column]
                rows[r] = [value - factor * top for value, top in zip(rows[r], rows[column], strict=True)]
    return [row[size:] for row in rows]


@functools.cache
def transforms(tile_outputs: int, taps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The transforms of F(m, r), ``m`` outputs of an ``r``-tap correlation from ``α = m + r − 1`` inputs.

    Returns float64 ``(input_transform (α, α), kernel_transform (α, r), output_transform (m, α))``,
    Bᵀ, G and Aᵀ, such that for any ``d`` of length α and ``g`` of length r::

        Aᵀ ((G g) ⊙ (Bᵀ d)) == [sum_j g[j] d[i + j] for i in range(m)]

    Derivation: a product of polynomials of degrees ``r − 1`` and ``m − 1`` is fixed by its values at
    α points (∞ standing for the leading coefficient); the correlation is that product's transpose.
    So with the evaluation matrices ``E_n`` (n coefficients, at the α points): ``G = E_r``,
    ``Aᵀ = E_mᵀ``, ``Bᵀ = E_α⁻ᵀ``. Each row of Bᵀ is then scaled to integers and the matching row of
    G divided by the same factor, which leaves the product unchanged.
    """
    alpha = tile_outputs + taps - 1
    points = POINTS[: alpha - 1]
    if len(points) != alpha - 1:
        raise ValueError(
            f"F({tile_outputs}, {taps}) needs {alpha - 1} finite points, {len(POINTS)} are defined"
        )

    def evaluation(coefficients: int) -> list[list[Fraction]]:
        at_infinity = [Fraction(int(j == coefficients - 1)) for j in range(coefficients)]
        return [[p**j for j in range(coefficients)] for p in points] + [at_infinity]

    inverse = _inverse(evaluation(alpha))
    input_transform = [[inverse[j][i] for j in range(alpha)] for i in range(alpha)]
    kernel_transform = evaluation(taps)
    for a in range(alpha):
        scale = math.lcm(*(value.denominator for value in input_transform[a]))
        input_transform[a] = [value * scale for value in input_transform[a]]
        kernel_transform[a] = [value / scale for value in kernel_transform[a]]
    output_evaluation = evaluation(tile_outputs)
    output_transform = [[output_evaluation[a][i] for a in range(alpha)] for i in range(tile_outputs)]
    return tuple(np.array(m, dtype=np.float64) for m in (input_transform, kernel_transform, output_transform))


def _linear_combination(terms: list[tuple[float, jax.Array]]) -> jax.Array:
    """``sum(c * array)`` over the nonzero coefficients (±1 without a multiplication)."""
    total = None
    for coefficient, array in terms:
        if coefficient == 0:
            continue
        term = array if coefficient == 1 else -array if coefficient == -1 else array * coefficient
        total = term if total is None else total + term
    return total


def conv(x: jax.Array, kernel: jax.Array, groups: int, precision: lax.PrecisionLike) -> jax.Array:
    """Stride-1 ``VALID`` convolution (grouped as PyTorch's) by Winograd's F(m × m, 3 × 3).

    Args:
      x: (n, h, w, c) input.
      kernel: (k, k, c // groups, o) HWIO kernel, any ``k`` (a 3×3 one uses ``m = 2``, others are
        split into 3×3 sub-kernels with ``m = 3``, see the module docstring).
      groups: channel groups.
      precision: of the matrix products.

    Returns:
      (n, h − k + 1, w − k + 1, o), equal to :func:`siamfc_jax.ops.conv.conv2d` up to float32
      rounding.

    Where one image's transformed products would pass :data:`UNBLOCKED_IMAGE_BYTES`, the outputs
    are computed a block of tile rows at a time (a ``lax.map`` over images and blocks), so that a
    block's transforms and products (about :data:`BLOCK_BYTES`) stay in the cache.
    Differentiated, a 3×3 kernel takes :func:`input_gradient` and :func:`kernel_gradient`.
    """
    if kernel.shape[0] == SUB_KERNEL_SIDE:
        return _conv_3x3(x, kernel, groups, precision)
    return conv_transformed(x, transform_kernel(kernel, groups), kernel.shape[0], groups, precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_3x3(x, kernel, groups, precision):
    return conv_transformed(x, transform_kernel(kernel, groups), SUB_KERNEL_SIDE, groups, precision)


def _conv_3x3_forward(x, kernel, groups, precision):
    return _conv_3x3(x, kernel, groups, precision), (x, kernel)


def _conv_3x3_backward(groups, precision, residuals, output_gradient):
    x, kernel = residuals
    return (
        input_gradient(output_gradient, kernel, groups, precision),
        kernel_gradient(x, output_gradient, groups, precision),
    )


_conv_3x3.defvjp(_conv_3x3_forward, _conv_3x3_backward)


def input_gradient(
    output_gradient: jax.Array, kernel: jax.Array, groups: int, precision: lax.PrecisionLike
) -> jax.Array:
    """The gradient of :func:`conv` in its input, by :func:`conv` itself.

    Args:
      output_gradient: (n, oh, ow, o), the gradient of the output.
      kernel: (k, k, c // groups, o) HWIO kernel.
      groups, precision: as for :func:`conv`.

    Returns:
      (n, oh + k − 1, ow + k − 1, c): a correlation of the output gradient, padded by ``k − 1`` on
      every side, with the kernel turned half a turn and each group's inputs and outputs swapped.
    """
    k, _, group_in, out_features = kernel.shape
    group_out = out_features // groups
    turned = jnp.flip(kernel, (0, 1)).reshape(k, k, group_in, groups, group_out)
    turned = turned.transpose(0, 1, 4, 3, 2).reshape(k, k, group_out, groups * group_in)
    padded = jnp.pad(output_gradient, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)))
    return conv_transformed(padded, transform_kernel(turned, groups), k, groups, precision)


def kernel_gradient(
    x: jax.Array, output_gradient: jax.Array, groups: int, precision: lax.PrecisionLike
) -> jax.Array:
    """The gradient of :func:`conv` of a 3×3 kernel in the kernel, by F(2 × 2, 3 × 3).

    Per transformed pixel, the input tiles' transform (tiles, c) meets the output gradient's
    tiles' (tiles, o), transformed by Aᵀ's transpose (each 2×2 tile spreads over 4×4), in one
    product summed over the tiles; Gᵀ · G brings the 4×4 transformed kernel back to 3×3: the
    transposes of the forward pass's linear maps, in reverse order.

    Args:
      x: (n, h, w, c) input of the convolution.
      output_gradient: (n, h − 2, w − 2, o).
      groups, precision: as for :func:`conv`.

    Returns:
      (3, 3, c // groups, o) HWIO.
    """
    r = SUB_KERNEL_SIDE
    m = _tiling(r)[1]
    alpha = m + r - 1
    n, out_h, out_w, out_features = output_gradient.shape
    in_features = x.shape[-1]
    tiles_h, tiles_w = -(-out_h // m), -(-out_w // m)
    _, kernel_transform, output_transform = transforms(m, r)
    inputs = _padded_to_tiles(x, m, tiles_h, tiles_w)
    inputs = _transformed_input_tiles(inputs, m, tiles_h, tiles_w, pixels_apart=True)
    inputs = inputs.reshape(alpha * alpha, n * tiles_h * tiles_w, groups, in_features // groups)
    # Zero rows and columns complete the last tiles: they add nothing to the sums.
    padded = jnp.pad(
        output_gradient, ((0, 0), (0, m * tiles_h - out_h), (0, m * tiles_w - out_w), (0, 0))
    )
    tile_rows = [padded[:, i::m] for i in range(m)]
    by_rows = [
        _linear_combination([(output_transform[i, a], tile_rows[i]) for i in range(m)]) for a in range(alpha)
    ]
    gradients = jnp.stack(
        [
            _linear_combination([(output_transform[j, b], by_rows[a][:, :, j::m]) for j in range(m)])
            for a in range(alpha)
            for b in range(alpha)
        ]
    ).reshape(alpha * alpha, n * tiles_h * tiles_w, groups, out_features // groups)
    products = jnp.einsum("ptgc,ptgo->pgco", inputs, gradients, precision=precision)
    products = products.reshape(alpha, alpha, groups, in_features // groups, out_features // groups)
    by_rows = [
        _linear_combination([(kernel_transform[a, i], products[a]) for a in range(alpha)]) for i in range(r)
    ]
    kernel = jnp.stack(
        [
            jnp.stack(
                [
                    _linear_combination([(kernel_transform[b, j], row[b]) for b in range(alpha)])
                    for j in range(r)
                ]
            )
            for row in by_rows
        ]
    )  # (3, 3, groups, c // groups, o // groups)
    return kernel.transpose(0, 1, 3, 2, 4).reshape(r, r, in_features // groups, out_features)


def conv_transformed(
    x: jax.Array,
    transformed_kernel: jax.Array,
    kernel_side: int,
    groups: int,
    precision: lax.PrecisionLike,
) -> jax.Array:
    """:func:`conv` of ``x`` by a kernel of side ``kernel_side``, given its
    :func:`transform_kernel`; the same values as :func:`conv` of the kernel itself."""
    k = kernel_side
    out_features = groups * transformed_kernel.shape[-1]
    n, h, w, _ = x.shape
    out_h, out_w = h - k + 1, w - k + 1
    _, m = _tiling(k)
    alpha = m + SUB_KERNEL_SIDE - 1
    tile_row_bytes = alpha * alpha * -(-out_w // m) * out_features * jnp.dtype(x.dtype).itemsize
    if tile_row_bytes * -(-out_h // m) <= UNBLOCKED_IMAGE_BYTES:
        return _tiles_conv(x, transformed_kernel, k, groups, precision)
    block_rows = m * max(1, BLOCK_BYTES // tile_row_bytes)
    blocks_per_image = -(-out_h // block_rows)
    missing_rows = blocks_per_image * block_rows + k - 1 - h
    if missing_rows > 0:
        x = jnp.pad(x, ((0, 0), (0, missing_rows), (0, 0), (0, 0)))

    def block(index):
        image, first_row = index // blocks_per_image, (index % blocks_per_image) * block_rows
        rows = lax.dynamic_slice_in_dim(x, image, 1, axis=0)
        rows = lax.dynamic_slice_in_dim(rows, first_row, block_rows + k - 1, axis=1)
        return _tiles_conv(rows, transformed_kernel, k, groups, precision)[0]

    # Rebuilt in a backward pass rather than kept, as in conv's "rows".
    blocks = lax.map(jax.checkpoint(block), jnp.arange(n * blocks_per_image))
    return blocks.reshape(n, blocks_per_image * block_rows, out_w, out_features)[:, :out_h]


def _tiling(kernel_side: int) -> tuple[int, int]:
    """(sub-kernels a side, outputs a tile side) for a kernel: sub-kernels at offsets of 3 share
    one tile grid only if tiles are 3 outputs apart; a lone 3×3 takes F(2, 3), the most accurate."""
    subs = -(-kernel_side // SUB_KERNEL_SIDE)
    return subs, 2 if subs == 1 else SUB_KERNEL_SIDE


def transform_kernel(kernel: jax.Array, groups: int) -> jax.Array:
    """G g Gᵀ of each 3×3 sub-kernel, the part of :func:`conv` that reads only the kernel:
    (k, k, c_g, o) HWIO → (α², groups, s²·c_g, o // groups), ``s`` sub-kernels a side, rows ordered
    (sub-kernel row, sub-kernel column, channel).

    A kernel used on many inputs (a tracker's weights, every frame) can be transformed once and
    passed to :func:`conv_transformed`.
    """
    k, _, group_in, out_features = kernel.shape
    r = SUB_KERNEL_SIDE
    subs, m = _tiling(k)
    alpha = m + r - 1
    _, kernel_transform, _ = transforms(m, r)
    kernel = jnp.pad(kernel, ((0, subs * r - k), (0, subs * r - k), (0, 0), (0, 0)))
    kernel = kernel.reshape(subs, r, subs, r, group_in, groups, out_features // groups).transpose(
        1, 3, 5, 0, 2, 4, 6
    )
    kernel = kernel.reshape(r, r, groups, subs * subs * group_in, out_features // groups)
    return jnp.stack(
        [
            _linear_combination(
                [
                    (kernel_transform[a, i] * kernel_transform[b, j], kernel[i, j])
                    for i in range(r)
                    for j in range(r)
                ]
            )
            for a in range(alpha)
            for b in range(alpha)
        ]
    )


def _tiles_conv(
    x: jax.Array, transformed_kernel: jax.Array, kernel_side: int, groups: int, precision: lax.PrecisionLike
) -> jax.Array:
    """:func:`conv` of all of ``x`` at once, from the kernel's transform."""
    k = kernel_side
    r = SUB_KERNEL_SIDE
    subs, m = _tiling(k)
    alpha = m + r - 1
    group_out = transformed_kernel.shape[-1]
    n, h, w, c = x.shape
    group_in = c // groups
    out_h, out_w = h - k + 1, w - k + 1
    tiles_h, tiles_w = -(-out_h // m), -(-out_w // m)
    # The grid's tiles: those of the outputs, and subs - 1 more along each side for the sub-kernels.
    grid_h, grid_w = tiles_h + subs - 1, tiles_w + subs - 1
    x = _padded_to_tiles(x, m, grid_h, grid_w)
    _, _, output_transform = transforms(m, r)
    transformed = _transformed_input_tiles(x, m, grid_h, grid_w).reshape(
        alpha * alpha, n, grid_h, grid_w, groups, group_in
    )
    if subs > 1:
        # Sub-kernel (p, q) reads the tile p rows and q columns further on: its tiles, side by side
        # along the channels, make one product of all sub-kernels.
        transformed = jnp.concatenate(
            [transformed[:, :, p : p + tiles_h, q : q + tiles_w] for p in range(subs) for q in range(subs)],
            axis=-1,
        )
    transformed = transformed.transpose(0, 4, 1, 2, 3, 5).reshape(
        alpha * alpha, groups, -1, subs * subs * group_in
    )

    products = lax.dot_general(
        transformed, transformed_kernel, (((3,), (2,)), ((0, 1), (0, 1))), precision=precision
    ).reshape(alpha, alpha, groups, n, tiles_h, tiles_w, group_out)

    # Aᵀ M A, separably, then the m x m outputs of each tile back in place.
    by_rows = jnp.stack(
        [_linear_combination([(output_transform[i, a], products[a]) for a in range(alpha)]) for i in range(m)]
    )
    tiles = jnp.stack(
        [
            _linear_combination([(output_transform[j, b], by_rows[:, b]) for b in range(alpha)])
            for j in range(m)
        ],
        axis=1,
    )  # (m, m, groups, n, tiles_h, tiles_w, group_out)
    output = tiles.transpose(3, 4, 0, 5, 1, 2, 6).reshape(n, m * tiles_h, m * tiles_w, groups * group_out)
    return output[:, :out_h, :out_w]


def _padded_to_tiles(x: jax.Array, m: int, grid_h: int, grid_w: int) -> jax.Array:
    """``x`` cut or zero-padded to the pixels of a grid of ``grid_h × grid_w`` tiles ``m`` apart."""
    alpha = m + SUB_KERNEL_SIDE - 1
    need_h, need_w = m * (grid_h - 1) + alpha, m * (grid_w - 1) + alpha
    _, h, w, _ = x.shape
    x = jnp.pad(x, ((0, 0), (0, max(0, need_h - h)), (0, max(0, need_w - w)), (0, 0)))
    return x[:, :need_h, :need_w]


def _transformed_input_tiles(
    x: jax.Array, m: int, grid_h: int, grid_w: int, pixels_apart: bool = False
) -> jax.Array:
    """Bᵀ d B of every tile of :func:`_padded_to_tiles` ``x`` (n, h, w, c): (α², n, grid_h, grid_w, c),
    transformed pixel (a, b) at ``a · α + b``.

    Separably: along rows (slice ``i`` of every tile is a strided slice of the image), then along
    columns. The same values either way, but XLA:CPU fuses the two forms differently, and each
    caller is faster with one (8 searches, 2-core Xeon): the forward pass with the row transforms
    stacked into one array before the columns are sliced (conv4 11.5 against 13.9 ms), the kernel
    gradient with each transformed pixel kept apart until the end (``pixels_apart``; conv3 22
    against 36 ms).
    """
    alpha = m + SUB_KERNEL_SIDE - 1
    input_transform, _, _ = transforms(m, SUB_KERNEL_SIDE)
    tile_rows = [lax.slice_in_dim(x, i, i + m * (grid_h - 1) + 1, stride=m, axis=1) for i in range(alpha)]
    by_rows = [
        _linear_combination([(input_transform[a, i], tile_rows[i]) for i in range(alpha)])
        for a in range(alpha)
    ]
    if not pixels_apart:
        by_rows = [jnp.stack(by_rows)]
    # Column axis: 2 of one row transform, 3 of the stack of them.
    column_axis = 2 if pixels_apart else 3
    transformed = []
    for rows in by_rows:
        tile_columns = [
            lax.slice_in_dim(rows, j, j + m * (grid_w - 1) + 1, stride=m, axis=column_axis)
            for j in range(alpha)
        ]
        transformed.append(
            jnp.stack(
                [
                    _linear_combination([(input_transform[b, j], tile_columns[j]) for j in range(alpha)])
                    for b in range(alpha)
                ],
                axis=column_axis - 2,
            )
        )
    n, _, _, c = x.shape
    return jnp.concatenate(transformed).reshape(alpha * alpha, n, grid_h, grid_w, c)
