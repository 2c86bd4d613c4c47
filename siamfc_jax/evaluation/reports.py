"""Reports of tracking runs: box files, JSON records, one-line results and summary tables (host)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from siamfc_jax.evaluation.metrics import (
    PRECISION_THRESHOLD,
    SUCCESS_THRESHOLDS,
    Run,
    iou,
)
from siamfc_jax.evaluation.scoring import DEFAULT_VIDEO_FPS, STRIP_FRAMES, SequenceResult
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.tracker import Tracker
from siamfc_jax.tracker.loop import BOX_DECIMALS


def run_info(tracker: Tracker, weights: str, device: str) -> dict:
    """What every output JSON records about the run: device, weights, backbone, tracker config.

    ``device`` is :func:`~siamfc_jax.runtime.describe_devices`' line; the record keeps what
    follows its ``device:`` label (``cpu (1 device: cpu)``).
    """
    return {
        "device": device.removeprefix("device:").strip(),
        "weights": weights,
        "backbone": tracker.model_config.backbone,
        "config": dataclasses.asdict(tracker.config),
    }


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def sequence_record(
    result: SequenceResult,
    sequence: Sequence,
    info: Mapping,
    init_box: np.ndarray | None = None,
    target: int | None = None,
) -> dict:
    """The JSON document of one sequence, or of target ``target`` (1-based) starting from
    ``init_box`` when several targets of it were tracked (see the module docstring)."""
    first = sequence.init_box if init_box is None else init_box
    record = {
        "sequence": result.name,
        **({} if target is None else {"sequence_name": sequence.name, "target": target}),
        "source": sequence.source,
        "frames": result.num_frames,
        "sequence_frames": len(sequence),
        "frames_tracked": result.frames_tracked,
        "interrupted": result.interrupted,
        "init_box": [float(value) for value in first],
        "fps": finite_or_none(result.fps),
        "fps_frames": result.timed_frames,
        "first_frame_seconds": float(result.times[0]) if len(result.times) else None,
        "tracking_seconds": float(np.sum(result.times)),
        "warnings": list(result.warnings),
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


def video_fps(sequence: Sequence) -> float:
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


def format_overall(overall: Mapping) -> str:
    """One line of :func:`~siamfc_jax.evaluation.scoring.summarize`'s figures: sequences, frames,
    fps and, with ground truth, the mean AUC, precision and IoU over the sequences."""
    fps = "n/a" if overall["fps"] is None else f"{overall['fps']:.2f}"
    scores = ""
    if overall["auc"] is not None:
        scores = (
            f", mean AUC {overall['auc']:.3f}, precision@20px {overall['precision']:.3f}, "
            f"mean IoU {overall['mean_iou']:.3f}"
        )
    return f"overall: {overall['sequences']} sequences, {overall['frames']} frames, {fps} fps{scores}"


def summary_record(
    results: Iterable[SequenceResult],
    overall: Mapping,
    *,
    interrupted: bool,
    total_sequences: int,
    info: Mapping,
    outputs: Mapping[str, Path],
    **extra: object,
) -> dict:
    """The ``summary.json`` document of a folder run: overall figures, one entry per sequence
    (frames, speed, scores, warnings), the run description and the files written; ``extra``
    (e.g. a benchmark protocol's figures) goes after ``overall``."""
    return {
        "overall": overall,
        **extra,
        "interrupted": interrupted,
        "total_sequences": total_sequences,
        "sequences": {
            result.name: {
                "frames": result.num_frames,
                "frames_tracked": result.frames_tracked,
                "interrupted": result.interrupted,
                "fps": finite_or_none(result.fps),
                **(result.scores or {}),
                "warnings": list(result.warnings),
            }
            for result in results
        },
        **info,
        "outputs": {kind: path.name for kind, path in outputs.items()},
    }


def confidence_lists(confidence: np.ndarray) -> dict[str, list[float | None]]:
    """The (T, 2) confidence as JSON lists by name, null where there is none (frame 0)."""
    return {
        name: [None if math.isnan(value) else float(value) for value in confidence[:, column]]
        for column, name in enumerate(("response_peak", "windowed_peak"))
    }


def scores_text(confidence: np.ndarray) -> str:
    """``<name>_scores.txt``: the (T, 2) confidence per 1-indexed frame, blank where there is none."""
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


def frame_ious(sequence: Sequence, boxes: np.ndarray) -> np.ndarray | None:
    """(T,) IoU of ``boxes`` with the ground truth, NaN where it has none; None without any."""
    if sequence.boxes is None:
        return None
    truth = sequence.boxes[: len(boxes)]
    values = iou(boxes, np.nan_to_num(truth))
    values[~np.all(np.isfinite(truth), axis=1)] = np.nan
    return values


def protocol_run(sequence: Sequence, result: SequenceResult) -> Run:
    """The :class:`~siamfc_jax.evaluation.metrics.Run` of a tracked sequence, for a protocol's scores."""
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
