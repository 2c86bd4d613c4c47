"""Checks that a path or a sequence can be tracked and evaluated, with one-line reasons (host)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from siamfc_jax.sequences.frames import IMAGE_SUFFIXES, DataError
from siamfc_jax.sequences.readers import is_sequence_dir
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.tracker.host import first_box_problem


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


def validate_for_tracking(
    sequence: Sequence, require_ground_truth: bool = False, max_frames: int | None = None
) -> list[str]:
    """Check that a sequence can be tracked (and evaluated), raising a DataError that says why not.

    Checks: there are frames; per-frame ground truth, if any, has one box per frame (required
    when ``require_ground_truth``); there is an initial box, finite, with positive width and height,
    overlapping the first frame and not implausibly large for it
    (:func:`~siamfc_jax.tracker.host.first_box_problem`). Later ground-truth boxes may be NaN or
    empty (absent target).

    A ground truth with fewer boxes than frames is accepted when it covers the ``max_frames``
    frames to be tracked, or when the initial box was given (it differs from the first
    ground-truth box): then the frames without ground truth are tracked unscored, and a warning
    says so.

    Returns:
      Warnings for the run's record (empty when there is nothing to say).
    """
    warnings: list[str] = []
    where = sequence.source or sequence.name
    count = len(sequence)
    if count == 0:
        raise DataError(f"{where}: no frames found")
    boxes = sequence.boxes
    box = sequence.init_box
    tracked = count if max_frames is None else min(count, max_frames)
    if boxes is not None and len(boxes) != count:
        given = box is not None and len(boxes) > 0 and not np.array_equal(box, boxes[0], equal_nan=True)
        shortfall = f"{sequence.annotation}: {len(boxes)} ground-truth boxes for {count} frames in {where}"
        if len(boxes) > count:
            raise DataError(f"{shortfall} (more boxes than frames)")
        if tracked > len(boxes) and not given:
            raise DataError(
                f"{shortfall} (fewer boxes than frames; --max-frames {len(boxes)} tracks the frames "
                "they cover, an initial box --box X,Y,W,H tracks all)"
            )
        if tracked > len(boxes):
            warnings.append(f"{shortfall}: frames {len(boxes) + 1}-{tracked} are tracked but not scored")
    if require_ground_truth and boxes is None:
        raise DataError(f"{where}: no per-frame ground truth")
    if box is None:
        raise DataError(f"{where}: no initial box (no ground truth: give one as x, y, w, h)")
    from_annotation = boxes is not None and len(boxes) > 0 and np.array_equal(box, boxes[0], equal_nan=True)
    what = f"{sequence.annotation}:1: first box" if from_annotation else f"{where}: initial box"
    if not np.all(np.isfinite(box)):
        raise DataError(f"{what} {format_box(box)} is not finite")
    if box[2] <= 0 or box[3] <= 0:
        raise DataError(f"{what} {format_box(box)} has zero or negative width or height")
    problem = first_box_problem(box, sequence.frame_size)
    if problem is not None:
        raise DataError(f"{what} {problem}")
    return warnings


def check_target_boxes(sequence: Sequence, boxes: np.ndarray) -> None:
    """Check (N, 4) finite initial boxes with positive sides against the sequence's first frame.

    Raises:
      DataError: the sequence has no frames, or a box lies outside the first frame or is
        implausibly large for it (the message gives the box's 1-based number).
    """
    where = sequence.source or sequence.name
    if len(sequence) == 0:
        raise DataError(f"{where}: no frames found")
    for index, box in enumerate(boxes):
        problem = first_box_problem(box, sequence.frame_size)
        if problem is not None:
            raise DataError(f"{where}: initial box {index + 1} of {len(boxes)} {problem}")
