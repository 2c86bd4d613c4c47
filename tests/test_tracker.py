"""The tracker against siamfc-pytorch's boxes, a NumPy/OpenCV re-implementation of one step, its
compile count, and batched tracking against single-target runs."""

from __future__ import annotations

import json
import logging

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.evaluation.metrics import evaluate, iou
from siamfc_jax.models.layers import PREPARED
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.pipeline.crops import crop_and_resize
from siamfc_jax.sequences.frames import average_color, read_image
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import (
    BatchTracker,
    Tracker,
    TrackState,
    embed,
    fit_config,
    locate,
    start,
    step,
    tracker_spec,
)
from siamfc_jax.tracker.device import empty_states, hyper_params
from siamfc_jax.tracker.host import fill_color
from siamfc_jax.weights import load_variables
from tests.conftest import shared_path

CONFIG = fit_config(TrackerConfig(), ModelConfig())
SPEC = tracker_spec(CONFIG, ModelConfig())


def _start_one(variables: dict, spec, frame: np.ndarray, box: np.ndarray, fill: np.ndarray):
    """One slot's states, started on ``frame`` and ``box`` (what Tracker.init does)."""
    return start(
        variables, empty_states(1, spec), np.int32(0), frame, box.astype(np.float32), fill,
        np.asarray(frame.shape[:2], np.float32), spec=spec,
    )


def _step_one(variables: dict, states, frame: np.ndarray, spec, config: TrackerConfig = CONFIG):
    """``(states, box)`` after one step of one slot on ``frame`` (what Tracker.update does)."""
    hyper = jax.tree.map(lambda leaf: leaf[None], hyper_params(config))
    states, boxes, _ = step(variables, states, frame[None], np.zeros(1, np.int32), hyper, spec=spec)
    return states, boxes[0]


@pytest.fixture(scope="module")
def weights() -> tuple:
    return load_variables(shared_path("siamfc/weights/siamfc_original_v1.pth"))


@pytest.fixture(scope="module")
def crossing_frames() -> list[np.ndarray]:
    sequence = open_sequence(shared_path("siamfc/data/sequences/Crossing"))
    return [read_image(path) for path in sequence.frames[:6]]


@pytest.fixture(scope="module")
def crossing_boxes() -> np.ndarray:
    return open_sequence(shared_path("siamfc/data/sequences/Crossing")).boxes


# ---------------------------------------------------------------------------------------------
# Parity with siamfc-pytorch on whole sequences


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Crossing", "bag"])
def test_parity_with_siamfc_pytorch(weights: tuple, name: str, tracking_plan: ConvPlan) -> None:
    sequence = open_sequence(shared_path(f"siamfc/data/sequences/{name}"))
    reference_dir = shared_path("siamfc/reference/siamfc_pytorch")
    reference = np.loadtxt(reference_dir / f"{name}.txt", delimiter=",")
    summary = json.loads((reference_dir / "summary.json").read_text())[name]

    # Line 1 of the reference is the box siamfc-pytorch started from.
    # This machine's tracking plan: the formulations track.py runs.
    boxes, times = Tracker(weights, plan=tracking_plan).track(sequence.frames, reference[0])

    assert boxes.shape == (len(sequence.frames), 4) and times.shape == (len(sequence.frames),)
    np.testing.assert_array_equal(boxes[0], reference[0])
    agreement = float(np.mean(iou(boxes, reference)))
    ours = evaluate(boxes, sequence.boxes)
    print(f"{name}: mean IoU with siamfc-pytorch {agreement:.6f}, AUC {ours['auc']:.4f} "
          f"(siamfc-pytorch {summary['auc']:.4f}), {1 / np.median(times[1:]):.1f} fps")
    assert agreement >= 0.99
    assert abs(ours["auc"] - summary["auc"]) <= 0.005


# ---------------------------------------------------------------------------------------------
# One update step re-implemented with NumPy and OpenCV


def _numpy_update(
    variables: dict, model_config, state: TrackState, frame: np.ndarray
) -> tuple[np.ndarray, int]:
    """siamfc-pytorch's update step on the host, from a (host copy of a) state; returns box, scale."""
    center = np.asarray(state.center, np.float64)
    target_size = np.asarray(state.target_size, np.float64)
    search_crop = float(state.search_crop)
    half = CONFIG.scale_num // 2
    factors = CONFIG.scale_step ** np.linspace(-half, half, CONFIG.scale_num)

    crops = np.stack(
        [
            crop_and_resize(frame, center, search_crop * f, CONFIG.instance_sz, state.fill)
            for f in factors
        ]
    )
    features = np.asarray(
        embed(variables, jnp.asarray(crops, jnp.float32), tracker_spec(CONFIG, model_config)), np.float64
    )
    kernel = np.asarray(state.exemplar_features[0], np.float64)  # (hz, wz, c)
    windows = sliding_window_view(features, kernel.shape[:2], axis=(1, 2))  # (S, h, w, c, hz, wz)
    responses = np.einsum("sijcyx,yxc->sij", windows, kernel) * model_config.out_scale
    upscale = CONFIG.upscale_sz
    responses = np.stack(
        [
            cv2.resize(r, (upscale, upscale), interpolation=cv2.INTER_CUBIC)
            for r in responses.astype(np.float32)
        ]
    )
    responses[:half] *= CONFIG.scale_penalty
    responses[half + 1 :] *= CONFIG.scale_penalty
    scale_id = int(np.argmax(np.amax(responses, axis=(1, 2))))

    response = responses[scale_id]
    response -= response.min()
    response /= response.sum() + 1e-16
    hann = np.outer(np.hanning(upscale), np.hanning(upscale))
    hann /= hann.sum()
    response = (1 - CONFIG.window_influence) * response + CONFIG.window_influence * hann
    peak = np.array(np.unravel_index(response.argmax(), response.shape), np.float64)
    displacement = (peak - (upscale - 1) / 2) * CONFIG.total_stride / CONFIG.response_up
    center = center + displacement * search_crop * factors[scale_id] / CONFIG.instance_sz
    target_size = target_size * ((1 - CONFIG.scale_lr) + CONFIG.scale_lr * factors[scale_id])
    box = np.array(
        [
            center[1] + 1 - (target_size[1] - 1) / 2,
            center[0] + 1 - (target_size[0] - 1) / 2,
            target_size[1],
            target_size[0],
        ]
    )
    return box, scale_id


def test_update_matches_numpy_reference(
    weights: tuple, crossing_frames: list, crossing_boxes: np.ndarray
) -> None:
    variables, model_config = weights
    variables = jax.device_put(variables)
    first = crossing_frames[0]
    box = crossing_boxes[0]
    fill = np.rint(average_color(first)).astype(np.float32)
    # Frames 2 and 3, then frame 4 zoomed in 1.5x and frame 5 out 1.25x about the target, so that
    # the smaller and the larger search scale win too and the scale update is exercised.
    center_xy = (float(box[0] - 1 + (box[2] - 1) / 2), float(box[1] - 1 + (box[3] - 1) / 2))
    height, width = first.shape[:2]

    def zoom(frame: np.ndarray, factor: float) -> np.ndarray:
        matrix = cv2.getRotationMatrix2D(center_xy, 0.0, factor)
        return cv2.warpAffine(frame, matrix, (width, height))

    frames = [
        crossing_frames[1],
        crossing_frames[2],
        zoom(crossing_frames[3], 1.5),
        zoom(crossing_frames[4], 1 / 1.25),
    ]
    spec = tracker_spec(CONFIG, model_config)
    states = _start_one(variables, spec, first, box, fill)
    scales = []
    for frame in frames:
        before = jax.tree.map(lambda leaf: leaf[0], jax.device_get(states))  # step donates states
        expected, scale_id = _numpy_update(variables, model_config, before, frame)
        states, got = _step_one(variables, states, frame, spec)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=1e-3)
        scales.append(scale_id)
    assert set(scales) == {0, 1, 2}, f"scales {scales}: not every scale was exercised"


# ---------------------------------------------------------------------------------------------
# Compilations


def _synthetic_frames(height: int, width: int, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(height)
    frames = []
    for index in range(count):
        frame = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
        frame[30 + index : 60 + index, 40 : 70 + index] = 220
        frames.append(frame)
    return frames


def test_compiles_once_per_frame_size(
    weights: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = Tracker(weights)
    box = np.array([41.0, 31.0, 30.0, 30.0])

    def compiles(name: str) -> int:
        prefix = f"Compiling jit({name}) "
        return sum(record.getMessage().startswith(prefix) for record in caplog.records)

    # Frame sizes no other test uses, so that nothing is compiled already.
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        tracker.track(_synthetic_frames(97, 131, 5), box)
        assert compiles("step") == 1
        assert compiles("start") == 1
        tracker.track(_synthetic_frames(103, 127, 3), box)
        assert compiles("step") == 2
        tracker.track(_synthetic_frames(97, 131, 3), box)
        assert compiles("step") == 2
        assert compiles("start") == 2


def test_update_transfers_only_frame_and_box(weights: tuple) -> None:
    # Under a "disallow" guard any implicit upload (weights, state, constants) raises; the
    # trackers' only transfers are their explicit upload of the frame and download of the boxes.
    # (On the CPU backend downloads are not guarded, so this checks the uploads.)
    frames = _synthetic_frames(89, 117, 3)
    box = np.array([41.0, 31.0, 30.0, 30.0])
    tracker = Tracker(weights)
    tracker.init(frames[0], box)
    batch = BatchTracker(weights)
    batch.init(frames[0], box[None])
    with jax.transfer_guard("disallow"):
        for frame in frames[1:]:
            tracker.update(frame)
            batch.update(frame)


# ---------------------------------------------------------------------------------------------
# Batched tracking and inputs


def _single_runs(weights: tuple, videos: list[list[np.ndarray]], boxes: np.ndarray) -> np.ndarray:
    """(frames - 1, N, 4) boxes of one Tracker per target, after the first frame."""
    runs = [
        Tracker(weights).track(video, box)[0][1:]
        for video, box in zip(videos, boxes, strict=True)
    ]
    return np.stack(runs, axis=1)


def test_batch_shared_frame_equals_single_runs(weights: tuple, crossing_frames: list) -> None:
    frames = crossing_frames[:3]
    boxes = np.array([[205, 151, 17, 50], [150, 100, 40, 60], [300, 30, 25, 25]], np.float64)
    batch = BatchTracker(weights)
    batch.init(frames[0], boxes)
    batched = np.stack([batch.update(frame) for frame in frames[1:]])
    expected = _single_runs(weights, [frames] * len(boxes), boxes)
    np.testing.assert_allclose(batched, expected, rtol=0, atol=1e-3)


def test_batch_one_frame_per_target_equals_single_runs(
    weights: tuple, crossing_frames: list, crossing_boxes: np.ndarray
) -> None:
    # Two "videos" of one frame size: Crossing from frame 1, and Crossing from frame 3.
    videos = [crossing_frames[0:3], crossing_frames[2:5]]
    boxes = np.stack([crossing_boxes[0], crossing_boxes[2]])
    batch = BatchTracker(weights)
    batch.init([video[0] for video in videos], boxes)
    batched = np.stack([batch.update([video[t] for video in videos]) for t in (1, 2)])
    expected = _single_runs(weights, videos, boxes)
    np.testing.assert_allclose(batched, expected, rtol=0, atol=1e-3)


def test_prepared_variables_track_as_the_weights_alone(
    weights: tuple, crossing_frames: list, crossing_boxes: np.ndarray
) -> None:
    """With "winograd", which transforms its kernels, prepare_variables adds each search layer's
    transform once, and tracking on them gives the boxes of tracking on the weights alone."""
    tracker = Tracker(weights, CONFIG, ConvPlan.uniform("winograd"))
    prepared = tracker.prepared_variables
    stored = traverse_util.flatten_dict(prepared[PREPARED])
    assert sorted(stored) == [("backbone", f"conv{i}", "conv", "winograd_kernel") for i in range(1, 6)]
    assert tracker.prepared_variables is prepared  # computed once
    frames = crossing_frames[:4]
    boxes, _ = tracker.track(frames, crossing_boxes[0])

    states = _start_one(tracker.variables, tracker.spec, frames[0], crossing_boxes[0], fill_color(frames[0]))
    for frame, box in zip(frames[1:], boxes[1:], strict=True):
        states, unprepared = _step_one(tracker.variables, states, frame, tracker.spec, tracker.config)
        np.testing.assert_allclose(np.asarray(unprepared), box, rtol=0, atol=1e-3)
    # New weights are prepared again.
    tracker.variables = jax.tree.map(jnp.array, tracker.variables)
    assert tracker.prepared_variables is not prepared


def test_paths_arrays_and_pil_images_track_alike(
    weights: tuple, crossing_boxes: np.ndarray
) -> None:
    paths = open_sequence(shared_path("siamfc/data/sequences/Crossing")).frames[:3]
    arrays = [read_image(path) for path in paths]
    from_paths = Tracker(weights).track(paths, crossing_boxes[0])[0]
    from_arrays = Tracker(weights).track(arrays, crossing_boxes[0])[0]
    np.testing.assert_array_equal(from_paths, from_arrays)
    # PIL images in another mode are converted to RGB first.
    rgba = [Image.fromarray(array).convert("RGBA") for array in arrays]
    from_pil = Tracker(weights).track(rgba, crossing_boxes[0])[0]
    np.testing.assert_array_equal(from_pil, from_arrays)


def test_user_errors_are_clear(weights: tuple) -> None:
    tracker = Tracker(weights)
    with pytest.raises(RuntimeError, match=r"before Tracker\.init"):
        tracker.update(np.zeros((50, 60, 3), np.uint8))
    with pytest.raises(ValueError, match="positive w and h"):
        tracker.init(np.zeros((50, 60, 3), np.uint8), [1, 1, 0, 5])
    with pytest.raises(ValueError, match="RGB uint8"):
        tracker.init(np.zeros((50, 60), np.uint8), [1, 1, 5, 5])
    with pytest.raises(ValueError, match="weights must be"):
        Tracker(weights=42)
    batch = BatchTracker(weights)
    with pytest.raises(ValueError, match="2 frames for 3 targets"):
        batch.init([np.zeros((50, 60, 3), np.uint8)] * 2, np.ones((3, 4)))


def test_empty_image_implausible_box_and_resized_frames_are_refused(weights: tuple) -> None:
    # An empty image would reach a JAX gather with no pixels; a 100000-pixel box on a small frame
    # would be a target the tracker cannot keep (a box given for another resolution).
    tracker = Tracker(weights)
    with pytest.raises(ValueError, match=r"image is empty: shape \(0, 0, 3\)"):
        tracker.init(np.zeros((0, 0, 3), np.uint8), [1, 1, 5, 5])
    frame = np.zeros((240, 360, 3), np.uint8)
    with pytest.raises(ValueError, match=r"implausible for the 360x240 first frame"):
        tracker.init(frame, [1, 1, 100000, 100000])
    with pytest.raises(ValueError, match=r"lies entirely outside the 360x240"):
        tracker.init(frame, [400, 1, 5, 5])
    with pytest.raises(ValueError, match=r"boxes\[1\] \[1, 1, 800, 5\] is implausible"):
        BatchTracker(weights).init(frame, [[1, 1, 5, 5], [1, 1, 800, 5]])
    tracker.init(frame, [1, 1, 720, 480])  # twice the frame: the largest first box accepted
    with pytest.raises(ValueError, match=r"frame is 100x50 but tracking started on a 360x240"):
        tracker.update(np.zeros((50, 100, 3), np.uint8))


def test_locate_keeps_the_state_bounded() -> None:
    # A response peaked in a corner with a search square far larger than the frame: unbounded,
    # the centre jumps thousands of pixels and the size grows by the scale step; bounded, the
    # centre stays within one frame beyond each edge and the size within 2 frames (aspect kept).
    frame_shape = (240, 360, 3)
    responses = np.zeros((CONFIG.scale_num, CONFIG.response_sz, CONFIG.response_sz), np.float32)
    responses[-1, 0, 0] = 1.0  # the largest scale, top-left corner
    state = TrackState(
        center=jnp.asarray([100.0, 150.0]),
        target_size=jnp.asarray([470.0, 700.0]),
        exemplar_crop=jnp.asarray(1000.0),
        search_crop=jnp.asarray(100000.0),
        fill=jnp.zeros(3),
        exemplar_features=jnp.zeros((1, 6, 6, 256)),
        frame_hw=jnp.asarray([1e9, 1e9]),  # a frame too large to bound anything
    )
    free, _, _ = locate(state, jnp.asarray(responses), spec=SPEC)
    assert float(jnp.min(free.center)) < -10000 and float(free.target_size[1]) > 700
    bounded, box, _ = locate(
        state._replace(frame_hw=jnp.asarray(frame_shape[:2], jnp.float32)), jnp.asarray(responses), spec=SPEC
    )
    np.testing.assert_allclose(np.asarray(bounded.center), [-240.0, -360.0])
    size = np.asarray(bounded.target_size)
    # The height is the binding side: 2 frame heights (480), the width keeps the aspect.
    assert size[0] == pytest.approx(480.0, rel=1e-6) and size[1] == pytest.approx(700 * 480 / 470, rel=1e-6)
    scale = size[0] / 470
    assert float(bounded.search_crop) == pytest.approx(100000.0 * scale, rel=1e-6)
    np.testing.assert_allclose(np.asarray(box)[2:], size[::-1], rtol=1e-6)
