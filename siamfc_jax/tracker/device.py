"""The SiamFC tracker's device half: state and one jitted update per frame (pure, jittable).

:func:`init_state` builds a :class:`TrackState` from the first frame and box; :func:`update_state`
does the whole per-frame step of siamfc-pytorch's ``TrackerSiamFC.update`` in one compiled call:
:func:`search_responses` (search crops at every scale, backbone, correlation with the cached
exemplar features), then :func:`locate` (bicubic upsampling, scale penalty, normalisation, cosine
window, peak, new centre and size). :func:`init_states` / :func:`update_states` do the same for N
targets in one call. Each compiles once per frame size (and number of targets).

Conventions: boxes are 1-indexed ``[x, y, w, h]`` in pixels; on the device the target is a
0-indexed centre ``[y, x]`` and a size ``[h, w]``; frames are (H, W, 3) RGB uint8.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from siamfc_jax.config import ConfigError, ModelConfig, TrackerConfig
from siamfc_jax.models import SiamFC, backbone_class, cross_correlate, init_variables
from siamfc_jax.ops import crop_and_resize, upsample


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
        return (
            embed(variables, exemplar, model_config, config.precision, config.conv_impl),
            embed(variables, search, model_config, config.precision, config.conv_impl),
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
# The largest target side, in frame sides, that the tracker accepts as a first box and keeps.
MAX_TARGET_TO_FRAME = 2.0


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
        mean colour, :func:`siamfc_jax.sequences.frames.average_color`), rounded half to even like
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
    frame_shape: tuple[int, ...] | None = None,
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
      frame_shape: the frame's (H, W, ...) (static); when given, the state stays bounded: the
        centre within one frame beyond each edge, the size between 1 pixel and
        :data:`MAX_TARGET_TO_FRAME` frames (the scale change is clipped, keeping the aspect).

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
    if frame_shape is not None:  # a bound far from any real track, so parity is untouched
        frame = jnp.asarray(frame_shape[:2], jnp.float32)
        center = jnp.clip(center, -frame, 2 * frame)
        largest = jnp.min(MAX_TARGET_TO_FRAME * frame / state.target_size)
        scale = jnp.clip(scale, jnp.max(1 / state.target_size), largest)
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
    return locate(state, responses, **statics, frame_shape=image.shape)


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
