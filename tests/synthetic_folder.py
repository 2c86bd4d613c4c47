"""A folder of tiny synthetic sequences of three sizes and lengths, for the batched-run tests.

The tests that use it track it with 2 slots, so they share one compiled batched step (one padded
size, 128x128, and one number of slots) within a pytest run.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from siamfc_jax.synthetic import SyntheticConfig, render_sequence

# (width, height), frames: three sizes and lengths.
SEQUENCES = {"small": ((64, 64), 6), "wide": ((96, 64), 9), "tall": ((72, 96), 4)}
SLOTS = 2


def write_folder(root: Path) -> Path:
    """Write the sequences (PNG frames, comma-separated ``groundtruth.txt``) under ``root``."""
    for index, (name, (size, frames)) in enumerate(SEQUENCES.items()):
        folder = root / name
        folder.mkdir(parents=True)
        config = SyntheticConfig(
            num_sequences=1, frames_per_sequence=frames, frame_size=size, seed=index,
            target_size_range=(16.0, 30.0),
        )
        images, boxes, _, _ = render_sequence(config, 0)
        for frame_index, image in enumerate(images):
            cv2.imwrite(str(folder / f"{frame_index + 1:08d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        np.savetxt(folder / "groundtruth.txt", boxes, fmt="%.4f", delimiter=",")
    return root
