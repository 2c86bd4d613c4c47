"""What the synthetic world generates: :class:`SyntheticConfig`, its fingerprint and names.

Sequence ``index`` of a config depends only on the config (seed included) and ``index``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

from siamfc_jax.config import SYNTHETIC_WORLDS

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
TEMP_MARKER = ".tmp-"


class SyntheticDataError(ValueError):
    """A user mistake with synthetic data: a bad config value or an output directory that cannot be used."""


def check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
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
        photo_texture_prob: chance that an object's texture is a crop of a real photograph
            (:mod:`~siamfc_jax.synthetic.photos`); look-alikes of a photo-textured target take a
            nearby crop of the same photograph.
        photo_background_prob: sequences whose background is a crop of a real photograph.
        camera_shake_prob, camera_shake_px: sequences with a shaking camera (every object and the
            background jump together from frame to frame, by about this many pixels; motion blur then
            smears the background too).
        crossing_distractor_prob: sequences with a look-alike of the target that passes across it.
        out_of_view_prob: sequences where the target leaves the frame entirely for a while (its
            frames are annotated absent) and comes back.
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
    photo_texture_prob: float = 0.0
    photo_background_prob: float = 0.0
    camera_shake_prob: float = 0.0
    camera_shake_px: float = 6.0
    crossing_distractor_prob: float = 0.0
    out_of_view_prob: float = 0.0

    def __post_init__(self) -> None:
        if self.num_sequences < 1:
            raise SyntheticDataError(f"num_sequences must be >= 1, got {self.num_sequences}")
        if self.frames_per_sequence < 2:
            raise SyntheticDataError(f"frames_per_sequence must be >= 2, got {self.frames_per_sequence}")
        if len(self.frame_size) != 2 or min(self.frame_size) < 64:
            raise SyntheticDataError(f"frame_size must be (width, height), both >= 64, got {self.frame_size}")
        if self.seed < 0:
            raise SyntheticDataError(f"seed must be >= 0, got {self.seed}")
        check_range("target_size_range", self.target_size_range, 4.0, min(self.frame_size))
        check_range("aspect_ratio_range", self.aspect_ratio_range, 0.1, 10.0)
        check_range("speed_range", self.speed_range, 0.0, 100.0)
        check_range("fast_speed_range", self.fast_speed_range, 0.0, 100.0)
        check_range("background_clutter_range", self.background_clutter_range, 0, 1000)
        check_range("noise_std_range", self.noise_std_range, 0.0, 64.0)
        check_range("jpeg_quality_range", self.jpeg_quality_range, 1, 100)
        for name in (
            "fast_motion_prob",
            "scale_change_prob",
            "rotation_prob",
            "distractor_prob",
            "occlusion_prob",
            "illumination_prob",
            "motion_blur_prob",
            "camera_pan_prob",
            "photo_texture_prob",
            "photo_background_prob",
            "camera_shake_prob",
            "crossing_distractor_prob",
            "out_of_view_prob",
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
        for name in ("max_rotation", "illumination_strength", "motion_blur_strength", "camera_shake_px"):
            if getattr(self, name) < 0:
                raise SyntheticDataError(f"{name} must be >= 0, got {getattr(self, name)}")


# The worlds a training run can name (``TrainConfig.synthetic_world``). ``basic`` renders plain
# textured objects on textured backgrounds; ``rich`` adds what real video has and the basic world
# lacks: small targets, real photographs as textures and backgrounds, camera shake with matching
# blur, look-alikes crossing the target, full occlusion and targets leaving the view, more fast
# motion, zoom and rotation.
_BASIC, _RICH = SYNTHETIC_WORLDS
WORLDS = {
    _BASIC: SyntheticConfig(),
    _RICH: SyntheticConfig(
        target_size_range=(6.0, 90.0),
        fast_motion_prob=0.3,
        fast_speed_range=(6.0, 24.0),
        scale_change_prob=0.6,
        max_scale_change=2.5,
        rotation_prob=0.4,
        max_rotation=45.0,
        occlusion_prob=0.5,
        min_visibility=0.0,
        photo_texture_prob=0.5,
        photo_background_prob=0.6,
        camera_shake_prob=0.3,
        crossing_distractor_prob=0.5,
        out_of_view_prob=0.15,
    ),
}


def world_config(name: str, num_sequences: int) -> SyntheticConfig:
    """The synthetic world ``name`` (a key of :data:`WORLDS`) with ``num_sequences`` sequences.

    Raises:
      SyntheticDataError: an unknown world.
    """
    if name not in WORLDS:
        raise SyntheticDataError(f"unknown synthetic world {name!r}; choose one of {', '.join(WORLDS)}")
    return dataclasses.replace(WORLDS[name], num_sequences=num_sequences)


_LATER_NUISANCES = (
    "photo_texture_prob",
    "photo_background_prob",
    "camera_shake_prob",
    "camera_shake_px",
    "crossing_distractor_prob",
    "out_of_view_prob",
)
_OFF = {name: getattr(SyntheticConfig(), name) for name in _LATER_NUISANCES}


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
    # Nuisances that are off render nothing, so leaving them out of the digest keeps one fingerprint
    # (and one prepared folder) for configs that differ only in nuisances that are off.
    for name in _LATER_NUISANCES:
        if fields[name] == _OFF[name]:
            del fields[name]
    payload = json.dumps({"version": GENERATOR_VERSION, "config": fields}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
