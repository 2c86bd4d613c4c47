"""The SiamFC network: a shared backbone and the cross-correlation head."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from siamfc_jax.config import ModelConfig
from siamfc_jax.models.backbones import backbone_class
from siamfc_jax.models.heads import cross_correlate
from siamfc_jax.models.layers import Dtype, PrecisionLike
from siamfc_jax.ops.plan import ConvPlan, plan_or_default


class SiamFC(nn.Module):
    """Backbone (submodule ``backbone``, as in siamfc-pytorch's ``Net``) plus correlation head.

    ``axis_name`` makes BatchNorm use global-batch statistics inside ``shard_map``; ``precision`` is
    passed to every convolution; ``dtype`` is the compute type (e.g. bfloat16 on accelerators) and
    ``param_dtype`` the storage type of parameters; ``plan`` how convolutions, poolings and the
    correlation are computed (:class:`~siamfc_jax.ops.plan.ConvPlan`; None: the
    :func:`~siamfc_jax.ops.plan.default_plan` of JAX's default backend, chosen when the network is
    traced; nothing is measured). Responses are returned in at least float32.
    """

    config: ModelConfig = ModelConfig()
    axis_name: str | None = None
    precision: PrecisionLike = None
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    plan: ConvPlan | None = None

    def setup(self) -> None:
        self.backbone = backbone_class(self.config.backbone)(
            axis_name=self.axis_name,
            precision=self.precision,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            plan=self.plan,
        )

    def embed(self, images: jax.Array, train: bool = False) -> jax.Array:
        """Backbone features of NHWC RGB 0–255 ``images``."""
        return self.backbone(images, train)

    def __call__(self, exemplars: jax.Array, searches: jax.Array, train: bool = False) -> jax.Array:
        """Responses (n·k, h, w, 1) of exemplar images (n, 127, 127, 3) on searches (n·k, H, W, 3).

        Exemplars and searches go through the backbone separately, as in siamfc-pytorch, so in
        training each gets its own batch statistics and the running averages update twice.
        """
        exemplar_features = self.embed(exemplars, train)
        search_features = self.embed(searches, train)
        responses = cross_correlate(
            exemplar_features,
            search_features,
            self.config.out_scale,
            self.precision,
            plan_or_default(self.plan).correlation,
        )
        return responses.astype(jnp.promote_types(responses.dtype, jnp.float32))


def init_variables(config: ModelConfig, rng: jax.Array, param_dtype: Dtype = jnp.float32) -> dict:
    """Fresh ``{"params", "batch_stats"}`` for ``config``: Xavier-uniform kernels, zero biases, BN identity.

    Initialising needs no real image size: the backbone is fully convolutional, so the smallest
    input that survives all five blocks (its receptive field) is used. The initialisation is one
    compiled call, so that it makes no implicit host-to-device transfers (of its constants).
    """
    model = SiamFC(config, dtype=param_dtype, param_dtype=param_dtype)
    side = backbone_class(config.backbone).receptive_field()

    def initialise(key: jax.Array) -> dict:
        exemplar = jnp.zeros((1, side, side, 3), param_dtype)
        return dict(model.init(key, exemplar, exemplar, train=False))

    return jax.jit(initialise)(rng)


def response_size(config: ModelConfig, exemplar_sz: int, search_sz: int) -> int:
    """Side of the response map of a square exemplar image over a square search image (pixels).

    The correlation slides the exemplar features over the search features, so the response side is
    their difference plus one: 17 for AlexNetV1/V3 with 127/255 crops (15 for the 127/239 training
    search images), 33 for AlexNetV2.

    Raises:
      ValueError: the exemplar is smaller than the backbone's receptive field, or the search image
        than the exemplar.
    """
    backbone = backbone_class(config.backbone)
    if exemplar_sz < backbone.receptive_field():
        raise ValueError(
            f"exemplar_sz {exemplar_sz} is smaller than the receptive field of backbone "
            f"{config.backbone} ({backbone.receptive_field()} pixels)"
        )
    if search_sz < exemplar_sz:
        raise ValueError(f"search size {search_sz} is smaller than exemplar_sz {exemplar_sz}")
    return backbone.feature_size(search_sz) - backbone.feature_size(exemplar_sz) + 1
