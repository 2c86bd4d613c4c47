"""siamfc-pytorch ``state_dict`` ⇄ Flax variables.

siamfc-pytorch saves ``Net(backbone, head).state_dict()``: keys ``backbone.convN.0.{weight,bias}`` for
the convolution (OIHW) and ``backbone.convN.1.{weight,bias,running_mean,running_var,
num_batches_tracked}`` for the BatchNorm; the head has no parameters. The mapping here is pure NumPy;
PyTorch is imported only to read or write ``.pth`` files.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from flax import traverse_util

from siamfc_jax.config import BACKBONES, ModelConfig
from siamfc_jax.files import atomic_path


class WeightsError(ValueError):
    """A weights file that cannot be used: wrong keys or shapes, unknown format, torch missing."""


# (Flax layer, Flax leaf) -> (PyTorch sub-index, PyTorch leaf)
_LEAF_TO_TORCH = {
    ("conv", "kernel"): ("0", "weight"),
    ("conv", "bias"): ("0", "bias"),
    ("bn", "scale"): ("1", "weight"),
    ("bn", "bias"): ("1", "bias"),
    ("bn", "mean"): ("1", "running_mean"),
    ("bn", "var"): ("1", "running_var"),
    ("bn", "num_batches_tracked"): ("1", "num_batches_tracked"),
}
# Wrappers that training code commonly adds around siamfc-pytorch's keys.
_STRIP_PREFIXES = ("module.", "net.", "model.")
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")


def _torch_key(path: tuple[str, ...]) -> str:
    """("params", "backbone", "conv1", "conv", "kernel") -> "backbone.conv1.0.weight"."""
    *module_path, layer, leaf = path[1:]
    index, torch_leaf = _LEAF_TO_TORCH[(layer, leaf)]
    return ".".join([*module_path, index, torch_leaf])


def _to_torch_layout(path: tuple[str, ...], value: np.ndarray) -> np.ndarray:
    if path[-2:] == ("conv", "kernel"):
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1))  # HWIO -> OIHW
    if path[-1] == "num_batches_tracked":
        return np.asarray(value, np.int64)
    return np.asarray(value)


def _from_torch_layout(path: tuple[str, ...], value: np.ndarray) -> np.ndarray:
    if path[-2:] == ("conv", "kernel"):
        return np.ascontiguousarray(value.transpose(2, 3, 1, 0))  # OIHW -> HWIO
    if path[-1] == "num_batches_tracked":
        return np.asarray(value, np.int32)
    return np.asarray(value, np.float32)


def expected_torch_shapes(backbone: str) -> dict[str, tuple[int, ...]]:
    """siamfc-pytorch ``state_dict`` keys and shapes for ``Net(AlexNetV{1,2,3}(), SiamFC())``."""
    return {
        _torch_key(path): tuple(int(d) for d in _to_torch_layout(path, np.empty(shape)).shape)
        for path, shape in _variable_shapes(backbone).items()
    }


def _variable_shapes(backbone: str) -> dict[tuple[str, ...], tuple[int, ...]]:
    import jax

    from siamfc_jax.models import init_variables

    shapes = jax.eval_shape(lambda: init_variables(ModelConfig(backbone), jax.random.key(0)))
    flat = traverse_util.flatten_dict(shapes)
    return {path: tuple(leaf.shape) for path, leaf in flat.items()}


def flax_to_torch(variables: Mapping) -> dict[str, np.ndarray]:
    """Flax ``{"params", "batch_stats"}`` of ``SiamFC`` -> siamfc-pytorch ``state_dict`` as NumPy arrays."""
    flat = traverse_util.flatten_dict(dict(variables))
    state = {_torch_key(path): _to_torch_layout(path, np.asarray(value)) for path, value in flat.items()}
    return dict(sorted(state.items(), key=lambda item: _torch_order(item[0])))


def _torch_order(key: str) -> tuple:
    # PyTorch's own order: by block, then conv before bn, then parameters before buffers.
    parts = key.split(".")
    leaf_rank = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    return (*parts[:-1], leaf_rank.index(parts[-1]))


def normalize_state_dict(state: Mapping) -> dict[str, np.ndarray]:
    """Unwrap a checkpoint dict and strip ``module.``/``net.`` prefixes; add ``backbone.`` if absent.

    Accepts a bare ``state_dict``, a full checkpoint holding one under ``state_dict``/``model``/``net``
    …, DataParallel (``module.``) keys and backbone-only dicts (``conv1.0.weight`` …).
    """
    for key in _CHECKPOINT_KEYS:
        inner = state.get(key) if isinstance(state, Mapping) else None
        if isinstance(inner, Mapping) and inner and all(isinstance(k, str) for k in inner):
            state = inner
            break
    normalized = {}
    for key, value in state.items():
        if not hasattr(value, "shape"):
            continue  # epoch counters, optimizer hyper-parameters and the like
        name = str(key)
        stripped = True
        while stripped:
            stripped = False
            for prefix in _STRIP_PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix) :], True
        if name.startswith("conv"):
            name = "backbone." + name
        normalized[name] = _as_numpy(value)
    return normalized


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def infer_backbone(state: Mapping[str, np.ndarray]) -> str:
    """Which of v1/v2/v3 a normalised ``state_dict`` belongs to, judged by its keys and shapes."""
    best, best_problems = None, None
    for backbone in BACKBONES:
        problems = _mismatches(state, expected_torch_shapes(backbone))
        if not problems:
            return backbone
        if best_problems is None or len(problems) < len(best_problems):
            best, best_problems = backbone, problems
    raise WeightsError(
        f"state_dict matches none of the SiamFC backbones {BACKBONES}; closest is {best}: "
        + "; ".join(best_problems)
    )


def _mismatches(state: Mapping[str, np.ndarray], expected: Mapping[str, tuple]) -> list[str]:
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{k} {tuple(state[k].shape)} (expected {expected[k]})"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != expected[k]
    )
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if extra:
        problems.append("unexpected keys: " + ", ".join(extra))
    if misshaped:
        problems.append("wrong shapes: " + ", ".join(misshaped))
    return problems


def torch_to_flax(state: Mapping, backbone: str | None = None) -> tuple[dict, ModelConfig]:
    """siamfc-pytorch ``state_dict`` (tensors or arrays) -> Flax variables and the model config.

    ``backbone`` is inferred from the keys and shapes when not given. Missing, unexpected or
    mis-shaped keys raise one ``WeightsError`` listing all of them. ``out_scale`` is not stored in a
    ``state_dict``; siamfc-pytorch's fixed 0.001 is assumed.
    """
    state = normalize_state_dict(state)
    if backbone is None:
        backbone = infer_backbone(state)
    expected = expected_torch_shapes(backbone)
    problems = _mismatches(state, expected)
    if problems:
        raise WeightsError(f"state_dict does not fit SiamFC backbone {backbone}: " + "; ".join(problems))
    flat = {
        path: _from_torch_layout(path, state[_torch_key(path)])
        for path in _variable_shapes(backbone)
    }
    return traverse_util.unflatten_dict(flat), ModelConfig(backbone=backbone)


def _import_torch():
    try:
        import torch
    except ImportError:
        raise WeightsError(
            "reading or writing .pth files needs PyTorch, which is not installed "
            "(pip install torch; the CPU build is enough)"
        ) from None
    return torch


def read_pth(path: str | os.PathLike) -> Mapping:
    """Load a ``.pth`` file on the CPU with PyTorch's safe (``weights_only``) unpickler.

    Raises:
        WeightsError: the file is not a PyTorch file holding a dict (the message names it).
    """
    torch = _import_torch()
    unreadable = f"{path}: not a readable PyTorch state_dict or checkpoint"
    try:
        # torch warns about the odd pickle protocols of foreign files before failing on them; the
        # error below says what matters.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        raise WeightsError(f"{unreadable} ({error})") from None
    if not isinstance(state, Mapping):
        raise WeightsError(f"{unreadable} (it holds a {type(state).__name__}, not a dict)")
    return state


def load_pth(path: str | os.PathLike) -> tuple[dict, ModelConfig]:
    """Flax variables and model config of the siamfc-pytorch ``.pth`` file ``path``.

    Raises:
        WeightsError: unreadable, not SiamFC's keys and shapes, or not finite; the message names
            ``path`` (and the first key holding NaN or inf).
    """
    state = read_pth(path)
    try:
        variables, config = torch_to_flax(state)
    except WeightsError as error:
        raise WeightsError(f"{path}: {error}") from None
    check_finite(path, flax_to_torch(variables))
    return variables, config


def check_finite(path: str | os.PathLike, state: Mapping[str, np.ndarray]) -> None:
    """Refuse weights holding NaN or inf (the tracker's box would run off), naming the first key.

    Raises:
        WeightsError: a floating-point array of ``state`` holds a NaN or an infinity.
    """
    for key, value in state.items():
        array = np.asarray(value)
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise WeightsError(f"{path}: {key} holds NaN or infinite values; these weights are unusable")


def write_pth(path: str | os.PathLike, state: Mapping[str, np.ndarray]) -> None:
    """Save a NumPy ``state_dict`` as PyTorch tensors with ``torch.save``, atomically."""
    torch = _import_torch()
    tensors = {key: torch.from_numpy(np.array(value, order="C")) for key, value in state.items()}
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)
