"""The held-out synthetic demo sequence that ``python track.py`` tracks without ``--seq``.
"""

from __future__ import annotations

import os
from pathlib import Path

from siamfc_jax.runtime import cache_dir
from siamfc_jax.synthetic.config import DEMO_SEED, DEMO_SEQUENCE_NAME, SyntheticConfig, config_fingerprint
from siamfc_jax.synthetic.writer import remove_temporaries, sequence_complete, write_sequence_dir

# ---------------------------------------------------------------------------------------------------
# Demo sequence.


def default_demo_dir() -> Path:
    """Where ``python track.py`` generates the demo sequence: ``cache_dir() / "demo"``."""
    return cache_dir() / "demo"


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
    if not sequence_complete(sequence_dir, config.frames_per_sequence, fingerprint):
        directory.mkdir(parents=True, exist_ok=True)
        remove_temporaries(directory, DEMO_SEQUENCE_NAME)
        write_sequence_dir(directory, DEMO_SEQUENCE_NAME, config, 0, fingerprint)
    return sequence_dir
