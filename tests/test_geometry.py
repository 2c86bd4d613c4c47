"""The response geometry follows from the backbone; the crop geometry is defined once.

The reference for the sizes is JAX's own shape inference through the Flax network
(``jax.eval_shape``), independent of the arithmetic in :mod:`siamfc_jax.models.backbones`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from siamfc_jax.config import CropConfig, LossConfig, ModelConfig, PairConfig, TrackerConfig
from siamfc_jax.models import SiamFC, backbone_class, init_variables, response_size


def inferred_response_side(backbone: str, exemplar_sz: int, search_sz: int) -> int:
    config = ModelConfig(backbone)
    variables = jax.eval_shape(lambda: init_variables(config, jax.random.key(0)))
    shape = jax.eval_shape(
        SiamFC(config).apply,
        variables,
        jax.ShapeDtypeStruct((1, exemplar_sz, exemplar_sz, 3), jnp.float32),
        jax.ShapeDtypeStruct((1, search_sz, search_sz, 3), jnp.float32),
    ).shape
    return shape[1]


@pytest.mark.parametrize("backbone", ["v1", "v2", "v3"])
@pytest.mark.parametrize(("exemplar_sz", "search_sz"), [(127, 255), (127, 239), (103, 159), (95, 200)])
def test_response_size_matches_shape_inference(backbone, exemplar_sz, search_sz):
    assert response_size(ModelConfig(backbone), exemplar_sz, search_sz) == inferred_response_side(
        backbone, exemplar_sz, search_sz
    )


def test_response_sizes_of_siamfc_pytorch():
    # siamfc-pytorch: 17×17 tracking responses and 15×15 training responses for AlexNetV1.
    assert response_size(ModelConfig("v1"), 127, 255) == 17
    assert response_size(ModelConfig("v1"), 127, 239) == 15
    assert response_size(ModelConfig("v2"), 127, 255) == 33


@pytest.mark.parametrize("backbone", ["v1", "v2", "v3"])
def test_receptive_field_is_the_smallest_input(backbone):
    cls = backbone_class(backbone)
    side = cls.receptive_field()
    assert cls.feature_size(side) == 1 and cls.feature_size(side - 1) == 0
    responses = jax.eval_shape(
        lambda: SiamFC(ModelConfig(backbone)).init_with_output(
            jax.random.key(0), jnp.zeros((1, side, side, 3)), jnp.zeros((1, side, side, 3))
        )
    )[0]
    assert responses.shape[1:3] == (1, 1)


def test_too_small_exemplar_is_refused():
    with pytest.raises(ValueError, match="receptive field of backbone v1"):
        response_size(ModelConfig("v1"), 86, 255)


def test_crop_geometry_is_defined_once():
    crop_fields = [field.name for field in dataclasses.fields(CropConfig)]
    assert crop_fields == ["exemplar_sz", "instance_sz", "context"]
    for config in (TrackerConfig, PairConfig):
        assert issubclass(config, CropConfig)
        assert [field.name for field in dataclasses.fields(config)][:3] == crop_fields
        assert not {"exemplar_sz", "instance_sz", "context"} & set(vars(config)["__annotations__"])
    with pytest.raises(ValueError, match="instance_sz must be at least exemplar_sz"):
        PairConfig(exemplar_sz=127, instance_sz=100)


def test_the_network_stride_is_not_a_loss_setting():
    assert "total_stride" not in {field.name for field in dataclasses.fields(LossConfig)}
