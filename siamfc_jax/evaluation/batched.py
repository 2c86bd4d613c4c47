"""Whole benchmarks in one batched run: K sequences stepped together through one compiled step (host).

:func:`track_jobs` tracks *jobs* (a sequence, with its own hyper-parameters) in ``slots`` slots: a
frame of every active slot goes to the device together and one call of
:func:`~siamfc_jax.tracker.device.step_slots` moves all their targets. When a sequence ends its
slot is free and the next job starts in it (:func:`~siamfc_jax.tracker.device.start_slot`), so the
slots stay busy until the last jobs; a slot with nothing left to do is masked (stepped on its last
frame, its result ignored).

Frames of different sizes share one padded buffer. Each slot's frame sits in the top-left corner
and the rest of its buffer holds the target's fill colour (the first frame's mean colour), which is
the colour the crop gives pixels outside the frame: every crop, and so every box, is the one
tracking the unpadded frame gives (``tests/test_batched.py`` checks the IoU with one-at-a-time
tracking).

Compile buckets: one per run. The padded size is the largest frame height and width among the jobs,
each rounded up to a multiple of :data:`PAD_MULTIPLE` (64) pixels, so that folders of similar sizes
share compiled programs (and JAX's persistent cache); the number of slots is
``min(slots, number of jobs)``. The crops gather only the pixels they need, so a larger buffer costs
the upload, not the network. That makes two compilations per run and static config (the step and
the slot start), whatever the mix of sizes and lengths.

Speed: each step's time is shared among the slots it moved, so summing a sequence's per-frame
times and the summary's fps count target-frames per second of the whole batch. Compilation happens
before the first job starts (a warm-up step on empty slots), so it is in no frame's time.

:func:`run_batched` writes what :func:`~siamfc_jax.evaluation.runner.run_folder` writes for every
sequence (``<name>.txt``, ``<name>.json``, ``<name>_success.png``; ``summary.json``, ``summary.md``,
``summary_success.png``), plus in ``<name>.json`` each frame's confidence
(:class:`~siamfc_jax.tracker.device.Confidence`: ``response_peak`` before the cosine window and
``windowed_peak`` after it; frame 0, the initial box, has none: null), and optionally

- ``<name>_scores.txt`` and ``<name>_scores.png`` (``save_scores``): the confidence per frame as
  text and plotted with the IoU against the ground truth, to see where a target was lost;
- the benchmark figures of a protocol (:func:`~siamfc_jax.evaluation.metrics.protocol_scores`) in
  ``summary.json`` (``"benchmark"``) and ``summary.md``; for ``got10k`` also the submission layout
  of the GOT-10k server: ``got10k/<seq>/<seq>_001.txt`` (boxes, ``x,y,w,h``) and
  ``got10k/<seq>/<seq>_time.txt`` (seconds per frame).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.evaluation.metrics import SUCCESS_THRESHOLDS, Run, iou, protocol_scores
from siamfc_jax.evaluation.reports import (
    format_boxes,
    format_result,
    format_table,
    sequence_record,
    summary_record,
)
from siamfc_jax.evaluation.scoring import (
    BOX_DECIMALS,
    SUMMARY_NAME,
    FolderResult,
    SequenceResult,
    score,
    summarize,
    tracked_length,
)
from siamfc_jax.evaluation.validation import validate_for_tracking
from siamfc_jax.files import write_text_atomic
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.tracker.device import (
    HyperParams,
    empty_slots,
    fit_config,
    hyper_params,
    prepare_variables,
    start_slot,
    static_config,
    step_slots,
)
from siamfc_jax.tracker.host import fill_color
from siamfc_jax.visualize import save_figure, success_figure

PAD_MULTIPLE = 64
GOT10K_DIR = "got10k"


@dataclasses.dataclass(frozen=True, eq=False)
class Job:
    """One sequence to track with one set of traced hyper-parameters (:func:`hyper_params`)."""

    sequence: Sequence
    hyper: HyperParams


@dataclasses.dataclass(frozen=True, eq=False)
class JobResult:
    """A finished job: its index in the jobs given, the result, and (T, 2) float64 confidence
    (``response_peak``, ``windowed_peak``; row 0, the initial box, is NaN)."""

    index: int
    result: SequenceResult
    confidence: np.ndarray


def padded_size(frame_sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """(height, width) of the frame buffer for frames of ``(width, height)`` sizes (module docstring)."""
    width = max(size[0] for size in frame_sizes)
    height = max(size[1] for size in frame_sizes)
    return tuple(-(-side // PAD_MULTIPLE) * PAD_MULTIPLE for side in (height, width))  # type: ignore[return-value]


class _Slot:
    """The host side of one slot: its job, frames so far, boxes, confidences and times."""

    def __init__(self, index: int, job: Job, total: int) -> None:
        self.index = index
        self.job = job
        self.total = total
        self.count = 1
        self.boxes = np.zeros((total, 4))
        self.confidence = np.full((total, 2), np.nan)
        self.times = np.zeros(total)
        self.frames = None if job.sequence.video is None else job.sequence.iter_frames()

    def frame(self, index: int, cache: dict) -> np.ndarray:
        """Frame ``index`` of the job's sequence; image files are read once per step for all slots
        on the same sequence and frame (the configs of a search move in lockstep)."""
        sequence = self.job.sequence
        if self.frames is not None:
            return next(self.frames)
        key = (sequence.source, sequence.name, index)
        if key not in cache:
            cache[key] = sequence.frame(index)
        return cache[key]

    def close(self) -> None:
        if self.frames is not None:
            self.frames.close()


def _place(buffer: np.ndarray, frame: np.ndarray, sequence: Sequence) -> None:
    height, width = frame.shape[:2]
    if height > buffer.shape[0] or width > buffer.shape[1]:
        raise DataError(
            f"{sequence.source or sequence.name}: a frame of {width}x{height} is larger than the "
            "first frame; frames of a sequence must share one size"
        )
    buffer[:height, :width] = frame


def track_jobs(
    variables: dict,
    model_config: ModelConfig,
    config: TrackerConfig,
    jobs: list[Job],
    *,
    slots: int,
    max_frames: int | None = None,
    progress: bool = False,
    warm_up: bool = True,
) -> Iterator[JobResult]:
    """Track ``jobs`` in ``slots`` slots; yields each job's result when it finishes (not in order).

    Args:
      variables: device-resident ``{"params", "batch_stats"}``.
      model_config: the network's config.
      config: the static hyper-parameters (the traced ones come from each job's ``hyper``;
        their values here are ignored: :func:`~siamfc_jax.tracker.device.static_config`).
      jobs: the sequences (validated by the caller) and their hyper-parameters.
      slots: how many jobs move together (K).
      max_frames: track only each sequence's first ``max_frames`` frames.
      progress: a tqdm bar over the target-frames.
      warm_up: compile (and run once on empty slots) before timing the first frame; False when
        the programs for this padded size and K are known to be compiled (benchmarks).

    Raises:
      DataError: a frame cannot be decoded, or changes size within a sequence.
    """
    if not jobs:
        return
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    config = static_config(fit_config(config, model_config))
    statics = {"config": config, "model_config": model_config}
    variables = prepare_variables(variables, **statics)
    num_slots = min(slots, len(jobs))
    height, width = padded_size([job.sequence.frame_size for job in jobs])
    buffer = np.zeros((num_slots, height, width, 3), np.uint8)
    hyper = jax.tree.map(lambda leaf: np.stack([leaf] * num_slots), jobs[0].hyper)

    states = empty_slots(num_slots, **statics)
    if warm_up:  # compiles both programs before any frame is timed
        states = start_slot(
            variables,
            states,
            np.int32(0),
            buffer[0],
            np.array([1, 1, 2, 2], np.float32),
            np.zeros(3, np.float32),
            **statics,
        )
        states, boxes, _ = step_slots(variables, states, buffer, hyper, **statics)
        jax.block_until_ready(boxes)

    pending = deque(enumerate(jobs))
    active: dict[int, _Slot] = {}
    totals = [tracked_length(job.sequence, max_frames) for job in jobs]
    bar = tqdm(total=sum(totals), unit="frame", desc="target-frames", disable=not progress, leave=False)
    indices: dict[int, int] = {}
    try:
        while pending or active:
            cache: dict = {}
            for slot in range(num_slots):
                while slot not in active and pending:
                    index, job = pending.popleft()
                    state = _Slot(slot, job, totals[index])
                    first = state.frame(0, cache)
                    fill = fill_color(first)
                    buffer[slot] = fill.astype(np.uint8)  # a whole grey level already
                    _place(buffer[slot], first, job.sequence)
                    start = time.perf_counter()
                    states = start_slot(
                        variables,
                        states,
                        np.int32(slot),
                        buffer[slot],
                        np.asarray(job.sequence.init_box, np.float32),
                        fill,
                        **statics,
                    )
                    jax.block_until_ready(states.center)
                    state.times[0] = time.perf_counter() - start
                    state.boxes[0] = np.round(job.sequence.init_box, BOX_DECIMALS)
                    for field, value in enumerate(job.hyper):
                        hyper[field][slot] = value
                    bar.update()
                    if state.total == 1:
                        state.close()
                        yield _finish(index, state)
                    else:
                        active[slot] = state
                        indices[slot] = index
            if not active:
                break
            for slot, state in active.items():
                _place(buffer[slot], state.frame(state.count, cache), state.job.sequence)
            start = time.perf_counter()
            states, boxes, confidence = step_slots(variables, states, buffer, hyper, **statics)
            boxes, confidence = jax.device_get((boxes, confidence))
            stepped = len(active)
            share = (time.perf_counter() - start) / stepped
            for slot in list(active):
                state = active[slot]
                state.boxes[state.count] = np.round(boxes[slot], BOX_DECIMALS)
                state.confidence[state.count] = (
                    confidence.response_peak[slot],
                    confidence.windowed_peak[slot],
                )
                state.times[state.count] = share
                state.count += 1
                if state.count == state.total:
                    state.close()
                    del active[slot]
                    yield _finish(indices.pop(slot), state)
            bar.update(stepped)
    finally:
        for state in active.values():
            state.close()
        bar.close()


def _finish(index: int, slot: _Slot) -> JobResult:
    sequence = slot.job.sequence
    scores, ious, errors = score(sequence, slot.boxes)
    result = SequenceResult(
        name=sequence.name,
        num_frames=slot.total,
        boxes=slot.boxes,
        times=slot.times,
        scores=scores,
        ious=ious,
        center_errors=errors,
    )
    return JobResult(index, result, slot.confidence)


# ---------------------------------------------------------------------------------------------
# A folder of sequences, with files


def _confidence_lists(confidence: np.ndarray) -> dict[str, list[float | None]]:
    return {
        name: [None if math.isnan(value) else float(value) for value in confidence[:, column]]
        for column, name in enumerate(("response_peak", "windowed_peak"))
    }


def _scores_text(confidence: np.ndarray) -> str:
    lines = ["# frame,response_peak,windowed_peak (frame 1: the initial box, no response)\n"]
    for frame, (raw, windowed) in enumerate(confidence, start=1):
        cells = ["" if math.isnan(value) else f"{value:.6g}" for value in (raw, windowed)]
        lines.append(f"{frame},{cells[0]},{cells[1]}\n")
    return "".join(lines)


def scores_figure(name: str, confidence: np.ndarray, ious: np.ndarray | None) -> Figure:
    """Confidence per frame (both peaks, each scaled to its maximum) and the IoU when known."""
    figure = Figure(figsize=(7.0, 3.5), dpi=100)
    axes = figure.add_subplot()
    frames = np.arange(1, len(confidence) + 1)
    for column, label in enumerate(("response peak", "windowed peak")):
        values = confidence[:, column]
        top = np.nanmax(np.abs(values)) if np.any(np.isfinite(values)) else 1.0
        axes.plot(frames, values / (top or 1.0), label=f"{label} / {top:.3g}", linewidth=1.2)
    if ious is not None:
        axes.plot(frames, ious, label="IoU with ground truth", color="black", linewidth=1.0)
    axes.set(xlabel="frame", ylabel="relative value", xlim=(1, max(len(frames), 2)))
    axes.set_title(f"{name}: confidence per frame")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower left", fontsize="small")
    figure.tight_layout()
    return figure


def _frame_ious(sequence: Sequence, boxes: np.ndarray) -> np.ndarray | None:
    if sequence.boxes is None:
        return None
    truth = sequence.boxes[: len(boxes)]
    values = iou(boxes, np.nan_to_num(truth))
    values[~np.all(np.isfinite(truth), axis=1)] = np.nan
    return values


def run_batched(
    variables: dict,
    model_config: ModelConfig,
    config: TrackerConfig,
    sequences: list[Sequence],
    out_dir: str | os.PathLike,
    *,
    info: Mapping,
    slots: int,
    max_frames: int | None = None,
    save_scores: bool = False,
    protocol: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] = tqdm.write,
) -> FolderResult:
    """Track ``sequences`` in ``slots`` slots with ``config`` and write their files (module docstring).

    All sequences are checked first. On Ctrl-C the finished sequences are written and summarised,
    and ``interrupted`` is True (sequences in flight are dropped).

    Args:
      variables, model_config: the network (device-resident variables).
      config: tracker hyper-parameters.
      sequences: the sequences to track.
      out_dir: output folder.
      info: run description for the JSON files (:func:`~siamfc_jax.evaluation.reports.run_info`).
      slots: how many sequences move together.
      max_frames: track only the first ``max_frames`` frames of each sequence.
      save_scores: write ``<name>_scores.txt`` and ``<name>_scores.png``.
      protocol: also report this benchmark's figures (:data:`~siamfc_jax.evaluation.metrics.PROTOCOLS`).
      progress: a progress bar; log: gets one line per finished sequence.

    Raises:
      DataError: a sequence cannot be tracked, or is named like the summary files.
    """
    for sequence in sequences:
        if sequence.name in (SUMMARY_NAME, GOT10K_DIR):
            raise DataError(f"{sequence.source}: a sequence named {sequence.name!r} would clash with outputs")
        validate_for_tracking(sequence)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hyper = hyper_params(fit_config(config, model_config))
    jobs = [Job(sequence, hyper) for sequence in sequences]
    finished: dict[int, SequenceResult] = {}
    interrupted = False
    info = {**info, "batch": min(slots, len(jobs))}
    try:
        for done in track_jobs(
            variables, model_config, config, jobs, slots=slots, max_frames=max_frames, progress=progress
        ):
            sequence = sequences[done.index]
            finished[done.index] = _write_sequence(
                done, sequence, out_dir, info, save_scores, protocol == "got10k"
            )
            log(format_result(finished[done.index]))
    except KeyboardInterrupt:
        interrupted = True
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
            _protocol_run(sequences[index], finished[index])
            for index in sorted(finished)
            if sequences[index].boxes is not None
        ]
        try:
            benchmark = {"protocol": protocol, **protocol_scores(protocol, runs)}
        except ValueError:  # no frame with ground truth (e.g. the GOT-10k test split)
            benchmark = {"protocol": protocol, "sequences": 0, "frames": 0}
        table += "\n" + format_benchmark(benchmark) + "\n"
        log(format_benchmark(benchmark))
    write_text_atomic(outputs["table"], table)
    summary = summary_record(
        results,
        overall,
        interrupted=interrupted,
        total_sequences=len(sequences),
        info=info,
        outputs=outputs, benchmark=benchmark,
    )
    write_text_atomic(outputs["json"], json.dumps(summary, indent=1) + "\n")
    return FolderResult(tuple(results), overall, interrupted, outputs)


def _protocol_run(sequence: Sequence, result: SequenceResult) -> Run:
    count = len(result.boxes)
    return Run(
        pred=result.boxes,
        truth=sequence.boxes[:count],
        absence=None if sequence.absence is None else sequence.absence[:count],
        cover=None if sequence.cover is None else sequence.cover[:count],
        frame_size=sequence.frame_size,
    )


def format_benchmark(benchmark: Mapping) -> str:
    """One line of a protocol's figures, e.g. ``got10k: AO 0.612, SR0.50 0.702, SR0.75 0.410``."""
    names = {
        "auc": "success AUC",
        "precision": "precision@20px",
        "normalized_precision": "normalised precision",
        "ao": "AO",
        "sr50": "SR0.50",
        "sr75": "SR0.75",
    }
    figures = ", ".join(f"{label} {benchmark[key]:.3f}" for key, label in names.items() if key in benchmark)
    return (
        f"{benchmark['protocol']} protocol: {figures or 'no ground truth to score'} "
        f"({benchmark['sequences']} sequences, {benchmark['frames']} frames scored)"
    )


def _write_sequence(
    done: JobResult, sequence: Sequence, out_dir: Path, info: Mapping, save_scores: bool, got10k: bool
) -> SequenceResult:
    result = done.result
    name = sequence.name
    outputs: dict[str, Path] = {"boxes": out_dir / f"{name}.txt"}
    write_text_atomic(outputs["boxes"], format_boxes(result.boxes))
    if result.scores is not None:
        outputs["success_plot"] = out_dir / f"{name}_success.png"
        figure = success_figure({name: result.success_curve}, SUCCESS_THRESHOLDS)
        save_figure(figure, outputs["success_plot"])
    if save_scores:
        outputs["scores"] = out_dir / f"{name}_scores.txt"
        write_text_atomic(outputs["scores"], _scores_text(done.confidence))
        outputs["scores_plot"] = out_dir / f"{name}_scores.png"
        figure = scores_figure(name, done.confidence, _frame_ious(sequence, result.boxes))
        save_figure(figure, outputs["scores_plot"])
    if got10k:
        folder = out_dir / GOT10K_DIR / name
        folder.mkdir(parents=True, exist_ok=True)
        outputs["got10k_boxes"] = folder / f"{name}_001.txt"
        write_text_atomic(outputs["got10k_boxes"], format_boxes(result.boxes))
        outputs["got10k_times"] = folder / f"{name}_time.txt"
        write_text_atomic(outputs["got10k_times"], "".join(f"{value:.8f}\n" for value in result.times))
    outputs["json"] = out_dir / f"{name}.json"
    result = dataclasses.replace(result, outputs=outputs)
    record = sequence_record(result, sequence, info)
    record["confidence"] = _confidence_lists(done.confidence)
    record["outputs"] = {kind: os.path.relpath(path, out_dir) for kind, path in outputs.items()}
    write_text_atomic(outputs["json"], json.dumps(record, indent=1) + "\n")
    return result
