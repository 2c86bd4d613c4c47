"""Tracking sequences and folders of sequences: boxes, speed, scores and output files (host).

Every run goes through the one host loop, :func:`siamfc_jax.tracker.loop.track_jobs`: a sequence
is a job (its frames, decoded ahead; its initial box or boxes; the tracker's hyper-parameters).
:func:`track_sequence` tracks one sequence (or its first ``max_frames`` frames) and scores it
against the ground truth (:mod:`siamfc_jax.evaluation.metrics`: success AUC over 21 IoU
thresholds, precision at 20 px, mean IoU); :func:`run_sequence` also writes its files,
:func:`run_targets` tracks several targets of one sequence, and :func:`run_folder` tracks every
sequence of a folder, one at a time or ``slots`` together, then writes a summary.
:func:`track_sequences` is the scored loop the tuning tools share.

Files in the output folder, per sequence ``<name>``:

- ``<name>.txt``: one box per frame, ``x,y,w,h`` with 4 decimals, 1-indexed pixels; line 1 is the
  initial box (siamfc-pytorch's and the OTB toolkit's convention);
- ``<name>.json``: frames, speed, scores, the success curve, device, weights and tracker config;
  for a folder also each frame's confidence (``response_peak`` before the cosine window,
  ``windowed_peak`` after it; frame 1, the initial box, has none: null);
- ``<name>_success.png``: the success plot (with ground truth);
- ``<name>.mp4``: annotated video (``save_video``); ``<name>_strip.png``: five annotated frames
  side by side (``save_strip``);
- ``<name>_scores.txt`` and ``<name>_scores.png`` (``save_scores``): the confidence per frame as
  text and plotted with the IoU against the ground truth, to see where a target was lost.

Several targets in one sequence (:func:`run_targets`) write ``<name>_target<k>.txt`` and
``<name>_target<k>.json`` per target (k from 1) and one ``<name>.mp4`` / ``<name>_strip.png``
showing them all. For a folder, also ``summary.json``, ``summary.md`` (a per-sequence table) and
``summary_success.png``; with a ``protocol``
(:func:`~siamfc_jax.evaluation.metrics.protocol_scores`) its figures in ``summary.json``
(``"benchmark"``) and ``summary.md``, and for ``got10k`` the submission layout of the GOT-10k
server: ``got10k/<seq>/<seq>_001.txt`` (boxes) and ``got10k/<seq>/<seq>_time.txt`` (seconds per
frame). Overall scores are means over the sequences with ground truth (as the OTB toolkit averages
its per-sequence success curves); ``pooled`` scores count all their evaluated frames together.

Never a mix of two runs: :func:`~siamfc_jax.evaluation.outputs.claim_outputs` checks, before
anything is tracked, that the output folder can be written and holds no file a run of these
sequences could write. Damage that does not stop a run (a truncated JPEG that still decodes, a
truncated video, frames without ground truth) is printed as a ``warning:`` line and kept in the
JSON's ``warnings``; frames that change size mid-sequence stop it.

Speed: a frame's time is the wall time between the tracker's successive results for that sequence
(:mod:`siamfc_jax.tracker.loop`; the programs are compiled in an untimed warm-up), and ``fps``
counts every frame after the first. Scores are computed from the boxes rounded to the 4 decimals
written to ``<name>.txt``, so the files reproduce the reported numbers exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from siamfc_jax.evaluation.distributed import Share
from siamfc_jax.evaluation.metrics import SUCCESS_THRESHOLDS, protocol_scores
from siamfc_jax.evaluation.outputs import (
    GOT10K_DIR,
    FileOptions,
    SequencePictures,
    target_name,
    write_sequence_files,
)
from siamfc_jax.evaluation.reports import (
    format_benchmark,
    format_boxes,
    format_result,
    format_table,
    protocol_run,
    sequence_record,
    summary_record,
)
from siamfc_jax.evaluation.scoring import (
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
from siamfc_jax.tracker import BatchTracker, Tracker, TrackerSpec
from siamfc_jax.tracker.device import HyperParams, hyper_params
from siamfc_jax.tracker.loop import FrameResult, Job, JobResult, track_jobs
from siamfc_jax.visualize import save_figure, success_figure

Status = Callable[[str], None]
Warn = Callable[[str], None]


def progress_enabled(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def print_warning(message: str) -> None:
    """Show a warning as one ``warning: …`` line on stderr, between progress bars."""
    tqdm.write("warning: " + " ".join(message.split()), file=sys.stderr)


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceJob:
    """One sequence to track with one set of traced hyper-parameters (:func:`hyper_params`)."""

    sequence: Sequence
    hyper: HyperParams


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceRun:
    """A tracked sequence: its index in the jobs given, the result, and (T, 2) float64 confidence
    (``response_peak``, ``windowed_peak``; row 0, the initial box, is NaN)."""

    index: int
    result: SequenceResult
    confidence: np.ndarray


def sequence_job(
    sequence: Sequence,
    hyper: HyperParams,
    boxes: np.ndarray,
    total: int,
    on_frame: Callable[[FrameResult], None] | None = None,
    warn: Warn | None = None,
) -> Job:
    """The loop's :class:`~siamfc_jax.tracker.loop.Job` for the first ``total`` frames of
    ``sequence`` from ``boxes`` (N, 4); ``warn`` gets the decoding warnings."""
    return Job(
        frames=lambda: sequence.iter_frames(on_warning=warn),
        boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
        hyper=hyper,
        frame_size=sequence.frame_size,
        num_frames=total,
        on_frame=on_frame,
        label=sequence.frame_label,
    )


def _scored(sequence: Sequence, done: JobResult, total: int, warnings: Iterable[str] = ()) -> SequenceResult:
    """The :class:`SequenceResult` of a one-target job, scored unless interrupted."""
    boxes = done.boxes[:, 0]
    scores = ious = errors = None
    if not done.interrupted:
        scores, ious, errors = score(sequence, boxes)
    return SequenceResult(
        name=sequence.name,
        num_frames=total,
        boxes=boxes,
        times=done.times,
        scores=scores,
        ious=ious,
        center_errors=errors,
        interrupted=done.interrupted,
        warnings=tuple(warnings),
    )


def track_sequences(
    variables: dict,
    spec: TrackerSpec,
    jobs: list[SequenceJob],
    *,
    slots: int,
    max_frames: int | None = None,
    progress: bool = False,
    warm_up: bool = True,
) -> Iterator[SequenceRun]:
    """Track ``jobs`` (validated sequences) in ``slots`` slots; yields each scored result as its
    sequence ends (not in order). Ctrl-C raises KeyboardInterrupt after the finished sequences;
    those in flight are dropped.

    Args:
      variables: device-resident ``{"params", "batch_stats"}``.
      spec: the tracking programs' :class:`~siamfc_jax.tracker.TrackerSpec` (the traced
        hyper-parameters come from each job).
      slots: how many sequences move together; max_frames: track only their first frames.
      progress: a tqdm bar over the target-frames; warm_up: as for
        :func:`~siamfc_jax.tracker.loop.track_jobs`.
    """
    totals = [tracked_length(job.sequence, max_frames) for job in jobs]
    bar = tqdm(total=sum(totals), unit="frame", desc="target-frames", disable=not progress, leave=False)
    loop_jobs = [
        sequence_job(job.sequence, job.hyper, job.sequence.init_box, total, lambda _: bar.update())
        for job, total in zip(jobs, totals, strict=True)
    ]
    interrupted = False
    with bar:
        for done in track_jobs(variables, spec, loop_jobs, slots=slots, warm_up=warm_up):
            if done.interrupted:
                interrupted = True
                continue
            sequence = jobs[done.index].sequence
            yield SequenceRun(done.index, _scored(sequence, done, totals[done.index]), done.confidence[:, 0])
    if interrupted:
        raise KeyboardInterrupt


class _FrameWatch:
    """What each tracked frame of one sequence feeds: the time so far, status lines, a progress
    bar and the caller's ``on_frame(index, frame, boxes, fps)`` (boxes (4,) for one target)."""

    def __init__(
        self, sequence: Sequence, total: int, on_frames: list[OnFrame], progress: bool | None,
        status: Status | None, one_target: bool,
    ) -> None:
        self.sequence, self.total, self.on_frames, self.status = sequence, total, on_frames, status
        self.one_target = one_target
        self.times = np.zeros(total)
        self.bar = tqdm(
            total=total, desc=sequence.name, unit="frame", leave=False, disable=not progress_enabled(progress)
        )

    def __call__(self, result: FrameResult) -> None:
        self.times[result.index] = result.seconds
        count = result.index + 1
        fps = running_fps(self.times, count)
        if self.status is not None:
            speed = "" if fps is None else f", {fps:.1f} fps"
            self.status(f"{self.sequence.name}: tracked frame {count} of {self.total}{speed}")
        boxes = result.boxes[0] if self.one_target else result.boxes
        for on_frame in self.on_frames:
            on_frame(result.index, result.frame, boxes, fps)
        self.bar.update()


def _track_one(
    tracker: Tracker | BatchTracker,
    sequence: Sequence,
    boxes: np.ndarray,
    total: int,
    watch: _FrameWatch,
    warn: Warn,
) -> JobResult:
    """Track ``boxes`` (N, 4) through the first ``total`` frames of ``sequence`` (one job)."""
    if watch.status is not None:
        width, height = sequence.frame_size
        watch.status(f"{sequence.name}: compiling the tracker for {width}x{height} frames")
    job = sequence_job(sequence, hyper_params(tracker.config), boxes, total, watch, warn)
    try:
        (done,) = track_jobs(tracker.variables, tracker.spec, [job])
    finally:
        watch.bar.close()
    return done


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
      tracker: its weights and config are used (its own state is untouched).
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
    return _tracked_sequence(tracker, sequence, max_frames, [] if on_frame is None else [on_frame],
                             progress, warn, status)[0]


def _tracked_sequence(
    tracker: Tracker, sequence: Sequence, max_frames: int | None, on_frames: list[OnFrame],
    progress: bool | None, warn: Warn, status: Status | None,
) -> tuple[SequenceResult, np.ndarray]:
    """:func:`track_sequence`'s result and the (T, 2) confidence."""
    warnings = list(validate_for_tracking(sequence, max_frames=max_frames))
    for message in warnings:
        warn(message)
    total = tracked_length(sequence, max_frames)
    watch = _FrameWatch(sequence, total, on_frames, progress, status, one_target=True)
    done = _track_one(
        tracker, sequence, sequence.init_box[None], total, watch,
        lambda message: (warnings.append(message), warn(message)),
    )
    return _scored(sequence, done, total, warnings), done.confidence[:, 0]


def run_sequence(
    tracker: Tracker,
    sequence: Sequence,
    out_dir: str | os.PathLike,
    *,
    info: Mapping,
    max_frames: int | None = None,
    save_video: bool = False,
    save_strip: bool = False,
    files: FileOptions | None = None,
    progress: bool | None = None,
    warn: Warn = print_warning,
    status: Status | None = None,
) -> SequenceResult:
    """Track one sequence and write its files into ``out_dir`` (see the module docstring).

    An interrupted run still writes what it tracked (``<name>.txt``, ``<name>.json`` with
    ``"interrupted": true``, and the partial video). A run that fails (an undecodable frame)
    writes nothing; a partial video is removed.

    Args:
      tracker, sequence, max_frames, progress, warn, status: as for :func:`track_sequence`.
      out_dir: output folder (created if needed; see
        :func:`~siamfc_jax.evaluation.outputs.claim_outputs` for the checks to make before).
      info: run description for the JSON (:func:`~siamfc_jax.evaluation.reports.run_info`).
      save_video: write ``<name>.mp4``, each frame annotated with the tracked box (red), the
        ground truth (green), the frame number (1-based) and the speed so far.
      save_strip: write ``<name>_strip.png``, 5 annotated frames from first to last.
      files: the optional score and submission files (default: none).

    Raises:
      DataError: the sequence cannot be tracked or a frame cannot be decoded.
      OSError: an output file cannot be written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = files or FileOptions()
    total = tracked_length(sequence, max_frames)
    with contextlib.ExitStack() as stack:
        pictures = SequencePictures(stack, sequence, out_dir, total, save_video, save_strip)
        result, confidence = _tracked_sequence(
            tracker, sequence, max_frames, [pictures.on_frame], progress, warn, status
        )
    pictures.write_strip(result.boxes, out_dir)
    return write_sequence_files(result, confidence, sequence, out_dir, info, files, pictures.outputs)


def run_targets(
    tracker: BatchTracker | Tracker,
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
      tracker: its weights and config are used.
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
        pictures = SequencePictures(stack, sequence, out_dir, total, save_video, save_strip)
        watch = _FrameWatch(sequence, total, [pictures.on_frame], progress, status, one_target=False)
        done = _track_one(
            tracker, sequence, boxes, total, watch, lambda message: (warnings.append(message), warn(message))
        )
    pictures.write_strip(done.boxes, out_dir)
    results = []
    for index, box in enumerate(boxes):
        name = target_name(sequence.name, index)
        outputs = {**pictures.outputs, "boxes": out_dir / f"{name}.txt", "json": out_dir / f"{name}.json"}
        result = SequenceResult(
            name=name,
            num_frames=total,
            boxes=done.boxes[:, index],
            times=done.times,
            interrupted=done.interrupted,
            outputs=outputs,
            warnings=tuple(warnings),
        )
        write_text_atomic(outputs["boxes"], format_boxes(result.boxes))
        record = sequence_record(result, sequence, info, init_box=box, target=index + 1)
        write_text_atomic(outputs["json"], json.dumps(record, indent=1) + "\n")
        results.append(result)
    return results


def _check_folder(sequences: list[Sequence], max_frames: int | None) -> None:
    """Check a folder's sequences before anything is tracked (their warnings come when tracking)."""
    for sequence in sequences:
        if sequence.name in (SUMMARY_NAME, GOT10K_DIR):
            message = f"a sequence named {sequence.name!r} would overwrite the summary"
            raise DataError(f"{sequence.source}: {message}")
        validate_for_tracking(sequence, max_frames=max_frames)


def run_folder(
    tracker: Tracker,
    sequences: Iterable[Sequence],
    out_dir: str | os.PathLike,
    *,
    info: Mapping,
    slots: int = 1,
    max_frames: int | None = None,
    save_video: bool = False,
    save_strip: bool = False,
    files: FileOptions | None = None,
    protocol: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = tqdm.write,
    warn: Warn = print_warning,
    status: Status | None = None,
    share: Share | None = None,
    kept: Mapping[int, SequenceResult] | None = None,
) -> FolderResult:
    """Track every sequence, writing per-sequence files and a summary into ``out_dir``.

    All sequences are checked before anything is tracked. With ``slots`` 1 they are tracked one
    at a time, and on Ctrl-C the sequence in progress is written as interrupted; with more, that
    many move together (no video or strip) and on Ctrl-C the sequences in flight are dropped.
    Either way the summary covers the finished ones and ``interrupted`` is True.

    Args:
      tracker, out_dir, info, max_frames, save_video, save_strip, files: as for :func:`run_sequence`.
      sequences: the sequences (e.g. a :class:`~siamfc_jax.sequences.datasets.SequenceFolder`).
      slots: how many sequences move together.
      protocol: also report this benchmark's figures (:data:`~siamfc_jax.evaluation.metrics.PROTOCOLS`).
      progress: tqdm bars; None shows them when stderr is a terminal.
      log: receives one line per finished sequence (:func:`format_result`).
      warn, status: as for :func:`track_sequence`.
      share: track only this process's share and let process 0 write the merged summary.
      kept: results an earlier run finished (index -> result): not tracked again, summarized.

    Raises:
      DataError: a sequence cannot be tracked, or is named like the summary files.
      ValueError: video or strip asked with ``slots`` above 1.
    """
    sequences = list(sequences)
    if slots > 1 and (save_video or save_strip):
        raise ValueError("save_video and save_strip need slots 1")
    _check_folder(sequences, max_frames)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = files or FileOptions()
    files = dataclasses.replace(files, got10k=files.got10k or protocol == "got10k")
    finished, interrupted, enabled = dict(kept or {}), False, progress_enabled(progress)
    chosen = range(len(sequences)) if share is None else share.indices
    todo = [index for index in chosen if index not in finished]
    if slots > 1:
        info = {**info, "batch": min(slots, len(sequences))}
        jobs = [SequenceJob(sequences[index], hyper_params(tracker.config)) for index in todo]
        try:
            for done in track_sequences(
                tracker.variables, tracker.spec, jobs, slots=slots, max_frames=max_frames, progress=enabled
            ):
                sequence = sequences[index := todo[done.index]]
                result = write_sequence_files(done.result, done.confidence, sequence, out_dir, info, files)
                finished[index] = result
                log(format_result(result))
        except KeyboardInterrupt:
            interrupted = True
    else:
        with tqdm(total=len(todo), desc="sequences", unit="seq", disable=not enabled) as bar:
            for index in todo:
                finished[index] = run_sequence(
                    tracker, sequences[index], out_dir, info=info, max_frames=max_frames, files=files,
                    save_video=save_video, save_strip=save_strip, progress=enabled, warn=warn, status=status,
                )
                log(format_result(finished[index]))
                bar.update()
                if finished[index].interrupted:
                    interrupted = True
                    break
    return _write_summary(sequences, finished, out_dir, info, protocol, interrupted, log, share)


def _write_summary(
    sequences: list[Sequence],
    finished: dict[int, SequenceResult],
    out_dir: Path,
    info: Mapping,
    protocol: str | None,
    interrupted: bool,
    log: Callable[[str], None],
    share: Share | None = None,
) -> FolderResult:
    """Write ``summary.json``, ``summary.md`` and ``summary_success.png`` of the finished sequences."""
    if share is not None:
        return share.finish(finished, interrupted, lambda merged, stopped: _write_summary(
            sequences, merged, out_dir, info, protocol, stopped, log))
    results = [finished[index] for index in sorted(finished)]
    overall = summarize(results)
    outputs = {"json": out_dir / f"{SUMMARY_NAME}.json", "table": out_dir / f"{SUMMARY_NAME}.md"}
    scored = {result.name: result.success_curve for result in results if result.scores is not None}
    if scored:
        outputs["success_plot"] = out_dir / f"{SUMMARY_NAME}_success.png"
        figure = success_figure(scored, SUCCESS_THRESHOLDS, mean_label=f"mean of {len(scored)} sequences")
        save_figure(figure, outputs["success_plot"])
    table = format_table(results, overall)
    benchmark = None
    if protocol is not None:
        runs = [
            protocol_run(sequences[index], finished[index])
            for index in sorted(finished)
            if sequences[index].boxes is not None and not finished[index].interrupted
        ]
        try:
            benchmark = {"protocol": protocol, **protocol_scores(protocol, runs)}
        except ValueError:  # no frame with ground truth (e.g. the GOT-10k test split)
            benchmark = {"protocol": protocol, "sequences": 0, "frames": 0}
        table += "\n" + format_benchmark(benchmark) + "\n"
        log(format_benchmark(benchmark))
    write_text_atomic(outputs["table"], table)
    summary = summary_record(
        results, overall, interrupted=interrupted, total_sequences=len(sequences), info=info,
        outputs=outputs, benchmark=benchmark,
    )
    write_text_atomic(outputs["json"], json.dumps(summary, indent=1) + "\n")
    return FolderResult(tuple(results), overall, interrupted, outputs)
