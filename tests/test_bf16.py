"""bfloat16 as the network's compute type: ``--compute-dtype bfloat16`` of track.py and train.py.

Parameters stay float32 in both; the tracker returns float32 features, so only the backbone runs in
bfloat16. Its cost is stated here as tolerances measured on this repository's data: tracking OTB
Crossing with the original SiamFC weights (box difference and IoU with the float32 boxes) and the
loss of two train steps from the same state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from siamfc_jax.apps import track as track_app
from siamfc_jax.apps import train as train_app
from siamfc_jax.config import ConfigError, LossConfig, ModelConfig, OptimConfig, TrackerConfig, TrainConfig
from siamfc_jax.evaluation.metrics import iou
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.pipeline.crops import crop_and_resize
from siamfc_jax.sequences.frames import average_color, read_image
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.synthetic.config import SyntheticConfig
from siamfc_jax.synthetic.render import render_sequence
from siamfc_jax.tracker import Tracker, tracker_spec
from siamfc_jax.tracker.device import embed
from siamfc_jax.training import loop
from siamfc_jax.training.state import create_train_state, make_optimizer
from siamfc_jax.training.step import data_mesh, make_train_step, shard_batch
from siamfc_jax.weights import load_variables
from tests.conftest import shared_path

# Crossing's first CROSSING_FRAMES frames. Measured: over all 120 frames the bfloat16 boxes are at
# most 2.1 px from the float32 ones (mean 0.47 px), IoU with them at least 0.82 (mean 0.94); over
# the first 30 frames at most 1.07 px (mean 0.09 px), IoU at least 0.89. The bounds leave room for
# other convolution formulations, which round differently.
CROSSING_FRAMES = 30
MAX_BOX_DIFFERENCE_PX = 3.0
MIN_IOU = 0.8

# Two train steps on 4 synthetic pairs, 87/119 crops, from a fresh state: the losses (about 0.667)
# measured 3.2e-5 and 1.3e-5 apart; the tolerance is 30 times that.
LOSS_TOLERANCE = 1e-3


def test_compute_dtype_is_checked_and_float32_by_default():
    assert TrackerConfig().compute_dtype == "float32" and TrainConfig().compute_dtype == "float32"
    for make in (TrackerConfig, TrainConfig):
        with pytest.raises(ConfigError, match="compute_dtype must be float32 or bfloat16"):
            make(compute_dtype="float16")


def test_flags_reach_the_train_step_and_the_tracker_network():
    parser, paths = train_app.build_parser()
    config = train_app.build_config(parser.parse_args(["--compute-dtype", "bfloat16"]), paths)
    optimizer = make_optimizer(config.optim, 1)
    step = loop._make_train_step(config, optimizer, data_mesh(), print)
    assert step.keywords["spec"].dtype == jnp.bfloat16

    args = track_app.build_parser().parse_args(["--compute-dtype", "bfloat16"])
    tracker_config = track_app.tracker_config(args)
    assert tracker_spec(tracker_config, ModelConfig()).compute_dtype == jnp.bfloat16
    assert tracker_spec(TrackerConfig(), ModelConfig()).compute_dtype == jnp.float32


@pytest.mark.slow
def test_bf16_tracking_boxes_are_close_to_float32_on_crossing():
    weights = load_variables(shared_path("siamfc/weights/siamfc_original_v1.pth"))
    sequence = open_sequence(shared_path("siamfc/data/sequences/Crossing"))
    frames = [read_image(path) for path in sequence.frames[:CROSSING_FRAMES]]
    trackers = {
        dtype: Tracker(weights, TrackerConfig(compute_dtype=dtype)) for dtype in ("float32", "bfloat16")
    }
    boxes = {dtype: tracker.track(frames, sequence.boxes[0])[0] for dtype, tracker in trackers.items()}
    difference = np.abs(boxes["bfloat16"] - boxes["float32"])
    overlap = iou(boxes["bfloat16"], boxes["float32"])
    print(f"bf16 vs f32 on Crossing: max {difference.max():.3f} px, mean {difference.mean():.3f} px, "
          f"min IoU {overlap.min():.3f}")
    # The compute type reaches the network's program. (With the tools' XLA:CPU flags, XLA's own
    # convolution kernels take no bfloat16 and XLA, allowed excess precision, computes the whole
    # chain in float32: the boxes may then equal float32's exactly.)
    spec = trackers["bfloat16"].spec
    images = jax.ShapeDtypeStruct((1, 127, 127, 3), jnp.float32)
    program = jax.jit(lambda variables, x: embed(variables, x, spec)).lower(weights[0], images).as_text()
    assert "bf16" in program, "the bfloat16 compute type did not reach the network"
    assert difference.max() <= MAX_BOX_DIFFERENCE_PX
    assert overlap.min() >= MIN_IOU


def _pairs(count: int, exemplar_sz: int, instance_sz: int) -> dict[str, np.ndarray]:
    """Exemplar (frame 0) and search (frame 3) crops of ``count`` synthetic targets, SiamFC context."""
    search_sz = instance_sz - 16
    config = SyntheticConfig(num_sequences=count, frames_per_sequence=4)
    crops: dict[str, list[np.ndarray]] = {"exemplar": [], "search": []}
    for index in range(count):
        frames, boxes, _, _ = render_sequence(config, index)
        for name, frame_index, out_size in (("exemplar", 0, exemplar_sz), ("search", 3, search_sz)):
            x, y, w, h = boxes[frame_index]
            centre = np.array([y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2])
            side = np.sqrt((w + (w + h) / 2) * (h + (w + h) / 2)) * out_size / exemplar_sz
            frame = frames[frame_index]
            crops[name].append(crop_and_resize(frame, centre, side, out_size, average_color(frame)))
    return {name: np.stack(images) for name, images in crops.items()}


def _two_step_losses(dtype: str, batch: dict[str, np.ndarray]) -> tuple[list[float], dict]:
    """The losses of two train steps in compute type ``dtype`` and the parameters after them."""
    model_config, mesh = ModelConfig(), data_mesh(jax.devices()[:1])
    optimizer = make_optimizer(OptimConfig(), 10)
    state = create_train_state(model_config, optimizer, jax.random.key(0))
    plan = ConvPlan.uniform("lax")
    step = make_train_step(
        model_config, LossConfig(), optimizer, mesh, 87, 103, dtype=jnp.dtype(dtype), plan=plan
    )
    losses = []
    for _ in range(2):
        state, metrics = step(state, shard_batch(batch, mesh))
        losses.append(float(metrics["loss"]))
    return losses, state.params


@pytest.mark.slow
def test_bf16_train_step_loss_is_close_to_float32():
    batch = _pairs(4, 87, 119)
    f32_losses, f32_params = _two_step_losses("float32", batch)
    bf16_losses, bf16_params = _two_step_losses("bfloat16", batch)
    print(f"losses float32 {f32_losses}, bfloat16 {bf16_losses}")
    leaves = jax.tree.leaves((f32_params, bf16_params))
    assert leaves and all(leaf.dtype == jnp.float32 for leaf in leaves)
    assert bf16_losses != f32_losses, "bfloat16 gave float32's losses: the compute type did not reach it"
    np.testing.assert_allclose(bf16_losses, f32_losses, atol=LOSS_TOLERANCE)
