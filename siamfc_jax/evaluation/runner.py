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

Several targets in one sequence (:func:`run_targets`, through a
:class:`~siamfc_jax.tracker.BatchTracker`) write ``<name>_target<k>.txt`` and
``<name>_target<k>.json`` per target (k from 1) and one ``<name>.mp4`` / ``<name>_strip.png``
showing them all.

For a folder, also ``summary.json``, ``summary.md`` (a per-sequence table) and
``summary_success.png``. Overall scores are means over the sequences with ground truth (as the OTB
toolkit averages its per-sequence success curves); ``pooled`` scores count all their evaluated
frames together, so long sequences weigh more.

Never a mix of two runs: :func:`~siamfc_jax.evaluation.outputs.claim_outputs` checks, before
anything is tracked, that the output folder can be written and holds no file a run of these
sequences could write, and with ``overwrite`` removes those files first. Damage that does not stop a
run (a truncated JPEG that still decodes, a truncated video, frames without ground truth) is printed
as a ``warning:`` line and kept in the JSON's ``warnings``; frames that change size mid-sequence
stop it.

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
import functools
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from siamfc_jax.evaluation.metrics import SUCCESS_THRESHOLDS
from siamfc_jax.evaluation.outputs import target_name
from siamfc_jax.evaluation.reports import (
    format_boxes,
    format_result,
    format_table,
    sequence_record,
    strip_indices,
    summary_record,
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
from siamfc_jax.evaluation.validation import check_target_boxes, validate_for_tracking
from siamfc_jax.files import write_text_atomic
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.tracker import BatchTracker, Tracker
from siamfc_jax.visualize import (
    AnnotatedVideoWriter,
    save_figure,
    success_figure,
    tracking_strip,
    write_image,
)

Status = Callable[[str], None]
Warn = Callable[[str], None]
def progress_enabled(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def print_warning(message: str) -> None:
    """Show a warning as one ``warning: …`` line on stderr, between progress bars."""
    tqdm.write("warning: " + " ".join(message.split()), file=sys.stderr)


def _frames_checked(sequence: Sequence, frames: Iterable[np.ndarray]) -> Iterable[tuple[int, np.ndarray]]:
    """``enumerate(frames)``, refusing a frame whose size differs from the first frame's."""
    first = None
    for index, frame in enumerate(frames):
        if first is None:
            first = frame.shape
        elif frame.shape != first:
            raise DataError(
                f"{sequence.frame_label(index)}: the frame is {frame.shape[1]}x{frame.shape[0]}, "
                f"frame 1 is {first[1]}x{first[0]}; a sequence must keep one frame size"
            )
        yield index, frame


def _start(tracker: Tracker | BatchTracker, frame: np.ndarray, box: np.ndarray) -> None:
    """Initialise ``tracker`` on the first frame, with a warm-up update (see the module docstring);
    ``box`` is (4,) for a :class:`Tracker`, (N, 4) for a :class:`BatchTracker`."""
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
    warn: Warn = print_warning,
    status: Status | None = None,
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
      warn: receives each warning as it happens (default: a ``warning:`` line on stderr); all
        of them, and those of :func:`validate_for_tracking`, are also in the result.
      status: receives a line saying what is being done (compiling, frame i of N), e.g. for a
        :class:`~siamfc_jax.cli.Heartbeat`.

    Raises:
      DataError: a frame cannot be decoded, or its size differs from the first frame's (the
        message names the file and the 1-indexed frame number).
    """
    warnings = list(validate_for_tracking(sequence, max_frames=max_frames))
    for message in warnings:
        warn(message)
    boxes, times, interrupted = _track_frames(
        sequence,
        sequence.init_box[None],
        lambda frame, first: _start(tracker, frame, first[0]),
        lambda frame: tracker.update(frame)[None],
        max_frames=max_frames,
        on_frame=None if on_frame is None else lambda i, frame, box, fps: on_frame(i, frame, box[0], fps),
        progress=progress,
        warn=lambda message: (warnings.append(message), warn(message)),
        status=status,
    )
    boxes = boxes[:, 0]
    scores = ious = errors = None
    if not interrupted:
        scores, ious, errors = score(sequence, boxes)
    return SequenceResult(
        name=sequence.name,
        num_frames=tracked_length(sequence, max_frames),
        boxes=boxes,
        times=times,
        scores=scores,
        ious=ious,
        center_errors=errors,
        interrupted=interrupted,
        warnings=tuple(warnings),
    )


def _track_frames(
    sequence: Sequence,
    first_boxes: np.ndarray,
    start: Callable[[np.ndarray, np.ndarray], None],
    update: Callable[[np.ndarray], np.ndarray],
    *,
    max_frames: int | None,
    on_frame: OnFrame | None,
    progress: bool | None,
    warn: Warn,
    status: Status | None,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The frame loop of one or several targets: ``start(frame, first_boxes)`` on the first frame,
    ``update(frame) -> (N, 4)`` on the others.

    Returns ``(boxes, times, interrupted)``: (T, N, 4) boxes rounded to the box files' decimals
    for the T frames tracked, (T,) seconds per frame, and whether Ctrl-C stopped it.
    """
    total = tracked_length(sequence, max_frames)
    boxes = np.zeros((total, *first_boxes.shape))
    times = np.zeros(total)
    count = 0
    interrupted = False
    say = status or (lambda line: None)
    bar = tqdm(
        total=total, desc=sequence.name, unit="frame", leave=False, disable=not progress_enabled(progress)
    )
    frames = sequence.iter_frames(on_warning=warn)
    try:
        for index, frame in _frames_checked(sequence, itertools.islice(frames, total)):
            started = time.perf_counter()
            if index == 0:
                say(f"{sequence.name}: compiling the tracker for {frame.shape[1]}x{frame.shape[0]} frames")
                start(frame, first_boxes)
                box = np.asarray(first_boxes, np.float64)
            else:
                box = update(frame)
            times[index] = time.perf_counter() - started
            boxes[index] = np.round(box, BOX_DECIMALS)
            count = index + 1
            fps = running_fps(times, count)
            speed = "" if fps is None else f", {fps:.1f} fps"
            say(f"{sequence.name}: tracked frame {count} of {total}{speed}")
            if on_frame is not None:
                on_frame(index, frame, boxes[index], fps)
            bar.update()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        frames.close()  # releases a video capture when fewer frames than the video's are tracked
        bar.close()
    return boxes[:count], times[:count], interrupted


class _Pictures:
    """The annotated video and strip of a run (either optional), fed frame by frame.

    Boxes are (4,) for one target or (N, 4) for several; the ground truth (green) is drawn where
    the sequence has it for the frame.
    """

    def __init__(
        self,
        stack: contextlib.ExitStack,
        sequence: Sequence,
        out_dir: Path,
        total: int,
        save_video: bool,
        save_strip: bool,
    ) -> None:
        self.sequence, self.total = sequence, total
        self.wanted = set(strip_indices(total)) if save_strip else set()
        self.strip: dict[int, np.ndarray] = {}
        self.outputs: dict[str, Path] = {}
        self.video = None
        if save_video:
            writer = AnnotatedVideoWriter(
                out_dir / f"{sequence.name}.mp4", sequence.frame_size, video_fps(sequence)
            )
            self.video = stack.enter_context(writer)
            self.outputs["video"] = writer.path

    def truth(self, index: int) -> np.ndarray | None:
        boxes = self.sequence.boxes
        return None if boxes is None or index >= len(boxes) else boxes[index]

    def on_frame(self, index: int, frame: np.ndarray, box: np.ndarray, fps: float | None) -> None:
        if index in self.wanted:
            self.strip[index] = frame
        if self.video is not None:
            speed = "" if fps is None else f"  {fps:.1f} fps"
            label = f"{self.sequence.name}  frame {index + 1}/{self.total}{speed}"
            self.video.write(frame, box, self.truth(index), (label,))

    def write_strip(self, boxes: np.ndarray, out_dir: Path) -> None:
        """Write ``<name>_strip.png`` from the tracked ``boxes`` (T, 4) or (T, N, 4)."""
        if not self.strip:
            return
        indices = sorted(self.strip)
        image = tracking_strip(
            [self.strip[index] for index in indices],
            [boxes[index] for index in indices],
            [self.truth(index) for index in indices],
            [f"#{index + 1}" for index in indices],
        )
        path = out_dir / f"{self.sequence.name}_strip.png"
        write_image(path, image)
        self.outputs["strip"] = path


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
    warn: Warn = print_warning,
    status: Status | None = None,
) -> SequenceResult:
    """Track one sequence and write its files into ``out_dir`` (see the module docstring).

    An interrupted run still writes what it tracked (``<name>.txt``, ``<name>.json`` with
    ``"interrupted": true``, and the partial video). A run that fails (an undecodable frame)
    writes nothing; a partial video is removed.

    Args:
      tracker, sequence, max_frames, progress, warn, status: as for :func:`track_sequence`; the
        sequence is validated there.
      out_dir: output folder (created if needed; see
        :func:`~siamfc_jax.evaluation.outputs.claim_outputs` for the checks to make before).
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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = tracked_length(sequence, max_frames)
    with contextlib.ExitStack() as stack:
        pictures = _Pictures(stack, sequence, out_dir, total, save_video, save_strip)
        result = track_sequence(
            tracker,
            sequence,
            max_frames=max_frames,
            on_frame=pictures.on_frame,
            progress=progress,
            warn=warn,
            status=status,
        )
    outputs = pictures.outputs
    outputs["boxes"] = out_dir / f"{sequence.name}.txt"
    write_text_atomic(outputs["boxes"], format_boxes(result.boxes))
    if result.scores is not None:
        path = out_dir / f"{sequence.name}_success.png"
        save_figure(success_figure({sequence.name: result.success_curve}, SUCCESS_THRESHOLDS), path)
        outputs["success_plot"] = path
    pictures.write_strip(result.boxes, out_dir)
    outputs["json"] = out_dir / f"{sequence.name}.json"
    result = dataclasses.replace(result, outputs=outputs)
    record = sequence_record(result, sequence, info)
    write_text_atomic(outputs["json"], json.dumps(record, indent=1) + "\n")
    return result


def run_targets(
    tracker: BatchTracker,
    sequence: Sequence,
    boxes: np.ndarray,
    out_dir: str | os.PathLike,
    *,
    info: Mapping,
    max_frames: int | None = None,
    save_video: bool = False,
    save_strip: bool = False,
    progress: bool | None = None,
    warn: Warn = print_warning,
    status: Status | None = None,
) -> list[SequenceResult]:
    """Track several targets of one sequence together and write one box file and one JSON per
    target (``<name>_target<k>``), and one video / strip showing all targets.

    All targets share each frame's device call, so ``fps`` and the times are those of the whole
    batch. A ground truth describes one object, so targets are not scored.

    Args:
      tracker: the batch tracker.
      boxes: (N, 4) initial boxes in the first frame, 1-indexed ``[x, y, w, h]``; each is checked
        as :func:`validate_for_tracking` checks an initial box.
      sequence, out_dir, info, max_frames, save_video, save_strip, progress, warn, status: as for
        :func:`run_sequence`.

    Returns:
      One :class:`SequenceResult` per target (named ``<name>_target<k>``), in the order of ``boxes``.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    check_target_boxes(sequence, boxes)
    warnings: list[str] = []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = tracked_length(sequence, max_frames)
    with contextlib.ExitStack() as stack:
        pictures = _Pictures(stack, sequence, out_dir, total, save_video, save_strip)

        tracked, times, interrupted = _track_frames(
            sequence,
            boxes,
            functools.partial(_start, tracker),
            tracker.update,
            max_frames=max_frames,
            on_frame=pictures.on_frame,
            progress=progress,
            warn=lambda message: (warnings.append(message), warn(message)),
            status=status,
        )
    pictures.write_strip(tracked, out_dir)
    results = []
    for index, box in enumerate(boxes):
        name = target_name(sequence.name, index)
        outputs = {**pictures.outputs, "boxes": out_dir / f"{name}.txt", "json": out_dir / f"{name}.json"}
        result = SequenceResult(
            name=name,
            num_frames=total,
            boxes=tracked[:, index],
            times=times,
            interrupted=interrupted,
            outputs=outputs,
            warnings=tuple(warnings),
        )
        write_text_atomic(outputs["boxes"], format_boxes(result.boxes))
        record = sequence_record(result, sequence, info, init_box=box, target=index + 1)
        write_text_atomic(outputs["json"], json.dumps(record, indent=1) + "\n")
        results.append(result)
    return results


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
    warn: Warn = print_warning,
    status: Status | None = None,
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
      warn, status: as for :func:`track_sequence`.

    Raises:
      DataError: a sequence cannot be tracked, or is named like the summary files.
    """
    sequences = list(sequences)
    for sequence in sequences:
        if sequence.name == SUMMARY_NAME:
            raise DataError(
                f"{sequence.source}: a sequence named {SUMMARY_NAME!r} would overwrite the summary"
            )
        validate_for_tracking(sequence, max_frames=max_frames)  # its warnings come when tracking
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
                warn=warn,
                status=status,
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
        figure = success_figure(scored, SUCCESS_THRESHOLDS, mean_label=f"mean of {len(scored)} sequences")
        save_figure(figure, outputs["success_plot"])
    write_text_atomic(outputs["table"], format_table(results, overall))
    summary = summary_record(
        results,
        overall,
        interrupted=interrupted,
        total_sequences=len(sequences),
        info=info,
        outputs=outputs,
    )
    write_text_atomic(outputs["json"], json.dumps(summary, indent=1) + "\n")
    return FolderResult(tuple(results), overall, interrupted, outputs)
