"""The VOT short-term supervised (reset-based) experiment on folders of VOT sequences (host).

Each sequence is one job of the host loop (:func:`~siamfc_jax.tracker.loop.track_jobs`) whose
``on_frame`` drives a :class:`~siamfc_jax.evaluation.vot.SupervisedRun`: a frame whose box does not
overlap the ground truth is a failure, and the job's slot is started again
(:class:`~siamfc_jax.tracker.loop.Restart`) ``skip_initialize`` (5) frames later from the ground
truth there; the frames between come back skipped. ``slots`` sequences move together.

The ground truth is read as VOT regions (:func:`~siamfc_jax.evaluation.vot.read_regions`), not as
:attr:`Sequence.boxes <siamfc_jax.sequences.sequence.Sequence.boxes>`: overlaps are computed on the
polygons themselves, and the (re)initialisation box is the polygon's bounding rectangle moved to
1-indexed pixels (:func:`~siamfc_jax.evaluation.vot.init_box`), which the plain boxes are not.

Files in the output folder:

- ``vot/<tracker>/baseline/<seq>/<seq>_001.txt``: each trajectory in vot-toolkit's results layout
  (copy ``vot/<tracker>`` into a toolkit workspace's ``results/`` to analyse it there);
- ``vot_summary.json``: accuracy, robustness, failures, reliability, EAO over the stack's interval
  (null, with ``eao_note``, when no run is long enough to reach the interval), the per-sequence rows
  and the expected-overlap curve;
- ``vot_summary.md``: the per-sequence table and the summary; ``vot_eao.png``: the curve.

Frames whose ground truth is empty neither fail nor are initialised on
(:class:`~siamfc_jax.evaluation.vot.SupervisedRun`'s ``ignore_empty_truth``); VOT2016-2018 annotate
every frame, so there this is the toolkit's rule exactly. The tracker is deterministic, so one
repetition is the toolkit's 15.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from siamfc_jax.evaluation.outputs import remove_results
from siamfc_jax.evaluation.scoring import tracked_length
from siamfc_jax.evaluation.vot import (
    EAO_INTERVALS,
    Entry,
    SupervisedRun,
    VotRun,
    count_failures,
    eao_figure,
    evaluate_supervised,
    read_regions,
    result_path,
    sequence_table,
    write_trajectory,
)
from siamfc_jax.files import OutputError, check_writable_dir, write_text_atomic
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.tracker import BatchTracker, Tracker
from siamfc_jax.tracker.device import HyperParams, hyper_params
from siamfc_jax.tracker.loop import FrameResult, Job, Restart, track_jobs
from siamfc_jax.visualize import save_figure

VOT_PROTOCOL = "vot"
VOT_STACKS = tuple(EAO_INTERVALS)
DEFAULT_STACK = "vot2018"
VOT_DIR = "vot"
TRACKER_NAME = "siamfc_jax"
SUMMARY_STEM = "vot_summary"
EAO_PLOT = "vot_eao.png"


# ------------------------------------------------------------------------------------ input


def is_vot_sequence(sequence: Sequence) -> bool:
    """Whether ``sequence`` was read from a VOT folder: ``groundtruth.txt`` beside its frames (or
    beside ``color/``), no GOT-10k labels and no LaSOT ``img/`` folder."""
    if sequence.annotation is None or sequence.video is not None or not sequence.frames:
        return False
    annotation = Path(sequence.annotation)
    frames_dir = Path(sequence.frames[0]).parent
    beside = frames_dir == annotation.parent or frames_dir == annotation.parent / "color"
    got10k = sequence.absence is not None or sequence.cover is not None or bool(sequence.meta)
    return annotation.name == "groundtruth.txt" and beside and not got10k


def vot_groundtruth(sequence: Sequence, max_frames: int | None = None) -> list[Entry]:
    """The VOT regions of the first ``max_frames`` frames (all when None) of ``sequence``.

    Raises:
      DataError: not a VOT sequence, the file cannot be parsed, it has fewer lines than the frames
        to track, or the first region is empty (naming the file).
    """
    if not is_vot_sequence(sequence):
        raise DataError(
            f"{sequence.source}: --protocol vot needs VOT sequences (frames and a groundtruth.txt of "
            "rectangles or polygons)"
        )
    try:
        regions = read_regions(sequence.annotation)
    except (OSError, ValueError) as error:
        raise DataError(f"{sequence.annotation}: cannot read the VOT regions ({error})") from None
    total = tracked_length(sequence, max_frames)
    if len(regions) < total:
        raise DataError(f"{sequence.annotation}: {len(regions)} regions for {total} frames to track")
    regions = regions[:total]
    if SupervisedRun(regions, sequence.frame_size).step.frame != 0:
        raise DataError(f"{sequence.annotation}: the first region is empty; the run cannot start")
    return regions


# --------------------------------------------------------------------------------- tracking


@dataclasses.dataclass(eq=False)
class SupervisedDriver:
    """A job's ``on_frame``: feeds each delivered frame to its :class:`SupervisedRun` and asks
    the loop for a restart after a failure. Frames between a failure and the restart, and those
    after the run ended (a failure too close to the end to restart), are ignored.

    Attributes:
      run: the sequence's run (its ``step`` is at frame 0 with an initial box).
      on_frame: also called with each frame (e.g. a progress bar), or None.
    """

    run: SupervisedRun
    on_frame: Callable[[FrameResult], object] | None = None

    def __call__(self, result: FrameResult) -> Restart | None:
        if self.on_frame is not None:
            self.on_frame(result)
        step = self.run.step
        if step is None or result.index != step.frame:
            return None
        if step.init_box is not None:
            self.run.report()
            return None
        following = self.run.report(result.boxes[0])
        if following is not None and following.init_box is not None:
            return Restart(following.frame, following.init_box[None])
        return None


def supervised_job(
    sequence: Sequence, groundtruth: list[Entry], hyper: HyperParams, driver: SupervisedDriver
) -> Job:
    """The loop's job of one sequence under the supervised experiment (``len(groundtruth)`` frames)."""
    return Job(
        frames=lambda: sequence.iter_frames(),
        boxes=np.asarray(driver.run.step.init_box, np.float64)[None],
        hyper=hyper,
        frame_size=sequence.frame_size,
        num_frames=len(groundtruth),
        on_frame=driver,
        label=sequence.frame_label,
    )


def track_supervised(
    tracker: Tracker | BatchTracker,
    sequences: list[Sequence],
    groundtruths: list[list[Entry]],
    *,
    slots: int = 1,
    progress: bool = False,
    log: Callable[[str], None] = tqdm.write,
) -> tuple[list[VotRun | None], bool]:
    """Run the supervised experiment on ``sequences``, ``slots`` together, through the loop.

    Args:
      tracker: its weights, spec and config are used (its own state is untouched).
      groundtruths: each sequence's regions (:func:`vot_groundtruth`); their length is the number
        of frames tracked.
      progress: a tqdm bar over the frames; log: one line per finished sequence.

    Returns:
      Per sequence its :class:`VotRun` (None where Ctrl-C stopped it first), and whether Ctrl-C
      ended the run.
    """
    bar = tqdm(total=sum(map(len, groundtruths)), unit="frame", disable=not progress, leave=False)
    drivers = [
        SupervisedDriver(SupervisedRun(truth, sequence.frame_size), lambda _: bar.update())
        for sequence, truth in zip(sequences, groundtruths, strict=True)
    ]
    hyper = hyper_params(tracker.config)
    jobs = [
        supervised_job(sequence, truth, hyper, driver)
        for sequence, truth, driver in zip(sequences, groundtruths, drivers, strict=True)
    ]
    runs: list[VotRun | None] = [None] * len(sequences)
    interrupted = False
    with bar:
        for done in track_jobs(tracker.variables, tracker.spec, jobs, slots=slots):
            if done.interrupted:
                interrupted = True
                continue
            sequence, driver = sequences[done.index], drivers[done.index]
            runs[done.index] = VotRun(
                sequence.name, driver.run.trajectory, groundtruths[done.index], sequence.frame_size
            )
            failures = count_failures(driver.run.trajectory)
            log(f"{sequence.name}: {len(groundtruths[done.index])} frames, {failures} failures")
    return runs, interrupted


# ---------------------------------------------------------------------------------- outputs


def vot_output_paths(out_dir: str | os.PathLike, names: list[str], tracker: str = TRACKER_NAME) -> list[Path]:
    """Every file a VOT run over sequences ``names`` writes into ``out_dir`` (module docstring)."""
    root = Path(out_dir)
    paths = [result_path(root / VOT_DIR, tracker, name) for name in names]
    return [*paths, root / f"{SUMMARY_STEM}.json", root / f"{SUMMARY_STEM}.md", root / EAO_PLOT]


def claim_vot_outputs(
    out_dir: str | os.PathLike, names: list[str], *, overwrite: bool = False, what: str = ""
) -> Path:
    """Check, before anything is tracked, that ``out_dir`` can be written and holds no file of an
    earlier VOT run over these sequences; ``overwrite`` removes those files instead.

    Raises:
      OutputError: the folder cannot be written, or holds earlier results and not ``overwrite``.
    """
    folder = check_writable_dir(out_dir, what)
    found = [path for path in vot_output_paths(folder, names) if path.exists()]
    if found and not overwrite:
        listed = ", ".join(str(path.relative_to(folder)) for path in found[:3])
        raise OutputError(
            f"{what}{folder} already holds VOT results of these sequences ({listed}); pass "
            "--overwrite to replace them, or choose another --out"
        )
    remove_results(found)
    return folder


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def vot_summary(runs: list[VotRun], stack: str) -> dict:
    """The figures of ``runs`` under ``stack``'s EAO interval, as ``vot_summary.json`` holds them.

    EAO is null, with ``eao_note`` saying why, when the expected-overlap curve ends before the
    interval starts (every run shorter than it, e.g. one short sequence); when it ends inside the
    interval the EAO averages the part it covers and the note says so.
    """
    low, high = EAO_INTERVALS[stack]
    rows, summary, curve = evaluate_supervised(runs, (low, high))
    note = None
    if len(curve) <= low:
        note = (f"no run reaches {low} frames, the start of the {stack} EAO interval [{low}, {high}]: "
                "EAO needs longer (or more) sequences")
    elif len(curve) <= high:
        note = f"the expected-overlap curve ends at {len(curve) - 1}, inside the interval [{low}, {high}]"
    return {
        "protocol": VOT_PROTOCOL,
        "stack": stack,
        "interval": [low, high],
        **{key: value for key, value in summary.items() if key != "eao"},
        "eao": None if len(curve) <= low else _finite(float(summary["eao"])),
        "eao_note": note,
        "per_sequence": rows,
        "curve": [_finite(float(value)) for value in curve],
    }


def format_vot_summary(summary: Mapping) -> str:
    """``vot_summary.md``: the per-sequence table, then the overall figures."""
    eao = "n/a" if summary["eao"] is None else f"{summary['eao']:.4f}"
    low, high = summary["interval"]
    lines = [
        f"VOT supervised experiment ({summary['stack']} EAO interval {low}-{high}), "
        f"{summary['sequences']} sequences, {summary['frames']} frames: accuracy {summary['accuracy']:.4f}, "
        f"robustness {summary['robustness']:.4f} (failures {summary['failures']}), EAO {eao}",
    ]
    if summary["eao_note"]:
        lines.append(f"\nEAO: {summary['eao_note']}.")
    return sequence_table(summary["per_sequence"]) + "\n" + "\n".join(lines) + "\n"


def write_vot_outputs(
    out_dir: Path, runs: list[VotRun], stack: str, info: Mapping, *, total: int, interrupted: bool
) -> tuple[dict, dict[str, Path]]:
    """Write the trajectories and the summary files of the finished ``runs``; returns the summary
    record and the written paths by kind (``trajectories`` is the results folder)."""
    for run in runs:
        write_trajectory(out_dir / VOT_DIR, TRACKER_NAME, run.name, run.trajectory)
    outputs = {
        "trajectories": out_dir / VOT_DIR / TRACKER_NAME,
        "json": out_dir / f"{SUMMARY_STEM}.json",
        "table": out_dir / f"{SUMMARY_STEM}.md",
        "eao_plot": out_dir / EAO_PLOT,
    }
    summary = vot_summary(runs, stack)
    low_high = tuple(summary["interval"])
    curve = np.array([np.nan if value is None else value for value in summary["curve"]])
    save_figure(eao_figure(curve, low_high), outputs["eao_plot"])
    write_text_atomic(outputs["table"], format_vot_summary(summary))
    record = {
        **summary,
        "tracker": TRACKER_NAME,
        "total_sequences": total,
        "interrupted": interrupted,
        "ignore_empty_truth": True,
        "info": dict(info),
        "outputs": {kind: str(path) for kind, path in outputs.items()},
    }
    write_text_atomic(outputs["json"], json.dumps(record, indent=1) + "\n")
    return record, outputs


def run_vot(
    tracker: Tracker | BatchTracker,
    sequences: list[Sequence],
    out_dir: str | os.PathLike,
    *,
    info: Mapping,
    stack: str = DEFAULT_STACK,
    slots: int = 1,
    max_frames: int | None = None,
    groundtruths: list[list[Entry]] | None = None,
    progress: bool = False,
    log: Callable[[str], None] = tqdm.write,
) -> tuple[dict | None, dict[str, Path], bool]:
    """Run the supervised experiment on VOT ``sequences`` and write the files (module docstring).

    ``out_dir`` must have been claimed (:func:`claim_vot_outputs`). Ctrl-C stops the run; the
    sequences finished by then are written and summarised.

    Args:
      tracker: its weights and config are used; info: run description for the JSON
        (:func:`~siamfc_jax.evaluation.reports.run_info`); stack: a key of :data:`EAO_INTERVALS`;
        slots: sequences moving together; max_frames: track only the first frames of each.
      groundtruths: the sequences' :func:`vot_groundtruth` when already read (checked before
        claiming the output folder), else read here.
      progress, log: as for :func:`track_supervised`.

    Returns:
      The summary record (None when no sequence finished), the written paths, and whether Ctrl-C
      ended the run.

    Raises:
      DataError: a sequence is no VOT sequence or its ground truth cannot be used.
    """
    if stack not in EAO_INTERVALS:
        raise ValueError(f"stack must be one of {VOT_STACKS}, got {stack!r}")
    if groundtruths is None:
        groundtruths = [vot_groundtruth(sequence, max_frames) for sequence in sequences]
    runs, interrupted = track_supervised(
        tracker, sequences, groundtruths, slots=slots, progress=progress, log=log
    )
    finished = [run for run in runs if run is not None]
    if not finished:
        return None, {}, interrupted
    record, outputs = write_vot_outputs(
        Path(out_dir), finished, stack, info, total=len(sequences), interrupted=interrupted
    )
    return record, outputs, interrupted
