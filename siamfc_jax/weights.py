"""Model weights on disk: our single-file format and siamfc-pytorch ``.pth`` files.

Our format is one msgpack file (Flax's serialisation) holding a header — format name, version and
the :class:`ModelConfig` — and the ``{"params", "batch_stats"}`` tree. It needs neither PyTorch nor
pickle to read. Float parameters may be stored as float16 to halve the size; they load as float32.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import jax
import numpy as np
from flax import serialization

from siamfc_jax.config import ModelConfig
from siamfc_jax.files import write_bytes_atomic
from siamfc_jax.interop.torch_weights import (
    WeightsError,
    check_finite,
    expected_torch_shapes,
    flax_to_torch,
    load_pth,
    write_pth,
)

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "assets" / "siamfc_alexnet_v1_synthetic.msgpack"
FORMAT_NAME = "siamfc_jax.weights"
FORMAT_VERSION = 1
_PICKLE_OR_ZIP_MAGIC = (b"PK\x03\x04", b"\x80")
# File names of siamfc-pytorch weights: a file so named that is not one is reported as a bad .pth.
PTH_SUFFIXES = (".pth", ".pt")


def save_weights(
    path: str | os.PathLike,
    variables: Mapping,
    config: ModelConfig,
    dtype: np.dtype | type = np.float32,
) -> None:
    """Write ``variables`` and ``config`` to ``path`` in our format, atomically.

    ``dtype`` (float32 or float16) is the storage type of floating-point arrays; integer counters are
    kept as they are.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise ValueError(f"weights can be stored as float32 or float16, not {dtype}")

    def store(leaf):
        array = np.asarray(leaf)
        return array.astype(dtype) if np.issubdtype(array.dtype, np.floating) else array

    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": dataclasses.asdict(config),
        "variables": jax.tree.map(store, {k: dict(v) for k, v in variables.items()}),
    }
    write_bytes_atomic(path, serialization.msgpack_serialize(payload))


def _read_native(path: Path) -> tuple[dict, ModelConfig]:
    if path.suffix.lower() in PTH_SUFFIXES:
        unknown = f"{path}: not a readable PyTorch state_dict or checkpoint (nor siamfc_jax weights)"
    else:
        unknown = f"{path}: not a siamfc_jax weights file"
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except Exception as error:  # msgpack raises several types on foreign data
        raise WeightsError(f"{unknown} ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise WeightsError(unknown)
    if payload.get("version") != FORMAT_VERSION:
        raise WeightsError(
            f"{path}: weights format version {payload.get('version')} is not supported "
            f"(this siamfc_jax reads version {FORMAT_VERSION})"
        )
    try:
        config = ModelConfig(**payload["model"])
    except (TypeError, ValueError) as error:
        raise WeightsError(f"{path}: malformed model description ({error})") from None

    def load(leaf):
        return leaf.astype(np.float32) if np.issubdtype(leaf.dtype, np.floating) else leaf

    variables = jax.tree.map(load, payload["variables"])
    _check_tree(path, variables, config)
    return variables, config


def _check_tree(path: Path, variables: dict, config: ModelConfig) -> None:
    state = flax_to_torch(variables)
    got = {k: v.shape for k, v in state.items()}
    expected = expected_torch_shapes(config.backbone)
    if got != expected:
        raise WeightsError(f"{path}: stored arrays do not fit backbone {config.backbone}")
    check_finite(path, state)


def is_pth(path: str | os.PathLike) -> bool:
    """True when ``path`` looks like a PyTorch file (zip or legacy pickle), judged by its first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return any(head.startswith(magic) for magic in _PICKLE_OR_ZIP_MAGIC)


def load_variables(path: str | os.PathLike) -> tuple[dict, ModelConfig]:
    """Load Flax variables and model config from a siamfc-pytorch ``.pth`` or our weights file.

    The format is recognised from the file's content, not its name.

    Raises:
        WeightsError: missing, unreadable, not SiamFC's arrays, or holding NaN or inf; the message
            names the file (and the first key holding NaN or inf).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if is_pth(path):
        return load_pth(path)
    return _read_native(path)


def default_weights_path() -> Path:
    """The weights shipped with the package (AlexNetV1 trained by ``train.py`` on the synthetic world)."""
    if not DEFAULT_WEIGHTS.is_file():
        raise WeightsError(
            f"{DEFAULT_WEIGHTS}: the packaged default weights are missing; pass weights explicitly"
        )
    return DEFAULT_WEIGHTS


def export_pth(path: str | os.PathLike, variables: Mapping) -> None:
    """Write ``variables`` as a siamfc-pytorch ``state_dict`` (loadable with ``strict=True``)."""
    write_pth(path, flax_to_torch(variables))
