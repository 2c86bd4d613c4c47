"""Frozen configuration dataclasses.

Every default equals the one siamfc-pytorch (huanglianghua/siamfc-pytorch, ``TrackerSiamFC.parse_args``)
uses, so a default-constructed config reproduces that implementation (the tracker's response geometry,
left unset, follows the network: for AlexNetV1 it is siamfc-pytorch's). Sizes are in pixels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

BACKBONES = ("v1", "v2", "v3")
# The convolution formulations of siamfc_jax.ops.conv (which imports this tuple).
CONV_IMPLS = ("auto", "lax", "matmul", "shift")


@dataclass(frozen=True)
class ModelConfig:
    """The network: which AlexNet variant and the response scale of the correlation head."""

    backbone: str = "v1"
    out_scale: float = 0.001

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")


class ConfigError(ValueError):
    """An invalid configuration value; ``field`` names the offending dataclass field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check(condition: bool, field: str, requirement: str, value: object) -> None:
    if not condition:
        raise ConfigError(field, f"{field} must be {requirement}, got {value!r}")


@dataclass(frozen=True)
class TrackerConfig:
    """Inference hyper-parameters of the SiamFC tracker (siamfc-pytorch defaults).

    ``response_sz`` (side of the raw response map) and ``total_stride`` (pixels of the search image
    per response cell) are properties of the network: left at None they follow the backbone
    (17 and 8 for AlexNetV1 and V3, 33 and 4 for AlexNetV2, with 127/255 crops), which
    :func:`siamfc_jax.tracker.fit_config` fills in; an explicit value must agree with the network.

    ``precision`` is the matmul/convolution precision of the tracker's device computation:
    ``"highest"`` keeps float32 convolutions exact on GPUs (JAX's default there is TF32), which is what
    keeps the boxes equal to siamfc-pytorch's; ``"default"`` lets the GPU use TF32. ``conv_impl``
    picks the convolution formulation (:mod:`siamfc_jax.ops.conv`; ``"auto"``: on the CPU the one
    measured fastest per layer on the machine, ``lax`` convolutions elsewhere).
    """

    exemplar_sz: int = 127
    instance_sz: int = 255
    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_lr: float = 0.59
    scale_penalty: float = 0.9745
    window_influence: float = 0.176
    response_sz: int | None = None
    response_up: int = 16
    total_stride: int | None = None
    precision: str = "highest"
    conv_impl: str = "auto"

    def __post_init__(self) -> None:
        _check(self.exemplar_sz >= 1, "exemplar_sz", "a positive number of pixels", self.exemplar_sz)
        _check(
            self.instance_sz >= self.exemplar_sz,
            "instance_sz",
            f"at least exemplar_sz ({self.exemplar_sz})",
            self.instance_sz,
        )
        _check(
            math.isfinite(self.context) and self.context >= 0, "context", "finite and >= 0", self.context
        )
        _check(
            self.scale_num >= 1 and self.scale_num % 2 == 1,
            "scale_num",
            "a positive odd number",
            self.scale_num,
        )
        _check(
            math.isfinite(self.scale_step) and self.scale_step > 0,
            "scale_step",
            "finite and > 0",
            self.scale_step,
        )
        _check(0 <= self.scale_lr <= 1, "scale_lr", "in [0, 1]", self.scale_lr)
        _check(0 < self.scale_penalty <= 1, "scale_penalty", "in (0, 1]", self.scale_penalty)
        _check(0 <= self.window_influence <= 1, "window_influence", "in [0, 1]", self.window_influence)
        _check(self.response_up >= 1, "response_up", "a positive integer", self.response_up)
        for name in ("response_sz", "total_stride"):
            value = getattr(self, name)
            _check(value is None or value >= 1, name, "None or a positive integer", value)
        _check(
            self.precision in ("highest", "high", "default"),
            "precision",
            "highest, high or default",
            self.precision,
        )
        _check(
            self.conv_impl in CONV_IMPLS, "conv_impl", ", ".join(CONV_IMPLS), self.conv_impl
        )

    @property
    def upscale_sz(self) -> int:
        """Side of the upsampled response map (272 for AlexNetV1 with the defaults).

        Raises:
            ConfigError: ``response_sz`` is not set yet (see :func:`siamfc_jax.tracker.fit_config`).
        """
        if self.response_sz is None:
            raise ConfigError(
                "response_sz", "response_sz is not set: fit the config to the network first"
            )
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


# The short schedule that ``python train.py`` applies to the synthetic world (its default data) where
# no flag says otherwise: it finishes in about a quarter of an hour on a 2-core CPU. Real datasets
# keep siamfc-pytorch's defaults (50 epochs, one pair per sequence per epoch).
SYNTHETIC_SCHEDULE = {"epochs": 6, "pairs_per_seq": 1}


@dataclass(frozen=True)
class TrainConfig:
    """A training run: model, optimiser, loss, pair sampling, data and bookkeeping.

    ``data`` is ``synthetic`` (the generated world, curated into TFDS), ``got10k:DIR``, ``vid:DIR``
    or ``folder:DIR`` (curated into TFDS from the dataset at DIR). ``synthetic_sequences`` sizes the
    synthetic training set. ``val_sequences`` validation sequences are tracked at the end of every
    epoch (synthetic ones, or GOT-10k ``val`` when training on GOT-10k); 0 disables it.
    """

    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    loss: LossConfig = LossConfig()
    pairs: PairConfig = PairConfig()
    data: str = "synthetic"
    data_dir: str | None = None
    workdir: str = "runs/siamfc"
    seed: int = 0
    workers: int = 0
    synthetic_sequences: int = 300
    val_sequences: int = 3
    save_every_steps: int = 0
    keep_checkpoints: int = 3
    log_every_steps: int = 10

    def __post_init__(self) -> None:
        for name in ("seed", "workers", "save_every_steps", "val_sequences"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.keep_checkpoints < 1 or self.log_every_steps < 1 or self.synthetic_sequences < 2:
            raise ValueError("keep_checkpoints and log_every_steps must be >= 1, synthetic_sequences >= 2")
