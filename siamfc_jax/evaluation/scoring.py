"""Scoring tracked sequences: per-sequence results and their overall summary (host).

A :class:`SequenceResult` holds one sequence's boxes, per-frame times and scores against its ground
truth (:mod:`siamfc_jax.evaluation.metrics`); :func:`summarize` averages finished sequences.
Scores are computed from the boxes rounded to the decimals written to ``<name>.txt``, so the files
reproduce the reported numbers exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from siamfc_jax.evaluation.metrics import frame_scores, success_curve, summarize_frames
from siamfc_jax.sequences.sequence import Sequence

# Frames left out of the speed measurement: frame 0 (init, warm-up and compilation).
UNTIMED_FRAMES = 1
STRIP_FRAMES = 5
DEFAULT_VIDEO_FPS = 30.0
SUMMARY_NAME = "summary"

OnFrame = Callable[[int, np.ndarray, np.ndarray, "float | None"], None]


@dataclass(frozen=True, eq=False)
class SequenceResult:
    """The outcome of tracking one sequence.

    Attributes:
      name: the sequence's name (the stem of its output files).
      num_frames: frames to track: the sequence's, or ``max_frames`` when that is fewer.
      boxes: (T, 4) float64 tracked boxes, 1-indexed ``[x, y, w, h]``, rounded to 4 decimals;
        T = ``num_frames`` unless interrupted. Row 0 is the initial box.
      times: (T,) seconds the tracker spent on each frame (frame 0: init and warm-up; then update).
      scores: ``auc``, ``precision`` (at 20 px), ``mean_iou`` and ``evaluated_frames`` against the
        ground truth, or None (no per-frame ground truth, or interrupted).
      ious: (E,) IoU of each evaluated frame (frames with usable ground truth), or None.
      center_errors: (E,) centre distances in pixels of the evaluated frames, or None.
      interrupted: tracking stopped early (Ctrl-C).
      outputs: kind -> path of the files written (``boxes``, ``json``, ``success_plot``, ``video``,
        ``strip``).
      warnings: what went wrong without stopping the run (a damaged frame that still decoded, a
        truncated video, frames without ground truth), one line each naming the file and frame.
    """

    name: str
    num_frames: int
    boxes: np.ndarray
    times: np.ndarray
    scores: dict[str, float | int] | None = None
    ious: np.ndarray | None = None
    center_errors: np.ndarray | None = None
    interrupted: bool = False
    outputs: Mapping[str, Path] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def frames_tracked(self) -> int:
        return len(self.boxes)

    @property
    def timed_seconds(self) -> float:
        """Tracker seconds over the frames that count for speed: all but the first."""
        return float(np.sum(self.times[UNTIMED_FRAMES:]))

    @property
    def timed_frames(self) -> int:
        return max(0, len(self.times) - UNTIMED_FRAMES)

    @property
    def fps(self) -> float | None:
        """Frames per second of the tracker after the first frame; None for a single frame."""
        seconds = self.timed_seconds
        return self.timed_frames / seconds if self.timed_frames and seconds > 0 else None

    @property
    def success_curve(self) -> np.ndarray | None:
        """(21,) success rates at :data:`SUCCESS_THRESHOLDS`, or None without scores."""
        return None if self.ious is None else success_curve(self.ious)


def running_fps(times: np.ndarray, count: int) -> float | None:
    """Speed over frames ``UNTIMED_FRAMES .. count - 1`` of ``times``."""
    timed = times[UNTIMED_FRAMES:count]
    total = float(np.sum(timed))
    return len(timed) / total if len(timed) and total > 0 else None


def tracked_length(sequence: Sequence, max_frames: int | None = None) -> int:
    """Frames :func:`track_sequence` tracks: all of the sequence's, or its first ``max_frames``."""
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    total = len(sequence)
    return total if max_frames is None else min(total, max_frames)


def score(sequence: Sequence, boxes: np.ndarray) -> tuple[dict | None, np.ndarray | None, np.ndarray | None]:
    """Scores of tracked ``boxes`` (N, 4) against the ground truth of the sequence's first N frames.

    Returns:
      ``(scores, ious, center_errors)`` as in :class:`SequenceResult`; all None without per-frame
      ground truth or when none of the N frames has a usable ground-truth box.
    """
    if sequence.boxes is None:
        return None, None, None
    # A ground truth shorter than the tracked frames (see validate_for_tracking) scores the frames
    # it covers.
    count = min(len(boxes), len(sequence.boxes))
    boxes = boxes[:count]
    truth = sequence.boxes[:count]
    absence = None if sequence.absence is None else sequence.absence[:count]
    try:
        ious, errors = frame_scores(boxes, truth, absence)
    except ValueError:  # no usable ground-truth box at all: nothing to score
        return None, None, None
    return _scores(ious, errors), ious, errors


def _scores(ious: np.ndarray, errors: np.ndarray) -> dict:
    """:func:`~siamfc_jax.evaluation.metrics.summarize_frames`, its frame count named ``evaluated_frames``."""
    scores = summarize_frames(ious, errors)
    scores["evaluated_frames"] = scores.pop("frames")
    return scores


@dataclass(frozen=True, eq=False)
class FolderResult:
    """The outcome of :func:`run_folder`: per-sequence results, overall scores, summary files."""

    results: tuple[SequenceResult, ...]
    overall: dict
    interrupted: bool
    outputs: Mapping[str, Path]


def summarize(results: Iterable[SequenceResult]) -> dict:
    """Overall numbers of finished sequences.

    Returns:
      ``sequences`` (finished), ``scored_sequences`` (with ground truth), ``frames``; ``auc``,
      ``precision``, ``mean_iou``: means over the scored sequences (None if none); ``pooled``: the
      same three over all their evaluated frames together (``evaluated_frames``); ``fps``: all
      timed frames over all timed seconds.
    """
    finished = [result for result in results if not result.interrupted]
    scored = [result for result in finished if result.scores is not None]
    seconds = sum(result.timed_seconds for result in finished)
    timed = sum(result.timed_frames for result in finished)
    overall: dict = {
        "sequences": len(finished),
        "scored_sequences": len(scored),
        "frames": sum(result.num_frames for result in finished),
        "fps": timed / seconds if timed and seconds > 0 else None,
        "auc": None,
        "precision": None,
        "mean_iou": None,
        "pooled": None,
    }
    if scored:
        for key in ("auc", "precision", "mean_iou"):
            overall[key] = float(np.mean([result.scores[key] for result in scored]))
        ious = np.concatenate([result.ious for result in scored])
        errors = np.concatenate([result.center_errors for result in scored])
        overall["pooled"] = _scores(ious, errors)
    return overall
