"""The SiamFC tracker's device half: state and one jitted update per frame (pure, jittable).

:func:`init_state` builds a :class:`TrackState` from the first frame and box; :func:`update_state`
does the whole per-frame step of siamfc-pytorch's ``TrackerSiamFC.update`` in one compiled call:
:func:`search_responses` (search crops at every scale, backbone, correlation with the cached
exemplar features), then :func:`locate` (bicubic upsampling, scale penalty, normalisation, cosine
window, peak, new centre and size). :func:`init_states` / :func:`update_states` do the same for N
targets in one call. Each compiles once per frame size (and number of targets).

Hyper-parameters as values: the fields of :data:`TRACED_FIELDS` (``scale_step``, ``scale_penalty``,
``scale_lr``, ``window_influence``) reach the computation only through a :class:`HyperParams`
built by :func:`hyper_params`. The default functions use it as constants of the compiled program
(exactly today's program); :func:`step_slots` takes one per target as traced arrays, so a batch of
targets can track with different hyper-parameters in one compiled step (hyper-parameter search).
:func:`step_slots` and :func:`start_slot` serve the batched benchmark runner
(:mod:`siamfc_jax.evaluation.batched`): K targets, each in its own frame of one padded size, each
started in its slot when the previous one ends; they also return each frame's confidence.

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
from siamfc_jax.models import SiamFC, backbone_class, cross_correlate, init_variables, response_size
from siamfc_jax.models.layers import PREPARED
from siamfc_jax.ops import crop_and_resize, upsample
from siamfc_jax.ops.plan import ConvPlan, plan_or_default


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


# The TrackerConfig fields that may differ between the targets of one compiled step.
TRACED_FIELDS = ("scale_step", "scale_penalty", "scale_lr", "window_influence")


class HyperParams(NamedTuple):
    """The traced hyper-parameters of one target (float32), as :func:`hyper_params` derives them.

    Each derived value (``1 - window_influence``, the scale factors …) is computed once on the host
    in float64 and rounded to float32, as the constants of the default program are, so that tracking
    with these as traced values gives the boxes of the default program.

    Attributes:
      scale_factors: (S,) search-size factors ``scale_step ** [-S//2 … S//2]``.
      scale_penalties: (S,) response multipliers: ``scale_penalty``, 1 for the middle scale.
      window_influence: () weight of the cosine window.
      response_weight: () ``1 - window_influence``.
      scale_lr: () learning rate of the target size.
      size_keep: () ``1 - scale_lr``.
    """

    scale_factors: np.ndarray | jax.Array
    scale_penalties: np.ndarray | jax.Array
    window_influence: np.ndarray | jax.Array
    response_weight: np.ndarray | jax.Array
    scale_lr: np.ndarray | jax.Array
    size_keep: np.ndarray | jax.Array


def hyper_params(config: TrackerConfig) -> HyperParams:
    """The :class:`HyperParams` of ``config`` as float32 NumPy arrays (host; shapes as documented)."""

    def f32(value: float | np.ndarray) -> np.ndarray:
        return np.asarray(value, np.float32)

    return HyperParams(
        scale_factors=f32(_scale_factors(config)),
        scale_penalties=f32(_scale_penalties(config)),
        window_influence=f32(config.window_influence),
        response_weight=f32(1 - config.window_influence),
        scale_lr=f32(config.scale_lr),
        size_keep=f32(1 - config.scale_lr),
    )


def static_config(config: TrackerConfig) -> TrackerConfig:
    """``config`` with the :data:`TRACED_FIELDS` at their defaults: the static argument of
    :func:`step_slots`, so configs differing only in traced fields share one compiled step."""
    defaults = TrackerConfig()
    return dataclasses.replace(config, **{name: getattr(defaults, name) for name in TRACED_FIELDS})


class Confidence(NamedTuple):
    """How sure one tracking step is (float32 scalars, per target).

    Attributes:
      response_peak: the highest value of the upsampled, scale-penalised raw responses (network
        units): the value that chose the scale, before the cosine window.
      windowed_peak: the peak of the chosen scale's map after normalisation (to sum 1) and blending
        with the window: the value that chose the position.
    """

    response_peak: jax.Array
    windowed_peak: jax.Array


# ---------------------------------------------------------------------------------------------
# Device functions


def embed(
    variables: dict,
    images: jax.Array,
    model_config: ModelConfig,
    precision: str,
    plan: ConvPlan | None = None,
) -> jax.Array:
    """Backbone features (n, h', w', c) of (n, H, W, 3) images (RGB 0–255), in eval mode.

    The tracker reaches the network only through this function, so the backbone's formulation can
    change in :mod:`siamfc_jax.models` without touching the tracking logic.
    """
    model = SiamFC(model_config, precision=precision, plan=plan)
    return model.apply(variables, images, method=SiamFC.embed)


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
    try:
        response_sz = response_size(model_config, config.exemplar_sz, config.instance_sz)
    except ValueError as error:
        raise ConfigError("exemplar_sz", str(error)) from None
    derived = {
        "total_stride": backbone_class(model_config.backbone).output_stride,
        "response_sz": response_sz,
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


_STATIC = ("config", "model_config", "plan")
# The largest target side, in frame sides, that the tracker accepts as a first box and keeps.
MAX_TARGET_TO_FRAME = 2.0


@functools.partial(jax.jit, static_argnames=_STATIC)
def prepare_variables(
    variables: dict, *, config: TrackerConfig, model_config: ModelConfig, plan: ConvPlan | None = None
) -> dict:
    """``variables`` plus the kernels the search branch's formulations prepare, computed once.

    Every frame, a formulation that transforms its kernel before reading the search crops
    (``"winograd"``, :func:`siamfc_jax.ops.conv.prepare_kernel`) would transform the same weights
    again (its docstring gives the cost). This computes those transforms for the formulations
    chosen for the search crops of ``config`` and adds them to the variables (collection
    :data:`siamfc_jax.models.layers.PREPARED`), where the backbone takes them instead.
    Batched calls (:func:`update_states`, :func:`step_slots`) map the single-target update, so the
    same kernels serve them. Pass the result to :func:`init_state` / :func:`update_state` and the
    other tracking functions in place of ``variables``; it must be computed again if the weights
    or BatchNorm statistics change (inference folds each BatchNorm's multiplier into the kernel
    before it is transformed). Jitted; only the transforms remain of the program (the network's
    outputs are unused).

    Args:
      variables: Flax ``{"params", "batch_stats"}`` of :class:`SiamFC`.
      config, model_config: as for :func:`init_state` (static).

    Returns:
      ``variables`` with a ``"prepared"`` collection (empty where nothing is prepared).
    """
    searches = jnp.zeros((config.scale_num, config.instance_sz, config.instance_sz, 3), jnp.float32)
    model = SiamFC(model_config, precision=config.precision, plan=plan)
    _, prepared = model.apply(variables, searches, method=SiamFC.embed, mutable=[PREPARED])
    return {**variables, PREPARED: prepared.get(PREPARED, {})}


@functools.partial(jax.jit, static_argnames=_STATIC)
def init_state(
    variables: dict,
    image: jax.Array,
    box: jax.Array,
    fill: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
    plan: ConvPlan | None = None,
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
      plan: how the network computes its convolutions (static; None: the platform's
        :func:`~siamfc_jax.ops.plan.default_plan`); the same plan as :func:`prepare_variables`'.

    Returns:
      The :class:`TrackState`, on the device.
    """
    center, target_size = _box_to_center(jnp.asarray(box, jnp.float32))
    context = config.context * jnp.sum(target_size)
    exemplar_crop = jnp.sqrt(jnp.prod(target_size + context))
    search_crop = exemplar_crop * config.instance_sz / config.exemplar_sz
    fill = jnp.asarray(fill, jnp.float32)
    exemplar = crop_and_resize(image, center, exemplar_crop[None], config.exemplar_sz, fill)
    features = embed(variables, exemplar, model_config, config.precision, plan)
    return TrackState(center, target_size, exemplar_crop, search_crop, fill, features)


def search_responses(
    variables: dict,
    state: TrackState,
    image: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
    plan: ConvPlan | None = None,
    hyper: HyperParams | None = None,
) -> jax.Array:
    """Raw responses of the exemplar over the search crops of ``image`` at every scale (jittable).

    Args:
      variables: Flax ``{"params", "batch_stats"}`` of :class:`SiamFC`.
      state: the current :class:`TrackState`.
      image: (H, W, 3) uint8 RGB frame.
      config, model_config: as for :func:`init_state`.
      hyper: traced hyper-parameters; None takes them from ``config`` as constants.

    Returns:
      (S, r, r) float32 responses, S = ``scale_num`` (smallest search square first), r the
      network's response size (``fit_config(config, model_config).response_sz``).
    """
    hyper = hyper_params(config) if hyper is None else hyper
    factors = jnp.asarray(hyper.scale_factors, jnp.float32)
    searches = crop_and_resize(
        image, state.center, state.search_crop * factors, config.instance_sz, state.fill
    )
    features = embed(variables, searches, model_config, config.precision, plan)
    correlation = plan_or_default(plan).correlation
    return cross_correlate(
        state.exemplar_features, features, model_config.out_scale, config.precision, correlation
    )[..., 0]


def locate(
    state: TrackState,
    responses: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
    frame_hw: tuple[int, int] | jax.Array | None = None,
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
      frame_hw: the frame's (height, width); when given, the state stays bounded: the centre
        within one frame beyond each edge, the size between 1 pixel and
        :data:`MAX_TARGET_TO_FRAME` frames (the scale change is clipped, keeping the aspect).

    Returns:
      ``(state, box)``: the new state and the (4,) float32 box, 1-indexed ``[x, y, w, h]`` pixels.

    Raises:
      ValueError: ``responses`` do not have the network's response shape.
    """
    new_state, box, _ = locate_with_confidence(
        state, responses, config=config, model_config=model_config, frame_hw=frame_hw
    )
    return new_state, box


def locate_with_confidence(
    state: TrackState,
    responses: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
    hyper: HyperParams | None = None,
    frame_hw: tuple[int, int] | jax.Array | None = None,
) -> tuple[TrackState, jax.Array, Confidence]:
    """:func:`locate`, also returning the step's :class:`Confidence` (jittable).

    ``hyper``: traced hyper-parameters (:func:`hyper_params`); None takes them from ``config`` as
    constants, which is what :func:`locate` does. ``frame_hw``: as for :func:`locate`.
    """
    config = fit_config(config, model_config)
    expected = (config.scale_num, config.response_sz, config.response_sz)
    if responses.shape != expected:
        raise ValueError(f"responses must be {expected} for this config, got {responses.shape}")
    hyper = hyper_params(config) if hyper is None else hyper
    factors = jnp.asarray(hyper.scale_factors, jnp.float32)
    responses = upsample(responses, config.upscale_sz, config.precision)
    responses = responses * jnp.asarray(hyper.scale_penalties, jnp.float32)[:, None, None]

    scale_peaks = jnp.max(responses, axis=(1, 2))
    scale_id = jnp.argmax(scale_peaks)
    response = responses[scale_id]
    response = response - jnp.min(response)
    response = response / (jnp.sum(response) + 1e-16)
    window = jnp.asarray(_cosine_window(config.upscale_sz), jnp.float32)
    response = hyper.response_weight * response + hyper.window_influence * window

    # Peak (first maximum in row-major order, like np.argmax) relative to the map's centre,
    # mapped back through the upsampling and the network's stride to frame pixels.
    flat_peak = jnp.argmax(response)
    peak = jnp.stack(jnp.divmod(flat_peak, config.upscale_sz)).astype(jnp.float32)
    offset_response = peak - (config.upscale_sz - 1) / 2
    offset_search = offset_response * config.total_stride / config.response_up
    factor = factors[scale_id]
    offset_frame = offset_search * state.search_crop * factor / config.instance_sz
    center = state.center + offset_frame

    scale = hyper.size_keep + hyper.scale_lr * factor
    if frame_hw is not None:  # a bound far from any real track, so parity is untouched
        frame = jnp.asarray(frame_hw, jnp.float32)
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
    confidence = Confidence(scale_peaks[scale_id], response.reshape(-1)[flat_peak])
    return new_state, _center_to_box(center, target_size), confidence


@functools.partial(jax.jit, static_argnames=_STATIC, donate_argnames=("state",))
def update_state(
    variables: dict,
    state: TrackState,
    image: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
    plan: ConvPlan | None = None,
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
    responses = search_responses(variables, state, image, **statics, plan=plan)
    return locate(state, responses, **statics, frame_hw=image.shape[:2])


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
    plan: ConvPlan | None = None,
) -> TrackState:
    """States of N targets in one call (jitted): :func:`init_state` mapped over the targets.

    ``images`` is one shared (H, W, 3) frame or (N, H, W, 3) frames, one per target; ``boxes`` is
    (N, 4) 1-indexed ``[x, y, w, h]``, ``fills`` (N, 3). The state's arrays get a leading axis N.
    """
    init = functools.partial(init_state, config=config, model_config=model_config, plan=plan)
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
    plan: ConvPlan | None = None,
) -> tuple[TrackState, jax.Array]:
    """One tracking step of N targets in one call (jitted; ``states`` donated).

    ``images`` is one shared (H, W, 3) frame or (N, H, W, 3) frames, one per target. Returns the
    new states and (N, 4) float32 boxes, 1-indexed ``[x, y, w, h]``.
    """
    update = functools.partial(update_state, config=config, model_config=model_config, plan=plan)
    return jax.vmap(update, in_axes=(None, 0, _image_axis(images)))(variables, states, images)


# ---------------------------------------------------------------------------------------------
# Slots: K targets, each in its own padded frame, with its own hyper-parameters


def empty_slots(
    num_slots: int, *, config: TrackerConfig, model_config: ModelConfig
) -> TrackState:
    """Zero states of ``num_slots`` targets (leading axis K), to be started by :func:`start_slot`."""
    shapes = jax.eval_shape(
        functools.partial(init_state, config=config, model_config=model_config),
        jax.eval_shape(functools.partial(init_variables, model_config), jax.random.key(0)),
        jax.ShapeDtypeStruct((config.exemplar_sz, config.exemplar_sz, 3), jnp.uint8),
        jax.ShapeDtypeStruct((4,), jnp.float32),
        jax.ShapeDtypeStruct((3,), jnp.float32),
    )
    return jax.tree.map(lambda leaf: jnp.zeros((num_slots, *leaf.shape), leaf.dtype), shapes)


@functools.partial(jax.jit, static_argnames=_STATIC, donate_argnames=("states",))
def start_slot(
    variables: dict,
    states: TrackState,
    slot: jax.Array,
    image: jax.Array,
    box: jax.Array,
    fill: jax.Array,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
    plan: ConvPlan | None = None,
) -> TrackState:
    """``states`` with slot ``slot`` started on a new target (jitted; ``states`` donated).

    Args:
      states: the K slots' :class:`TrackState` (leading axis K).
      slot: () int32 index of the slot to start.
      image: (H, W, 3) uint8 first frame of the target, padded (see :func:`step_slots`).
      box, fill, config, model_config: as for :func:`init_state`.
    """
    started = init_state(variables, image, box, fill, config=config, model_config=model_config, plan=plan)
    return jax.tree.map(lambda all_slots, new: all_slots.at[slot].set(new), states, started)


@functools.partial(jax.jit, static_argnames=_STATIC, donate_argnames=("states",))
def step_slots(
    variables: dict,
    states: TrackState,
    images: jax.Array,
    hyper: HyperParams,
    *,
    config: TrackerConfig,
    model_config: ModelConfig,
    plan: ConvPlan | None = None,
) -> tuple[TrackState, jax.Array, Confidence]:
    """One tracking step of K targets, each with its own frame and hyper-parameters (jitted).

    The frames may be larger than the targets' own frames (a padded buffer shared by sequences of
    different sizes): where the padding holds each target's fill colour, the crops, and so the
    boxes, equal those of tracking the unpadded frame, because the crop gives pixels outside the
    frame that same colour.

    Args:
      states: the K slots' :class:`TrackState` (leading axis K; donated).
      images: (K, H, W, 3) uint8 frames, one per slot.
      hyper: :class:`HyperParams` with a leading axis K on every field (traced).
      config: the static part of the hyper-parameters (the fields of :data:`TRACED_FIELDS` come
        from ``hyper``); model_config: the network's config.

    Returns:
      ``(states, boxes, confidence)``: the new states, (K, 4) float32 boxes (1-indexed
      ``[x, y, w, h]``) and the :class:`Confidence` with (K,) fields.
    """
    statics = {"config": config, "model_config": model_config}

    def step(state: TrackState, image: jax.Array, params: HyperParams):
        responses = search_responses(variables, state, image, **statics, plan=plan, hyper=params)
        return locate_with_confidence(state, responses, **statics, hyper=params)

    return jax.vmap(step)(states, images, hyper)
