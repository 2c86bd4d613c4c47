"""The SiamFC tracker's device half: one family of jitted tracking programs (pure, jittable).

Every compiled program tracks K *slots* (one target each; K = 1 for one sequence): the slots'
:class:`TrackState` arrays have a leading axis K. :func:`start` starts one slot on its first frame
and box; :func:`step` does the whole per-frame step of siamfc-pytorch's ``TrackerSiamFC.update``
for every slot in one call: :func:`search_responses` (search crops at every scale, backbone,
correlation with the cached exemplar features), then :func:`locate` (bicubic upsampling, scale
penalty, normalisation, cosine window, peak, new centre and size). Each compiles once per
:class:`TrackerSpec`, frame buffer shape and K.

Hyper-parameters as values: the fields of :data:`TRACED_FIELDS` (``scale_step``, ``scale_penalty``,
``scale_lr``, ``window_influence``) reach the computation only through a :class:`HyperParams`
built by :func:`hyper_params`, one per slot as traced arrays, so slots may track with different
hyper-parameters in one compiled step (hyper-parameter search); the rest of the config is static
(:class:`TrackerSpec`).

Frames: :func:`step` reads F frames (F, H, W, 3), each slot the one ``frame_of_slot`` names: one
shared frame for several targets of one video, one frame per slot for K videos. A slot's frame may
sit in the top-left corner of a larger buffer whose rest holds the slot's fill colour: the crops,
and so the boxes, are those of the unpadded frame, since the crop gives pixels outside the frame
that colour; the state's ``frame_hw`` keeps the real frame's bounds.

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
    """What the tracker carries from frame to frame for one target (on the device).

    The tracking programs hold the states of K slots as one ``TrackState`` whose fields have a
    leading axis K (shapes below are one slot's).

    Attributes:
      center: (2,) float32 target centre ``[y, x]``, 0-indexed pixels.
      target_size: (2,) float32 target ``[h, w]`` in pixels.
      exemplar_crop: () float32 side in pixels of the exemplar square (target plus context).
      search_crop: () float32 side in pixels of the search square at scale 1.
      fill: (3,) float32 colour of crop pixels outside the frame: the first frame's mean colour.
      exemplar_features: (1, hz, wz, c) backbone features of the first frame's exemplar crop.
      frame_hw: (2,) float32 (height, width) of the target's own frame, which bounds the state
        (:func:`locate`) also where the frame sits in a larger padded buffer.
    """

    center: jax.Array
    target_size: jax.Array
    exemplar_crop: jax.Array
    search_crop: jax.Array
    fill: jax.Array
    exemplar_features: jax.Array
    frame_hw: jax.Array


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
    """``config`` with the :data:`TRACED_FIELDS` at their defaults, so that configs differing only
    in traced fields share one :class:`TrackerSpec` and so one compiled program."""
    defaults = TrackerConfig()
    return dataclasses.replace(config, **{name: getattr(defaults, name) for name in TRACED_FIELDS})


@dataclasses.dataclass(frozen=True)
class TrackerSpec:
    """The static argument of every tracking program (frozen, hashable).

    Build it with :func:`tracker_spec`. Attributes:
      config: the tracker config fitted to the network (:func:`fit_config`) with the
        :data:`TRACED_FIELDS` at their defaults (:func:`static_config`; their values come from
        each slot's :class:`HyperParams`).
      model_config: the network's config.
      plan: how the network computes its convolutions (:class:`~siamfc_jax.ops.plan.ConvPlan`).
    """

    config: TrackerConfig
    model_config: ModelConfig
    plan: ConvPlan

    @property
    def compute_dtype(self) -> jnp.dtype:
        """The backbone's compute type (``config.compute_dtype``); the weights stay float32."""
        return jnp.dtype(self.config.compute_dtype)


def tracker_spec(
    config: TrackerConfig, model_config: ModelConfig, plan: ConvPlan | None = None
) -> TrackerSpec:
    """The :class:`TrackerSpec` of ``config`` on the network of ``model_config`` computed by
    ``plan`` (None: the platform's :func:`~siamfc_jax.ops.plan.default_plan`).

    Raises:
      ConfigError: ``config`` does not fit the network (:func:`fit_config`).
    """
    return TrackerSpec(static_config(fit_config(config, model_config)), model_config, plan_or_default(plan))


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


def embed(variables: dict, images: jax.Array, spec: TrackerSpec) -> jax.Array:
    """Backbone features (n, h', w', c) of (n, H, W, 3) float32 images (RGB 0–255), in eval mode.

    The tracker reaches the network only through this function and :func:`prepare_variables`, so
    the backbone's formulation can change in :mod:`siamfc_jax.models` without touching the
    tracking logic. The backbone computes in ``spec.compute_dtype``; the features are returned in
    float32 whatever it is, so that the tracking state, the correlation and the box arithmetic
    after it keep float32's resolution.
    """
    model = _network(spec)
    return model.apply(variables, images, method=SiamFC.embed).astype(jnp.float32)


def _network(spec: TrackerSpec) -> SiamFC:
    """The inference network of ``spec``: its precision, plan and compute type."""
    return SiamFC(
        spec.model_config,
        precision=spec.config.precision,
        dtype=spec.compute_dtype,
        plan=spec.plan,
    )


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


# The largest target side, in frame sides, that the tracker accepts as a first box and keeps.
MAX_TARGET_TO_FRAME = 2.0


@functools.partial(jax.jit, static_argnames=("spec",))
def prepare_variables(variables: dict, spec: TrackerSpec) -> dict:
    """``variables`` plus the kernels the search branch's formulations prepare, computed once.

    Every frame, a formulation that transforms its kernel before reading the search crops
    (``"winograd"``, :func:`siamfc_jax.ops.conv.prepare_kernel`) would transform the same weights
    again (its docstring gives the cost). This computes those transforms for the formulations
    chosen for the search crops of ``spec`` and adds them to the variables (collection
    :data:`siamfc_jax.models.layers.PREPARED`), where the backbone takes them instead. Every slot
    of :func:`step` uses the same kernels. Pass the result to :func:`start` and :func:`step` in
    place of ``variables``; it must be computed again if the weights or BatchNorm statistics
    change (inference folds each BatchNorm's multiplier into the kernel before it is
    transformed). Jitted; only the transforms remain of the program (the network's outputs are
    unused).

    Args:
      variables: Flax ``{"params", "batch_stats"}`` of :class:`SiamFC`.
      spec: the tracking programs' :class:`TrackerSpec` (static).

    Returns:
      ``variables`` with a ``"prepared"`` collection (empty where nothing is prepared).
    """
    config = spec.config
    searches = jnp.zeros((config.scale_num, config.instance_sz, config.instance_sz, 3), jnp.float32)
    _, prepared = _network(spec).apply(variables, searches, method=SiamFC.embed, mutable=[PREPARED])
    return {**variables, PREPARED: prepared.get(PREPARED, {})}


def initial_state(
    variables: dict,
    image: jax.Array,
    box: jax.Array,
    fill: jax.Array,
    frame_hw: jax.Array,
    spec: TrackerSpec,
) -> TrackState:
    """One target's :class:`TrackState` for ``box`` in its first frame ``image`` (jittable).

    Args:
      variables: Flax ``{"params", "batch_stats"}`` of :class:`SiamFC` (prepared or not).
      image: (H, W, 3) uint8 RGB first frame, possibly padded (module docstring).
      box: (4,) 1-indexed ``[x, y, w, h]`` in pixels.
      fill: (3,) colour of crop pixels outside the frame, 0–255 (siamfc-pytorch: the first frame's
        mean colour, :func:`siamfc_jax.sequences.frames.average_color`), rounded half to even like
        OpenCV's border.
      frame_hw: (2,) (height, width) of the real frame in pixels.
      spec: the :class:`TrackerSpec`.
    """
    config = spec.config
    center, target_size = _box_to_center(jnp.asarray(box, jnp.float32))
    context = config.context * jnp.sum(target_size)
    exemplar_crop = jnp.sqrt(jnp.prod(target_size + context))
    search_crop = exemplar_crop * config.instance_sz / config.exemplar_sz
    fill = jnp.asarray(fill, jnp.float32)
    exemplar = crop_and_resize(image, center, exemplar_crop[None], config.exemplar_sz, fill)
    features = embed(variables, exemplar, spec)
    frame_hw = jnp.asarray(frame_hw, jnp.float32)
    return TrackState(center, target_size, exemplar_crop, search_crop, fill, features, frame_hw)


def empty_states(num_slots: int, spec: TrackerSpec) -> TrackState:
    """States of ``num_slots`` slots (leading axis K) holding no target, to be started by
    :func:`start`: a 1-pixel target in a 1-pixel frame, so that stepping an unused slot computes
    finite numbers (its results are ignored). Host; returns device arrays."""
    shapes = jax.eval_shape(
        functools.partial(initial_state, spec=spec),
        jax.eval_shape(lambda: init_variables(spec.model_config, jax.random.key(0))),
        jax.ShapeDtypeStruct((spec.config.exemplar_sz, spec.config.exemplar_sz, 3), jnp.uint8),
        jax.ShapeDtypeStruct((4,), jnp.float32),
        jax.ShapeDtypeStruct((3,), jnp.float32),
        jax.ShapeDtypeStruct((2,), jnp.float32),
    )
    ones = {"target_size", "exemplar_crop", "search_crop", "frame_hw"}
    return TrackState(
        *(
            jax.device_put((np.ones if name in ones else np.zeros)((num_slots, *leaf.shape), leaf.dtype))
            for name, leaf in zip(TrackState._fields, shapes, strict=True)
        )
    )


@functools.partial(jax.jit, static_argnames=("spec",), donate_argnames=("states",))
def start(
    variables: dict,
    states: TrackState,
    slot: jax.Array,
    frame: jax.Array,
    box: jax.Array,
    fill: jax.Array,
    frame_hw: jax.Array,
    *,
    spec: TrackerSpec,
) -> TrackState:
    """``states`` with slot ``slot`` started on a target (jitted; ``states`` donated).

    Args:
      variables: the prepared variables (:func:`prepare_variables`).
      states: the K slots' :class:`TrackState` (leading axis K).
      slot: () int32 index of the slot to start.
      frame: (H, W, 3) uint8 first frame of the target, possibly padded (module docstring).
      box, fill, frame_hw: as for :func:`initial_state`.
      spec: the :class:`TrackerSpec` (static).
    """
    started = initial_state(variables, frame, box, fill, frame_hw, spec)
    return jax.tree.map(lambda all_slots, new: all_slots.at[slot].set(new), states, started)


def search_responses(
    variables: dict,
    state: TrackState,
    image: jax.Array,
    *,
    spec: TrackerSpec,
    hyper: HyperParams | None = None,
) -> jax.Array:
    """Raw responses of one target's exemplar over the search crops of ``image`` at every scale
    (jittable).

    Args:
      variables: Flax ``{"params", "batch_stats"}`` of :class:`SiamFC` (prepared or not).
      state: the target's current :class:`TrackState` (no slot axis).
      image: (H, W, 3) uint8 RGB frame.
      spec: the :class:`TrackerSpec`.
      hyper: the target's traced hyper-parameters; None: those of ``spec.config``, as constants.

    Returns:
      (S, r, r) float32 responses, S = ``scale_num`` (smallest search square first), r the
      network's response size (``spec.config.response_sz``).
    """
    config = spec.config
    hyper = hyper_params(config) if hyper is None else hyper
    factors = jnp.asarray(hyper.scale_factors, jnp.float32)
    searches = crop_and_resize(
        image, state.center, state.search_crop * factors, config.instance_sz, state.fill
    )
    features = embed(variables, searches, spec)
    out_scale = spec.model_config.out_scale
    return cross_correlate(
        state.exemplar_features, features, out_scale, config.precision, spec.plan.correlation
    )[..., 0]


def locate(
    state: TrackState,
    responses: jax.Array,
    *,
    spec: TrackerSpec,
    hyper: HyperParams | None = None,
) -> tuple[TrackState, jax.Array, Confidence]:
    """One target's new position and size from the raw ``responses`` (jittable).

    The responses are upsampled bicubically ``response_up`` times and penalised off the middle
    scale; the best scale's map is normalised and blended with a cosine window, and its peak,
    relative to the map's centre, is mapped through the upsampling, the network's stride and the
    search crop's scale into frame pixels. The state stays bounded by its ``frame_hw``: the centre
    within one frame beyond each edge, the size between 1 pixel and :data:`MAX_TARGET_TO_FRAME`
    frames (the scale change is clipped, keeping the aspect); a bound far from any real track.

    Args:
      state: the :class:`TrackState` (no slot axis) the responses were computed from.
      responses: (S, r, r) raw responses, as from :func:`search_responses`.
      spec: the :class:`TrackerSpec`; ``hyper``: as for :func:`search_responses`.

    Returns:
      ``(state, box, confidence)``: the new state, the (4,) float32 box (1-indexed
      ``[x, y, w, h]`` pixels) and the step's :class:`Confidence`.

    Raises:
      ValueError: ``responses`` do not have the network's response shape.
    """
    config = spec.config
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
    frame = state.frame_hw
    center = jnp.clip(state.center + offset_frame, -frame, 2 * frame)
    largest = jnp.min(MAX_TARGET_TO_FRAME * frame / state.target_size)
    scale = jnp.clip(hyper.size_keep + hyper.scale_lr * factor, jnp.max(1 / state.target_size), largest)
    target_size = state.target_size * scale
    new_state = state._replace(
        center=center,
        target_size=target_size,
        exemplar_crop=state.exemplar_crop * scale,
        search_crop=state.search_crop * scale,
    )
    confidence = Confidence(scale_peaks[scale_id], response.reshape(-1)[flat_peak])
    return new_state, _center_to_box(center, target_size), confidence


@functools.partial(jax.jit, static_argnames=("spec",), donate_argnames=("states",))
def step(
    variables: dict,
    states: TrackState,
    frames: jax.Array,
    frame_of_slot: jax.Array,
    hyper: HyperParams,
    *,
    spec: TrackerSpec,
) -> tuple[TrackState, jax.Array, Confidence]:
    """One tracking step of every slot (jitted; ``states`` donated).

    Args:
      variables: the prepared variables (:func:`prepare_variables`).
      states: the K slots' :class:`TrackState` (leading axis K).
      frames: (F, H, W, 3) uint8 frames, possibly padded (module docstring).
      frame_of_slot: (K,) int32 index into ``frames`` of each slot's frame (one frame per slot:
        ``arange(K)``; several targets of one video: zeros).
      hyper: :class:`HyperParams` with a leading axis K on every field (traced).
      spec: the :class:`TrackerSpec` (static).

    Returns:
      ``(states, boxes, confidence)``: the new states, (K, 4) float32 boxes (1-indexed
      ``[x, y, w, h]``) and the :class:`Confidence` with (K,) fields.
    """

    def one_target(state: TrackState, image: jax.Array, params: HyperParams):
        responses = search_responses(variables, state, image, spec=spec, hyper=params)
        return locate(state, responses, spec=spec, hyper=params)

    if states.center.shape[0] == 1:  # one target: the same computation without a batch axis
        first = functools.partial(jax.tree.map, lambda leaf: leaf[0])
        image = frames[0] if frames.shape[0] == 1 else frames[frame_of_slot[0]]
        result = one_target(first(states), image, first(hyper))
        return jax.tree.map(lambda leaf: leaf[None], result)
    if frames.shape[0] == 1:  # one frame shared by every slot
        return jax.vmap(one_target, in_axes=(0, None, 0))(states, frames[0], hyper)
    return jax.vmap(one_target)(states, frames[frame_of_slot], hyper)
