"""Formulations of SiamFC's convolutions and correlation, and each role of a layer by its own.

All compute PyTorch's ``VALID`` ``Conv2d`` (optionally grouped, no bias) in NHWC / HWIO, and agree up
to float32 summation order (``tests/test_conv.py``):

``"lax"``
    one ``lax.conv_general_dilated`` (grouped ones through ``feature_group_count``): the natural
    form, and the fast one on TPUs. On XLA:CPU its speed depends on the library running it: on
    YNNPACK (XLA's default) it reaches a fraction of the matrix products' speed, on XLA's own
    kernels (:func:`siamfc_jax.runtime.setup_process`, which the command-line tools
    set) about their speed; grouped ones are slower, and their kernel gradients much slower.
``"lax_per_group"``
    a grouped convolution as one ``lax.conv_general_dilated`` per channel group, concatenated (an
    ungrouped one is ``"lax"``). XLA:CPU runs a grouped convolution slower than its groups one by
    one, and its kernel gradient 10-20x slower (2-core AMD EPYC, AlexNetV1's conv2, 8 searches:
    1345 against 75 ms). On GPUs it is the default plan's (:func:`siamfc_jax.ops.plan.default_plan`).
``"matmul"``
    im2col: the input patches of every output pixel gathered (per group) into one matrix and
    multiplied by the kernel. On XLA:CPU the gather of ``k²`` shifted slices costs more than the
    product.
``"shift"``
    only the ``k`` column shifts are gathered, into (n, h, w', k·c); one matrix product per kernel
    row ``i`` (and group) multiplies them by that row, giving (n, h, w', o), and the output sums
    the ``k`` products, product ``i`` shifted up by ``i`` rows. A strided convolution (conv1:
    11×11 / 2) first becomes a stride-1 one by space-to-depth (6×6 over 2·2·3 channels, the kernel
    zero-padded to 12×12, so the extra taps add exact zeros). It gathers ``k`` times less than
    im2col, and each kernel row is a contiguous slice of the HWIO kernel, so nothing is re-laid out.
``"rows"``
    im2col a block of output rows at a time, in a loop (``lax.map``) over the blocks of every image:
    each block's patch matrix (about :data:`ROW_BLOCK_BYTES`) is built and multiplied while it is
    still in the cache, instead of writing and reading back one patch matrix of tens of megabytes
    (conv1 on 3 searches: 78 MB). conv1 goes through space-to-depth first, as in ``"shift"``.
``"winograd"``
    Winograd's minimal filtering (:mod:`siamfc_jax.ops.winograd`): 2.25× fewer multiplications
    than the others for a 3×3 kernel, at the price of transforming input and output; a larger
    kernel is split into 3×3 sub-kernels, a strided one goes through space-to-depth first. A 3×3
    kernel's gradients are Winograd's too (the input's by the forward pass over the padded output
    gradient, the kernel's by products of transformed tiles), not JAX's transposes.

Which formulation computes which layer is a value, :class:`siamfc_jax.ops.plan.ConvPlan`; this
module measures nothing. The roles are the three linear maps of a convolution: the forward pass (all
that tracking runs), and in a train step the input gradient and the kernel gradient, which JAX
derives from any formulation (as its transpose in the input or in the kernel, or the formulation's
own, as ``"winograd"`` defines for 3×3 kernels) and which need not come from the one that ran
forward: :func:`conv2d_with` computes each role by its own formulation.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from siamfc_jax.ops import winograd

FORMULATIONS = ("lax", "lax_per_group", "matmul", "shift", "rows", "winograd")


class Formulations(NamedTuple):
    """The formulation (one of :data:`FORMULATIONS`) computing each role of one convolution."""

    forward: str
    input_gradient: str
    kernel_gradient: str


ROLES = Formulations._fields


# Bytes of one row block's patch matrix in "rows": about a core's L2 cache (1 MB on the AMD EPYC
# we measured, 2 MB on recent Xeons); conv1 of AlexNetV1 (3 searches) then takes blocks of 7 rows.
# There, conv1 ran 34 ms with 1.5 MB blocks, 49 ms with 0.5 MB, and 29-36 ms with 1-6 MB.
ROW_BLOCK_BYTES = 2**20 + 2**19


def conv2d(
    x: jax.Array,
    kernel: jax.Array,
    stride: int = 1,
    groups: int = 1,
    precision: lax.PrecisionLike = None,
    formulation: str = "lax",
) -> jax.Array:
    """``VALID`` 2-D convolution, optionally grouped, as PyTorch's ``Conv2d`` without bias.

    Args:
      x: (N, H, W, C) input.
      kernel: (k, k, C // groups, O) HWIO kernel; output channel ``o`` reads input group
        ``o // (O // groups)``.
      stride: the same stride along H and W.
      groups: number of channel groups.
      precision: matrix-multiply precision (``"highest"`` for exact float32 on GPUs).
      formulation: one of :data:`FORMULATIONS` (see the module docstring), for every role.

    Returns:
      (N, (H − k) // stride + 1, (W − k) // stride + 1, O).
    """
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    return _FORMULATIONS[formulation](x, kernel, stride, groups, precision)


def prepare_kernel(formulation: str, kernel: jax.Array, stride: int, groups: int) -> jax.Array | None:
    """What ``formulation`` computes from the kernel alone before it reads an input, for
    :func:`conv2d_prepared`; None where that is nothing (every formulation but ``"winograd"``,
    and ``"winograd"`` of a grouped strided kernel, which it runs by im2col).

    A kernel that meets many inputs (a tracker's, every frame) is worth preparing once: for
    AlexNetV1's conv3-5 the Winograd transforms cost about 3.8 ms of a tracking frame (2-core AMD EPYC).
    """
    if formulation != "winograd" or (stride > 1 and groups > 1):
        return None
    if stride > 1:
        kernel = _space_to_depth_kernel(kernel, stride)
    return winograd.transform_kernel(kernel, groups)


def conv2d_prepared(
    formulation: str,
    x: jax.Array,
    prepared_kernel: jax.Array,
    kernel_side: int,
    stride: int,
    groups: int,
    precision: lax.PrecisionLike = None,
) -> jax.Array:
    """:func:`conv2d` by ``formulation`` from :func:`prepare_kernel` of a ``kernel_side`` kernel;
    the values of ``_FORMULATIONS[formulation]`` on the kernel itself (the same operations).

    Raises:
      ValueError: ``formulation`` prepares nothing.
    """
    if formulation != "winograd":
        raise ValueError(f"formulation {formulation!r} has no prepared kernel")
    if stride > 1:
        x = _space_to_depth_input(x, kernel_side, stride)
        kernel_side = -(-kernel_side // stride)
    return winograd.conv_transformed(x, prepared_kernel, kernel_side, groups, precision)


def conv2d_with(
    x: jax.Array,
    kernel: jax.Array,
    stride: int,
    groups: int,
    precision: lax.PrecisionLike,
    formulations: Formulations,
) -> jax.Array:
    """:func:`conv2d` computed forward by ``formulations.forward``, and differentiated by the
    transposes of ``formulations.input_gradient`` (in the input) and ``formulations.kernel_gradient``
    (in the kernel).

    A convolution is linear in each argument, so each gradient is the transpose of one formulation
    in that argument alone, whichever formulation ran forward; what the primal computations of
    those transposes would compute is unused, and XLA drops it. The values equal JAX's gradients of
    any one formulation up to float32 summation order. With one formulation for all three roles
    this is that formulation, differentiated by JAX as a whole.
    """
    if len(set(formulations)) == 1:
        return _FORMULATIONS[formulations.forward](x, kernel, stride, groups, precision)
    return _conv_by_roles(x, kernel, stride, groups, precision, formulations)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv_by_roles(x, kernel, stride, groups, precision, formulations):
    return _FORMULATIONS[formulations.forward](x, kernel, stride, groups, precision)


def _conv_by_roles_forward(x, kernel, stride, groups, precision, formulations):
    return _conv_by_roles(x, kernel, stride, groups, precision, formulations), (x, kernel)


def _conv_by_roles_backward(stride, groups, precision, formulations, residuals, output_gradient):
    x, kernel = residuals
    by_input = _FORMULATIONS[formulations.input_gradient]
    by_kernel = _FORMULATIONS[formulations.kernel_gradient]
    _, input_pullback = jax.vjp(lambda x: by_input(x, kernel, stride, groups, precision), x)
    _, kernel_pullback = jax.vjp(lambda kernel: by_kernel(x, kernel, stride, groups, precision), kernel)
    return input_pullback(output_gradient)[0], kernel_pullback(output_gradient)[0]


_conv_by_roles.defvjp(_conv_by_roles_forward, _conv_by_roles_backward)


def _lax_conv(x, kernel, stride, groups, precision):
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride, stride),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
        precision=precision,
    )


def _lax_per_group_conv(x, kernel, stride, groups, precision):
    # Output channel o reads group o // (O // groups): each group's outputs are a contiguous block.
    inputs = jnp.split(x, groups, axis=-1)
    kernels = jnp.split(kernel, groups, axis=-1)
    outputs = [
        _lax_conv(part, part_kernel, stride, 1, precision)
        for part, part_kernel in zip(inputs, kernels, strict=True)
    ]
    return jnp.concatenate(outputs, axis=-1)


def _im2col_conv(x, kernel, stride, groups, precision):
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


def space_to_depth(x: jax.Array, kernel: jax.Array, stride: int) -> tuple[jax.Array, jax.Array]:
    """The stride-1 convolution equal to a ``stride`` one: ``(x', kernel')`` with blocks as channels.

    ``x`` (n, h, w, c) becomes (n, h', w', s·s·c) with ``x'[:, a, b, (p, q, c)] = x[:, s·a + p, s·b + q, c]``
    (zero rows and columns appended where the blocks pass the edge) and the k×k kernel, zero-padded to
    ``s·⌈k/s⌉``, becomes ⌈k/s⌉×⌈k/s⌉ over the same channel order. Padded input pixels meet only
    the zero taps, so a ``VALID`` stride-1 convolution of the pair gives the strided one's output.
    """
    return _space_to_depth_input(x, kernel.shape[0], stride), _space_to_depth_kernel(kernel, stride)


def _space_to_depth_input(x: jax.Array, kernel_side: int, stride: int) -> jax.Array:
    s, k = stride, kernel_side
    n, h, w, c = x.shape
    out_h, out_w = (h - k) // s + 1, (w - k) // s + 1
    blocks_k = -(-k // s)
    blocks_h, blocks_w = out_h + blocks_k - 1, out_w + blocks_k - 1
    x = jnp.pad(x, ((0, 0), (0, max(0, s * blocks_h - h)), (0, max(0, s * blocks_w - w)), (0, 0)))
    x = x[:, : s * blocks_h, : s * blocks_w]
    x = x.reshape(n, blocks_h, s, blocks_w, s, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, blocks_h, blocks_w, s * s * c)


def _space_to_depth_kernel(kernel: jax.Array, stride: int) -> jax.Array:
    s = stride
    k, _, c, out_features = kernel.shape
    blocks_k = -(-k // s)
    pad = s * blocks_k - k
    kernel = jnp.pad(kernel, ((0, pad), (0, pad), (0, 0), (0, 0)))
    kernel = kernel.reshape(blocks_k, s, blocks_k, s, c, out_features).transpose(0, 2, 1, 3, 4, 5)
    return kernel.reshape(blocks_k, blocks_k, s * s * c, out_features)


def _through_space_to_depth(stride_one_conv: Callable) -> Callable:
    """A formulation of any stride from one of stride 1, ``(x, kernel, groups, precision)``: a
    strided convolution goes through :func:`space_to_depth` first (grouped strided ones, in no
    SiamFC backbone, through im2col)."""

    def conv(x, kernel, stride, groups, precision):
        if stride > 1:
            if groups > 1:
                return _im2col_conv(x, kernel, stride, groups, precision)
            x, kernel = space_to_depth(x, kernel, stride)
        return stride_one_conv(x, kernel, groups, precision)

    return conv


@_through_space_to_depth
def _shift_conv(x, kernel, groups, precision):
    k, _, group_in, out_features = kernel.shape
    n, h, w, _ = x.shape
    out_h, out_w = h - k + 1, w - k + 1
    group_out = out_features // groups
    outputs = []
    for g in range(groups):
        x_group = x[..., g * group_in : (g + 1) * group_in]
        columns = jnp.concatenate([x_group[:, :, j : j + out_w] for j in range(k)], axis=-1)
        columns = columns.reshape(-1, k * group_in)
        shifted_products = []
        for i in range(k):
            # Kernel row i, (j, c) x o, is a contiguous block of the HWIO kernel (for one group):
            # no re-layout, which XLA:CPU would otherwise redo on every call.
            kernel_row = kernel[i, :, :, g * group_out : (g + 1) * group_out].reshape(k * group_in, group_out)
            product = jnp.dot(columns, kernel_row, precision=precision).reshape(n, h, out_w, group_out)
            shifted_products.append(product[:, i : i + out_h])
        outputs.append(functools.reduce(operator.add, shifted_products))
    return jnp.concatenate(outputs, axis=-1) if groups > 1 else outputs[0]


@_through_space_to_depth
def _row_block_conv(x, kernel, groups, precision):
    k, _, group_in, out_features = kernel.shape
    n, h, w, _ = x.shape
    out_h, out_w = h - k + 1, w - k + 1
    group_out = out_features // groups
    patch_row_bytes = out_w * k * k * group_in * jnp.dtype(x.dtype).itemsize
    block_rows = max(1, min(out_h, ROW_BLOCK_BYTES // patch_row_bytes))
    blocks_per_image = -(-out_h // block_rows)
    # Zero rows below the image let the last block be whole; its extra output rows are dropped.
    missing_rows = blocks_per_image * block_rows + k - 1 - h
    if missing_rows > 0:
        x = jnp.pad(x, ((0, 0), (0, missing_rows), (0, 0), (0, 0)))
    kernels = [
        kernel[..., g * group_out : (g + 1) * group_out].reshape(k * k * group_in, group_out)
        for g in range(groups)
    ]

    def block(index):
        image, first_row = index // blocks_per_image, (index % blocks_per_image) * block_rows
        rows = lax.dynamic_slice_in_dim(x, image, 1, axis=0)[0]
        rows = lax.dynamic_slice_in_dim(rows, first_row, block_rows + k - 1, axis=0)
        outputs = []
        for g, kernel_group in enumerate(kernels):
            rows_group = rows[..., g * group_in : (g + 1) * group_in]
            # Patch columns (kernel row, kernel column, channel): the HWIO kernel's row order.
            patches = jnp.concatenate(
                [rows_group[i : i + block_rows, j : j + out_w] for i in range(k) for j in range(k)],
                axis=-1,
            )
            outputs.append(
                jnp.dot(patches.reshape(-1, k * k * group_in), kernel_group, precision=precision)
            )
        output = jnp.concatenate(outputs, axis=-1) if groups > 1 else outputs[0]
        return output.reshape(block_rows, out_w, out_features)

    # Differentiated, each block's patches are rebuilt in the backward pass rather than kept from
    # the forward one: kept, they would be the whole patch matrix this loop avoids writing out
    # (fwd + bwd of a train step's 8 searches, 2-core AMD EPYC: conv1 216 -> 161 ms, conv2 380 -> 326).
    blocks = lax.map(jax.checkpoint(block), jnp.arange(n * blocks_per_image))
    return blocks.reshape(n, blocks_per_image * block_rows, out_w, out_features)[:, :out_h]


_FORMULATIONS: dict[str, Callable] = {
    "lax": _lax_conv,
    "lax_per_group": _lax_per_group_conv,
    "matmul": _im2col_conv,
    "shift": _shift_conv,
    "rows": _row_block_conv,
    "winograd": _through_space_to_depth(winograd.conv),
}


def conv_macs(x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], stride: int) -> int:
    """Multiply-adds of :func:`conv2d` on these shapes (the useful work of any formulation)."""
    k, _, group_in, out_features = kernel_shape
    n, h, w, _ = x_shape
    return n * ((h - k) // stride + 1) * ((w - k) // stride + 1) * out_features * k * k * group_in


def correlate(
    exemplar_features: jax.Array,
    search_features: jax.Array,
    precision: lax.PrecisionLike = None,
    method: str = "products",
) -> jax.Array:
    """Each exemplar feature map slid over its search maps (no scaling).

    Args:
      exemplar_features: (n, hz, wz, c).
      search_features: (n·k, hx, wx, c); map ``i`` is correlated with exemplar ``i % n``.
      precision: as for :func:`conv2d`.
      method: ``"lax"`` runs all pairs as one grouped convolution, ``"products"`` as one product
        per exemplar of its search maps' cells with its own cells, whose columns are then summed at
        their offsets (:data:`siamfc_jax.ops.plan.CORRELATIONS`).

    Returns:
      (n·k, hx − hz + 1, wx − wz + 1) responses.
    """
    n, hz, wz, c = exemplar_features.shape
    m, hx, wx, _ = search_features.shape
    k = m // n
    out_h, out_w = hx - hz + 1, wx - wz + 1
    if method == "lax":
        stacked = search_features.reshape(k, n, hx, wx, c).transpose(0, 2, 3, 1, 4).reshape(k, hx, wx, n * c)
        kernels = exemplar_features.transpose(1, 2, 3, 0)  # HWIO: output channel j sees group j
        responses = conv2d(stacked, kernels, 1, n, precision, "lax")
        return responses.transpose(0, 3, 1, 2).reshape(m, out_h, out_w)
    # "products": one product per exemplar of its search maps' cells with its own cells,
    # (hx·wx, c) × (c, hz·wz), then response (y, x) sums product column (i, j) at cell (y + i, x + j):
    # the products hold only hz·wz values a search cell and the sum reads them once. Tracking's 3
    # AlexNetV1 scales alone, 2-core Xeon: 0.35 ms, against 1.5 ms as a "shift" convolution (the
    # column shifts of every search map copied, then one product per kernel row with a single
    # output column), itself 3.5x faster than XLA:CPU's convolution; a train step's 8 pairs,
    # forward and backward: 2.1 ms, against 2.5 ms with the shifts. The gradient of XLA:CPU's
    # n-group convolution costs about 20x its forward pass.
    cells = hz * wz
    if n == 1:
        # One exemplar (tracking): a plain matrix product; as a batched one of one batch it ran slower.
        search_cells = search_features.reshape(m * hx * wx, c)
        products = jnp.dot(search_cells, exemplar_features.reshape(cells, c).T, precision=precision)
    else:
        products = jnp.einsum(
            "knpc,nqc->knpq",
            search_features.reshape(k, n, hx * wx, c),
            exemplar_features.reshape(n, cells, c),
            precision=precision,
        )
    products = products.reshape(m, hx, wx, cells)
    return functools.reduce(
        operator.add,
        (products[:, i : i + out_h, j : j + out_w, i * wz + j] for i in range(hz) for j in range(wz)),
    )
