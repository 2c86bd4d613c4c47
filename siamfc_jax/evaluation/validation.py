"""Checks that a path or a sequence can be tracked and evaluated, with one-line reasons (host)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from siamfc_jax.sequences.frames import IMAGE_SUFFIXES, DataError
from siamfc_jax.sequences.readers import is_sequence_dir
from siamfc_jax.sequences.sequence import Sequence


def is_sequence_root(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder of sequence folders (an OTB or GOT-10k split root): a folder
    that is no sequence itself, holds no images, and has a sequence folder among its subfolders."""
    location = Path(path)
    if not location.is_dir() or is_sequence_dir(location):
        return False
    with os.scandir(location) as entries:
        entries = list(entries)
    if any(entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES for entry in entries):
        return False
    return any(entry.is_dir() and is_sequence_dir(entry.path) for entry in entries)



def format_box(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{value:g}" for value in box) + "]"


def validate_for_tracking(sequence: Sequence, require_ground_truth: bool = False) -> None:
    """Check that a sequence can be tracked (and evaluated), raising a DataError that says why not.

    Checks: there are frames; per-frame ground truth, if any, has exactly one box per frame (required
    when ``require_ground_truth``); there is an initial box, finite, with positive width and height,
    overlapping the first frame (whose pixel columns span ``[1, W + 1)`` in 1-indexed coordinates).
    Later ground-truth boxes may be NaN or empty (absent target).
    """
    where = sequence.source or sequence.name
    count = len(sequence)
    if count == 0:
        raise DataError(f"{where}: no frames found")
    boxes = sequence.boxes
    if boxes is not None and len(boxes) != count:
        relation = "fewer" if len(boxes) < count else "more"
        raise DataError(
            f"{sequence.annotation}: {len(boxes)} ground-truth boxes for {count} frames in {where} "
            f"({relation} boxes than frames)"
        )
    if require_ground_truth and boxes is None:
        raise DataError(f"{where}: no per-frame ground truth")
    box = sequence.init_box
    if box is None:
        raise DataError(f"{where}: no initial box (no ground truth: give one as x, y, w, h)")
    from_annotation = boxes is not None and np.array_equal(box, boxes[0], equal_nan=True)
    what = f"{sequence.annotation}:1: first box" if from_annotation else f"{where}: initial box"
    if not np.all(np.isfinite(box)):
        raise DataError(f"{what} {format_box(box)} is not finite")
    if box[2] <= 0 or box[3] <= 0:
        raise DataError(f"{what} {format_box(box)} has zero or negative width or height")
    width, height = sequence.frame_size
    if box[0] + box[2] <= 1 or box[1] + box[3] <= 1 or box[0] >= width + 1 or box[1] >= height + 1:
        raise DataError(
            f"{what} {format_box(box)} lies entirely outside the {width}x{height} first frame"
        )
