"""The VOT objective of a hyper-parameter search (``python -m siamfc_jax.tune --protocol vot``; host).

Each (candidate, sequence) job runs VOT's supervised experiment
(:mod:`siamfc_jax.evaluation.vot_runs`: restarts after failures, in the one tracking loop) and
keeps what the candidate's figures need: accuracy, failures, frames and the EAO segments (each
initialisation's overlaps, and whether it reached the sequence's end).

Objective: EAO over the vot2018 interval (100-356) when it is meaningful, that is when some
sequence is longer than the interval's start (100 frames); a candidate whose every run fails
before it scores EAO 0. On shorter sequences EAO has no value, and candidates are ranked by
accuracy, fewer failures breaking ties. With EAO, ties go to the higher accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from siamfc_jax.evaluation.tracking import SequenceJob
from siamfc_jax.evaluation.vot import (
    EAO_INTERVALS,
    SupervisedRun,
    VotRun,
    eao_curve,
    eao_score,
    eao_segments,
    evaluate_supervised,
    region_overlaps,
)
from siamfc_jax.evaluation.vot_runs import DEFAULT_STACK, SupervisedDriver, supervised_job, vot_groundtruth
from siamfc_jax.tracker.device import TrackerSpec
from siamfc_jax.tracker.loop import track_jobs

INTERVAL = EAO_INTERVALS[DEFAULT_STACK]
# Overlaps kept in tune.json: the toolkit holds them in float32 (about 7 digits).
_DIGITS = 7


def vot_scores(run: VotRun) -> dict:
    """One run's stored figures: ``accuracy``, ``failures``, ``frames`` and ``segments``
    (``[overlaps, reached_end]`` per initialisation, :func:`~siamfc_jax.evaluation.vot.eao_segments`)."""
    (row,), _, _ = evaluate_supervised([run], INTERVAL)
    overlaps = region_overlaps(run.trajectory, run.groundtruth, run.frame_size)
    segments = [
        [np.round(values, _DIGITS).tolist(), bool(reached)]
        for values, reached in eao_segments(overlaps, run.trajectory)
    ]
    return {"accuracy": row["accuracy"], "failures": row["failures"], "frames": row["frames"],
            "segments": segments}


def summarize_vot(sequences: dict[str, dict]) -> dict:
    """A candidate's figures over its sequences' :func:`vot_scores`: ``eao`` (None where not
    meaningful, module docstring), ``accuracy`` and ``robustness`` (length-weighted means, as the
    toolkit averages them), ``failures`` (total), ``scored_sequences``."""
    if not sequences:
        return {"eao": None, "accuracy": None, "robustness": None, "failures": 0, "scored_sequences": 0}
    scores = list(sequences.values())
    frames = np.array([entry["frames"] for entry in scores], np.float64)
    eao = None
    if frames.max() > INTERVAL[0]:
        segments = [
            (np.asarray(overlaps), reached) for entry in scores for overlaps, reached in entry["segments"]
        ]
        value = eao_score(eao_curve(segments), INTERVAL)
        eao = value if math.isfinite(value) else 0.0
    return {
        "eao": eao,
        "accuracy": float(np.sum([entry["accuracy"] for entry in scores] * frames) / frames.sum()),
        "robustness": float(np.sum([entry["failures"] for entry in scores] * frames) / frames.sum()),
        "failures": int(sum(entry["failures"] for entry in scores)),
        "scored_sequences": len(scores),
    }


def vot_rank_key(summary: dict) -> tuple:
    """Sort key of :func:`summarize_vot`'s summaries, best first (module docstring)."""
    if summary["eao"] is not None:
        return (-summary["eao"], -summary["accuracy"])
    return (-summary["accuracy"], summary["failures"])


def track_vot_jobs(
    variables: dict, spec: TrackerSpec, jobs: list[SequenceJob], *, slots: int, max_frames: int | None
) -> Iterator[tuple[int, dict]]:
    """Run the supervised experiment of each job (its sequence, its candidate's hyper-parameters),
    ``slots`` together; yields ``(job index, vot_scores)`` as each ends (not in order).

    Raises:
      DataError: a sequence is no VOT sequence or its ground truth cannot be used.
      KeyboardInterrupt: after Ctrl-C, once the finished jobs are yielded.
    """
    truths = [vot_groundtruth(job.sequence, max_frames) for job in jobs]
    drivers = [
        SupervisedDriver(SupervisedRun(truth, job.sequence.frame_size))
        for job, truth in zip(jobs, truths, strict=True)
    ]
    loop_jobs = [
        supervised_job(job.sequence, truth, job.hyper, driver)
        for job, truth, driver in zip(jobs, truths, drivers, strict=True)
    ]
    interrupted = False
    for done in track_jobs(variables, spec, loop_jobs, slots=slots):
        if done.interrupted:
            interrupted = True
            continue
        sequence = jobs[done.index].sequence
        trajectory = drivers[done.index].run.trajectory
        run = VotRun(sequence.name, trajectory, truths[done.index], sequence.frame_size)
        yield done.index, vot_scores(run)
    if interrupted:
        raise KeyboardInterrupt
