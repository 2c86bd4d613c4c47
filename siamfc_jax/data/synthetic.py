"""The synthetic tracking world: procedurally generated videos, siamfc_jax's default training data.

Each sequence shows a textured target object (ellipse, polygon, rounded rectangle or blob; stripes,
checkers, noise, gradient, dots or a smooth colour field; aspect ratio about 0.3-3) moving over a
cluttered textured background, with the nuisances trackers meet in real videos: scale change, in-plane
rotation, fast motion, similar-looking distractors (objects whose texture and colours are close to the
target's), partial occlusion (bars and shapes passing in front, and other objects), illumination change
(gradual or abrupt brightness, contrast and colour shifts, moving light gradients), motion blur along
the motion (proportional to speed), sensor noise, a panning camera, and JPEG artefacts (frames are saved
as JPEG with a random quality).

Determinism: sequence ``index`` of a :class:`SyntheticConfig` depends only on the config (its seed
included) and ``index``, never on other sequences, so sequences can be generated in any order and in
parallel. Distractors, clutter, occluders, illumination, blur, camera pan, noise, background and JPEG
quality each draw from their own random stream, so switching one of them off (probability 0) leaves
the rest of the sequence unchanged (scale change, rotation and fast motion are properties of the
target's own motion).

Annotations (per frame):

- box: the axis-aligned bounding box of the target's full extent, visible or occluded (as GOT-10k),
  clipped to the frame where the target is partly outside it; 1-indexed ``[x, y, w, h]`` in pixels:
  a target covering pixel columns ``c0..c1`` (0-indexed, inclusive) has ``x = c0 + 1``,
  ``w = c1 - c0 + 1`` (OTB / GOT-10k convention), and likewise for rows.
- cover: the visible fraction ``r`` of the target's pixels (hidden by occluders or outside the frame),
  quantised to GOT-10k's 0..8 scale: 0 when ``r = 0`` (fully occluded), 8 when ``r = 1`` (fully
  visible), otherwise ``ceil(8 r)`` limited to 1..7, so label ``k`` means ``r`` in ``((k-1)/8, k/8]``
  except that 8 is kept for unoccluded frames (any occlusion gives at most 7). ``cover / 8`` thus
  approximates the visible ratio, which is how GOT-10k consumers read it.
- absence: 1 when no pixel of the target is visible (``cover == 0``), else 0.
- cut_by_image: 1 when part of the target lies outside the frame, else 0.

The target never leaves the frame by more than ``max_truncation`` of its size per axis, is fully
visible in the first frame, and occluders never hide more than ``1 - min_visibility`` of it (an object
that would is moved behind the target for the whole sequence), because SiamFC cannot re-detect a lost
target.

On disk (:func:`write_got10k`) the layout is GOT-10k's: ``<root>/<subset>/list.txt`` and one folder
per sequence named ``SYN_000001`` ... (``index + 1``) with ``00000001.jpg`` ..., ``groundtruth.txt``,
``absence.label``, ``cover.label``, ``cut_by_image.label`` and ``meta_info.ini``.

Command line::

    python -m siamfc_jax.data.synthetic --out data/synthetic [--num-sequences N] [--frames N]
        [--seed S] [--subset train] [--workers W] [--frame-size 320x240] [--no-progress]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from siamfc_jax.data.synthetic_render import (
    MASK_THRESHOLD,
    ObjectStyle,
    Sprite,
    clip_to_frame,
    composite,
    finish_frame,
    make_background,
    make_sprite,
    motion_blur_kernel,
    place_sprite,
    random_style,
    similar_style,
)
from siamfc_jax.runtime import available_cores, select_platform

# Bump when a change makes the same config render different sequences, so stale data is detected.
GENERATOR_VERSION = 1
SEQUENCE_PREFIX = "SYN_"
DEMO_SEQUENCE_NAME = "SYN_DEMO"
# Seed of the held-out demo sequence (picked by eye among a few for a clear, eventful demo); the demo
# config (150 frames of 384x288) also differs from any training config.
DEMO_SEED = 20_160_632
FINGERPRINT_FILE = "synthetic_config.json"
ANNOTATION_FILES = (
    "groundtruth.txt",
    "absence.label",
    "cover.label",
    "cut_by_image.label",
    "meta_info.ini",
)
_TEMP_MARKER = ".tmp-"
_PAN_MARGIN = 24
_NOISE_MARGIN = 16
_MAX_BLUR_LENGTH = 31.0


class SyntheticDataError(ValueError):
    """A user mistake with synthetic data: a bad config value or an output directory that cannot be used."""


def _check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    if len(bounds) != 2 or not low <= bounds[0] <= bounds[1] <= high:
        raise SyntheticDataError(
            f"{name} must be a (min, max) pair with {low} <= min <= max <= {high}, got {bounds}"
        )


@dataclass(frozen=True)
class SyntheticConfig:
    """What the synthetic world generates. Sizes in pixels, speeds in pixels per frame.

    Probabilities are per sequence. The defaults give a varied training set on which a SiamFC learns
    to track; setting a probability to 0 switches that nuisance off without changing anything else.

    Attributes:
        num_sequences: sequences in a dataset written by :func:`write_got10k`.
        frames_per_sequence: frames per sequence (>= 2).
        frame_size: ``(width, height)`` of every frame.
        seed: base seed; sequence ``index`` is generated from ``(seed, index)`` alone.
        target_size_range: range of the target's initial size ``sqrt(w * h)`` (log-uniform).
        aspect_ratio_range: range of the target's initial ``w / h`` (log-uniform).
        max_truncation: largest fraction of the target's width/height allowed outside the frame.
        speed_range: typical speed of the target (log-uniform) in ordinary sequences.
        fast_motion_prob, fast_speed_range: sequences with fast, jerky target motion and their speed.
        scale_change_prob: sequences whose target zooms (otherwise its size varies by a few percent).
        max_scale_change: largest size factor relative to the first frame, either way.
        rotation_prob, max_rotation: sequences whose target rotates in-plane, by at most this many
            degrees.
        distractor_prob, max_distractors: sequences with 1..``max_distractors`` look-alikes of the target.
        max_clutter_objects: other moving objects per sequence (0..this many, unrelated looks).
        background_clutter_range: static shapes painted on the background (min, max).
        flat_background: an RGB colour for a plain background instead of a cluttered one (testing).
        occlusion_prob: sequences with one or two occluders passing in front of the target.
        min_visibility: smallest visible fraction of the target occluders may leave.
        illumination_prob, illumination_strength: sequences with illumination change and its size
            (about the largest relative change of brightness).
        motion_blur_prob, motion_blur_strength: sequences with motion blur; blur length in pixels is
            strength x exposure (0.5-1) x speed.
        camera_pan_prob: sequences whose background drifts (a panning camera).
        noise_std_range: standard deviation of additive sensor noise (uniform per sequence, 0..255).
        jpeg_quality_range: JPEG quality of the written frames (per sequence, jittered per frame).
    """

    num_sequences: int = 300
    frames_per_sequence: int = 60
    frame_size: tuple[int, int] = (320, 240)
    seed: int = 0
    target_size_range: tuple[float, float] = (28.0, 90.0)
    aspect_ratio_range: tuple[float, float] = (0.33, 3.0)
    max_truncation: float = 0.2
    speed_range: tuple[float, float] = (0.5, 4.0)
    fast_motion_prob: float = 0.15
    fast_speed_range: tuple[float, float] = (6.0, 14.0)
    scale_change_prob: float = 0.5
    max_scale_change: float = 2.0
    rotation_prob: float = 0.3
    max_rotation: float = 25.0
    distractor_prob: float = 0.7
    max_distractors: int = 3
    max_clutter_objects: int = 4
    background_clutter_range: tuple[int, int] = (6, 24)
    flat_background: tuple[int, int, int] | None = None
    occlusion_prob: float = 0.4
    min_visibility: float = 0.3
    illumination_prob: float = 0.6
    illumination_strength: float = 0.35
    motion_blur_prob: float = 0.5
    motion_blur_strength: float = 1.0
    camera_pan_prob: float = 0.5
    noise_std_range: tuple[float, float] = (0.0, 5.0)
    jpeg_quality_range: tuple[int, int] = (40, 95)

    def __post_init__(self) -> None:
        if self.num_sequences < 1:
            raise SyntheticDataError(f"num_sequences must be >= 1, got {self.num_sequences}")
        if self.frames_per_sequence < 2:
            raise SyntheticDataError(f"frames_per_sequence must be >= 2, got {self.frames_per_sequence}")
        if len(self.frame_size) != 2 or min(self.frame_size) < 64:
            raise SyntheticDataError(f"frame_size must be (width, height), both >= 64, got {self.frame_size}")
        if self.seed < 0:
            raise SyntheticDataError(f"seed must be >= 0, got {self.seed}")
        _check_range("target_size_range", self.target_size_range, 12.0, min(self.frame_size))
        _check_range("aspect_ratio_range", self.aspect_ratio_range, 0.1, 10.0)
        _check_range("speed_range", self.speed_range, 0.0, 100.0)
        _check_range("fast_speed_range", self.fast_speed_range, 0.0, 100.0)
        _check_range("background_clutter_range", self.background_clutter_range, 0, 1000)
        _check_range("noise_std_range", self.noise_std_range, 0.0, 64.0)
        _check_range("jpeg_quality_range", self.jpeg_quality_range, 1, 100)
        for name in (
            "fast_motion_prob",
            "scale_change_prob",
            "rotation_prob",
            "distractor_prob",
            "occlusion_prob",
            "illumination_prob",
            "motion_blur_prob",
            "camera_pan_prob",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SyntheticDataError(f"{name} must be a probability in [0, 1], got {value}")
        if not 0.0 <= self.max_truncation < 0.5:
            raise SyntheticDataError(f"max_truncation must be in [0, 0.5), got {self.max_truncation}")
        if not 0.0 <= self.min_visibility < 1.0:
            raise SyntheticDataError(f"min_visibility must be in [0, 1), got {self.min_visibility}")
        if self.max_scale_change < 1.0:
            raise SyntheticDataError(f"max_scale_change must be >= 1, got {self.max_scale_change}")
        if self.max_distractors < 0 or self.max_clutter_objects < 0:
            raise SyntheticDataError("max_distractors and max_clutter_objects must be >= 0")
        if self.flat_background is not None and (
            len(self.flat_background) != 3 or not all(0 <= c <= 255 for c in self.flat_background)
        ):
            raise SyntheticDataError(
                f"flat_background must be an RGB triple in 0..255, got {self.flat_background}"
            )
        for name in ("max_rotation", "illumination_strength", "motion_blur_strength"):
            if getattr(self, name) < 0:
                raise SyntheticDataError(f"{name} must be >= 0, got {getattr(self, name)}")


def sequence_name(index: int) -> str:
    """Folder name of sequence ``index`` (0-based): ``SYN_000001`` for index 0."""
    return f"{SEQUENCE_PREFIX}{index + 1:06d}"


def cover_label(visible_pixels: int, total_pixels: int) -> int:
    """GOT-10k cover label (0..8) of a target with ``visible_pixels`` of ``total_pixels`` visible."""
    if visible_pixels <= 0:
        return 0
    if visible_pixels >= total_pixels:
        return 8
    return min(max(math.ceil(8.0 * visible_pixels / total_pixels), 1), 7)


def config_fingerprint(config: SyntheticConfig) -> str:
    """Hex digest identifying what a config renders (``num_sequences`` aside: it only adds sequences)."""
    fields = dataclasses.asdict(config)
    del fields["num_sequences"]
    payload = json.dumps({"version": GENERATOR_VERSION, "config": fields}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------
# Scene planning: where every object is in every frame, and the photometric conditions.


@dataclass
class _Track:
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
class _SceneObject:
    sprite: Sprite
    track: _Track
    front: bool


@dataclass
class _Scene:
    target: _SceneObject
    target_texture: str
    target_shape: str
    motion_class: str
    objects: list[_SceneObject]
    background: np.ndarray  # (3, H + 2 margin, W + 2 margin) planar float32
    pan: np.ndarray  # (N, 2) int offsets (x, y) of the frame inside the background
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


def _sprite_for(rng: np.random.Generator, style, track: _Track) -> Sprite:
    """A sprite at the largest size the object reaches (so warping only ever shrinks it)."""
    width, height = track.sizes.max(axis=0)
    return make_sprite(rng, style, math.ceil(width), math.ceil(height))


def _plan_target(rng: np.random.Generator, config: SyntheticConfig) -> tuple[_SceneObject, ObjectStyle, str]:
    """The target, its style and a motion class (GOT-10k ``meta_info.ini`` wording)."""
    count = config.frames_per_sequence
    frame_w, frame_h = config.frame_size
    style = random_style(rng)
    size = _log_uniform(rng, config.target_size_range)
    aspect = _log_uniform(rng, config.aspect_ratio_range)
    width = min(max(size * math.sqrt(aspect), 12.0), 0.5 * frame_w)
    height = min(max(size / math.sqrt(aspect), 12.0), 0.5 * frame_h)
    zooming = rng.random() < config.scale_change_prob
    fast = rng.random() < config.fast_motion_prob
    rotating = rng.random() < config.rotation_prob

    max_log = math.log(config.max_scale_change)
    low_log = max(-max_log, math.log(10.0 / min(width, height)))
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
    track = _Track(np.zeros((count, 2)), sizes, angles)

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
    target = _SceneObject(_sprite_for(rng, style, track), track, front=False)
    return target, style, motion


def _plan_distractors(rng, config, target_style, target_track) -> list[_SceneObject]:
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
        track = _Track(np.zeros((count, 2)), sizes, np.full(count, rng.normal(0.0, 0.2)))
        speed = 0.0 if rng.random() < 0.3 else _log_uniform(rng, config.speed_range)
        # Look-alikes may leave the frame by up to half their size.
        low = np.zeros((count, 2))
        track.centres = _move(rng, rng.uniform(0.0, frame), speed, 0.92, low, low + frame)
        objects.append(_SceneObject(_sprite_for(rng, style, track), track, rng.random() < 0.3))
    return objects


def _plan_clutter(rng, config) -> list[_SceneObject]:
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
        track = _Track(np.zeros((count, 2)), sizes, angles)
        low = np.zeros((count, 2))
        track.centres = _move(rng, rng.uniform(0.0, frame), rng.uniform(0.0, 3.0), 0.92, low, low + frame)
        objects.append(_SceneObject(_sprite_for(rng, random_style(rng), track), track, rng.random() < 0.25))
    return objects


def _plan_occluders(rng, config, target_track) -> list[_SceneObject]:
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
        style = random_style(rng)
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
        track = _Track(
            position + np.outer(times - event, velocity),
            np.tile(size, (count, 1)),
            np.full(count, angle),
        )
        objects.append(_SceneObject(_sprite_for(rng, style, track), track, front=True))
    return objects


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
        return np.rint(pan).astype(int)
    return centre.astype(int)


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
    shape = (frame_h + 2 * _PAN_MARGIN, frame_w + 2 * _PAN_MARGIN)
    if config.flat_background is not None:
        colour = np.asarray(config.flat_background, np.float32)[:, None, None]
        return np.broadcast_to(colour, (3, *shape))
    low, high = config.background_clutter_range
    clutter = int(rng.integers(low, high + 1))
    blur_sigma = 0.0 if rng.random() < 0.5 else rng.uniform(0.5, 1.5)
    return make_background(rng, shape[0], shape[1], clutter, blur_sigma)


def _plan_scene(config: SyntheticConfig, index: int) -> _Scene:
    # One random stream per part of the scene, so that switching a nuisance off leaves the others
    # (and the target) exactly as they were.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([config.seed, index]).spawn(10)]
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
    ) = streams
    target, style, motion = _plan_target(target_rng, config)
    objects = (
        _plan_clutter(clutter_rng, config)
        + _plan_distractors(distractor_rng, config, style, target.track)
        + _plan_occluders(occluder_rng, config, target.track)
    )
    count = config.frames_per_sequence
    low, high = config.jpeg_quality_range
    quality = jpeg_rng.integers(low, high + 1) + jpeg_rng.integers(-5, 6, count)
    blurred = blur_rng.random() < config.motion_blur_prob
    exposure = blur_rng.uniform(0.5, 1.0) * config.motion_blur_strength
    gain, offset, ramp = _plan_illumination(illumination_rng, config)
    noise, noise_offsets = _plan_noise(noise_rng, config)
    scene = _Scene(
        target=target,
        target_texture=style.texture,
        target_shape=style.shape,
        motion_class=motion,
        objects=objects,
        background=_plan_background(background_rng, config),
        pan=_plan_pan(pan_rng, config),
        blur_exposure=exposure if blurred else 0.0,
        gain=gain,
        offset=offset,
        ramp=ramp,
        noise=noise,
        noise_offsets=noise_offsets,
        jpeg_quality=np.clip(quality, low, high),
    )
    _limit_occlusion(scene, config)
    return scene


# ---------------------------------------------------------------------------------------------------
# Visibility of the target.


def _target_mask(target: _SceneObject, t: int, frame_size, pad: int = 0):
    """The target's mask in frame ``t``: ``(x0, y0, patch, mask, total, in_frame)`` where ``in_frame``
    is ``(frame_slices, mask_in_frame)`` (the mask's part inside the frame)."""
    track = target.track
    x0, y0, patch = place_sprite(target.sprite, track.centres[t], track.sizes[t], track.angles[t], pad)
    mask = patch[..., 3] >= MASK_THRESHOLD
    frame_slices, patch_slices = clip_to_frame(x0, y0, mask.shape[1], mask.shape[0], *frame_size)
    return x0, y0, patch, mask, int(mask.sum()), (frame_slices, mask[patch_slices].copy())


def _occlude(visible: np.ndarray, frame_slices, x0: int, y0: int, alpha: np.ndarray) -> int:
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


def _near(a: _Track, b: _Track, t: int) -> bool:
    """Whether two objects' bounding boxes may overlap in frame ``t`` (cheap pre-test)."""
    reach = 0.5 * (a.extents[t] + b.extents[t]) + 2.0
    return bool(np.all(np.abs(a.centres[t] - b.centres[t]) <= reach))


def _limit_occlusion(scene: _Scene, config: SyntheticConfig) -> None:
    """Send behind the target the front objects that hide too much of it (see module docstring)."""
    front = [o for o in scene.objects if o.front]
    count = config.frames_per_sequence
    while front:
        visible_ratio = np.ones(count)
        hidden = np.zeros((len(front), count))
        for t in range(count):
            *_, total, (frame_slices, visible) = _target_mask(scene.target, t, config.frame_size)
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
                    hidden[k, t] = _occlude(visible, frame_slices, x0, y0, alpha)
            visible_ratio[t] = visible.sum() / total
        too_hidden = visible_ratio < config.min_visibility
        too_hidden[0] = visible_ratio[0] < 1.0
        if not too_hidden.any():
            return
        worst = int(np.argmax(hidden[:, too_hidden].sum(axis=1)))
        front.pop(worst).front = False


# ---------------------------------------------------------------------------------------------------
# Rendering.


@dataclass(frozen=True)
class _RenderedSequence:
    frames: list[np.ndarray]
    boxes: np.ndarray
    cover: np.ndarray
    absence: np.ndarray
    cut_by_image: np.ndarray
    jpeg_quality: np.ndarray
    object_class: str
    motion_class: str
    mean_speed: float


def _blur_kernel(scene: _Scene, t: int, speeds: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    """Motion-blur kernel of an object moving at ``speeds`` (its :meth:`_Track.speeds`) in frame ``t``."""
    if scene.blur_exposure <= 0.0:
        return None
    speed, direction = speeds[0][t], speeds[1][t]
    length = min(scene.blur_exposure * speed, _MAX_BLUR_LENGTH)
    return motion_blur_kernel(length, direction) if length >= 2.0 else None


def _paint(frame: np.ndarray, x0: int, y0: int, patch: np.ndarray, kernel: np.ndarray | None) -> None:
    if kernel is None:
        composite(frame, x0, y0, patch, hard=True)
    else:
        blurred = cv2.filter2D(patch, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        composite(frame, x0, y0, blurred, hard=False)


def _draw(frame: np.ndarray, obj: _SceneObject, t: int, kernel: np.ndarray | None):
    """Paint ``obj`` into ``frame``; returns its unblurred ``(x0, y0, patch)``."""
    pad = 0 if kernel is None else kernel.shape[0] // 2 + 1
    track = obj.track
    x0, y0, patch = place_sprite(obj.sprite, track.centres[t], track.sizes[t], track.angles[t], pad)
    _paint(frame, x0, y0, patch, kernel)
    return x0, y0, patch


def _render(config: SyntheticConfig, index: int) -> _RenderedSequence:
    scene = _plan_scene(config, index)
    count = config.frames_per_sequence
    frame_w, frame_h = config.frame_size
    back = [o for o in scene.objects if not o.front]
    front = [o for o in scene.objects if o.front]
    speeds = {id(o): o.track.speeds() for o in [scene.target, *scene.objects]}
    columns = np.arange(frame_w, dtype=np.float32)[None, :] - frame_w / 2
    rows = np.arange(frame_h, dtype=np.float32)[:, None] - frame_h / 2
    half_diagonal = np.float32(0.5 * math.hypot(frame_w, frame_h))
    frames, boxes = [], np.zeros((count, 4))
    cover, cut = np.zeros(count, int), np.zeros(count, int)
    for t in range(count):
        pan_x, pan_y = scene.pan[t]
        frame = np.array(scene.background[:, pan_y : pan_y + frame_h, pan_x : pan_x + frame_w])
        for obj in back:
            _draw(frame, obj, t, _blur_kernel(scene, t, speeds[id(obj)]))

        kernel = _blur_kernel(scene, t, speeds[id(scene.target)])
        pad = 0 if kernel is None else kernel.shape[0] // 2 + 1
        x0, y0, patch, _, total, (frame_slices, visible) = _target_mask(
            scene.target, t, config.frame_size, pad
        )
        _paint(frame, x0, y0, patch, kernel)
        in_rows = np.flatnonzero(visible.any(axis=1))
        in_cols = np.flatnonzero(visible.any(axis=0))
        top, left = frame_slices[0].start + in_rows[0], frame_slices[1].start + in_cols[0]
        boxes[t] = (
            left + 1,
            top + 1,
            in_cols[-1] - in_cols[0] + 1,
            in_rows[-1] - in_rows[0] + 1,
        )
        cut[t] = int(visible.sum() < total)

        for obj in front:
            ox, oy, object_patch = _draw(frame, obj, t, _blur_kernel(scene, t, speeds[id(obj)]))
            _occlude(visible, frame_slices, ox, oy, object_patch[..., 3])
        cover[t] = cover_label(int(visible.sum()), total)

        ramp = None
        if scene.ramp is not None:
            strength, cos_d, sin_d = scene.ramp[t].astype(np.float32)
            ramp = 1.0 + strength * (columns * cos_d + rows * sin_d) / half_diagonal
        noise = None
        if scene.noise is not None:
            nx, ny = scene.noise_offsets[t]
            noise = scene.noise[:, ny : ny + frame_h, nx : nx + frame_w]
        frames.append(finish_frame(frame, scene.gain[t], scene.offset[t], ramp, noise))

    mean_speed = float(np.mean(speeds[id(scene.target)][0]))
    return _RenderedSequence(
        frames=frames,
        boxes=boxes,
        cover=cover,
        absence=(cover == 0).astype(int),
        cut_by_image=cut,
        jpeg_quality=scene.jpeg_quality,
        object_class=f"{scene.target_texture} {scene.target_shape}".replace("_", " "),
        motion_class=scene.motion_class,
        mean_speed=mean_speed,
    )


def render_sequence(
    config: SyntheticConfig, index: int
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Render synthetic sequence ``index`` of ``config`` (deterministic in ``(config, index)``).

    Returns:
        ``(frames, boxes, cover, absence)``: ``frames`` is a list of N (H, W, 3) RGB uint8 arrays
        (before JPEG compression, which :func:`write_got10k` adds); ``boxes`` (N, 4) float64 1-indexed
        ``[x, y, w, h]`` in pixels; ``cover`` (N,) int GOT-10k visibility labels 0..8; ``absence`` (N,)
        int 0/1. See the module docstring for their exact definitions.
    """
    if index < 0:
        raise SyntheticDataError(f"sequence index must be >= 0, got {index}")
    rendered = _render(config, index)
    return rendered.frames, rendered.boxes, rendered.cover, rendered.absence


# ---------------------------------------------------------------------------------------------------
# GOT-10k layout on disk.


def _write_text_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}{_TEMP_MARKER}{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _frame_names(count: int) -> list[str]:
    return [f"{t + 1:08d}.jpg" for t in range(count)]


def _meta_info(config: SyntheticConfig, index: int, rendered: _RenderedSequence, fingerprint: str) -> str:
    sizes = rendered.boxes[:, 2:]
    relative_speed = rendered.mean_speed / max(float(np.sqrt(sizes.prod(axis=1)).mean()), 1.0)
    # Line order matters: some GOT-10k readers take object_class .. motion_adverb from lines 6-10.
    lines = [
        "[METAINFO]",
        f"url: synthetic://siamfc_jax/seed={config.seed}/index={index}",
        "begin: 00:00:00",
        f"end: {len(rendered.frames)} frames",
        "anno_fps: 10Hz",
        f"object_class: {rendered.object_class}",
        f"motion_class: {rendered.motion_class}",
        "major_class: synthetic object",
        "root_class: synthetic",
        f"motion_adverb: {'quickly' if relative_speed > 0.1 else 'slowly'}",
        f"resolution: ({config.frame_size[0]}, {config.frame_size[1]})",
        f"generator: siamfc_jax.data.synthetic v{GENERATOR_VERSION}",
        f"fingerprint: {fingerprint}",
    ]
    return "\n".join(lines) + "\n"


def _labels_text(values: np.ndarray) -> str:
    return "".join(f"{int(v)}\n" for v in values)


def _sequence_complete(sequence_dir: Path, frame_count: int, fingerprint: str) -> bool:
    """Whether a sequence folder holds every file of a finished sequence of this config."""
    try:
        present = set(os.listdir(sequence_dir))
        meta = (sequence_dir / "meta_info.ini").read_text()
    except OSError:
        return False
    expected = set(_frame_names(frame_count)) | set(ANNOTATION_FILES)
    return expected <= present and f"\nfingerprint: {fingerprint}\n" in meta


def _write_sequence_dir(
    parent: Path, name: str, config: SyntheticConfig, index: int, fingerprint: str
) -> None:
    """Render sequence ``index`` into ``parent/name`` atomically: a temporary folder renamed at the end."""
    rendered = _render(config, index)
    final = parent / name
    temporary = parent / f".{name}{_TEMP_MARKER}{os.getpid()}"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    for frame_name, frame, quality in zip(
        _frame_names(len(rendered.frames)), rendered.frames, rendered.jpeg_quality, strict=True
    ):
        path = temporary / frame_name
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
            raise OSError(f"{path}: OpenCV could not write this JPEG file")
    boxes_text = "".join(f"{x:.4f},{y:.4f},{w:.4f},{h:.4f}\n" for x, y, w, h in rendered.boxes)
    (temporary / "groundtruth.txt").write_text(boxes_text)
    (temporary / "absence.label").write_text(_labels_text(rendered.absence))
    (temporary / "cover.label").write_text(_labels_text(rendered.cover))
    (temporary / "cut_by_image.label").write_text(_labels_text(rendered.cut_by_image))
    (temporary / "meta_info.ini").write_text(_meta_info(config, index, rendered, fingerprint))
    if final.exists():  # an incomplete or outdated folder: replace it
        stale = parent / f".{name}.stale{_TEMP_MARKER}{os.getpid()}"
        os.rename(final, stale)
        shutil.rmtree(stale)
    os.rename(temporary, final)


def _write_sequence(subset_dir: str, config: SyntheticConfig, index: int, fingerprint: str) -> int:
    _write_sequence_dir(Path(subset_dir), sequence_name(index), config, index, fingerprint)
    return index


def _init_worker() -> None:
    # One process per core already; OpenCV's own threads would only oversubscribe the cores.
    cv2.setNumThreads(1)


def _claim_subset_dir(subset_dir: Path, config: SyntheticConfig, fingerprint: str) -> None:
    """Create ``subset_dir`` or check that it holds synthetic data of this very config."""
    fingerprint_path = subset_dir / FINGERPRINT_FILE
    if fingerprint_path.is_file():
        try:
            recorded = json.loads(fingerprint_path.read_text()).get("fingerprint")
        except (OSError, ValueError, AttributeError) as error:
            raise SyntheticDataError(f"{fingerprint_path}: unreadable ({error})") from error
        if recorded != fingerprint:
            raise SyntheticDataError(
                f"{subset_dir} holds synthetic data of a different configuration (see "
                f"{fingerprint_path}); write to another directory or delete this one"
            )
        return
    if (subset_dir / "list.txt").exists():
        raise SyntheticDataError(
            f"{subset_dir} holds a dataset that this generator did not write (list.txt without "
            f"{FINGERPRINT_FILE}); refusing to write into it"
        )
    for sibling in subset_dir.parent.glob(f"*/{FINGERPRINT_FILE}"):
        try:
            sibling_seed = json.loads(sibling.read_text())["config"]["seed"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if sibling_seed == config.seed:
            raise SyntheticDataError(
                f"{sibling.parent} already holds synthetic sequences of seed {config.seed}; "
                f"use another seed for subset {subset_dir.name!r} so that the subsets do not overlap"
            )
    subset_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "generator": "siamfc_jax.data.synthetic",
        "version": GENERATOR_VERSION,
        "fingerprint": fingerprint,
        "config": dataclasses.asdict(config),
    }
    _write_text_atomic(fingerprint_path, json.dumps(record, indent=2) + "\n")


def _remove_temporaries(parent: Path, name: str = "") -> None:
    """Delete what interrupted runs left in ``parent``: hidden files and folders with the temporary
    marker in their name (only those of entry ``name`` when given)."""
    for path in parent.glob(f".{name}*{_TEMP_MARKER}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_got10k(
    root: str | os.PathLike,
    config: SyntheticConfig,
    subset: str = "train",
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write ``config.num_sequences`` synthetic sequences in GOT-10k layout under ``root/subset``.

    Resumable and idempotent: sequences already complete are kept untouched, missing or incomplete
    ones are (re)generated, identically since a sequence depends only on ``(config, index)``; raising
    ``num_sequences`` later adds sequences. Each sequence is written to a temporary folder that is
    renamed into place when complete, and ``list.txt`` is written last, atomically, so a dataset with a
    ``list.txt`` is complete. A fingerprint of the config (``synthetic_config.json``) guards the folder:
    writing a different config (other than ``num_sequences``) into it raises
    :class:`SyntheticDataError` rather than mixing data, as does writing a subset with a seed that a
    sibling subset of ``root`` already uses (the subsets would share sequences). Not safe for two
    writers on the same folder at once.

    Args:
        root: dataset root (created if needed).
        config: what to generate.
        subset: sub-folder name, ``"train"``, ``"val"`` or ``"test"`` for GOT-10k readers.
        workers: processes generating sequences in parallel (default: the usable CPU cores).
        progress: show a tqdm progress bar on stderr.

    Returns:
        The subset folder ``root/subset``.
    """
    if not subset or subset in (".", "..") or "/" in subset or os.sep in subset:
        raise SyntheticDataError(f"subset must be a plain folder name, got {subset!r}")
    if workers is not None and workers < 1:
        raise SyntheticDataError(f"workers must be >= 1, got {workers}")
    subset_dir = Path(root) / subset
    fingerprint = config_fingerprint(config)
    _claim_subset_dir(subset_dir, config, fingerprint)
    _remove_temporaries(subset_dir)

    count = config.num_sequences
    pending = [
        index
        for index in range(count)
        if not _sequence_complete(subset_dir / sequence_name(index), config.frames_per_sequence, fingerprint)
    ]
    workers = min(workers or available_cores(), max(len(pending), 1))
    with tqdm(
        total=count,
        initial=count - len(pending),
        desc=f"synthetic {subset}",
        unit="seq",
        disable=not progress,
    ) as bar:
        if workers == 1:
            for index in pending:
                _write_sequence(str(subset_dir), config, index, fingerprint)
                bar.update()
        else:
            # spawn, not fork: the caller may be a multi-threaded JAX process, which fork would copy
            # in an inconsistent state.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
                futures = [
                    pool.submit(_write_sequence, str(subset_dir), config, index, fingerprint)
                    for index in pending
                ]
                for future in as_completed(futures):
                    future.result()
                    bar.update()
    _write_text_atomic(subset_dir / "list.txt", "".join(f"{sequence_name(i)}\n" for i in range(count)))
    return subset_dir


# ---------------------------------------------------------------------------------------------------
# Demo sequence.


def demo_config() -> SyntheticConfig:
    """Config of the demo sequence: 150 frames with look-alikes, occlusion, zoom and light change."""
    return SyntheticConfig(
        num_sequences=1,
        frames_per_sequence=150,
        frame_size=(384, 288),
        seed=DEMO_SEED,
        target_size_range=(40.0, 60.0),
        aspect_ratio_range=(0.6, 1.6),
        fast_motion_prob=0.0,
        speed_range=(2.0, 3.0),
        scale_change_prob=1.0,
        rotation_prob=1.0,
        distractor_prob=1.0,
        max_distractors=3,
        max_clutter_objects=3,
        occlusion_prob=1.0,
        illumination_prob=1.0,
        illumination_strength=0.3,
        motion_blur_prob=1.0,
        camera_pan_prob=1.0,
        noise_std_range=(1.0, 2.0),
        jpeg_quality_range=(88, 95),
    )


def ensure_demo_sequence(directory: str | os.PathLike) -> Path:
    """The held-out demo sequence in ``directory/SYN_DEMO`` (GOT-10k sequence-folder layout).

    Generates it when missing or incomplete, reuses it otherwise; the folder holds ``*.jpg`` frames,
    ``groundtruth.txt`` and GOT-10k's label files. Returns the sequence folder.
    """
    directory = Path(directory)
    config = demo_config()
    fingerprint = config_fingerprint(config)
    sequence_dir = directory / DEMO_SEQUENCE_NAME
    if not _sequence_complete(sequence_dir, config.frames_per_sequence, fingerprint):
        directory.mkdir(parents=True, exist_ok=True)
        _remove_temporaries(directory, DEMO_SEQUENCE_NAME)
        _write_sequence_dir(directory, DEMO_SEQUENCE_NAME, config, 0, fingerprint)
    return sequence_dir


# ---------------------------------------------------------------------------------------------------
# Command line.


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _frame_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 320x240, got {text!r}") from None
    return width, height


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    select_platform()
    defaults = SyntheticConfig()
    parser = _ArgumentParser(
        prog="python -m siamfc_jax.data.synthetic",
        description="Write a synthetic tracking dataset in GOT-10k layout (resumable).",
    )
    parser.add_argument("--out", required=True, help="dataset root; sequences go to OUT/SUBSET")
    parser.add_argument("--num-sequences", type=int, default=defaults.num_sequences)
    parser.add_argument(
        "--frames", type=int, default=defaults.frames_per_sequence, help="frames per sequence"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--subset", default="train", help="GOT-10k subset folder (train, val, test)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    parser.add_argument(
        "--frame-size",
        type=_frame_size,
        default=defaults.frame_size,
        help="WIDTHxHEIGHT of the frames (default %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = SyntheticConfig(
            num_sequences=args.num_sequences,
            frames_per_sequence=args.frames,
            seed=args.seed,
            frame_size=args.frame_size,
        )
        subset_dir = write_got10k(
            args.out, config, args.subset, workers=args.workers, progress=not args.no_progress
        )
    except (ValueError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    print(f"{config.num_sequences} sequences in {subset_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
