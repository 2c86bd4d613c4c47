"""Convolution and BatchNorm layers with PyTorch's semantics, in NHWC.

Flax's own ``nn.BatchNorm`` updates the running variance with the *biased* batch variance, whereas
PyTorch uses the unbiased one; weights trained here must behave identically in siamfc-pytorch, so
BatchNorm is written out. It also counts ``num_batches_tracked`` so that a ``state_dict`` survives a
round trip through Flax bit for bit.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from siamfc_jax.ops.conv import Formulations, conv2d, conv2d_prepared, conv2d_with, prepare_kernel

# The Flax collection of kernels prepared for the formulation that runs them forward
# (:func:`siamfc_jax.ops.conv.prepare_kernel`), computed once for inference by applying a network
# with this collection mutable; see :class:`Conv2d`.
PREPARED = "prepared"

PrecisionLike = lax.Precision | str | None
Dtype = Any


class Conv2d(nn.Module):
    """``VALID`` convolution with bias, optionally grouped.

    ``formulations`` says how each role is computed (:mod:`siamfc_jax.ops.conv`; a network takes
    them from its :class:`~siamfc_jax.ops.plan.ConvPlan`): called with ``train=False`` the layer
    runs ``formulations.forward``; with ``train=True`` (a call that will be differentiated) each
    gradient by its own formulation (:func:`~siamfc_jax.ops.conv.conv2d_with`).

    Kernel layout is HWIO: ``(k, k, in_features // groups, features)``; output channel ``o`` belongs to
    group ``o // (features // groups)``, as in PyTorch. Parameters are stored in ``param_dtype`` and the
    convolution runs in ``dtype``.

    In eval mode, a formulation that first transforms the kernel (``"winograd"``) takes the transform
    from the :data:`PREPARED` collection where the variables hold one (``<formulation>_kernel``),
    so that a tracker computes it once rather than every frame. Applied with :data:`PREPARED`
    mutable, the layer stores the transform it computes there (not while initialising). The
    prepared kernel must come from the same weights, and for a convolution given an
    ``output_scale``, the same scale (an inference-mode BatchNorm's multiplier, folded into the
    kernel before it is transformed): it replaces them for this formulation.
    """

    features: int
    kernel_size: int
    stride: int = 1
    groups: int = 1
    precision: PrecisionLike = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    formulations: Formulations = Formulations("lax", "lax", "lax")

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        add_bias: bool = True,
        output_scale: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        """(N, H, W, C) → (N, H', W', features); with ``add_bias=False`` the bias is left out (a
        BatchNorm after it takes it instead); ``output_scale`` (features,) multiplies each output
        channel, folded into the kernel (an inference-mode BatchNorm's scale); ``train`` picks the
        formulations as the class docstring says."""
        in_features = x.shape[-1]
        if in_features % self.groups or self.features % self.groups:
            raise ValueError(
                f"channels {in_features}->{self.features} are not divisible by groups={self.groups}"
            )
        k = self.kernel_size
        kernel = self.param(
            "kernel",
            nn.initializers.xavier_uniform(),
            (k, k, in_features // self.groups, self.features),
            self.param_dtype,
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
        kernel = kernel.astype(self.dtype)
        if output_scale is not None:
            kernel = kernel * output_scale.astype(self.dtype)
        output = self._convolve(x.astype(self.dtype), kernel, train)
        return output + bias.astype(self.dtype) if add_bias else output

    def _convolve(self, x: jax.Array, kernel: jax.Array, train: bool) -> jax.Array:
        if train:
            return conv2d_with(x, kernel, self.stride, self.groups, self.precision, self.formulations)
        formulation = self.formulations.forward
        if not self.is_initializing():
            name = f"{formulation}_kernel"
            prepared = self.get_variable(PREPARED, name) if self.has_variable(PREPARED, name) else None
            if prepared is None and self.is_mutable_collection(PREPARED):
                prepared = prepare_kernel(formulation, kernel, self.stride, self.groups)
                if prepared is not None:
                    self.put_variable(PREPARED, name, prepared)
            if prepared is not None:
                return conv2d_prepared(
                    formulation, x, prepared, self.kernel_size, self.stride, self.groups, self.precision
                )
        return conv2d(x, kernel, self.stride, self.groups, self.precision, formulation)


class BatchNorm(nn.Module):
    """BatchNorm of ``features`` channels over N, H, W with PyTorch's update rule.

    ``momentum`` follows Flax's convention (weight of the old running value): PyTorch's 0.05 is 0.95.
    With ``axis_name`` set, batch statistics are averaged over that mapped axis, so a data-parallel
    step normalises with the statistics of the global batch (equal shards assumed). Statistics are
    computed and kept in at least float32 whatever the compute ``dtype``.

    ``input_offset`` (C,) is a per-channel constant the layer's input is ``x + input_offset``: the
    bias of the convolution before it. A batch's normalisation subtracts it again, so in training it
    is only added to the running mean and its gradient is zero (PyTorch computes that zero as a sum
    of rounding errors); the convolution then skips adding it, a pass over its output.

    In inference the layer is a per-channel affine map, :meth:`inference_affine`, which a network
    may fold into its neighbours instead of calling the layer.
    """

    features: int
    momentum: float = 0.95
    epsilon: float = 1e-6
    axis_name: str | None = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def setup(self) -> None:
        stats_dtype = self.stats_dtype
        shape = (self.features,)
        self.scale = self.param("scale", nn.initializers.ones, shape, self.param_dtype)
        self.bias = self.param("bias", nn.initializers.zeros, shape, self.param_dtype)
        self.running_mean = self.variable("batch_stats", "mean", jnp.zeros, shape, stats_dtype)
        self.running_var = self.variable("batch_stats", "var", jnp.ones, shape, stats_dtype)
        self.num_batches = self.variable("batch_stats", "num_batches_tracked", jnp.zeros, (), jnp.int32)

    @property
    def stats_dtype(self) -> Dtype:
        """The type statistics are computed and kept in: ``param_dtype``, at least float32."""
        return jnp.promote_types(self.param_dtype, jnp.float32)

    def inference_affine(self, input_offset: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """``(multiplier, shift)``, each (C,) in the statistics' type: in inference the layer maps
        ``x`` to ``x · multiplier + shift`` (with ``input_offset`` added to ``x`` first)."""
        multiplier = lax.rsqrt(self.running_var.value + self.epsilon) * self.scale
        mean = self.running_mean.value
        if input_offset is not None:
            mean = mean - lax.stop_gradient(input_offset).astype(mean.dtype)
        return multiplier, self.bias - mean * multiplier

    def __call__(self, x: jax.Array, train: bool, input_offset: jax.Array | None = None) -> jax.Array:
        """(N, H, W, C) → the same shape, normalised, scaled and shifted, in ``dtype``."""
        if x.shape[-1] != self.features:
            raise ValueError(f"BatchNorm of {self.features} channels got an input of {x.shape[-1]}")
        x = x.astype(jnp.promote_types(self.dtype, self.stats_dtype))
        if not train:
            multiplier, shift = self.inference_affine(input_offset)
            return (x * multiplier + shift).astype(self.dtype)
        offset = None if input_offset is None else lax.stop_gradient(input_offset).astype(x.dtype)
        y, mean, var = batch_normalize(
            x, self.scale.astype(x.dtype), self.bias.astype(x.dtype), self.epsilon, self.axis_name
        )
        if not self.is_initializing():
            count = x.size // self.features * (1 if self.axis_name is None else lax.axis_size(self.axis_name))
            unbiased_var = var * (count / max(count - 1, 1))
            if offset is not None and self.axis_name is not None:
                # Each shard differentiates its own replica of the parameters, so the offset is
                # typed as varying over the mesh while its values are equal: their maximum is that
                # value, exactly, and typed as the one value the running mean needs.
                offset = lax.pmax(offset, self.axis_name)
            batch_mean = mean if offset is None else mean + offset
            keep = self.momentum
            self.running_mean.value = keep * self.running_mean.value + (1 - keep) * batch_mean
            self.running_var.value = keep * self.running_var.value + (1 - keep) * unbiased_var
            self.num_batches.value = self.num_batches.value + 1
        return y.astype(self.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_normalize(
    x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float, axis_name: str | None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Train-mode BatchNorm of (N, H, W, C) ``x`` by its batch statistics over N, H, W (and
    ``axis_name``): ``(y, mean, var)``, ``var`` the biased variance.

    Differentiated (in ``x``, ``scale`` and ``bias``; ``mean`` and ``var`` are statistics, not
    differentiated) by the closed form PyTorch uses, two reductions and one pass, rather than by
    JAX's derivative of each step (:func:`_batch_normalize_backward`).
    """
    return _batch_normalize_forward(x, scale, bias, epsilon, axis_name)[0]


def _batch_normalize_forward(x, scale, bias, epsilon, axis_name):
    reduce_axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axis=reduce_axes)
    if axis_name is not None:
        mean = lax.pmean(mean, axis_name)
    centred = x - mean
    # Two-pass variance: E[(x - mean)^2] is what PyTorch computes, and unlike E[x^2] - mean^2 it
    # does not cancel catastrophically on ReLU'd activations.
    var = jnp.mean(jnp.square(centred), axis=reduce_axes)
    if axis_name is not None:
        var = lax.pmean(var, axis_name)
    inverse_std = lax.rsqrt(var + epsilon)
    y = centred * (inverse_std * scale) + bias
    return (y, mean, var), (x, mean, inverse_std, scale)


def _batch_normalize_backward(epsilon, axis_name, residuals, cotangents):
    """With x̂ = (x − mean) / std over the M elements of a channel (all shards):
    dx = scale / std · (dy − Σdy / M − x̂ · Σ(dy · x̂) / M), dscale = Σ(dy · x̂), dbias = Σdy.

    The parameter gradients sum this shard's elements (each shard differentiates its own replica
    of the parameters, :mod:`siamfc_jax.training.step`); the statistics' terms sum over all shards,
    as the derivative of the shared mean and variance does.
    """
    del epsilon
    x, mean, inverse_std, scale = residuals
    output_gradient = cotangents[0]
    reduce_axes = tuple(range(x.ndim - 1))
    normalized = (x - mean) * inverse_std
    bias_gradient = jnp.sum(output_gradient, axis=reduce_axes)
    scale_gradient = jnp.sum(output_gradient * normalized, axis=reduce_axes)
    count = x.size // x.shape[-1]
    total_bias_gradient, total_scale_gradient = bias_gradient, scale_gradient
    if axis_name is not None:
        total_bias_gradient = lax.psum(bias_gradient, axis_name)
        total_scale_gradient = lax.psum(scale_gradient, axis_name)
        count = count * lax.axis_size(axis_name)
    input_gradient = (inverse_std * scale) * (
        output_gradient - total_bias_gradient / count - normalized * (total_scale_gradient / count)
    )
    return input_gradient, scale_gradient, bias_gradient


batch_normalize.defvjp(_batch_normalize_forward, _batch_normalize_backward)


def max_pool(x: jax.Array, window: int, stride: int, separable: bool = False) -> jax.Array:
    """``VALID`` max pooling over H and W (PyTorch ``MaxPool2d(window, stride)``, floor mode).

    By default one ``reduce_window``, through Flax's ``max_pool``: it lowers to the same StableHLO
    as a direct call, but converters recognise it: jax2onnx turns it into a 2-D ONNX ``MaxPool``,
    whereas a raw 4-D ``reduce_window`` becomes a 4-D ``MaxPool`` that onnxruntime rejects
    ("Unsupported pooling size"). ``separable=True`` pools the columns of each row (a ``window``
    × 1 ``reduce_window``), then the rows of that (1 × ``window``): the same values (a maximum is
    exact), and on XLA:CPU 4x faster forward and 3-5x faster with its gradient, which routes each
    window's gradient to the first of its maxima in row-major order, as PyTorch's and
    ``reduce_window``'s do (2-core AMD EPYC: conv1's pool on 3 AlexNetV1 searches 1.0 ms against
    4.0 ms; forward and backward on a train step's 8 searches 20 ms against 80 ms, 26 against
    142 before :func:`~siamfc_jax.runtime.keep_freed_host_memory` kept the pages). Its output
    is a ``reduce_window``, which XLA:CPU computes once; the maximum of strided slices, as fast
    alone, would be fused into, and recomputed by, each of the next convolution's slices.
    """
    if not separable:
        return nn.max_pool(x, window_shape=(window, window), strides=(stride, stride), padding="VALID")
    return _separable_max_pool(x, window, stride)


def _pooled_span(side: int, window: int, stride: int) -> int:
    """Input rows (or columns) from the first window's start to the last window's start, inclusive."""
    return stride * ((side - window) // stride) + 1


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _separable_max_pool(x: jax.Array, window: int, stride: int) -> jax.Array:
    lowest = jnp.array(-jnp.inf, x.dtype)
    rows = lax.reduce_window(x, lowest, lax.max, (1, window, 1, 1), (1, stride, 1, 1), "VALID")
    return lax.reduce_window(rows, lowest, lax.max, (1, 1, window, 1), (1, 1, stride, 1), "VALID")


def _separable_max_pool_forward(x, window, stride):
    pooled = _separable_max_pool(x, window, stride)
    return pooled, (x, pooled)


def _separable_max_pool_backward(window, stride, residuals, cotangent):
    """Each window's gradient to its first maximum in row-major order, as PyTorch's.

    The window position of that maximum is found first, one small integer per window. Then each
    residue class of the input rows and columns modulo the stride is summed on its own grid, where
    window element (i, j) of window (p, q) lands at (p + i // stride, q + j // stride): plain
    shifts, no strided placement, and the classes interleaved once at the end (2-core AMD EPYC,
    8 × 115 × 115 × 96, pool forward and backward: 20 ms, against 25 ms placing each element by
    interior padding).
    """
    x, pooled = residuals
    n, height, width, channels = x.shape
    pooled_h, pooled_w = pooled.shape[1:3]
    span_h, span_w = _pooled_span(height, window, stride), _pooled_span(width, window, stride)
    zero = jnp.zeros((), x.dtype)
    positions = window * window
    first = jnp.full(pooled.shape, positions, jnp.int8)
    for position in reversed(range(positions)):  # the last write, the first position, wins
        i, j = divmod(position, window)
        is_max = x[:, i : i + span_h : stride, j : j + span_w : stride] == pooled
        first = jnp.where(is_max, jnp.int8(position), first)
    # Input row r = stride * t + r % stride is row t of class r % stride.
    grid_h, grid_w = -(-height // stride), -(-width // stride)
    classes: dict[tuple[int, int], jax.Array] = {}
    for position in range(positions):
        i, j = divmod(position, window)
        shift_h, shift_w = i // stride, j // stride
        placement = (
            (0, 0, 0),
            (shift_h, grid_h - pooled_h - shift_h, 0),
            (shift_w, grid_w - pooled_w - shift_w, 0),
            (0, 0, 0),
        )
        term = lax.pad(jnp.where(first == position, cotangent, zero), zero, placement)
        key = (i % stride, j % stride)
        classes[key] = term + classes[key] if key in classes else term
    empty = jnp.zeros((n, grid_h, grid_w, channels), x.dtype)  # a class no window reaches
    rows = [
        jnp.stack([classes.get((a, b), empty) for b in range(stride)], axis=3) for a in range(stride)
    ]
    grad = jnp.stack(rows, axis=2).reshape(n, grid_h * stride, grid_w * stride, channels)
    return (grad[:, :height, :width],)


_separable_max_pool.defvjp(_separable_max_pool_forward, _separable_max_pool_backward)
