"""The three AlexNet backbones of siamfc-pytorch (``AlexNetV1``, ``AlexNetV2``, ``AlexNetV3``).

Each is five blocks ``conv1`` … ``conv5``; block ``convN`` holds a convolution ``conv`` and, where
siamfc-pytorch has one, a BatchNorm ``bn``, which map to the PyTorch keys ``backbone.convN.0.*`` and
``backbone.convN.1.*``. Inputs are NHWC float RGB images in 0–255 (no mean subtraction); a 127×127
exemplar gives the correlation kernel and a 255×255 search image the map it slides over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from siamfc_jax.models.layers import BatchNorm, Conv2d, Dtype, PrecisionLike, max_pool
from siamfc_jax.ops.conv import Formulations
from siamfc_jax.ops.plan import ConvPlan, plan_or_default


@dataclass(frozen=True)
class Block:
    """One ``convN`` stage: convolution, then optional BatchNorm, ReLU and 3×3 max pooling."""

    features: int
    kernel_size: int
    stride: int = 1
    groups: int = 1
    norm: bool = True
    relu: bool = True
    pool_stride: int | None = None


POOL_WINDOW = 3  # every max pooling of the three backbones is 3×3


def _valid_size(side: int, window: int, stride: int) -> int:
    """Output side of a ``VALID`` window of ``window`` pixels at ``stride`` over ``side`` (0 if none fit)."""
    return max(0, (side - window) // stride + 1)


class AlexNet(nn.Module):
    """A SiamFC AlexNet defined by its class-level ``blocks``; use the V1/V2/V3 subclasses.

    ``output_stride`` is the input pixels per feature cell (8 for V1/V3, 4 for V2).
    """

    blocks: ClassVar[tuple[Block, ...]] = ()
    output_stride: ClassVar[int] = 8

    @classmethod
    def feature_size(cls, side: int) -> int:
        """Side of the feature map of a ``side``×``side`` image (0 when the image is too small).

        Every convolution and pooling is ``VALID``, as in siamfc-pytorch: 127 → 6 and 255 → 22 for
        V1/V3, 127 → 17 and 255 → 49 for V2.
        """
        for block in cls.blocks:
            side = _valid_size(side, block.kernel_size, block.stride)
            if block.pool_stride is not None:
                side = _valid_size(side, POOL_WINDOW, block.pool_stride)
        return side

    @classmethod
    def receptive_field(cls) -> int:
        """Side in pixels of the smallest image with a 1×1 feature map (87 for V1/V3, 63 for V2)."""
        side = 1
        for block in reversed(cls.blocks):
            if block.pool_stride is not None:
                side = (side - 1) * block.pool_stride + POOL_WINDOW
            side = (side - 1) * block.stride + block.kernel_size
        return side

    @classmethod
    def conv_shapes(cls, batch: int, side: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
        """``(input NHWC shape, kernel HWIO shape)`` of each convolution, ``conv1`` first, for
        ``batch`` RGB images of ``side``×``side`` pixels (what each layer of a workload computes)."""
        shapes = []
        channels = 3
        for block in cls.blocks:
            kernel = (block.kernel_size, block.kernel_size, channels // block.groups, block.features)
            shapes.append(((batch, side, side, channels), kernel))
            side = _valid_size(side, block.kernel_size, block.stride)
            if block.pool_stride is not None:
                side = _valid_size(side, POOL_WINDOW, block.pool_stride)
            channels = block.features
        return tuple(shapes)

    axis_name: str | None = None
    precision: PrecisionLike = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    plan: ConvPlan | None = None

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
        """Features of ``images`` (N, H, W, 3) RGB 0–255 → (N, H', W', C).

        ``train=True`` normalises with batch statistics and updates the running averages (call
        ``apply`` with ``mutable=["batch_stats"]``); ``train=False`` uses the running averages.
        Computation runs in ``dtype`` (float32 by default), parameters are kept in ``param_dtype``;
        ``plan`` says how convolutions and poolings are computed (:class:`~siamfc_jax.ops.plan.ConvPlan`:
        block ``convN`` takes its layer's formulations, forward only unless ``train``; None: the
        platform's :func:`~siamfc_jax.ops.plan.default_plan`).
        """
        plan = plan_or_default(self.plan)
        x = images.astype(self.dtype)
        for index, block in enumerate(self.blocks, start=1):
            x = _ConvBlock(
                block,
                self.axis_name,
                self.precision,
                self.dtype,
                self.param_dtype,
                plan.layer(index),
                plan.separable_pool,
                name=f"conv{index}",
            )(x, train)
        return x


class _ConvBlock(nn.Module):
    block: Block
    axis_name: str | None
    precision: PrecisionLike
    dtype: Dtype
    param_dtype: Dtype
    formulations: Formulations
    separable_pool: bool

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b = self.block
        dtypes = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        conv = Conv2d(
            b.features,
            b.kernel_size,
            b.stride,
            b.groups,
            self.precision,
            **dtypes,
            formulations=self.formulations,
            name="conv",
        )
        separable = self.separable_pool
        if not b.norm:
            x = conv(x, train=train)
        else:
            bn = BatchNorm(
                b.features, momentum=0.95, epsilon=1e-6, axis_name=self.axis_name, **dtypes, name="bn"
            )
            if train:
                # Before a train-mode BatchNorm the convolution's bias cancels: BatchNorm takes it.
                x = conv(x, add_bias=False, train=True)
                x = bn(x, train, conv.variables["params"]["bias"])
            else:
                return self._inference_norm_block(conv, bn, x, separable)
        if b.relu:
            x = nn.relu(x)
        if b.pool_stride is not None:
            x = max_pool(x, POOL_WINDOW, b.pool_stride, separable)
        return x

    def _inference_norm_block(self, conv: Conv2d, bn: BatchNorm, x: jax.Array, separable: bool) -> jax.Array:
        """The block in inference: BatchNorm's multiplier folded into the kernel, and its shift
        (with the convolution's bias) and the ReLU applied after the pooling, which commutes with
        both (a maximum moves with a per-channel constant and with a ReLU); the same values up to
        float32 rounding. Nothing then passes over the convolution's output but the pooling,
        which reads it at 4x the size of its own output (3 AlexNetV1 searches, 2-core Xeon:
        conv1 block 14.0 -> 13.5 ms, conv2 block 21.9 -> 21.2 ms)."""
        b = self.block
        # The multiplier goes into the kernel, so it is needed before the convolution; the shift
        # takes the convolution's bias, which exists once the convolution has been called.
        multiplier, _ = bn.inference_affine()
        x = conv(x, add_bias=False, output_scale=multiplier)
        _, shift = bn.inference_affine(conv.variables["params"]["bias"])
        shift = shift.astype(x.dtype)
        if b.pool_stride is not None:
            x = max_pool(x, POOL_WINDOW, b.pool_stride, separable)
        x = x + shift
        return nn.relu(x) if b.relu else x


class AlexNetV1(AlexNet):
    """Grouped AlexNet, stride 8: 127 → 6×6×256, 255 → 22×22×256. No BN or ReLU after conv5."""

    output_stride: ClassVar[int] = 8
    blocks: ClassVar[tuple[Block, ...]] = (
        Block(96, 11, stride=2, pool_stride=2),
        Block(256, 5, groups=2, pool_stride=2),
        Block(384, 3),
        Block(384, 3, groups=2),
        Block(256, 3, groups=2, norm=False, relu=False),
    )


class AlexNetV2(AlexNet):
    """Stride-4 variant (second pool has stride 1), 32 output channels: 127 → 17×17×32."""

    output_stride: ClassVar[int] = 4
    blocks: ClassVar[tuple[Block, ...]] = (
        Block(96, 11, stride=2, pool_stride=2),
        Block(256, 5, groups=2, pool_stride=1),
        Block(384, 3),
        Block(384, 3, groups=2),
        Block(32, 3, groups=2, norm=False, relu=False),
    )


class AlexNetV3(AlexNet):
    """Wide ungrouped variant with BN (no ReLU) after conv5: 127 → 6×6×512, 255 → 22×22×512."""

    output_stride: ClassVar[int] = 8
    blocks: ClassVar[tuple[Block, ...]] = (
        Block(192, 11, stride=2, pool_stride=2),
        Block(512, 5, pool_stride=2),
        Block(768, 3),
        Block(768, 3),
        Block(512, 3, relu=False),
    )


BACKBONE_CLASSES: dict[str, type[AlexNet]] = {"v1": AlexNetV1, "v2": AlexNetV2, "v3": AlexNetV3}


def backbone_class(name: str) -> type[AlexNet]:
    """The backbone class for ``"v1"``, ``"v2"`` or ``"v3"``."""
    try:
        return BACKBONE_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONE_CLASSES)}") from None
