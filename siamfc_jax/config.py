"""Frozen configuration dataclasses.

Every default equals the one siamfc-pytorch (huanglianghua/siamfc-pytorch, ``TrackerSiamFC.parse_args``)
uses, so a default-constructed config reproduces that implementation. Sizes are in pixels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

BACKBONES = ("v1", "v2", "v3")


@dataclass(frozen=True)
class ModelConfig:
    """The network: which AlexNet variant and the response scale of the correlation head."""

    backbone: str = "v1"
    out_scale: float = 0.001

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")


@dataclass(frozen=True)
class TrackerConfig:
    """Inference hyper-parameters of the SiamFC tracker (siamfc-pytorch defaults).

    ``precision`` is the matmul/convolution precision of the tracker's device computation:
    ``"highest"`` keeps float32 convolutions exact on GPUs (JAX's default there is TF32), which is what
    keeps the boxes equal to siamfc-pytorch's; ``"default"`` lets the GPU use TF32.
    """

    exemplar_sz: int = 127
    instance_sz: int = 255
    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_lr: float = 0.59
    scale_penalty: float = 0.9745
    window_influence: float = 0.176
    response_sz: int = 17
    response_up: int = 16
    total_stride: int = 8
    precision: str = "highest"

    def __post_init__(self) -> None:
        if self.scale_num < 1 or self.scale_num % 2 == 0:
            raise ValueError(f"scale_num must be a positive odd number, got {self.scale_num}")
        if self.precision not in ("highest", "high", "default"):
            raise ValueError(f"precision must be highest, high or default, got {self.precision!r}")

    @property
    def upscale_sz(self) -> int:
        """Side of the upsampled response map (272 for the defaults)."""
        return self.response_sz * self.response_up


@dataclass(frozen=True)
class LossConfig:
    """Label map and balanced logistic loss (radii in pixels of the search image)."""

    r_pos: float = 16.0
    r_neg: float = 0.0
    total_stride: int = 8
    neg_weight: float = 1.0


@dataclass(frozen=True)
class OptimConfig:
    """SGD with momentum and coupled weight decay, learning rate decaying exponentially per epoch."""

    epochs: int = 50
    batch_size: int = 8
    initial_lr: float = 1e-2
    ultimate_lr: float = 1e-5
    weight_decay: float = 5e-4
    momentum: float = 0.9


@dataclass(frozen=True)
class PairConfig:
    """How training pairs are sampled and augmented (siamfc-pytorch's ``Pair`` and transforms)."""

    exemplar_sz: int = 127
    instance_sz: int = 255
    context: float = 0.5
    pairs_per_seq: int = 1
    max_frame_gap: int = 100
    max_stretch: float = 0.05
    color_jitter: bool = False
    grayscale_prob: float = 0.0

    @property
    def search_sz(self) -> int:
        """Side of the search image after the centre (−8) and random (−8) crops: 239 by default."""
        return self.instance_sz - 16


def replace(config, **changes):
    """``dataclasses.replace`` that ignores ``None`` values, so unset CLI flags keep the defaults."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
