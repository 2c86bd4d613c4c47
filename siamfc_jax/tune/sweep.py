"""Checkpoint sweep: every checkpoint of a training run tracked on a folder of sequences (host).

Each checkpoint under ``<workdir>/checkpoints/<step>`` is restored through
:class:`~siamfc_jax.training.checkpoint.Checkpointer` (the network settings come from the run's
metadata stored beside the checkpoints), and the sequences are tracked batched
(:func:`~siamfc_jax.evaluation.tracking.track_sequences`, one compiled step shared by all checkpoints,
whose weights have one shape). Scores: the mean success AUC and precision over the sequences
(:func:`~siamfc_jax.evaluation.scoring.score`, the same figures as ``train.py``'s ``val/auc``
when the sequences are its validation sequences). Checkpoints are run one after the other (the
weights are not a batch axis).

Files in the output folder: ``sweep.json`` (per step: epoch, AUC, precision, and ``history.json``'s
``val/auc`` of that step when there is one), ``sweep.md`` (the table) and ``sweep.png`` (AUC per
epoch). A rerun skips the steps already in ``sweep.json``; Ctrl-C keeps the finished steps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from matplotlib.figure import Figure

from siamfc_jax.config import ModelConfig, OptimConfig, TrackerConfig
from siamfc_jax.evaluation.tracking import SequenceJob, track_sequences
from siamfc_jax.files import write_text_atomic
from siamfc_jax.plans import Workload, stored_plan
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.tracker.device import fit_config, hyper_params, tracker_spec
from siamfc_jax.training.checkpoint import Checkpointer
from siamfc_jax.training.state import create_train_state, make_optimizer
from siamfc_jax.tune.search import summarize_candidate
from siamfc_jax.visualize import save_figure

SWEEP_NAME = "sweep"


def checkpoint_steps(workdir: str | os.PathLike) -> list[int]:
    """Steps of the checkpoints in ``<workdir>/checkpoints``, ascending.

    Raises:
      DataError: there is no checkpoint folder or no checkpoint in it.
    """
    directory = Path(workdir) / "checkpoints"
    if not directory.is_dir():
        raise DataError(f"{directory}: no checkpoints folder (is {workdir} a training workdir?)")
    steps = sorted(
        int(entry.name) for entry in directory.iterdir() if entry.is_dir() and entry.name.isdigit()
    )
    if not steps:
        raise DataError(f"{directory}: no checkpoint")
    return steps


def _run_metadata(workdir: Path) -> dict:
    manager = ocp.CheckpointManager(
        workdir.resolve() / "checkpoints",
        options=ocp.CheckpointManagerOptions(create=False, read_only=True),
    )
    try:
        metadata = manager.metadata().custom_metadata or {}
    finally:
        manager.close()
    if "model" not in metadata or "optim" not in metadata:
        raise DataError(f"{workdir / 'checkpoints'}: no run settings stored beside the checkpoints")
    return metadata


def restore_variables(workdir: str | os.PathLike, step: int) -> tuple[dict, ModelConfig, int]:
    """``({"params", "batch_stats"}, model config, epochs completed)`` of checkpoint ``step``."""
    workdir = Path(workdir)
    metadata = _run_metadata(workdir)
    model_config = ModelConfig(**metadata["model"])
    optimizer = make_optimizer(OptimConfig(**metadata["optim"]), 1)  # the schedule is not restored
    template = create_train_state(model_config, optimizer, jax.random.key(0))
    checkpointer = Checkpointer(workdir, keep=1_000_000)
    try:
        state, position = checkpointer.restore(template, step)
    finally:
        checkpointer.close()
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    return variables, model_config, position.epoch


def _history(workdir: Path) -> dict[int, dict]:
    path = workdir / "history.json"
    if not path.is_file():
        return {}
    try:
        return {record["step"]: record for record in json.loads(path.read_text())}
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path}: not a training history") from None


def sweep_figure(rows: list[dict]) -> Figure:
    """Success AUC per epoch (ours, and history.json's val/auc where known)."""
    figure = Figure(figsize=(6.0, 4.0), dpi=100)
    axes = figure.add_subplot()
    epochs = [row["epoch"] for row in rows]
    axes.plot(epochs, [row["auc"] for row in rows], marker="o", label="sweep AUC")
    known = [row for row in rows if row.get("history_val_auc") is not None]
    if known:
        axes.plot(
            [row["epoch"] for row in known],
            [row["history_val_auc"] for row in known],
            linestyle="none",
            marker="x",
            color="black",
            label="history.json val/auc",
        )
    axes.set(xlabel="epoch", ylabel="success AUC")
    axes.set_title("Checkpoint sweep")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    return figure


def format_sweep(rows: list[dict]) -> str:
    lines = [
        "| epoch | step | AUC | precision@20px | history.json val/auc |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        history = row.get("history_val_auc")
        lines.append(
            f"| {row['epoch']} | {row['step']} | {row['auc']:.4f} | {row['precision']:.4f} | "
            f"{'–' if history is None else f'{history:.4f}'} |"
        )
    best = max(rows, key=lambda row: row["auc"]) if rows else None
    note = f"\nBest: epoch {best['epoch']} (step {best['step']}), AUC {best['auc']:.4f}.\n" if best else "\n"
    return "\n".join(lines) + "\n" + note


def run_sweep(
    workdir: str | os.PathLike,
    sequences: list[Sequence],
    out_dir: str | os.PathLike,
    *,
    config: TrackerConfig,
    slots: int,
    max_frames: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[list[dict], bool]:
    """Track ``sequences`` with every checkpoint of ``workdir``; returns (rows by step, interrupted).

    Raises:
      DataError: no checkpoints, unreadable run settings or history, or no sequence with ground truth.
    """
    workdir, out_dir = Path(workdir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = checkpoint_steps(workdir)
    history = _history(workdir)
    path = out_dir / f"{SWEEP_NAME}.json"
    settings = {
        "workdir": str(workdir.resolve()),
        "sequences": [sequence.source or sequence.name for sequence in sequences],
        "max_frames": max_frames,
    }
    done: dict[int, dict] = {}
    if path.exists():
        stored = json.loads(path.read_text())
        if stored.get("settings") != settings:
            raise DataError(f"{path}: holds a sweep with other settings; use another --out")
        done = {row["step"]: row for row in stored["checkpoints"]}
    interrupted = False

    def write() -> list[dict]:
        rows = [done[step] for step in sorted(done)]
        write_text_atomic(path, json.dumps({"settings": settings, "checkpoints": rows}, indent=1) + "\n")
        write_text_atomic(out_dir / f"{SWEEP_NAME}.md", format_sweep(rows))
        if rows:
            save_figure(sweep_figure(rows), out_dir / f"{SWEEP_NAME}.png")
        return rows

    try:
        for step in steps:
            if step in done:
                continue
            variables, model_config, epoch = restore_variables(workdir, step)
            fitted = fit_config(config, model_config)
            jobs = [SequenceJob(sequence, hyper_params(fitted)) for sequence in sequences]
            scores = {}
            spec = tracker_spec(fitted, model_config, stored_plan(model_config, Workload.tracking(fitted)))
            for finished in track_sequences(
                jax.device_put(variables), spec, jobs, slots=slots, max_frames=max_frames, progress=progress
            ):
                scores[sequences[finished.index].name] = dict(finished.result.scores or {"auc": None})
            summary = summarize_candidate(scores)
            if summary["auc"] is None:
                raise DataError("no sequence has ground truth to score the checkpoints on")
            record = history.get(step, {})
            done[step] = {
                "step": step,
                "epoch": epoch,
                "auc": summary["auc"],
                "precision": summary["precision"],
                "history_val_auc": record.get("val/auc"),
                "sequences": scores,
            }
            log(
                f"step {step} (epoch {epoch}): AUC {summary['auc']:.4f}, precision {summary['precision']:.4f}"
            )
            write()
    except KeyboardInterrupt:
        interrupted = True
    rows = write()
    differences = [
        abs(row["auc"] - row["history_val_auc"]) for row in rows if row["history_val_auc"] is not None
    ]
    if differences:
        log(f"largest difference from history.json's val/auc: {float(np.max(differences)):.2e}")
    return rows, interrupted
