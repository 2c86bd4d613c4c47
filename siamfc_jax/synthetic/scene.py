"""Planning a synthetic sequence: the target's motion, distractors, clutter, occluders, lighting,
camera pan, noise and background, each from its own random stream; and the occlusion limit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from siamfc_jax.synthetic.config import SyntheticConfig
from siamfc_jax.synthetic.painting import (
    MASK_THRESHOLD,
    ObjectStyle,
    Sprite,
    clip_to_frame,
    make_background,
    make_sprite,
    place_sprite,
    random_style,
    similar_style,
)

_PAN_MARGIN = 24
_NOISE_MARGIN = 16


@dataclass
class Track:
    """Per-frame geometry of an object: centres (N, 2) ``(x, y)``, sizes (N, 2) ``(w, h)`` before
    rotation, angles (N,) in radians; frame pixels."""

    centres: np.ndarray
    sizes: np.ndarray
    angles: np.ndarray

    @cached_property
    def extents(self) -> np.ndarray:
        """(N, 2) width and height of the rotated object's bounding box."""
        cos_a, sin_a = np.abs(np.cos(self.angles)), np.abs(np.sin(self.angles))
        w, h = self.sizes[:, 0], self.sizes[:, 1]
        return np.stack([w * cos_a + h * sin_a, w * sin_a + h * cos_a], axis=1)

    def speeds(self) -> tuple[np.ndarray, np.ndarray]:
        """(N,) speed in pixels per frame and (N,) direction in radians (frame 0 takes frame 1's)."""
        steps = np.diff(self.centres, axis=0)
        steps = np.concatenate([steps[:1], steps], axis=0)
        return np.hypot(steps[:, 0], steps[:, 1]), np.arctan2(steps[:, 1], steps[:, 0])


@dataclass
class SceneObject:
    sprite: Sprite
    track: Track
    front: bool


@dataclass
class Scene:
    target: SceneObject
    target_texture: str
    target_shape: str
    motion_class: str
    objects: list[SceneObject]
    background: np.ndarray  # (3, H + 2 margin, W + 2 margin) planar float32
    pan: np.ndarray  # (N, 2) int offsets (x, y) of the frame inside the background
    camera_motion: np.ndarray | None  # (N, 2) camera displacement since the previous frame (shake)
    blur_exposure: float  # 0: no motion blur
    gain: np.ndarray  # (N, 3)
    offset: np.ndarray  # (N, 3)
    ramp: np.ndarray | None  # (N, 3): strength, cos and sin of the light gradient direction
    noise: np.ndarray | None  # (3, H + margin, W + margin) float32
    noise_offsets: np.ndarray  # (N, 2) int
    jpeg_quality: np.ndarray  # (N,) int


def _random_walk(
    rng: np.random.Generator, count: int, sigma: float, damping: float, low: float, high: float
) -> np.ndarray:
    """(count,) damped random walk from 0 (velocity ``damping * v + sigma * N(0, 1)``), reflected
    into ``[low, high]``."""
    values = np.zeros(count)
    innovations = rng.normal(0.0, sigma, count)
    value = velocity = 0.0
    for t in range(1, count):
        velocity = damping * velocity + innovations[t]
        value += velocity
        if value > high:
            value, velocity = 2.0 * high - value, -velocity
        if value < low:
            value, velocity = 2.0 * low - value, -velocity
        value = min(max(value, low), high)
        values[t] = value
    return values


def _move(
    rng: np.random.Generator,
    start: np.ndarray,
    speed: float,
    damping: float,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """(N, 2) trajectory from ``start``: damped random acceleration with typical speed ``speed``,
    bouncing off the per-frame bounds ``low``/``high`` ((N, 2) each) on the centre."""
    count = low.shape[0]
    sigma = speed * math.sqrt(1.0 - damping**2)
    accelerations = rng.normal(0.0, sigma, (count, 2))
    velocity = rng.normal(0.0, speed / math.sqrt(2.0), 2)
    centres = np.empty((count, 2))
    centre = np.asarray(start, float).copy()
    for t in range(count):
        if t > 0:
            velocity = damping * velocity + accelerations[t]
            norm = math.hypot(velocity[0], velocity[1])
            if norm > 3.0 * speed > 0.0:
                velocity *= 3.0 * speed / norm
            centre = centre + velocity
        for axis in range(2):
            lo, hi = low[t, axis], high[t, axis]
            if lo > hi:
                centre[axis] = 0.5 * (lo + hi)
                continue
            if centre[axis] < lo:
                centre[axis], velocity[axis] = 2.0 * lo - centre[axis], abs(velocity[axis])
            if centre[axis] > hi:
                centre[axis], velocity[axis] = 2.0 * hi - centre[axis], -abs(velocity[axis])
            centre[axis] = min(max(centre[axis], lo), hi)
        centres[t] = centre
    return centres


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def _sprite_for(rng: np.random.Generator, style, track: Track) -> Sprite:
    """A sprite at the largest size the object reaches (so warping only ever shrinks it)."""
    width, height = track.sizes.max(axis=0)
    return make_sprite(rng, style, math.ceil(width), math.ceil(height))


def _plan_target(rng: np.random.Generator, config: SyntheticConfig) -> tuple[SceneObject, ObjectStyle, str]:
    """The target, its style and a motion class (GOT-10k ``meta_info.ini`` wording)."""
    count = config.frames_per_sequence
    frame_w, frame_h = config.frame_size
    style = random_style(rng, config.photo_texture_prob)
    size = _log_uniform(rng, config.target_size_range)
    aspect = _log_uniform(rng, config.aspect_ratio_range)
    # Sides are at least 12 px unless the world asks for smaller targets.
    min_side = min(12.0, config.target_size_range[0])
    width = min(max(size * math.sqrt(aspect), min_side), 0.5 * frame_w)
    height = min(max(size / math.sqrt(aspect), min_side), 0.5 * frame_h)
    zooming = rng.random() < config.scale_change_prob
    fast = rng.random() < config.fast_motion_prob
    rotating = rng.random() < config.rotation_prob

    max_log = math.log(config.max_scale_change)
    low_log = max(-max_log, math.log(min(10.0, 0.8 * config.target_size_range[0]) / min(width, height)))
    high_log = min(max_log, math.log(0.55 * frame_w / width), math.log(0.55 * frame_h / height))
    log_scale = _random_walk(rng, count, 0.006 if zooming else 0.0015, 0.95, low_log, high_log)
    log_aspect = _random_walk(rng, count, 0.003, 0.9, -0.15, 0.15)
    sizes = np.stack(
        [width * np.exp(log_scale + log_aspect / 2), height * np.exp(log_scale - log_aspect / 2)],
        axis=1,
    )
    max_angle = math.radians(config.max_rotation)
    # Drawn even when unused, so that the rotation switch leaves the rest of the target unchanged.
    angles = _random_walk(rng, count, 0.01, 0.9, -max_angle, max_angle) * rotating
    track = Track(np.zeros((count, 2)), sizes, angles)

    frame = np.array([frame_w, frame_h], float)
    extents = track.extents
    low = extents / 2 - config.max_truncation * extents
    high = frame - extents / 2 + config.max_truncation * extents
    # The first frame shows the whole target (the tracker is initialised on it).
    first_low, first_high = extents[0] / 2 + 2.0, frame - extents[0] / 2 - 2.0
    start = np.where(
        first_low < first_high, rng.uniform(first_low, np.maximum(first_high, first_low)), frame / 2
    )
    if fast:
        speed, damping = rng.uniform(*config.fast_speed_range), 0.8
    else:
        speed, damping = _log_uniform(rng, config.speed_range), 0.92
    track.centres = _move(rng, start, speed, damping, low, high)

    motion = "fast motion" if fast else ("scale change" if zooming else "smooth motion")
    if rotating:
        motion += " with rotation"
    target = SceneObject(_sprite_for(rng, style, track), track, front=False)
    return target, style, motion


def _plan_distractors(rng, config, target_style, target_track) -> list[SceneObject]:
    """Look-alikes of the target: similar texture and colours, similar size, their own motion."""
    if config.max_distractors == 0 or rng.random() >= config.distractor_prob:
        return []
    count = config.frames_per_sequence
    frame = np.array(config.frame_size, float)
    target_size = target_track.sizes[0]
    objects = []
    for _ in range(int(rng.integers(1, config.max_distractors + 1))):
        style = similar_style(rng, target_style, amount=rng.uniform(0.3, 1.5))
        scale = rng.uniform(0.75, 1.3) * np.exp(rng.normal(0.0, 0.15, 2))
        log_scale = _random_walk(rng, count, 0.002, 0.95, -0.3, 0.3)
        sizes = np.maximum(target_size * scale * np.exp(log_scale)[:, None], 8.0)
        track = Track(np.zeros((count, 2)), sizes, np.full(count, rng.normal(0.0, 0.2)))
        speed = 0.0 if rng.random() < 0.3 else _log_uniform(rng, config.speed_range)
        # Look-alikes may leave the frame by up to half their size.
        low = np.zeros((count, 2))
        track.centres = _move(rng, rng.uniform(0.0, frame), speed, 0.92, low, low + frame)
        objects.append(SceneObject(_sprite_for(rng, style, track), track, rng.random() < 0.3))
    return objects


def _plan_clutter(rng, config) -> list[SceneObject]:
    """Moving objects of unrelated looks."""
    count = config.frames_per_sequence
    frame = np.array(config.frame_size, float)
    objects = []
    for _ in range(int(rng.integers(0, config.max_clutter_objects + 1))):
        size = _log_uniform(rng, (12.0, 70.0))
        aspect = _log_uniform(rng, (0.3, 3.3))
        sizes = np.tile([size * math.sqrt(aspect), size / math.sqrt(aspect)], (count, 1))
        spin = rng.normal(0.0, 0.02) if rng.random() < 0.3 else 0.0
        angles = rng.uniform(0.0, np.pi) + spin * np.arange(count)
        track = Track(np.zeros((count, 2)), sizes, angles)
        low = np.zeros((count, 2))
        track.centres = _move(rng, rng.uniform(0.0, frame), rng.uniform(0.0, 3.0), 0.92, low, low + frame)
        style = random_style(rng, config.photo_texture_prob)
        objects.append(SceneObject(_sprite_for(rng, style, track), track, rng.random() < 0.25))
    return objects


def _plan_occluders(rng, config, target_track) -> list[SceneObject]:
    """Bars (poles, beams) and shapes that pass in front of the target around a chosen frame."""
    if rng.random() >= config.occlusion_prob:
        return []
    count = config.frames_per_sequence
    times = np.arange(count)
    objects = []
    for _ in range(1 + int(rng.random() < 0.3)):
        event = int(rng.integers(max(1, round(0.2 * count)), max(2, round(0.85 * count))))
        centre = target_track.centres[event]
        target_w, target_h = target_track.extents[event]
        style = random_style(rng, config.photo_texture_prob)
        if rng.random() < 0.5:
            thickness = rng.uniform(0.25, 0.5) * min(target_w, target_h)
            length = rng.uniform(2.0, 4.0) * max(target_w, target_h)
            angle = rng.normal(0.0, 0.2) + (np.pi / 2 if rng.random() < 0.5 else 0.0)
            across = np.array([math.cos(angle), math.sin(angle)])  # the bar's short axis
            velocity = across * rng.choice((-1.0, 1.0)) * rng.uniform(0.0, 3.0)
            position = centre + across * rng.uniform(-0.3, 0.3) * np.array([target_w, target_h])
            size = (thickness, length)
            style = dataclasses.replace(style, shape="rounded_rectangle", decals=0)
        else:
            side = rng.uniform(0.4, 0.75) * math.sqrt(target_w * target_h)
            aspect = rng.uniform(0.6, 1.6)
            size = (side * math.sqrt(aspect), side / math.sqrt(aspect))
            direction = rng.uniform(0.0, 2.0 * np.pi)
            offset = rng.uniform(0.1, 0.45) * min(target_w, target_h)
            position = centre + offset * np.array([math.cos(direction), math.sin(direction)])
            heading = rng.uniform(0.0, 2.0 * np.pi)
            velocity = rng.uniform(1.5, 5.0) * np.array([math.cos(heading), math.sin(heading)])
            angle = rng.uniform(0.0, np.pi)
        track = Track(
            position + np.outer(times - event, velocity),
            np.tile(size, (count, 1)),
            np.full(count, angle),
        )
        objects.append(SceneObject(_sprite_for(rng, style, track), track, front=True))
    return objects


def _plan_crossing(rng, config, target_style, target_track) -> list[SceneObject]:
    """A look-alike of the target that passes across it around a chosen frame, in front of it or
    behind it (in front, the occlusion limit may still send it behind)."""
    if rng.random() >= config.crossing_distractor_prob:
        return []
    count = config.frames_per_sequence
    times = np.arange(count)
    event = int(rng.integers(max(1, round(0.2 * count)), max(2, round(0.9 * count))))
    style = similar_style(rng, target_style, amount=rng.uniform(0.2, 1.0))
    sizes = target_track.sizes[event] * rng.uniform(0.8, 1.25) * np.exp(rng.normal(0.0, 0.1, 2))
    heading = rng.uniform(0.0, 2.0 * np.pi)
    velocity = rng.uniform(1.0, 6.0) * np.array([math.cos(heading), math.sin(heading)])
    offset = rng.normal(0.0, 0.2, 2) * target_track.extents[event]
    track = Track(
        target_track.centres[event] + offset + np.outer(times - event, velocity),
        np.tile(np.maximum(sizes, 4.0), (count, 1)),
        np.full(count, float(target_track.angles[event]) + rng.normal(0.0, 0.2)),
    )
    return [SceneObject(_sprite_for(rng, style, track), track, front=bool(rng.random() < 0.5))]


def _plan_out_of_view(rng, config, track: Track) -> None:
    """Push the target across the nearest frame edge and back for a few frames (in place): a smooth
    detour added to its path, long enough that it is wholly outside the frame at its middle."""
    if rng.random() >= config.out_of_view_prob:
        return
    count = config.frames_per_sequence
    duration = int(rng.integers(6, 21))
    if count < duration + 4:
        return
    start = int(rng.integers(max(1, round(0.2 * count)), count - duration))
    middle = start + duration // 2
    frame = np.array(config.frame_size, float)
    centre, extent = track.centres[middle], track.extents.max(axis=0)
    # Distances to the four edges: left, right, top, bottom.
    distances = np.array([centre[0], frame[0] - centre[0], centre[1], frame[1] - centre[1]])
    edge = int(np.argmin(distances))
    direction = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])[edge]
    reach = distances[edge] + extent[edge // 2] + rng.uniform(4.0, 20.0)
    phase = (np.arange(count) - start) / duration
    # sin^0.5 rises quickly, so the target spends several frames wholly out of view.
    bump = np.where((phase > 0) & (phase < 1), np.sqrt(np.abs(np.sin(np.pi * phase))), 0.0)
    track.centres = track.centres + np.outer(np.clip(1.3 * bump, 0.0, 1.0) * reach, direction)


def _plan_shake(rng, config) -> np.ndarray | None:
    """(N, 2) camera displacement per frame (None without shake): an AR(1) jitter of about
    ``camera_shake_px`` pixels, zero in the first frame."""
    if rng.random() >= config.camera_shake_prob:
        return None
    count = config.frames_per_sequence
    amplitude = config.camera_shake_px * rng.uniform(0.5, 1.5)
    shake = np.zeros((count, 2))
    for t in range(1, count):
        shake[t] = 0.5 * shake[t - 1] + rng.normal(0.0, amplitude, 2)
    limit = shake_margin(config)
    return np.clip(shake - shake[0], -limit, limit)


def shake_margin(config: SyntheticConfig) -> int:
    """Extra background margin (pixels per side) that camera shake may reveal."""
    return math.ceil(3.0 * config.camera_shake_px) if config.camera_shake_prob > 0.0 else 0


def _smooth_curve(rng: np.random.Generator, count: int, amplitude: float) -> np.ndarray:
    """(count,) slowly varying curve: two random sinusoids with periods of 0.5-2 sequence lengths."""
    t = np.arange(count)
    curve = np.zeros(count)
    for _ in range(2):
        period = rng.uniform(0.5, 2.0) * count
        curve += np.sin(2.0 * np.pi * t / period + rng.uniform(0.0, 2.0 * np.pi))
    return amplitude * curve / math.sqrt(2.0)


def _plan_illumination(rng, config):
    """Per-frame ``(gain (N, 3), offset (N, 3), ramp (N, 3) or None)`` for :func:`finish_frame`."""
    count = config.frames_per_sequence
    if rng.random() >= config.illumination_prob:
        return np.ones((count, 3)), np.zeros((count, 3)), None
    strength = config.illumination_strength
    log_gain = _smooth_curve(rng, count, strength)
    if rng.random() < 0.25:  # a light switched on or off: a step over three frames
        step = rng.choice((-1.0, 1.0)) * rng.uniform(0.5, 1.0) * strength
        log_gain += step * np.clip((np.arange(count) - rng.integers(1, count)) / 3.0, 0.0, 1.0)
    contrast = np.exp(_smooth_curve(rng, count, 0.5 * strength))
    colour = np.exp(np.stack([_smooth_curve(rng, count, 0.3 * strength) for _ in range(3)], 1))
    brightness = np.exp(log_gain)[:, None] * colour
    gain = brightness * contrast[:, None]
    offset = 128.0 * (1.0 - contrast)[:, None] * brightness  # contrast pivots on mid-grey
    ramp = None
    if rng.random() < 0.5:  # a light gradient across the frame, slowly turning
        direction = rng.uniform(0.0, 2.0 * np.pi) + _smooth_curve(rng, count, 0.5)
        ramp_strength = np.full(count, rng.uniform(0.1, 0.5) * min(1.0, 2.0 * strength))
        ramp = np.stack([ramp_strength, np.cos(direction), np.sin(direction)], axis=1)
    return gain, offset, ramp


def _plan_pan(rng, config) -> np.ndarray:
    """(N, 2) int offsets of the frame inside the larger background (a drifting camera)."""
    count = config.frames_per_sequence
    centre = np.full((count, 2), float(_PAN_MARGIN))
    if rng.random() < config.camera_pan_prob:
        high = 2.0 * centre
        pan = _move(rng, centre[0], rng.uniform(0.3, 1.5), 0.95, np.zeros_like(high), high)
        return np.rint(pan).astype(int) + shake_margin(config)
    return centre.astype(int) + shake_margin(config)


def _plan_noise(rng, config) -> tuple[np.ndarray | None, np.ndarray]:
    """A (3, H + margin, W + margin) noise tile (None for no noise) and (N, 2) per-frame offsets into
    it: drawing one tile per sequence and shifting it costs far less than fresh noise per frame."""
    count = config.frames_per_sequence
    frame_w, frame_h = config.frame_size
    offsets = rng.integers(0, _NOISE_MARGIN + 1, (count, 2))
    noise_std = rng.uniform(*config.noise_std_range)
    if noise_std <= 0.0:
        return None, offsets
    shape = (3, frame_h + _NOISE_MARGIN, frame_w + _NOISE_MARGIN)
    return rng.normal(0.0, noise_std, shape).astype(np.float32), offsets


def _plan_background(rng, config) -> np.ndarray:
    frame_w, frame_h = config.frame_size
    margin = _PAN_MARGIN + shake_margin(config)
    shape = (frame_h + 2 * margin, frame_w + 2 * margin)
    if config.flat_background is not None:
        colour = np.asarray(config.flat_background, np.float32)[:, None, None]
        return np.broadcast_to(colour, (3, *shape))
    low, high = config.background_clutter_range
    clutter = int(rng.integers(low, high + 1))
    blur_sigma = 0.0 if rng.random() < 0.5 else rng.uniform(0.5, 1.5)
    return make_background(rng, shape[0], shape[1], clutter, blur_sigma, config.photo_background_prob)


def plan_scene(config: SyntheticConfig, index: int) -> Scene:
    # One random stream per part of the scene, so that switching a nuisance off leaves the others
    # (and the target) exactly as they were.
    # Streams are children 0, 1, ... of one SeedSequence, so streams added later leave earlier ones be.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([config.seed, index]).spawn(13)]
    (
        target_rng,
        distractor_rng,
        clutter_rng,
        occluder_rng,
        illumination_rng,
        blur_rng,
        pan_rng,
        noise_rng,
        background_rng,
        jpeg_rng,
        out_of_view_rng,
        crossing_rng,
        shake_rng,
    ) = streams
    target, style, motion = _plan_target(target_rng, config)
    _plan_out_of_view(out_of_view_rng, config, target.track)
    objects = (
        _plan_clutter(clutter_rng, config)
        + _plan_distractors(distractor_rng, config, style, target.track)
        + _plan_occluders(occluder_rng, config, target.track)
        + _plan_crossing(crossing_rng, config, style, target.track)
    )
    shake = _plan_shake(shake_rng, config)
    pan = _plan_pan(pan_rng, config)
    if shake is not None:
        # The camera moves by `shake`: the world, objects and background alike, appears moved by -shake.
        for obj in [target, *objects]:
            obj.track.centres = obj.track.centres - shake
        pan = pan + np.rint(shake).astype(int)
    count = config.frames_per_sequence
    low, high = config.jpeg_quality_range
    quality = jpeg_rng.integers(low, high + 1) + jpeg_rng.integers(-5, 6, count)
    blurred = blur_rng.random() < config.motion_blur_prob
    exposure = blur_rng.uniform(0.5, 1.0) * config.motion_blur_strength
    gain, offset, ramp = _plan_illumination(illumination_rng, config)
    noise, noise_offsets = _plan_noise(noise_rng, config)
    scene = Scene(
        target=target,
        target_texture=style.texture,
        target_shape=style.shape,
        motion_class=motion,
        objects=objects,
        background=_plan_background(background_rng, config),
        pan=pan,
        camera_motion=None if shake is None else np.diff(shake, axis=0, prepend=shake[:1]),
        blur_exposure=exposure if blurred else 0.0,
        gain=gain,
        offset=offset,
        ramp=ramp,
        noise=noise,
        noise_offsets=noise_offsets,
        jpeg_quality=np.clip(quality, low, high),
    )
    limit_occlusion(scene, config)
    return scene


# ---------------------------------------------------------------------------------------------------
# Visibility of the target.


def target_mask(target: SceneObject, t: int, frame_size, pad: int = 0):
    """The target's mask in frame ``t``: ``(x0, y0, patch, mask, total, in_frame)`` where ``in_frame``
    is ``(frame_slices, mask_in_frame)`` (the mask's part inside the frame)."""
    track = target.track
    x0, y0, patch = place_sprite(target.sprite, track.centres[t], track.sizes[t], track.angles[t], pad)
    mask = patch[..., 3] >= MASK_THRESHOLD
    overlap = clip_to_frame(x0, y0, mask.shape[1], mask.shape[0], *frame_size)
    if overlap is None:  # wholly out of view
        empty = (slice(0, 0), slice(0, 0))
        return x0, y0, patch, mask, int(mask.sum()), (empty, np.zeros((0, 0), bool))
    frame_slices, patch_slices = overlap
    return x0, y0, patch, mask, int(mask.sum()), (frame_slices, mask[patch_slices].copy())


def occlude(visible: np.ndarray, frame_slices, x0: int, y0: int, alpha: np.ndarray) -> int:
    """Clear the pixels of ``visible`` (the target's in-frame mask at ``frame_slices``) that an object
    with ``alpha`` placed at ``(x0, y0)`` covers; returns how many visible pixels it hid."""
    rows, cols = frame_slices
    overlap = clip_to_frame(
        x0 - cols.start,
        y0 - rows.start,
        alpha.shape[1],
        alpha.shape[0],
        visible.shape[1],
        visible.shape[0],
    )
    if overlap is None:
        return 0
    visible_slices, alpha_slices = overlap
    covered = visible[visible_slices] & (alpha[alpha_slices] >= MASK_THRESHOLD)
    visible[visible_slices] &= ~covered
    return int(covered.sum())


def _near(a: Track, b: Track, t: int) -> bool:
    """Whether two objects' bounding boxes may overlap in frame ``t`` (cheap pre-test)."""
    reach = 0.5 * (a.extents[t] + b.extents[t]) + 2.0
    return bool(np.all(np.abs(a.centres[t] - b.centres[t]) <= reach))


def limit_occlusion(scene: Scene, config: SyntheticConfig) -> None:
    """Send behind the target the front objects that hide too much of it (see module docstring)."""
    front = [o for o in scene.objects if o.front]
    count = config.frames_per_sequence
    while front:
        visible_ratio = np.ones(count)
        hidden = np.zeros((len(front), count))
        for t in range(count):
            *_, total, (frame_slices, visible) = target_mask(scene.target, t, config.frame_size)
            for k, obj in enumerate(front):
                if _near(obj.track, scene.target.track, t):
                    track = obj.track
                    x0, y0, alpha = place_sprite(
                        obj.sprite,
                        track.centres[t],
                        track.sizes[t],
                        track.angles[t],
                        alpha_only=True,
                    )
                    hidden[k, t] = occlude(visible, frame_slices, x0, y0, alpha)
            # Out of view is not hidden: only frames showing some of the target count.
            in_view = bool(visible.any() or hidden[:, t].any())
            visible_ratio[t] = visible.sum() / total if in_view else 1.0
        too_hidden = visible_ratio < config.min_visibility
        too_hidden[0] = visible_ratio[0] < 1.0
        if not too_hidden.any():
            return
        worst = int(np.argmax(hidden[:, too_hidden].sum(axis=1)))
        front.pop(worst).front = False
