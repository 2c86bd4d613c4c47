"""Tracking whole sequences and folders of sequences: boxes, speed, scores and output files.

Host code. :func:`track_sequence` runs a :class:`~siamfc_jax.tracker.Tracker` over one sequence
(or its first ``max_frames`` frames) and scores it against the ground truth
(:mod:`siamfc_jax.evaluation.metrics`: success AUC over 21 IoU thresholds, precision at 20 px, mean IoU).
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
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from siamfc_jax.evaluation.reports import (
    finite_or_none,
    format_boxes,
    format_result,
    format_table,
    sequence_record,
    strip_indices,
    video_fps,
)
from siamfc_jax.evaluation.scoring import (
    BOX_DECIMALS,
    SUMMARY_NAME,
    FolderResult,
    OnFrame,
    SequenceResult,
    running_fps,
    score,
    summarize,
    tracked_length,
)
from siamfc_jax.evaluation.validation import validate_for_tracking
from siamfc_jax.io import write_text_atomic
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.tracker import Tracker
from siamfc_jax.visualize import (
    AnnotatedVideoWriter,
    save_figure,
    success_figure,
    tracking_strip,
    write_image,
)


def progress_enabled(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


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
      sequence: a sequence that passed :func:`~siamfc_jax.evaluation.validation.validate_for_tracking`.
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
        total=total, desc=sequence.name, unit="frame", leave=False, disable=not progress_enabled(progress)
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
                on_frame(index, frame, boxes[index], running_fps(times, count))
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
                out_dir / f"{sequence.name}.mp4", sequence.frame_size, video_fps(sequence)
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
      sequences: the sequences (e.g. a :class:`~siamfc_jax.sequences.datasets.SequenceFolder`).
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
    enabled = progress_enabled(progress)
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
                "fps": finite_or_none(result.fps),
                **(result.scores or {}),
            }
            for result in results
        },
        **info,
        "outputs": {kind: path.name for kind, path in outputs.items()},
    }
    write_text_atomic(outputs["json"], json.dumps(summary, indent=1) + "\n")
    return FolderResult(tuple(results), overall, interrupted, outputs)
