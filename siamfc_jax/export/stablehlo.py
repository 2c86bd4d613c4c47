"""StableHLO export of the whole tracker (``jax.export``): an init step and a per-frame step.

Both steps are serialised ``jax.export.Exported`` modules with the weights and the tracker settings
baked in and the state passed explicitly, so a program holds the state and needs only JAX (not
siamfc_jax) to run them: ``jax.export.deserialize(bytes).call(...)``.

Signature (``S = STATE_FIELDS``, the fields of :class:`siamfc_jax.tracker.TrackState`; for AlexNetV1
``hz = wz = 6``, ``C = 256``):

- ``init(frame, box) -> state``
- ``update(*state, frame) -> (*state, box)``

where ``frame`` is (H, W, 3) uint8 RGB (OpenCV-decoded and converted BGR → RGB), ``box`` (4,) float32
1-indexed ``[x, y, w, h]`` pixels, and ``state`` the tuple of float32 arrays

- ``center`` (2,): target centre ``[y, x]``, 0-indexed pixels;
- ``target_size`` (2,): target ``[h, w]`` in pixels;
- ``exemplar_crop`` (): side in pixels of the exemplar square in the frame;
- ``search_crop`` (): side in pixels of the search square at scale 1;
- ``fill`` (3,): colour of crop pixels outside the frame (the first frame's mean colour, rounded);
- ``exemplar_features`` (1, hz, wz, C): the target's embedding from the first frame;
- ``frame_hw`` (2,): the frame's (height, width), which bounds the target.

The frame size is symbolic (``H``, ``W``): one artifact serves every frame size, and the runtime
compiles it once per size it meets. ``init`` computes the fill colour on the device with integer
sums (exact for frames up to 16 megapixels), equal to ``Tracker``'s host computation. The steps are
lowered for the platforms asked for (default CPU and CUDA).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import export

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.export.manifest import check_outputs, write_manifest
from siamfc_jax.files import write_bytes_atomic
from siamfc_jax.ops.plan import ConvPlan, default_plan
from siamfc_jax.tracker import TrackState, fit_config, start, step, tracker_spec
from siamfc_jax.tracker.device import empty_states, hyper_params

STATE_FIELDS: tuple[str, ...] = TrackState._fields
INIT_FILE = "init.jax_exported"
UPDATE_FILE = "update.jax_exported"
MANIFEST_FILE = "siamfc_stablehlo.json"
DEFAULT_PLATFORMS = ("cpu", "cuda")


def frame_fill(frame: jax.Array) -> jax.Array:
    """(3,) float32 mean colour of an (H, W, 3) uint8 frame, rounded half to even (jittable).

    The same as rounding NumPy's float64 mean: channel sums are exact in uint32 (frames up to
    16 megapixels), and the rounding of ``sum / count`` is decided on the integer remainder.
    """
    sums = jnp.sum(frame.astype(jnp.uint32), axis=(0, 1), dtype=jnp.uint32)
    count = jnp.asarray(frame.shape[0] * frame.shape[1], jnp.uint32)
    quotient = sums // count
    twice_remainder = 2 * (sums - quotient * count)
    round_up = (twice_remainder > count) | ((twice_remainder == count) & (quotient % 2 == 1))
    return (quotient + round_up.astype(jnp.uint32)).astype(jnp.float32)


def export_plan(platforms: Sequence[str]) -> ConvPlan:
    """The plan baked into steps exported for ``platforms`` (``jax.export``'s names): for one
    platform, what the tracker runs there (:func:`~siamfc_jax.ops.plan.default_plan`; ``cuda``
    and ``rocm`` are JAX's ``gpu``); for several, which share one program, uniform ``"lax"``, the
    one formulation every backend compiles natively."""
    if len(platforms) != 1:
        return ConvPlan.uniform("lax")
    return default_plan({"cuda": "gpu", "rocm": "gpu"}.get(platforms[0], platforms[0]))


def tracker_steps(variables: dict, model_config: ModelConfig, config: TrackerConfig, plan: ConvPlan):
    """The pure functions ``init(frame, box) -> state`` and ``update(*state, frame) -> (*state, box)``:
    :func:`~siamfc_jax.tracker.start` and :func:`~siamfc_jax.tracker.step` of one slot, convolving
    by ``plan``.

    ``state`` is a plain tuple in :data:`STATE_FIELDS` order without the slot axis (a tuple, not a
    ``TrackState``, so that a program without siamfc_jax can deserialise the exported steps).
    """
    spec = tracker_spec(config, model_config, plan)
    hyper = jax.tree.map(lambda leaf: leaf[None], hyper_params(fit_config(config, model_config)))
    one_slot = np.zeros(1, np.int32)

    def init(frame: jax.Array, box: jax.Array) -> tuple[jax.Array, ...]:
        frame_hw = jnp.asarray(frame.shape[:2], jnp.float32)
        states = start(
            variables, empty_states(1, spec), 0, frame, box, frame_fill(frame), frame_hw, spec=spec
        )
        return tuple(leaf[0] for leaf in states)

    def update(*state_and_frame: jax.Array) -> tuple[jax.Array, ...]:
        *state, frame = state_and_frame
        states = TrackState(*(leaf[None] for leaf in state))
        new_states, boxes, _ = step(variables, states, frame[None], one_slot, hyper, spec=spec)
        return (*(leaf[0] for leaf in new_states), boxes[0])

    return init, update


def export_steps(
    variables: dict,
    model_config: ModelConfig,
    config: TrackerConfig = TrackerConfig(),
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
) -> tuple[export.Exported, export.Exported]:
    """``jax.export`` the init and update steps for frames of any size, for ``platforms``, with
    their :func:`export_plan`."""
    init, update = tracker_steps(variables, model_config, config, export_plan(platforms))
    height, width = export.symbolic_shape("H, W")
    frame = jax.ShapeDtypeStruct((height, width, 3), jnp.uint8)
    box = jax.ShapeDtypeStruct((4,), jnp.float32)
    exported_init = export.export(jax.jit(init), platforms=tuple(platforms))(frame, box)
    state = [jax.ShapeDtypeStruct(aval.shape, aval.dtype) for aval in exported_init.out_avals]
    exported_update = export.export(jax.jit(update), platforms=tuple(platforms))(*state, frame)
    return exported_init, exported_update


def export_stablehlo(
    variables: dict,
    model_config: ModelConfig,
    out_dir: str | os.PathLike,
    config: TrackerConfig = TrackerConfig(),
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the serialised steps ``init.jax_exported``, ``update.jax_exported`` and a manifest.

    The convolutions are baked in by :func:`export_plan` of ``platforms``, which the manifest
    records (``conv_plan``).

    Returns:
      The paths written, by kind (``init``, ``update``, ``manifest``).

    Raises:
      ExportError: ``out_dir`` is unusable or holds these files and ``overwrite`` is False.
    """
    config = fit_config(config, model_config)
    out = check_outputs(out_dir, (INIT_FILE, UPDATE_FILE, MANIFEST_FILE), overwrite)
    exported_init, exported_update = export_steps(variables, model_config, config, platforms)
    paths = {"init": out / INIT_FILE, "update": out / UPDATE_FILE, "manifest": out / MANIFEST_FILE}
    write_bytes_atomic(paths["init"], exported_init.serialize())
    write_bytes_atomic(paths["update"], exported_update.serialize())
    state = {
        name: {"shape": list(aval.shape), "dtype": str(aval.dtype)}
        for name, aval in zip(STATE_FIELDS, exported_init.out_avals, strict=True)
    }
    frame = {"shape": ["H", "W", 3], "dtype": "uint8"}
    box = {"shape": [4], "dtype": "float32"}
    files = {
        INIT_FILE: {"inputs": {"frame": frame, "box": box}, "outputs": state},
        UPDATE_FILE: {"inputs": {**state, "frame": frame}, "outputs": {**state, "box": box}},
    }
    write_manifest(
        paths["manifest"],
        "siamfc_jax.stablehlo",
        config,
        model_config,
        files,
        platforms=list(platforms),
        conv_plan=export_plan(platforms).to_dict(),
    )
    return paths


