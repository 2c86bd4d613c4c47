"""Frozen configuration dataclasses.

Every default equals the one siamfc-pytorch (huanglianghua/siamfc-pytorch, ``TrackerSiamFC.parse_args``)
uses, so a default-constructed config reproduces that implementation (the tracker's response geometry,
left unset, follows the network: for AlexNetV1 it is siamfc-pytorch's). Sizes are in pixels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BACKBONES = ("v1", "v2", "v3")
# The tracker's matmul/convolution precisions (JAX's names; TrackerConfig.precision).
TRACKER_PRECISIONS = ("highest", "high", "default")
# The network's compute types (TrackerConfig and TrainConfig.compute_dtype); parameters stay float32.
COMPUTE_DTYPES = ("float32", "bfloat16")
# Names of the synthetic worlds (their settings: siamfc_jax.synthetic.config.WORLDS).
SYNTHETIC_WORLDS = ("basic", "rich")


class ConfigError(ValueError):
    """An invalid configuration value; ``field`` names the offending dataclass field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check(condition: bool, field: str, requirement: str, value: object) -> None:
    if not condition:
        raise ConfigError(field, f"{field} must be {requirement}, got {value!r}")


def _check_compute_dtype(value: str) -> None:
    _check(value in COMPUTE_DTYPES, "compute_dtype", " or ".join(COMPUTE_DTYPES), value)


@dataclass(frozen=True)
class ModelConfig:
    """The network: which AlexNet variant and the response scale of the correlation head."""

    backbone: str = "v1"
    out_scale: float = 0.001

    def __post_init__(self) -> None:
        _check(self.backbone in BACKBONES, "backbone", f"one of {BACKBONES}", self.backbone)
        _check(math.isfinite(self.out_scale), "out_scale", "finite", self.out_scale)


@dataclass(frozen=True)
class CropConfig:
    """The crop geometry SiamFC trains and tracks with (siamfc-pytorch's defaults).

    A target box ``(w, h)`` with its context margin ``context * (w + h)`` on each axis spans a
    square of side ``sqrt((w + p) * (h + p))`` (``p`` the margin), which is resized to
    ``exemplar_sz`` pixels; the search square around it is ``instance_sz / exemplar_sz`` times larger
    and resized to ``instance_sz``. :class:`TrackerConfig` and :class:`PairConfig` both extend this
    class, so the three fields, their defaults and their checks are defined here only.
    """

    exemplar_sz: int = 127
    instance_sz: int = 255
    context: float = 0.5

    def __post_init__(self) -> None:
        _check(self.exemplar_sz >= 1, "exemplar_sz", "a positive number of pixels", self.exemplar_sz)
        # The two sizes are checked against each other; a field left at its default is not the one
        # the user got wrong, so the message names the other one then.
        if self.instance_sz == CropConfig.instance_sz:
            _check(
                self.exemplar_sz <= self.instance_sz,
                "exemplar_sz",
                f"at most instance_sz ({self.instance_sz})",
                self.exemplar_sz,
            )
        _check(
            self.instance_sz >= self.exemplar_sz,
            "instance_sz",
            f"at least exemplar_sz ({self.exemplar_sz})",
            self.instance_sz,
        )
        _check(
            math.isfinite(self.context) and self.context >= 0, "context", "finite and >= 0", self.context
        )


@dataclass(frozen=True)
class TrackerConfig(CropConfig):
    """Inference hyper-parameters of the SiamFC tracker (siamfc-pytorch defaults).

    The crop geometry (``exemplar_sz``, ``instance_sz``, ``context``) comes from :class:`CropConfig`.

    ``response_sz`` (side of the raw response map) and ``total_stride`` (pixels of the search image
    per response cell) are properties of the network: left at None they follow the backbone
    (17 and 8 for AlexNetV1 and V3, 33 and 4 for AlexNetV2, with 127/255 crops), which
    :func:`siamfc_jax.tracker.fit_config` fills in; an explicit value must agree with the network.

    ``precision`` is the matmul/convolution precision of the tracker's device computation:
    ``"highest"`` keeps float32 convolutions exact on GPUs (JAX's default there is TF32), which is what
    keeps the boxes equal to siamfc-pytorch's; ``"default"`` lets the GPU use TF32. How the
    convolutions are computed is not a setting but a :class:`siamfc_jax.ops.plan.ConvPlan` given to
    the tracker beside its config.
    ``compute_dtype`` is the backbone's compute type (:data:`COMPUTE_DTYPES`): ``"bfloat16"`` halves
    the bytes the convolutions move at a small cost in accuracy (docs/performance.md); the weights,
    the features the correlation reads and everything after it stay float32.
    """

    scale_num: int = 3
    scale_step: float = 1.0375
    scale_lr: float = 0.59
    scale_penalty: float = 0.9745
    window_influence: float = 0.176
    response_sz: int | None = None
    response_up: int = 16
    total_stride: int | None = None
    precision: str = "highest"
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        super().__post_init__()
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
            self.precision in TRACKER_PRECISIONS,
            "precision",
            ", ".join(TRACKER_PRECISIONS),
            self.precision,
        )
        _check_compute_dtype(self.compute_dtype)

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
    """Label map and balanced logistic loss (radii in pixels of the search image).

    The radii become response cells through the backbone's output stride, a property of the network
    (``output_stride`` in :mod:`siamfc_jax.models.backbones`), not a setting.
    """

    r_pos: float = 16.0
    r_neg: float = 0.0
    neg_weight: float = 1.0

    def __post_init__(self) -> None:
        for name in ("r_pos", "r_neg", "neg_weight"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, name, "finite and >= 0", value)


@dataclass(frozen=True)
class OptimConfig:
    """SGD with momentum and coupled weight decay, learning rate decaying exponentially per epoch."""

    epochs: int = 50
    batch_size: int = 8
    initial_lr: float = 1e-2
    ultimate_lr: float = 1e-5
    weight_decay: float = 5e-4
    momentum: float = 0.9

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "epochs", "a positive integer", self.epochs)
        _check(self.batch_size >= 1, "batch_size", "a positive integer", self.batch_size)
        for name in ("initial_lr", "ultimate_lr"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, name, "finite and > 0", value)
        _check(math.isfinite(self.weight_decay), "weight_decay", "finite", self.weight_decay)
        _check(0 <= self.momentum < 1, "momentum", "in [0, 1)", self.momentum)


@dataclass(frozen=True)
class PairConfig(CropConfig):
    """How training pairs are sampled and augmented (siamfc-pytorch's ``Pair`` and transforms).

    The crop geometry (``exemplar_sz``, ``instance_sz``, ``context``) comes from :class:`CropConfig`.
    """

    pairs_per_seq: int = 1
    # Smallest box width and height (pixels) of a frame used for training: siamfc-pytorch's 20. The
    # synthetic "rich" world lowers it so that small targets (as real aerial video has) are trained on.
    min_target_side: float = 20.0
    max_frame_gap: int = 100
    max_stretch: float = 0.05
    color_jitter: bool = False
    grayscale_prob: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.pairs_per_seq >= 1, "pairs_per_seq", "a positive integer", self.pairs_per_seq)
        _check(self.max_frame_gap >= 1, "max_frame_gap", "a positive integer", self.max_frame_gap)
        _check(
            math.isfinite(self.min_target_side) and self.min_target_side >= 1,
            "min_target_side",
            "finite and >= 1",
            self.min_target_side,
        )
        _check(
            math.isfinite(self.max_stretch) and self.max_stretch >= 0,
            "max_stretch",
            "finite and >= 0",
            self.max_stretch,
        )
        _check(0 <= self.grayscale_prob <= 1, "grayscale_prob", "in [0, 1]", self.grayscale_prob)

    @property
    def search_sz(self) -> int:
        """Side of the search image after the centre (−8) and random (−8) crops: 239 by default."""
        return self.instance_sz - 16


def replace(config, **changes):
    """``dataclasses.replace`` that ignores ``None`` values, so unset CLI flags keep the defaults."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class TrainConfig:
    """A training run: model, optimiser, loss, pair sampling, data and bookkeeping.

    ``data`` is ``synthetic`` (the generated world, curated into TFDS), ``got10k:DIR``, ``vid:DIR``
    or ``folder:DIR`` (curated into TFDS from the dataset at DIR). ``synthetic_world`` names the
    synthetic world (``basic`` or ``rich``, :data:`siamfc_jax.synthetic.config.WORLDS`) and
    ``synthetic_sequences`` sizes its training set. ``val_sequences`` validation sequences are tracked
    at the end of every epoch: those of ``val_data`` (``folder:DIR``, real annotated sequences never
    trained on) when it is set, else the training data's own (synthetic ones, or GOT-10k ``val``); 0
    disables it. ``compute_dtype`` is the network's compute type in the train step
    (:data:`COMPUTE_DTYPES`; parameters, optimiser state and BatchNorm statistics stay float32).
    ``decoded_crops_gb`` is the largest training split, in GB (10^9 bytes) of decoded crops, that is
    kept decoded on disk beside the curated dataset (:mod:`siamfc_jax.pipeline.crop_store`: 195 kB
    a 255 x 255 crop; the default synthetic set takes 3.5 GB, the rich one about 14, GOT-10k 270), so
    that pairs cost no JPEG decode; 0 decodes the JPEG crops for every pair. The pairs are the same
    either way.
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
    synthetic_world: str = "basic"
    synthetic_sequences: int = 300
    val_data: str | None = None
    val_sequences: int = 3
    save_every_steps: int = 0
    keep_checkpoints: int = 3
    log_every_steps: int = 10
    compute_dtype: str = "float32"
    decoded_crops_gb: float = 32.0

    def __post_init__(self) -> None:
        _check_compute_dtype(self.compute_dtype)
        _check(
            math.isfinite(self.decoded_crops_gb) and self.decoded_crops_gb >= 0,
            "decoded_crops_gb",
            "finite and >= 0",
            self.decoded_crops_gb,
        )
        for name in ("seed", "workers", "save_every_steps", "val_sequences"):
            _check(getattr(self, name) >= 0, name, "an integer >= 0", getattr(self, name))
        for name in ("keep_checkpoints", "log_every_steps"):
            _check(getattr(self, name) >= 1, name, "a positive integer", getattr(self, name))
        _check(
            self.synthetic_sequences >= 2, "synthetic_sequences", "at least 2", self.synthetic_sequences
        )
        _check(
            self.synthetic_world in SYNTHETIC_WORLDS,
            "synthetic_world",
            f"one of {', '.join(SYNTHETIC_WORLDS)}",
            self.synthetic_world,
        )
        _check(
            self.val_data is None or self.val_data.startswith("folder:"),
            "val_data",
            "folder:DIR",
            self.val_data,
        )


def override(config: Any, changes: Mapping[str, Any]) -> Any:
    """A copy of the nested frozen dataclass ``config`` with the fields named in ``changes`` set.

    Keys are dotted paths through nested configs, e.g. ``{"optim.epochs": 3, "seed": 1}`` on a
    :class:`TrainConfig`. Each changed config is rebuilt, so its checks run on the new values.

    Raises:
      ConfigError: an unknown field, or a value its config refuses; ``field`` is the dotted path.
    """
    names = {field.name for field in dataclasses.fields(config)}
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in changes.items():
        head, dot, rest = path.partition(".")
        if head not in names or (dot and not dataclasses.is_dataclass(getattr(config, head))):
            raise ConfigError(path, f"{type(config).__name__} has no field {path!r}")
        if dot:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, section_changes in nested.items():
        try:
            direct[head] = override(getattr(config, head), section_changes)
        except ConfigError as error:
            raise ConfigError(f"{head}.{error.field}", str(error)) from None
    return dataclasses.replace(config, **direct)
