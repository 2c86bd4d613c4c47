"""ONNX export of the SiamFC networks through ``jax2onnx`` (an optional dependency).

Two files, NHWC float32 throughout:

- ``embed.onnx``: the backbone in eval mode. Input ``images`` (N, H, W, 3), RGB 0–255 as OpenCV
  decodes them (no normalisation); N, H and W are dynamic, so one file embeds 127×127 exemplars and
  255×255 searches alike. Output ``features`` (N, H', W', C), e.g. (N, 6, 6, 256) and (N, 22, 22, 256)
  for AlexNetV1.
- ``head.onnx``: the correlation head with ``out_scale``. Inputs ``exemplar_features`` (1, hz, wz, C)
  and ``search_features`` (N, hx, wx, C), the sizes of the tracker's exemplar and search features;
  N is dynamic. Output ``responses`` (N, r, r) (17×17 for AlexNetV1).

``siamfc_onnx.json`` beside them records the network and the tracker settings the deploying program
needs (crop sizes, scales, penalties, window, stride, upsampling). The networks use the ``lax``
convolution formulation (one ONNX ``Conv`` per layer, grouped ones with ``group=2``), since the
``matmul`` one would become gathers and matrix products.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.export.manifest import check_outputs, write_manifest
from siamfc_jax.files import write_bytes_atomic
from siamfc_jax.models import SiamFC, cross_correlate
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.tracker import fit_config

EMBED_FILE = "embed.onnx"
HEAD_FILE = "head.onnx"
MANIFEST_FILE = "siamfc_onnx.json"
INSTALL_HINT = "pip install -r requirements-export.txt && pip install --no-deps -r requirements-jax2onnx.txt"


class MissingDependencyError(ImportError):
    """An optional package needed for the requested export is not installed."""


def import_optional(name: str, purpose: str) -> Any:
    """Import the optional module ``name``, or raise a one-line :class:`MissingDependencyError`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs the optional package {name.split('.')[0]}: {INSTALL_HINT}"
        ) from None


def feature_shapes(config: TrackerConfig, model_config: ModelConfig) -> tuple[tuple[int, ...], ...]:
    """Shapes (1, hz, wz, C) and (S, hx, wx, C) of the tracker's exemplar and search features."""
    model = SiamFC(model_config, plan=ConvPlan.uniform("lax"))
    variables = jax.eval_shape(
        model.init,
        jax.random.key(0),
        jnp.zeros((1, 87, 87, 3)),
        jnp.zeros((1, 87, 87, 3)),
    )

    def shape(side: int, count: int) -> tuple[int, ...]:
        images = jax.ShapeDtypeStruct((count, side, side, 3), jnp.float32)
        return jax.eval_shape(
            functools.partial(model.apply, method=SiamFC.embed), variables, images
        ).shape

    return shape(config.exemplar_sz, 1), shape(config.instance_sz, config.scale_num)


def onnx_models(variables: dict, model_config: ModelConfig, config: TrackerConfig = TrackerConfig()) -> dict:
    """The ONNX ``ModelProto`` s ``{"embed": ..., "head": ...}`` of the network ``variables``.

    Each passes ``onnx.checker.check_model``.

    Raises:
      MissingDependencyError: jax2onnx or onnx is not installed.
    """
    to_onnx = import_optional("jax2onnx", "ONNX export").to_onnx
    checker = import_optional("onnx.checker", "ONNX export")
    # Uniform "lax": grouped convolutions, reduce_window pools and the correlation as one
    # convolution are what the converter maps to ONNX operators.
    model = SiamFC(model_config, precision="highest", plan=ConvPlan.uniform("lax"))
    exemplar_shape, search_shape = feature_shapes(config, model_config)

    def embed(images: jax.Array) -> jax.Array:
        return model.apply(variables, images, method=SiamFC.embed)

    def head(exemplar_features: jax.Array, search_features: jax.Array) -> jax.Array:
        out_scale = model_config.out_scale
        return cross_correlate(exemplar_features, search_features, out_scale, "highest", "lax")[..., 0]

    # onnx_ir warns about the converter's untyped shape constants; the checker below is the test.
    logging.getLogger("onnx_ir.serde").setLevel(logging.ERROR)
    models = {
        "embed": to_onnx(
            embed,
            [("N", "H", "W", 3)],
            model_name="siamfc_embed",
            input_names=["images"],
            output_names=["features"],
        ),
        "head": to_onnx(
            head,
            [exemplar_shape, ("N", *search_shape[1:])],
            model_name="siamfc_head",
            input_names=["exemplar_features", "search_features"],
            output_names=["responses"],
        ),
    }
    for proto in models.values():
        checker.check_model(proto)
    return models


def export_onnx(
    variables: dict,
    model_config: ModelConfig,
    out_dir: str | os.PathLike,
    config: TrackerConfig = TrackerConfig(),
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write ``embed.onnx``, ``head.onnx`` and ``siamfc_onnx.json`` into ``out_dir``.

    Returns:
      The paths written, by kind (``embed``, ``head``, ``manifest``).

    Raises:
      ExportError: ``out_dir`` is unusable or holds these files and ``overwrite`` is False.
      MissingDependencyError: jax2onnx or onnx is not installed.
    """
    config = fit_config(config, model_config)
    out = check_outputs(out_dir, (EMBED_FILE, HEAD_FILE, MANIFEST_FILE), overwrite)
    models = onnx_models(variables, model_config, config)
    exemplar_shape, search_shape = feature_shapes(config, model_config)
    paths = {"embed": out / EMBED_FILE, "head": out / HEAD_FILE, "manifest": out / MANIFEST_FILE}
    for kind, proto in models.items():
        write_bytes_atomic(paths[kind], proto.SerializeToString())
    response = config.response_sz
    files = {
        EMBED_FILE: {
            "inputs": {"images": ["N", "H", "W", 3]},
            "outputs": {"features": ["N", "H'", "W'", exemplar_shape[-1]]},
        },
        HEAD_FILE: {
            "inputs": {
                "exemplar_features": list(exemplar_shape),
                "search_features": ["N", *search_shape[1:]],
            },
            "outputs": {"responses": ["N", response, response]},
        },
    }
    write_manifest(paths["manifest"], "siamfc_jax.onnx", config, model_config, files)
    return paths
