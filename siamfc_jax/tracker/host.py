"""The SiamFC tracker's host half: weights, input checks, and the tracker classes.

:class:`Tracker` (one target, the GOT-10k toolkit's tracker protocol) and :class:`BatchTracker`
(N targets sharing a frame, or N videos of one frame size). Per frame only the frame goes to the
device and the 4-number boxes come back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import cv2
import jax
import numpy as np
from numpy.typing import ArrayLike

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.plans import Workload, stored_plan
from siamfc_jax.sequences.frames import average_color, read_image
from siamfc_jax.tracker.device import (
    MAX_TARGET_TO_FRAME,
    TrackState,
    empty_states,
    fit_config,
    hyper_params,
    prepare_variables,
    start,
    step,
    tracker_spec,
)
from siamfc_jax.weights import default_weights_path, load_variables

# ---------------------------------------------------------------------------------------------
# Host classes

Weights = str | os.PathLike | tuple[dict, ModelConfig] | None
Image = str | os.PathLike | np.ndarray | Any  # Any: a PIL image


def _resolve_weights(weights: Weights) -> tuple[dict, ModelConfig]:
    """Device-resident variables and model config from a path, a pair, or None (packaged weights)."""
    if weights is None:
        weights = default_weights_path()
    if isinstance(weights, str | os.PathLike):
        variables, model_config = load_variables(weights)
    elif (
        isinstance(weights, tuple) and len(weights) == 2 and isinstance(weights[1], ModelConfig)
    ):
        variables, model_config = weights
    else:
        raise ValueError(
            "weights must be None, a weights file path or a (variables, ModelConfig) pair, "
            f"got {type(weights).__name__}"
        )
    return jax.device_put(variables), model_config


def _to_rgb(image: Image, what: str = "image") -> np.ndarray:
    """(H, W, 3) RGB uint8 array of a file path (decoded by OpenCV), a PIL image or an array."""
    if isinstance(image, str | os.PathLike):
        return read_image(image)
    if hasattr(image, "convert"):  # a PIL image
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"{what} must be (H, W, 3) RGB uint8, got {array.dtype} {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {array.shape}, width and height must be >= 1")
    return array


def _format_box(box: ArrayLike) -> str:
    return "[" + ", ".join(f"{value:g}" for value in np.asarray(box, np.float64).reshape(-1)) + "]"


def first_box_problem(box: ArrayLike, frame_size: tuple[int, int]) -> str | None:
    """Why a finite 1-indexed ``[x, y, w, h]`` box with positive sides cannot start tracking in a
    frame of ``frame_size`` (width, height), or None when it can.

    A first box must overlap the frame (whose pixel columns span ``[1, W + 1)`` in 1-indexed
    coordinates) and be at most :data:`MAX_TARGET_TO_FRAME` times the frame's width and height:
    the tracker keeps its target within that size, so a larger box is a mistake (e.g. pixels
    given for another resolution), not a target.
    """
    x, y, w, h = (float(value) for value in np.asarray(box, np.float64).reshape(4))
    width, height = frame_size
    if x + w <= 1 or y + h <= 1 or x >= width + 1 or y >= height + 1:
        return f"{_format_box(box)} lies entirely outside the {width}x{height} first frame"
    if w > MAX_TARGET_TO_FRAME * width or h > MAX_TARGET_TO_FRAME * height:
        return (
            f"{_format_box(box)} is implausible for the {width}x{height} first frame: its "
            f"{w:g}x{h:g} size is more than {MAX_TARGET_TO_FRAME:g} times the frame's"
        )
    return None


def fill_color(image: np.ndarray) -> np.ndarray:
    """siamfc-pytorch's border colour: the mean colour, rounded half to even as OpenCV pads uint8.

    Rounded here in float64 so that the float32 the device gets is already a whole grey level.
    """
    return np.rint(average_color(image)).astype(np.float32)


def _checked_boxes(boxes: ArrayLike, ndim: int, what: str) -> np.ndarray:
    """``boxes`` as float64, (4,) for ``ndim`` 1 or (N, 4) for 2; finite with positive w and h."""
    array = np.asarray(boxes, np.float64)
    if (
        array.ndim != ndim
        or array.shape[-1] != 4
        or array.size == 0
        or not np.all(np.isfinite(array))
        or np.any(array[..., 2:] <= 0)
    ):
        shape = "(4,)" if ndim == 1 else "(N, 4)"
        raise ValueError(
            f"{what} must be {shape} finite 1-indexed [x, y, w, h] with positive w and h, "
            f"got {array.tolist()}"
        )
    return array


def _stack_frames(images: Image | Iterable[Image], num_targets: int) -> np.ndarray:
    """One (H, W, 3) frame shared by the targets, or (N, H, W, 3) per-target frames of one size."""
    if not isinstance(images, list | tuple) and not (
        isinstance(images, np.ndarray) and images.ndim == 4
    ):
        return _to_rgb(images)
    frames = [_to_rgb(image, f"frame {index}") for index, image in enumerate(images)]
    if len(frames) != num_targets:
        raise ValueError(f"got {len(frames)} frames for {num_targets} targets")
    shapes = {frame.shape for frame in frames}
    if len(shapes) != 1:
        raise ValueError(f"per-target frames must share one size, got {sorted(shapes)}")
    return np.stack(frames)


def _check_frame_shape(shape: tuple[int, ...], first: tuple[int, ...] | None) -> None:
    """Refuse a frame whose size differs from the first frame's: the state is in its pixels."""
    if first is not None and shape != first:
        raise ValueError(
            f"frame is {shape[1]}x{shape[0]} but tracking started on a {first[1]}x{first[0]} "
            "frame; boxes would stay in the first frame's coordinates (call init again)"
        )


def _show(image: np.ndarray, box: np.ndarray, window: str) -> None:
    """Show an RGB frame with its tracked 1-indexed ``[x, y, w, h]`` box in an OpenCV window: a red
    outline 2 pixels wide on the box's own pixels, columns ``x - 1 … x + w - 2`` (0-indexed), as
    :func:`siamfc_jax.visualize.draw_box` draws it (not imported: visualize reaches the tracker
    through evaluation)."""
    shown = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    x, y, w, h = (float(value) for value in box)
    if np.all(np.isfinite([x, y, w, h])) and w > 0 and h > 0:
        left, top = int(np.floor(x - 0.5)), int(np.floor(y - 0.5))  # x - 1 rounded half up
        right, bottom = max(left, int(np.floor(x + w - 1.5))), max(top, int(np.floor(y + h - 1.5)))
        for ring in range(2):
            if left + ring <= right - ring and top + ring <= bottom - ring:
                cv2.rectangle(shown, (left + ring, top + ring), (right - ring, bottom - ring), (0, 0, 255), 1)
    cv2.imshow(window, shown)
    cv2.waitKey(1)


class _DeviceTracker:
    """Weights on the device, the configs and the K slots' states, shared by :class:`Tracker` and
    :class:`BatchTracker`: both start their targets with
    :func:`~siamfc_jax.tracker.device.start` and step them with
    :func:`~siamfc_jax.tracker.device.step`."""

    name = "SiamFC-JAX"
    is_deterministic = True

    _prepared: tuple[dict, dict] | None = None
    _states: TrackState | None = None
    _frame_shape: tuple[int, ...] | None = None

    def __init__(
        self, weights: Weights = None, config: TrackerConfig = TrackerConfig(), plan: ConvPlan | None = None
    ) -> None:
        self.variables, self.model_config = _resolve_weights(weights)
        self.config = fit_config(config, self.model_config)
        if plan is None:
            plan = stored_plan(self.model_config, Workload.tracking(self.config))
        self.spec = tracker_spec(self.config, self.model_config, plan)

    @property
    def prepared_variables(self) -> dict:
        """What the tracking programs run on: :attr:`variables` plus the kernels prepared once for
        them (:func:`~siamfc_jax.tracker.device.prepare_variables`); computed on first use, and
        again after :attr:`variables` is replaced."""
        if self._prepared is None or self._prepared[0] is not self.variables:
            self._prepared = (self.variables, prepare_variables(self.variables, self.spec))
        return self._prepared[1]

    def _start(self, frames: np.ndarray, boxes: np.ndarray) -> None:
        """Start one slot per box; ``frames`` (N, H, W, 3), one per box, or (1, H, W, 3) shared."""
        count = len(boxes)
        self._frame_of_slot = jax.device_put(np.arange(count, dtype=np.int32) % len(frames))
        hyper = hyper_params(self.config)
        self._hyper = jax.device_put(jax.tree.map(lambda leaf: np.stack([leaf] * count), hyper))
        frame_hw = jax.device_put(np.asarray(frames.shape[1:3], np.float32))
        uploaded = [jax.device_put(frame) for frame in frames]
        fills = [jax.device_put(fill_color(frame)) for frame in frames]
        states = empty_states(count, self.spec)
        for slot, box in enumerate(boxes):
            which = slot % len(frames)
            states = start(
                self.prepared_variables,
                states,
                jax.device_put(np.int32(slot)),
                uploaded[which],
                jax.device_put(box.astype(np.float32)),
                fills[which],
                frame_hw,
                spec=self.spec,
            )
        self._states = states
        self._frame_shape = frames.shape[1:]

    def _step(self, frames: np.ndarray) -> np.ndarray:
        """(N, 4) float64 boxes after one step on ``frames`` (as for :meth:`_start`)."""
        _check_frame_shape(frames.shape[1:], self._frame_shape)
        self._states, boxes, _ = step(
            self.prepared_variables,
            self._states,
            jax.device_put(frames),
            self._frame_of_slot,
            self._hyper,
            spec=self.spec,
        )
        return np.asarray(jax.device_get(boxes), np.float64)


class Tracker(_DeviceTracker):
    """Single-target SiamFC tracker (siamfc-pytorch ``TrackerSiamFC``), GOT-10k toolkit protocol.

    Args:
      weights: a weights file (siamfc-pytorch ``.pth`` or ours), a ``(variables, ModelConfig)``
        pair, or None for the packaged default weights
        (:func:`siamfc_jax.weights.default_weights_path`).
      config: tracker hyper-parameters; the defaults are siamfc-pytorch's. Stored fitted to the
        network (:func:`fit_config`), so ``tracker.config`` shows the response geometry in use.
      plan: how the network computes its convolutions (:class:`~siamfc_jax.ops.plan.ConvPlan`);
        None: the plan this machine measured for tracking (:func:`siamfc_jax.plans.stored_plan`)
        where it has one, else the platform's :func:`~siamfc_jax.ops.plan.default_plan`.

    Raises:
      ConfigError: ``config`` does not fit the network (see :func:`fit_config`).
      WeightsError: the weights file is missing or unreadable.
    """

    def init(self, image: Image, box: ArrayLike) -> None:
        """Start tracking the 1-indexed ``[x, y, w, h]`` ``box`` in the first frame ``image``.

        Raises:
          ValueError: the image is not a non-empty (H, W, 3) RGB uint8 image, or the box is not
            finite with positive sides, lies outside the frame or is implausibly large for it
            (see :func:`first_box_problem`).
        """
        frame = _to_rgb(image)
        box = _checked_boxes(box, 1, "box")
        problem = first_box_problem(box, (frame.shape[1], frame.shape[0]))
        if problem is not None:
            raise ValueError(f"box {problem}")
        self._start(frame[None], box[None])

    def update(self, image: Image) -> np.ndarray:
        """Track into the next frame; returns the (4,) float64 box, 1-indexed ``[x, y, w, h]``."""
        if self._states is None:
            raise RuntimeError("Tracker.update called before Tracker.init")
        return self._step(_to_rgb(image)[None])[0]

    def track(
        self, frames: Sequence[Image], box: ArrayLike, visualize: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Track through ``frames`` (paths, RGB uint8 arrays or PIL images) from the first ``box``.

        Returns:
          ``(boxes, times)``: (N, 4) float64 1-indexed ``[x, y, w, h]`` boxes (the first is ``box``)
          and (N,) seconds spent in ``init``/``update`` per frame (decoding excluded).
        """
        boxes = np.zeros((len(frames), 4))
        times = np.zeros(len(frames))
        boxes[0] = _checked_boxes(box, 1, "box")
        for index, frame in enumerate(frames):
            image = _to_rgb(frame, f"frame {index}")
            started = time.perf_counter()
            if index == 0:
                self.init(image, boxes[0])
            else:
                boxes[index] = self.update(image)
            times[index] = time.perf_counter() - started
            if visualize:
                _show(image, boxes[index], self.name)
        return boxes, times


class BatchTracker(_DeviceTracker):
    """N SiamFC targets tracked in one device call per frame.

    The frames are either one frame shared by all targets (N targets in one video) or N frames of
    one size (one per target, e.g. N videos stepped together). Each target's boxes equal those of
    its own :class:`Tracker`.

    Args:
      weights, config, plan: as for :class:`Tracker`.
    """

    _num_targets: int = 0

    def init(self, images: Image | Iterable[Image], boxes: ArrayLike) -> None:
        """Start tracking ``boxes`` (N, 4), 1-indexed ``[x, y, w, h]``.

        ``images`` is one frame shared by all targets or a list / (N, H, W, 3) array of N frames.
        """
        boxes = _checked_boxes(boxes, 2, "boxes")
        frames = _stack_frames(images, len(boxes))
        height, width = frames.shape[-3:-1]
        for index, box in enumerate(boxes):
            problem = first_box_problem(box, (width, height))
            if problem is not None:
                raise ValueError(f"boxes[{index}] {problem}")
        self._start(frames if frames.ndim == 4 else frames[None], boxes)
        self._num_targets = len(boxes)

    def update(self, images: Image | Iterable[Image]) -> np.ndarray:
        """Track every target into its next frame; returns (N, 4) float64 boxes."""
        if self._states is None:
            raise RuntimeError("BatchTracker.update called before BatchTracker.init")
        frames = _stack_frames(images, self._num_targets)
        return self._step(frames if frames.ndim == 4 else frames[None])
