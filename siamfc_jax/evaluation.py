"""Tracking whole sequences and folders of sequences: boxes, speed, scores and output files.

Host code. :func:`track_sequence` runs a :class:`~siamfc_jax.tracker.Tracker` over one sequence
(or its first ``max_frames`` frames) and scores it against the ground truth
(:mod:`siamfc_jax.metrics`: success AUC over 21 IoU thresholds, precision at 20 px, mean IoU).
:func:`run_sequence` also writes its files and :func:`run_folder` does both for every sequence of
a folder, then writes a summary. One tracker serves all sequences, so the tracker compiles once
per frame size.

Files in the output folder, per sequence ``<name>``:

- ``<name>.txt``: one box per frame, ``x,y,w,h`` with 4 decimals, 1-indexed pixels; line 1 is the
  initial box (siamfc-pytorch's and the OTB toolkit's convention);
- ``<name>.json``: frames, speed, scores, the success curve, device, weights and tracker config;
- ``<name>_success.png``: the success plot (with ground truth);
- ``<name>.mp4``: annotated video (``save_video``); ``<name>_strip.png``: five annotated frames
  side by side (``save_strip``).

For a folder, also ``summary.json``, ``summary.md`` (a per-sequence table) and
``summary_success.png``. Overall scores are means over the sequences with ground truth (as the OTB
toolkit averages its per-sequence success curves); ``pooled`` scores count all their evaluated
frames together, so long sequences weigh more.

Speed: ``fps`` counts the tracker's own time per frame (``Tracker.update``: upload, device step,
download), not decoding or drawing, over every frame after the first. The first frame's time covers
``Tracker.init`` and a warm-up: the tracker is initialised, updated once on frame 0 and initialised
again, so that compiling the per-frame step (for each new frame size) is part of the first frame,
not of the measured speed. The warm-up leaves the boxes unchanged: ``init`` starts from scratch.

Scores are computed from the boxes rounded to the 4 decimals written to ``<name>.txt``, so the
files reproduce the reported numbers exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from siamfc_jax.data.sequences import (
    IMAGE_SUFFIXES,
    DataError,
    Sequence,
    is_sequence_dir,
    validate_for_tracking,
)
from siamfc_jax.io import write_text_atomic
from siamfc_jax.metrics import (
    PRECISION_THRESHOLD,
    SUCCESS_THRESHOLDS,
    auc,
    center_error,
    evaluate,
    iou,
    precision_at,
    success_curve,
)
from siamfc_jax.tracker import Tracker
from siamfc_jax.visualize import (
    AnnotatedVideoWriter,
    save_figure,
    success_figure,
    tracking_strip,
    write_image,
)

# Frames left out of the speed measurement: frame 0 (init, warm-up and compilation).
UNTIMED_FRAMES = 1
BOX_DECIMALS = 4
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


def _progress_enabled(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def _running_fps(times: np.ndarray, count: int) -> float | None:
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


def _evaluated_mask(truth: np.ndarray, absence: np.ndarray | None) -> np.ndarray:
    """Frames scored by :func:`siamfc_jax.metrics.evaluate`: usable ground truth, target present."""
    mask = np.all(np.isfinite(truth), axis=1) & (truth[:, 2] > 0) & (truth[:, 3] > 0)
    if absence is not None:
        mask &= ~absence
    return mask


def score(sequence: Sequence, boxes: np.ndarray) -> tuple[dict | None, np.ndarray | None, np.ndarray | None]:
    """Scores of tracked ``boxes`` (N, 4) against the ground truth of the sequence's first N frames.

    Returns:
      ``(scores, ious, center_errors)`` as in :class:`SequenceResult`; all None without per-frame
      ground truth or when none of the N frames has a usable ground-truth box.
    """
    if sequence.boxes is None:
        return None, None, None
    count = len(boxes)
    truth = sequence.boxes[:count]
    absence = None if sequence.absence is None else sequence.absence[:count]
    try:
        metrics = evaluate(boxes, truth, absence)
    except ValueError:  # no usable ground-truth box at all: nothing to score
        return None, None, None
    mask = _evaluated_mask(truth, absence)
    scores = {
        "auc": metrics["auc"],
        "precision": metrics["precision"],
        "mean_iou": metrics["mean_iou"],
        "evaluated_frames": metrics["frames"],
    }
    return scores, iou(boxes[mask], truth[mask]), center_error(boxes[mask], truth[mask])


def _start(tracker: Tracker, frame: np.ndarray, box: np.ndarray) -> None:
    """Initialise ``tracker`` on the first frame, with a warm-up update (see the module docstring)."""
    tracker.init(frame, box)
    tracker.update(frame)
    tracker.init(frame, box)


def track_sequence(
    tracker: Tracker,
    sequence: Sequence,
    *,
    max_frames: int | None = None,
    on_frame: OnFrame | None = None,
    progress: bool | None = None,
) -> SequenceResult:
    """Track ``sequence`` from its ``init_box`` and score the result.

    Ctrl-C (KeyboardInterrupt) while tracking ends the run early: the result holds the frames
    tracked so far, ``interrupted`` is True and there are no scores.

    Args:
      tracker: the tracker; re-initialised here, so one tracker can serve many sequences.
      sequence: a sequence that passed :func:`~siamfc_jax.data.sequences.validate_for_tracking`.
      max_frames: track only the first ``max_frames`` frames (and score them), or None for all.
      on_frame: called after each frame with ``(index, frame, box, fps)``: the 0-based index,
        the (H, W, 3) RGB frame, the (4,) box (1-indexed ``[x, y, w, h]``) and the speed so far
        (None during the first frames).
      progress: show a tqdm bar over the frames; None shows it when stderr is a terminal.

    Raises:
      DataError: a frame cannot be decoded (the message names it).
    """
    total = tracked_length(sequence, max_frames)
    boxes = np.zeros((total, 4))
    times = np.zeros(total)
    count = 0
    interrupted = False
    bar = tqdm(
        total=total, desc=sequence.name, unit="frame", leave=False, disable=not _progress_enabled(progress)
    )
    frames = sequence.iter_frames()
    try:
        for index, frame in enumerate(itertools.islice(frames, total)):
            start = time.perf_counter()
            if index == 0:
                _start(tracker, frame, sequence.init_box)
                box = np.asarray(sequence.init_box, np.float64)
            else:
                box = tracker.update(frame)
            times[index] = time.perf_counter() - start
            boxes[index] = np.round(box, BOX_DECIMALS)
            count = index + 1
            if on_frame is not None:
                on_frame(index, frame, boxes[index], _running_fps(times, count))
            bar.update()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        frames.close()  # releases a video capture when fewer frames than the video's are tracked
        bar.close()
    boxes, times = boxes[:count], times[:count]
    scores = ious = errors = None
    if not interrupted:
        scores, ious, errors = score(sequence, boxes)
    return SequenceResult(
        name=sequence.name,
        num_frames=total,
        boxes=boxes,
        times=times,
        scores=scores,
        ious=ious,
        center_errors=errors,
        interrupted=interrupted,
    )


def run_info(tracker: Tracker, weights: str, device: str) -> dict:
    """What every output JSON records about the run: device line, weights, backbone, tracker config."""
    return {
        "device": device,
        "weights": weights,
        "backbone": tracker.model_config.backbone,
        "config": dataclasses.asdict(tracker.config),
    }


def _optional(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def sequence_record(result: SequenceResult, sequence: Sequence, info: Mapping) -> dict:
    """The JSON document of one sequence (see the module docstring)."""
    record = {
        "sequence": result.name,
        "source": sequence.source,
        "frames": result.num_frames,
        "sequence_frames": len(sequence),
        "frames_tracked": result.frames_tracked,
        "interrupted": result.interrupted,
        "init_box": [float(value) for value in sequence.init_box],
        "fps": _optional(result.fps),
        "fps_frames": result.timed_frames,
        "first_frame_seconds": float(result.times[0]) if len(result.times) else None,
        "tracking_seconds": float(np.sum(result.times)),
    }
    if result.scores is not None:
        record.update(result.scores)
        record["precision_threshold_px"] = PRECISION_THRESHOLD
        record["success_curve"] = {
            "thresholds": [float(value) for value in SUCCESS_THRESHOLDS],
            "success": [float(value) for value in result.success_curve],
        }
    record.update(info)
    record["outputs"] = {kind: path.name for kind, path in result.outputs.items()}
    return record


def format_boxes(boxes: np.ndarray) -> str:
    """Box file text: one ``x,y,w,h`` line per (N, 4) box, 4 decimals, final newline."""
    return "".join(",".join(f"{value:.{BOX_DECIMALS}f}" for value in box) + "\n" for box in boxes)


def format_result(result: SequenceResult) -> str:
    """One line: ``name: frames, fps, scores``."""
    fps = "fps n/a (a single frame)" if result.fps is None else f"{result.fps:.2f} fps"
    head = f"{result.name}: {result.frames_tracked} frames, {fps}"
    if result.interrupted:
        return f"{head} (interrupted after {result.frames_tracked} of {result.num_frames} frames)"
    if result.scores is None:
        return f"{head} (no ground truth)"
    scores = result.scores
    return (
        f"{head}, AUC {scores['auc']:.3f}, precision@20px {scores['precision']:.3f}, "
        f"mean IoU {scores['mean_iou']:.3f}"
    )


def _video_fps(sequence: Sequence) -> float:
    """Frame rate for the annotated video: the source video's, else 30 (image sequences)."""
    if sequence.video is None:
        return DEFAULT_VIDEO_FPS
    capture = cv2.VideoCapture(sequence.video)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return fps if math.isfinite(fps) and 0 < fps <= 1000 else DEFAULT_VIDEO_FPS


def strip_indices(num_frames: int, count: int = STRIP_FRAMES) -> list[int]:
    """Up to ``count`` frame indices evenly spread from the first to the last frame."""
    return sorted({round(value) for value in np.linspace(0, num_frames - 1, count)})


def run_sequence(
    tracker: Tracker,
    sequence: Sequence,
    out_dir: str | os.PathLike,
    *,
    info: Mapping,
    max_frames: int | None = None,
    save_video: bool = False,
    save_strip: bool = False,
    progress: bool | None = None,
) -> SequenceResult:
    """Track one sequence and write its files into ``out_dir`` (see the module docstring).

    An interrupted run still writes what it tracked (``<name>.txt``, ``<name>.json`` with
    ``"interrupted": true``, and the partial video).

    Args:
      tracker, sequence, max_frames, progress: as for :func:`track_sequence`; the sequence is
        validated here (all of it, also when ``max_frames`` limits the frames tracked).
      out_dir: output folder (created if needed).
      info: run description for the JSON (:func:`run_info`).
      save_video: write ``<name>.mp4``, each frame annotated with the tracked box (red), the
        ground truth (green), the frame number (1-based) and the speed so far.
      save_strip: write ``<name>_strip.png``, 5 annotated frames from first to last.

    Returns:
      The :class:`SequenceResult`, with ``outputs`` naming the files written.

    Raises:
      DataError: the sequence cannot be tracked (see ``validate_for_tracking``) or a frame cannot be
        decoded.
      OSError: an output file cannot be written.
    """
    validate_for_tracking(sequence)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth = sequence.boxes
    total = tracked_length(sequence, max_frames)
    wanted = set(strip_indices(total)) if save_strip else set()
    strip: dict[int, np.ndarray] = {}
    outputs: dict[str, Path] = {}
    with contextlib.ExitStack() as stack:
        video = None
        if save_video:
            writer = AnnotatedVideoWriter(
                out_dir / f"{sequence.name}.mp4", sequence.frame_size, _video_fps(sequence)
            )
            video = stack.enter_context(writer)
            outputs["video"] = writer.path

        def on_frame(index: int, frame: np.ndarray, box: np.ndarray, fps: float | None) -> None:
            if index in wanted:
                strip[index] = frame
            if video is not None:
                speed = "" if fps is None else f"  {fps:.1f} fps"
                video.write(
                    frame,
                    box,
                    None if truth is None else truth[index],
                    (f"{sequence.name}  frame {index + 1}/{total}{speed}",),
                )

        result = track_sequence(
            tracker, sequence, max_frames=max_frames, on_frame=on_frame, progress=progress
        )

    stem = out_dir / sequence.name
    write_text_atomic(stem.with_name(f"{sequence.name}.txt"), format_boxes(result.boxes))
    outputs["boxes"] = stem.with_name(f"{sequence.name}.txt")
    if result.scores is not None:
        path = stem.with_name(f"{sequence.name}_success.png")
        save_figure(success_figure({sequence.name: result.success_curve}), path)
        outputs["success_plot"] = path
    if strip:
        indices = sorted(strip)
        image = tracking_strip(
            [strip[index] for index in indices],
            result.boxes[indices],
            None if truth is None else truth[indices],
            [f"#{index + 1}" for index in indices],
        )
        path = stem.with_name(f"{sequence.name}_strip.png")
        write_image(path, image)
        outputs["strip"] = path
    outputs["json"] = stem.with_name(f"{sequence.name}.json")
    result = dataclasses.replace(result, outputs=outputs)
    record = sequence_record(result, sequence, info)
    write_text_atomic(outputs["json"], json.dumps(record, indent=1) + "\n")
    return result


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
        overall["pooled"] = {
            "auc": auc(ious),
            "precision": precision_at(errors),
            "mean_iou": float(np.mean(ious)),
            "evaluated_frames": len(ious),
        }
    return overall


def _cell(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def format_table(results: Iterable[SequenceResult], overall: Mapping) -> str:
    """Markdown table: one row per sequence (name, frames, AUC, precision, mean IoU, fps), then the
    mean over sequences and the pooled scores."""
    rows = [
        "| sequence | frames | AUC | precision@20px | mean IoU | fps |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        scores = result.scores or {}
        name = f"{result.name} (interrupted)" if result.interrupted else result.name
        rows.append(
            f"| {name} | {result.frames_tracked} | {_cell(scores.get('auc'), 3)} | "
            f"{_cell(scores.get('precision'), 3)} | {_cell(scores.get('mean_iou'), 3)} | "
            f"{_cell(result.fps, 1)} |"
        )
    rows.append(
        f"| **mean over {overall['scored_sequences']} sequences** | {overall['frames']} | "
        f"{_cell(overall['auc'], 3)} | {_cell(overall['precision'], 3)} | "
        f"{_cell(overall['mean_iou'], 3)} | {_cell(overall['fps'], 1)} |"
    )
    pooled = overall["pooled"]
    if pooled is not None:
        rows.append(
            f"| all frames pooled | {pooled['evaluated_frames']} | {_cell(pooled['auc'], 3)} | "
            f"{_cell(pooled['precision'], 3)} | {_cell(pooled['mean_iou'], 3)} | |"
        )
    notes = (
        "\nAUC: success AUC over 21 IoU thresholds 0, 0.05, …, 1 (OTB). precision@20px: fraction of "
        "frames with centre error ≤ 20 px. The mean row averages the sequences with ground truth "
        "(OTB's overall score); the pooled row counts their frames together. fps: tracker time "
        "after the first frame (which includes compilation); overall: all those frames over all "
        "that time.\n"
    )
    return "\n".join(rows) + "\n" + notes


def run_folder(
    tracker: Tracker,
    sequences: Iterable[Sequence],
    out_dir: str | os.PathLike,
    *,
    info: Mapping,
    max_frames: int | None = None,
    save_video: bool = False,
    save_strip: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = tqdm.write,
) -> FolderResult:
    """Track every sequence, writing per-sequence files and a summary into ``out_dir``.

    All sequences are checked before anything is tracked. On Ctrl-C the sequence in progress is
    written as interrupted, the summary covers the finished ones and ``interrupted`` is True.

    Args:
      tracker, info, max_frames, save_video, save_strip: as for :func:`run_sequence`.
      sequences: the sequences (e.g. a :class:`~siamfc_jax.data.datasets.SequenceFolder`).
      out_dir: output folder.
      progress: tqdm bars over sequences and frames; None shows them when stderr is a terminal.
      log: receives one line per finished sequence (:func:`format_result`).

    Raises:
      DataError: a sequence cannot be tracked, or is named like the summary files.
    """
    sequences = list(sequences)
    for sequence in sequences:
        if sequence.name == SUMMARY_NAME:
            raise DataError(
                f"{sequence.source}: a sequence named {SUMMARY_NAME!r} would overwrite the summary"
            )
        validate_for_tracking(sequence)
    out_dir = Path(out_dir)
    results: list[SequenceResult] = []
    enabled = _progress_enabled(progress)
    with tqdm(total=len(sequences), desc="sequences", unit="seq", disable=not enabled) as bar:
        for sequence in sequences:
            result = run_sequence(
                tracker,
                sequence,
                out_dir,
                info=info,
                max_frames=max_frames,
                save_video=save_video,
                save_strip=save_strip,
                progress=enabled,
            )
            results.append(result)
            log(format_result(result))
            bar.update()
            if result.interrupted:
                break
    interrupted = bool(results) and results[-1].interrupted
    overall = summarize(results)
    outputs = {
        "json": out_dir / f"{SUMMARY_NAME}.json",
        "table": out_dir / f"{SUMMARY_NAME}.md",
    }
    scored = {result.name: result.success_curve for result in results if result.scores is not None}
    if scored:
        outputs["success_plot"] = out_dir / f"{SUMMARY_NAME}_success.png"
        figure = success_figure(scored, mean_label=f"mean of {len(scored)} sequences")
        save_figure(figure, outputs["success_plot"])
    write_text_atomic(outputs["table"], format_table(results, overall))
    summary = {
        "overall": overall,
        "interrupted": interrupted,
        "total_sequences": len(sequences),
        "sequences": {
            result.name: {
                "frames": result.num_frames,
                "frames_tracked": result.frames_tracked,
                "interrupted": result.interrupted,
                "fps": _optional(result.fps),
                **(result.scores or {}),
            }
            for result in results
        },
        **info,
        "outputs": {kind: path.name for kind, path in outputs.items()},
    }
    write_text_atomic(outputs["json"], json.dumps(summary, indent=1) + "\n")
    return FolderResult(tuple(results), overall, interrupted, outputs)
