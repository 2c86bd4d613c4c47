"""The SiamFC tracker: device state and one jitted update per frame, plus host-side tracker classes.

Device part (pure, jittable): :func:`init_state` builds a :class:`TrackState` from the first frame and
box; :func:`update_state` does the whole per-frame step of siamfc-pytorch's ``TrackerSiamFC.update``
in one compiled call: :func:`search_responses` (search crops at every scale, backbone, correlation
with the cached exemplar features), then :func:`locate` (bicubic upsampling, scale penalty,
normalisation, cosine window, peak, new centre and size). :func:`init_states` /
:func:`update_states` do the same for N targets in one call. Each compiles once per frame size (and
number of targets).

The response geometry follows the network: :func:`fit_config` sets ``response_sz`` and
``total_stride`` of a :class:`TrackerConfig` from the backbone (17 and 8 for AlexNetV1, 33 and 4 for
AlexNetV2), so one config serves every backbone.

Host part: :class:`Tracker` (one target, the GOT-10k toolkit's tracker protocol) and
:class:`BatchTracker` (N targets sharing a frame, or N videos of one frame size). Per frame only the
frame goes to the device and the 4-number boxes come back.

Conventions: boxes are 1-indexed ``[x, y, w, h]`` in pixels; on the device the target is a 0-indexed
centre ``[y, x]`` and a size ``[h, w]``; frames are (H, W, 3) RGB uint8.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from siamfc_jax.config import ConfigError, ModelConfig, TrackerConfig
from siamfc_jax.data.crops import average_color
from siamfc_jax.data.sequences import read_image
from siamfc_jax.models import SiamFC, backbone_class, cross_correlate, init_variables
from siamfc_jax.ops import crop_and_resize, upsample
from siamfc_jax.weights import default_weights_path, load_variables


class TrackState(NamedTuple):
    """What the tracker carries from frame to frame (all float32, on the device).

    Attributes:
      center: (2,) target centre ``[y, x]``, 0-indexed pixels.
      target_size: (2,) target ``[h, w]`` in pixels.
      exemplar_crop: () side in pixels of the exemplar square (target plus context) in the frame.
      search_crop: () side in pixels of the search square at scale 1.
      fill: (3,) colour of crop pixels outside the frame: the first frame's mean colour.
      exemplar_features: (1, hz, wz, c) backbone features of the first frame's exemplar crop.
    """

    center: jax.Array
    target_size: jax.Array
    exemplar_crop: jax.Array
    search_crop: jax.Array
    fill: jax.Array
    exemplar_features: jax.Array


# ---------------------------------------------------------------------------------------------
# Device functions


def embed(
    variables: dict,
    images: jax.Array,
    model_config: ModelConfig,
    precision: str,
    conv_impl: str = "auto",
) -> jax.Array:
    """Backbone features (n, h', w', c) of (n, H, W, 3) images (RGB 0–255), in eval mode.

    The tracker reaches the network only through this function, so the backbone's formulation can
    change in :mod:`siamfc_jax.models` without touching the tracking logic.
    """
    model = SiamFC(model_config, precision=precision, conv_impl=conv_impl)
    return model.apply(variables, images, method=SiamFC.embed)


def _response_size(config: TrackerConfig, model_config: ModelConfig) -> int:
    """Side of the raw response map of an ``exemplar_sz`` exemplar over an ``instance_sz`` search.

    Found by shape inference through :func:`embed`, so it holds for any backbone: the response side
    is the search features' side minus the exemplar features' side, plus one.
    """
    variables = jax.eval_shape(functools.partial(init_variables, model_config), jax.random.key(0))

    def feature_shapes(variables: dict) -> tuple[jax.Array, jax.Array]:
        exemplar = jnp.zeros((1, config.exemplar_sz, config.exemplar_sz, 3), jnp.float32)
        search = jnp.zeros((1, config.instance_sz, config.instance_sz, 3), jnp.float32)
        # Shapes do not depend on the formulation; "lax" keeps "auto" from measuring these layers.
        return (
            embed(variables, exemplar, model_config, config.precision, "lax"),
            embed(variables, search, model_config, config.precision, "lax"),
        )

    exemplar_features, search_features = jax.eval_shape(feature_shapes, variables)
    exemplar_side, search_side = exemplar_features.shape[1], search_features.shape[1]
    if exemplar_side < 1:
        raise ConfigError(
            "exemplar_sz",
            f"exemplar_sz {config.exemplar_sz} is smaller than the receptive field of backbone "
            f"{model_config.backbone}",
        )
    return search_side - exemplar_side + 1


@functools.cache
def fit_config(config: TrackerConfig, model_config: ModelConfig) -> TrackerConfig:
    """``config`` with ``response_sz`` and ``total_stride`` set to those of the network.

    ``total_stride`` is the backbone's output stride (pixels of the search image per response
    cell); ``response_sz`` the side of the response of an ``exemplar_sz`` exemplar over an
    ``instance_sz`` search image: 8 and 17 for AlexNetV1/V3, 4 and 33 for AlexNetV2 with the
    default 127/255 crops.

    Raises:
      ConfigError: ``config`` sets one of them to another value, or the crops are too small for
        the network.
    """
    derived = {
        "total_stride": backbone_class(model_config.backbone).output_stride,
        "response_sz": _response_size(config, model_config),
    }
    for name, value in derived.items():
        given = getattr(config, name)
        if given is not None and given != value:
            raise ConfigError(
                name,
                f"{name} {given} does not fit backbone {model_config.backbone}, which gives "
                f"{value} with exemplar_sz {config.exemplar_sz} and instance_sz "
                f"{config.instance_sz}; leave {name} unset to follow the network",
            )
    return dataclasses.replace(config, **derived)


def _scale_factors(config: TrackerConfig) -> np.ndarray:
    """(S,) search-size factors ``scale_step ** [-S//2 … S//2]``."""
    half = config.scale_num // 2
    return config.scale_step ** np.linspace(-half, half, config.scale_num)


def _scale_penalties(config: TrackerConfig) -> np.ndarray:
    """(S,) multipliers of the response maps: ``scale_penalty`` for every scale but the middle one."""
    penalties = np.full(config.scale_num, config.scale_penalty)
    penalties[config.scale_num // 2] = 1.0
    return penalties


def _cosine_window(size: int) -> np.ndarray:
    """(size, size) Hann window normalised to sum 1, as siamfc-pytorch builds it."""
    window = np.outer(np.hanning(size), np.hanning(size))
    return window / window.sum()


def _box_to_center(box: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Centre ``[y, x]`` (0-indexed) and size ``[h, w]`` of a 1-indexed ``[x, y, w, h]`` box."""
    x, y, w, h = box[0], box[1], box[2], box[3]
    center = jnp.stack([y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2])
    return center, jnp.stack([h, w])


def _center_to_box(center: jax.Array, size: jax.Array) -> jax.Array:
    """1-indexed ``[x, y, w, h]`` box of a 0-indexed centre ``[y, x]`` and size ``[h, w]``."""
    return jnp.stack(
        [
            center[1] + 1 - (size[1] - 1) / 2,
            center[0] + 1 - (size[0] - 1) / 2,
            size[1],
            size[0],
        ]
    )


_STATIC = ("config", "model_config")


@functools.partial(jax.jit, static_argnames=_STATIC)
def init_state(
    variables: dict,
    image: jax.Array,
    box: jax.Array,
    fill: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
) -> TrackState:
    """Tracking state for the target ``box`` in the first frame ``image`` (jitted).

    Args:
      variables: Flax ``{"params", "batch_stats"}`` of :class:`SiamFC`.
      image: (H, W, 3) uint8 RGB first frame.
      box: (4,) 1-indexed ``[x, y, w, h]`` in pixels.
      fill: (3,) colour of crop pixels outside the frame, 0–255 (siamfc-pytorch: the first frame's
        mean colour, :func:`siamfc_jax.data.crops.average_color`), rounded half to even like
        OpenCV's border.
      config: tracker hyper-parameters (static).
      model_config: the network's config (static).

    Returns:
      The :class:`TrackState`, on the device.
    """
    center, target_size = _box_to_center(jnp.asarray(box, jnp.float32))
    context = config.context * jnp.sum(target_size)
    exemplar_crop = jnp.sqrt(jnp.prod(target_size + context))
    search_crop = exemplar_crop * config.instance_sz / config.exemplar_sz
    fill = jnp.asarray(fill, jnp.float32)
    exemplar = crop_and_resize(image, center, exemplar_crop[None], config.exemplar_sz, fill)
    features = embed(variables, exemplar, model_config, config.precision, config.conv_impl)
    return TrackState(center, target_size, exemplar_crop, search_crop, fill, features)


def search_responses(
    variables: dict,
    state: TrackState,
    image: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
) -> jax.Array:
    """Raw responses of the exemplar over the search crops of ``image`` at every scale (jittable).

    Args:
      variables: Flax ``{"params", "batch_stats"}`` of :class:`SiamFC`.
      state: the current :class:`TrackState`.
      image: (H, W, 3) uint8 RGB frame.
      config, model_config: as for :func:`init_state`.

    Returns:
      (S, r, r) float32 responses, S = ``scale_num`` (smallest search square first), r the
      network's response size (``fit_config(config, model_config).response_sz``).
    """
    factors = jnp.asarray(_scale_factors(config), jnp.float32)
    searches = crop_and_resize(
        image, state.center, state.search_crop * factors, config.instance_sz, state.fill
    )
    features = embed(variables, searches, model_config, config.precision, config.conv_impl)
    return cross_correlate(
        state.exemplar_features, features, model_config.out_scale, config.precision, config.conv_impl
    )[..., 0]


def locate(
    state: TrackState,
    responses: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
) -> tuple[TrackState, jax.Array]:
    """The new target position and size from the raw ``responses`` (jittable).

    The responses are upsampled bicubically ``response_up`` times and penalised off the middle
    scale; the best scale's map is normalised and blended with a cosine window, and its peak,
    relative to the map's centre, is mapped through the upsampling, the network's stride and the
    search crop's scale into frame pixels.

    Args:
      state: the :class:`TrackState` the responses were computed from.
      responses: (S, r, r) raw responses, as from :func:`search_responses`.
      config, model_config: as for :func:`init_state`; ``response_sz`` and ``total_stride`` come
        from the network (:func:`fit_config`).

    Returns:
      ``(state, box)``: the new state and the (4,) float32 box, 1-indexed ``[x, y, w, h]`` pixels.

    Raises:
      ValueError: ``responses`` do not have the network's response shape.
    """
    config = fit_config(config, model_config)
    expected = (config.scale_num, config.response_sz, config.response_sz)
    if responses.shape != expected:
        raise ValueError(f"responses must be {expected} for this config, got {responses.shape}")
    factors = jnp.asarray(_scale_factors(config), jnp.float32)
    responses = upsample(responses, config.upscale_sz, config.precision)
    responses = responses * jnp.asarray(_scale_penalties(config), jnp.float32)[:, None, None]

    scale_id = jnp.argmax(jnp.max(responses, axis=(1, 2)))
    response = responses[scale_id]
    response = response - jnp.min(response)
    response = response / (jnp.sum(response) + 1e-16)
    window = jnp.asarray(_cosine_window(config.upscale_sz), jnp.float32)
    response = (1 - config.window_influence) * response + config.window_influence * window

    # Peak (first maximum in row-major order, like np.argmax) relative to the map's centre,
    # mapped back through the upsampling and the network's stride to frame pixels.
    peak = jnp.stack(jnp.divmod(jnp.argmax(response), config.upscale_sz)).astype(jnp.float32)
    offset_response = peak - (config.upscale_sz - 1) / 2
    offset_search = offset_response * config.total_stride / config.response_up
    factor = factors[scale_id]
    offset_frame = offset_search * state.search_crop * factor / config.instance_sz
    center = state.center + offset_frame

    scale = (1 - config.scale_lr) + config.scale_lr * factor
    target_size = state.target_size * scale
    new_state = state._replace(
        center=center,
        target_size=target_size,
        exemplar_crop=state.exemplar_crop * scale,
        search_crop=state.search_crop * scale,
    )
    return new_state, _center_to_box(center, target_size)


@functools.partial(jax.jit, static_argnames=_STATIC, donate_argnames=("state",))
def update_state(
    variables: dict,
    state: TrackState,
    image: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
) -> tuple[TrackState, jax.Array]:
    """One tracking step on ``image`` (jitted; the buffers of ``state`` are donated).

    :func:`search_responses` followed by :func:`locate`.

    Args:
      variables: Flax ``{"params", "batch_stats"}`` of :class:`SiamFC`.
      state: the previous :class:`TrackState` (unusable after the call).
      image: (H, W, 3) uint8 RGB frame.
      config, model_config: as for :func:`init_state` (static).

    Returns:
      ``(state, box)``: the new state and the (4,) float32 box, 1-indexed ``[x, y, w, h]`` pixels.
    """
    statics = {"config": config, "model_config": model_config}
    responses = search_responses(variables, state, image, **statics)
    return locate(state, responses, **statics)


def _image_axis(images: jax.Array) -> int | None:
    """0 when ``images`` is a stack (N, H, W, 3) of per-target frames, None for one shared frame."""
    return 0 if images.ndim == 4 else None


@functools.partial(jax.jit, static_argnames=_STATIC)
def init_states(
    variables: dict,
    images: jax.Array,
    boxes: jax.Array,
    fills: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
) -> TrackState:
    """States of N targets in one call (jitted): :func:`init_state` mapped over the targets.

    ``images`` is one shared (H, W, 3) frame or (N, H, W, 3) frames, one per target; ``boxes`` is
    (N, 4) 1-indexed ``[x, y, w, h]``, ``fills`` (N, 3). The state's arrays get a leading axis N.
    """
    init = functools.partial(init_state, config=config, model_config=model_config)
    return jax.vmap(init, in_axes=(None, _image_axis(images), 0, 0))(
        variables, images, boxes, fills
    )


@functools.partial(jax.jit, static_argnames=_STATIC, donate_argnames=("states",))
def update_states(
    variables: dict,
    states: TrackState,
    images: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
) -> tuple[TrackState, jax.Array]:
    """One tracking step of N targets in one call (jitted; ``states`` donated).

    ``images`` is one shared (H, W, 3) frame or (N, H, W, 3) frames, one per target. Returns the
    new states and (N, 4) float32 boxes, 1-indexed ``[x, y, w, h]``.
    """
    update = functools.partial(update_state, config=config, model_config=model_config)
    return jax.vmap(update, in_axes=(None, 0, _image_axis(images)))(variables, states, images)


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
    return array


def _fill_color(image: np.ndarray) -> np.ndarray:
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


def _show(image: np.ndarray, boxes: np.ndarray, window: str) -> None:
    """Draw (N, 4) 1-indexed boxes on an RGB frame in an OpenCV window."""
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    for x, y, w, h in np.asarray(boxes, np.float64).reshape(-1, 4):
        top_left = (round(x - 1), round(y - 1))
        bottom_right = (round(x - 1 + w), round(y - 1 + h))
        cv2.rectangle(canvas, top_left, bottom_right, (0, 0, 255), 2)
    cv2.imshow(window, canvas)
    cv2.waitKey(1)


class _DeviceTracker:
    """Weights on the device and the configs, shared by :class:`Tracker` and :class:`BatchTracker`."""

    name = "SiamFC-JAX"
    is_deterministic = True

    def __init__(self, weights: Weights = None, config: TrackerConfig = TrackerConfig()) -> None:
        self.variables, self.model_config = _resolve_weights(weights)
        self.config = fit_config(config, self.model_config)


class Tracker(_DeviceTracker):
    """Single-target SiamFC tracker (siamfc-pytorch ``TrackerSiamFC``), GOT-10k toolkit protocol.

    Args:
      weights: a weights file (siamfc-pytorch ``.pth`` or ours), a ``(variables, ModelConfig)``
        pair, or None for the packaged default weights
        (:func:`siamfc_jax.weights.default_weights_path`).
      config: tracker hyper-parameters; the defaults are siamfc-pytorch's. Stored fitted to the
        network (:func:`fit_config`), so ``tracker.config`` shows the response geometry in use.

    Raises:
      ConfigError: ``config`` does not fit the network (see :func:`fit_config`).
      WeightsError: the weights file is missing or unreadable.
    """

    _state: TrackState | None = None

    def init(self, image: Image, box: ArrayLike) -> None:
        """Start tracking the 1-indexed ``[x, y, w, h]`` ``box`` in the first frame ``image``."""
        frame = _to_rgb(image)
        box = _checked_boxes(box, 1, "box")
        self._state = init_state(
            self.variables,
            jax.device_put(frame),
            box.astype(np.float32),
            _fill_color(frame),
            config=self.config,
            model_config=self.model_config,
        )

    def update(self, image: Image) -> np.ndarray:
        """Track into the next frame; returns the (4,) float64 box, 1-indexed ``[x, y, w, h]``."""
        if self._state is None:
            raise RuntimeError("Tracker.update called before Tracker.init")
        frame = _to_rgb(image)
        self._state, box = update_state(
            self.variables,
            self._state,
            jax.device_put(frame),
            config=self.config,
            model_config=self.model_config,
        )
        return np.asarray(jax.device_get(box), np.float64)

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
            start = time.perf_counter()
            if index == 0:
                self.init(image, boxes[0])
            else:
                boxes[index] = self.update(image)
            times[index] = time.perf_counter() - start
            if visualize:
                _show(image, boxes[index], self.name)
        return boxes, times


class BatchTracker(_DeviceTracker):
    """N SiamFC targets tracked in one device call per frame.

    The frames are either one frame shared by all targets (N targets in one video) or N frames of
    one size (one per target, e.g. N videos stepped together). Each target's boxes equal those of
    its own :class:`Tracker`.

    Args:
      weights, config: as for :class:`Tracker`.
    """

    _states: TrackState | None = None
    _num_targets: int = 0

    def init(self, images: Image | Iterable[Image], boxes: ArrayLike) -> None:
        """Start tracking ``boxes`` (N, 4), 1-indexed ``[x, y, w, h]``.

        ``images`` is one frame shared by all targets or a list / (N, H, W, 3) array of N frames.
        """
        boxes = _checked_boxes(boxes, 2, "boxes")
        frames = _stack_frames(images, len(boxes))
        if frames.ndim == 4:
            fills = np.stack([_fill_color(frame) for frame in frames])
        else:
            fills = np.broadcast_to(_fill_color(frames), (len(boxes), 3))
        self._states = init_states(
            self.variables,
            jax.device_put(frames),
            boxes.astype(np.float32),
            fills,
            config=self.config,
            model_config=self.model_config,
        )
        self._num_targets = len(boxes)

    def update(self, images: Image | Iterable[Image]) -> np.ndarray:
        """Track every target into its next frame; returns (N, 4) float64 boxes."""
        if self._states is None:
            raise RuntimeError("BatchTracker.update called before BatchTracker.init")
        frames = _stack_frames(images, self._num_targets)
        self._states, boxes = update_states(
            self.variables,
            self._states,
            jax.device_put(frames),
            config=self.config,
            model_config=self.model_config,
        )
        return np.asarray(jax.device_get(boxes), np.float64)
