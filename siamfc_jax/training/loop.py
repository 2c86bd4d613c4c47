"""The training loop: data, data-parallel steps, validation, checkpoints, TensorBoard, export.

Host code. :func:`train` runs a :class:`~siamfc_jax.config.TrainConfig` to completion (or until
Ctrl-C), resuming from the newest checkpoint in the workdir if there is one, and writes

- ``<workdir>/checkpoints/<step>/``: Orbax checkpoints (every epoch, every ``save_every_steps``, on
  Ctrl-C; the newest ``keep_checkpoints`` kept);
- ``<workdir>/tensorboard/``: scalars ``train/loss``, ``train/lr``, ``train/pairs_per_s``,
  ``val/peak_error`` (cells between the response peak and the target on a fixed validation batch)
  and ``val/auc`` (success AUC tracking the validation sequences, at step 0 and after every epoch);
- ``<workdir>/history.json``: the per-epoch figures;
- ``<workdir>/final.msgpack`` and ``<workdir>/final.pth``: the trained weights in our format and as
  a siamfc-pytorch ``state_dict``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from siamfc_jax.config import TrainConfig
from siamfc_jax.interop.torch_weights import WeightsError
from siamfc_jax.io import write_text_atomic
from siamfc_jax.pipeline.loader import PairLoader
from siamfc_jax.pipeline.sources import TrainingData, prepare_training_data
from siamfc_jax.plans import Workload
from siamfc_jax.runtime import describe_allocator, describe_devices
from siamfc_jax.training.checkpoint import Checkpointer, Position
from siamfc_jax.training.distributed import (
    any_process,
    host_copy,
    is_collective_failure,
    lost_process_error,
    wait_for_all_processes,
)
from siamfc_jax.training.evaluators import Evaluator, PeakErrorEvaluator, TrackingEvaluator
from siamfc_jax.training.state import TrainState, create_train_state, epoch_learning_rate, make_optimizer
from siamfc_jax.training.step import data_mesh, make_train_step, shard_batch, shared_machine_plan
from siamfc_jax.weights import export_pth, save_weights

Log = Callable[[str], None]
VALIDATION_BATCH = 16


@dataclasses.dataclass
class TrainResult:
    """How a call of :func:`train` ended."""

    step: int
    epochs_completed: int
    interrupted: bool
    history: list[dict]
    weights: Path | None = None
    pth: Path | None = None


def run_identity(config: TrainConfig) -> dict:
    """The settings that determine a run's trajectory; a resumed run must have the same."""
    return {
        "model": dataclasses.asdict(config.model),
        "optim": dataclasses.asdict(config.optim),
        "loss": dataclasses.asdict(config.loss),
        "pairs": dataclasses.asdict(config.pairs),
        "data": config.data,
        "seed": config.seed,
        "synthetic_world": config.synthetic_world,
        "synthetic_sequences": config.synthetic_sequences,
    }


class _StopRequest:
    """First Ctrl-C: finish the current step, checkpoint and stop; a second one aborts at once.

    Only this process's flag: the loop combines the processes' flags (:func:`any_process`)."""

    def __init__(self, log: Log) -> None:
        self.requested = False
        self._log = log
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._log(
            "\nstopping after this step (with several processes: at the next log step, checkpoint or "
            "epoch end, together); Ctrl-C again to abort without saving"
        )

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _evaluators(data: TrainingData, config: TrainConfig, mesh) -> list[Evaluator]:
    """Validation of a run: the peak error on a fixed batch of validation pairs (seeded apart from
    training; each process makes its slice) and the AUC of tracking the validation sequences."""
    evaluators: list[Evaluator] = []
    if data.validation is not None:
        size = min(VALIDATION_BATCH, len(data.validation.names) * config.pairs.pairs_per_seq)
        size -= size % mesh.size
        if size:
            loader = PairLoader(
                data.validation,
                size,
                seed=config.seed + 1,
                config=config.pairs,
                process_index=jax.process_index(),
                process_count=jax.process_count(),
            )
            evaluators.append(PeakErrorEvaluator(next(iter(loader.epoch(0))), config.model, mesh))
    if data.sequences:
        evaluators.append(TrackingEvaluator(data.sequences, config.model))
    return evaluators


def train(config: TrainConfig, progress: bool = True, log: Log = print) -> TrainResult:
    """Train as ``config`` says, resuming from ``<workdir>/checkpoints`` when it holds a checkpoint.

    With several processes (``jax.distributed`` initialised) every process calls this with the same
    config; process 0 logs and exports, all of them checkpoint.

    Raises:
      DataError: the training data is missing or malformed.
      ValueError: inconsistent settings (e.g. a batch that does not split over the devices, or a
        workdir whose checkpoints belong to other settings).
      ProcessLost: with several processes, a collective failed (another process died or stalled).
    """
    try:
        return _train(config, progress, log)
    except Exception as error:
        if is_collective_failure(error):
            raise lost_process_error(error) from error
        raise


def _train(config: TrainConfig, progress: bool, log: Log) -> TrainResult:
    workdir = Path(config.workdir).expanduser()
    is_main = jax.process_index() == 0
    single = jax.process_count() == 1
    say = log if is_main else (lambda message: None)
    say(describe_devices())
    say(describe_allocator())
    # Before any work: checkpoints of other settings are refused, a finished run is not redone.
    checkpointer = Checkpointer(workdir, config.keep_checkpoints, run_identity(config))
    finished = _finished_run(workdir, checkpointer, config.optim.epochs)
    if finished is not None:
        checkpointer.close()
        say(
            f"finished: {workdir} holds a completed run ({finished.epochs_completed} epochs, step "
            f"{finished.step}); weights in {finished.weights}. Nothing to do (another --workdir "
            "trains anew)"
        )
        return finished
    mesh = data_mesh()
    batch = config.optim.batch_size
    if batch % mesh.size:
        raise ValueError(f"--batch-size {batch} does not split evenly over {mesh.size} devices")

    data = prepare_training_data(config, workers=config.workers or None, progress=progress and is_main)
    wait_for_all_processes("siamfc_jax/training_data_ready")
    say(f"data: {data.description}; {len(data.train.names)} training sequences")
    loader = PairLoader(
        data.train,
        batch,
        seed=config.seed,
        workers=config.workers,
        config=config.pairs,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    steps_per_epoch = loader.steps_per_epoch
    optimizer = make_optimizer(config.optim, steps_per_epoch)
    replicated = NamedSharding(mesh, P())
    # Initialised on the devices, placed replicated: nothing goes from the host to them.
    state = jax.jit(
        lambda: create_train_state(config.model, optimizer, jax.random.key(config.seed)),
        out_shardings=replicated,
    )()

    position = Position(0, 0, 0)
    if checkpointer.latest() is not None:
        state, position = checkpointer.restore(state)
        say(
            f"resuming from {checkpointer.directory / str(position.step)} (epoch {position.epoch + 1}, "
            f"step {position.step_in_epoch} of {steps_per_epoch})"
        )
    history_path = workdir / "history.json"
    history = []
    if position.step and history_path.is_file():
        # Records after the checkpoint (a run that died later) are redone, so they are dropped.
        history = [r for r in json.loads(history_path.read_text()) if r["step"] <= position.step]

    sizes = config.pairs.exemplar_sz, config.pairs.search_sz
    plan = shared_machine_plan(config.model, Workload.training(batch // mesh.size, *sizes), say)
    train_step = make_train_step(config.model, config.loss, optimizer, mesh, *sizes, plan=plan)
    evaluators = _evaluators(data, config, mesh)
    writer = _summary_writer(workdir) if is_main else None

    def validate(step: int) -> dict:
        figures = dict(pair for evaluator in evaluators for pair in evaluator.run(state))
        if writer is not None:
            for name, value in figures.items():
                writer.add_scalar(name, value, step)
            writer.flush()
        return figures

    if position.step == 0 and evaluators:
        untrained = validate(0)
        say("untrained: " + _format(untrained))
        history.append({"epoch": 0, "step": 0, **untrained})

    interrupted = False
    step = position.step
    epochs = config.optim.epochs
    with _StopRequest(say) as stop, contextlib.closing(checkpointer):
        batches = _batches(loader, position, epochs)
        for epoch in range(position.epoch, epochs):
            resumed = epoch == position.epoch
            first = position.step_in_epoch if resumed else 0
            bar = tqdm(
                total=steps_per_epoch,
                initial=first,
                desc=f"epoch {epoch + 1}/{epochs}",
                disable=not (progress and is_main),
                dynamic_ncols=True,
            )
            # The epoch's loss and time so far, from the checkpoint when it resumes mid-epoch.
            totals = _EpochTotals(steps_per_epoch)
            if resumed:
                totals.loss_sum, totals.seconds = position.loss_sum, position.seconds
            lr = epoch_learning_rate(config.optim, epoch)
            interval_start, interval_steps = totals.started, 0
            for step_in_epoch in range(first, steps_per_epoch):
                state, metrics = train_step(state, shard_batch(next(batches), mesh))
                step += 1
                interval_steps += 1
                totals.pending.append(metrics["loss"])
                bar.update(1)
                last = step_in_epoch + 1 == steps_per_epoch
                logged = step % config.log_every_steps == 0 or last
                saving = bool(config.save_every_steps) and step % config.save_every_steps == 0
                if logged:
                    loss = totals.collect()  # waits for the step: the rate below is real
                    now = time.perf_counter()
                    rate = interval_steps * batch / max(now - interval_start, 1e-9)
                    interval_start, interval_steps = now, 0
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", pairs_s=f"{rate:.1f}")
                    if writer is not None:
                        writer.add_scalar("train/loss", loss, step)
                        writer.add_scalar("train/lr", lr, step)
                        writer.add_scalar("train/pairs_per_s", rate, step)
                if saving:
                    checkpointer.save(state, totals.position(step, epoch, step_in_epoch + 1))
                # With several processes all of them stop at the same step: they agree on it where
                # they all pause anyway (a log step, a checkpoint, the epoch's end).
                if (single or logged or saving) and any_process(stop.requested):
                    interrupted = True
                    break
            bar.close()
            if interrupted and not last:
                checkpointer.save(state, totals.position(step, epoch, step_in_epoch + 1))
                say(
                    f"interrupted: checkpoint at step {step} in {checkpointer.directory}; "
                    "run the same command again to resume"
                )
                break
            totals.collect()
            seconds = totals.elapsed()
            epoch_loss = totals.loss_sum / steps_per_epoch
            figures = validate(step)
            record = {
                "epoch": epoch + 1,
                "step": step,
                "train/loss": epoch_loss,
                **figures,
                "seconds": round(seconds, 1),
            }
            history.append(record)
            say(
                f"epoch {epoch + 1}/{epochs}: loss {epoch_loss:.4f}, "
                + _format(figures)
                + f", {steps_per_epoch * batch / max(seconds, 1e-9):.1f} pairs/s"
            )
            checkpointer.save(state, Position(step, epoch + 1, 0))
            if is_main:
                write_text_atomic(history_path, json.dumps(history, indent=1) + "\n")
            if interrupted:
                say(
                    f"interrupted: checkpoint at step {step} in {checkpointer.directory}; "
                    "run the same command again to resume"
                )
                break

    if writer is not None:
        writer.close()
    completed = sum(1 for record in history if record["epoch"] > 0)
    interrupted = interrupted and step < epochs * steps_per_epoch
    result = TrainResult(step, completed, interrupted, history)
    if not interrupted and is_main:
        result.weights, result.pth = _export(state, config, workdir, say)
    return result


def _finished_run(workdir: Path, checkpointer: Checkpointer, epochs: int) -> TrainResult | None:
    """The result of a run that completed in ``workdir`` (checkpoints and exported weights), or None.

    Complete means: the newest checkpoint is the end of the last of ``epochs`` epochs, and
    ``final.msgpack`` (written only after it) exists; the checkpointer has checked that the run's
    settings are this one's. Weights left beside older checkpoints (a run rolled back to one of
    them) do not count: that run resumes.
    """
    weights, pth = workdir / "final.msgpack", workdir / "final.pth"
    step = checkpointer.latest()
    if step is None or not weights.is_file() or checkpointer.position(step).epoch < epochs:
        return None
    history_path = workdir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.is_file() else []
    completed = sum(1 for record in history if record["epoch"] > 0)
    return TrainResult(step, completed, False, history, weights, pth if pth.is_file() else None)


@dataclasses.dataclass
class _EpochTotals:
    """An epoch's loss sum and training seconds: those of the steps before this run's first (from
    the checkpoint) plus this run's; the losses not yet read from the device wait in ``pending``."""

    steps_per_epoch: int
    loss_sum: float = 0.0
    seconds: float = 0.0
    pending: list = dataclasses.field(default_factory=list)
    started: float = dataclasses.field(default_factory=time.perf_counter)

    def collect(self) -> float:
        """Add the pending losses to the sum, in step order; returns the newest loss."""
        losses = [float(loss) for loss in host_copy(self.pending)]
        self.pending = []
        for loss in losses:
            self.loss_sum += loss
        return losses[-1] if losses else float("nan")

    def elapsed(self) -> float:
        """Training seconds of the epoch so far."""
        return self.seconds + time.perf_counter() - self.started

    def position(self, step: int, epoch: int, next_step: int) -> Position:
        """The checkpoint position after ``next_step`` steps of ``epoch`` (rolling over at its end)."""
        if next_step >= self.steps_per_epoch:
            return Position(step, epoch + 1, 0)
        self.collect()
        return Position(step, epoch, next_step, self.loss_sum, self.elapsed())


def _batches(loader: PairLoader, position: Position, epochs: int) -> Iterator[dict]:
    """All remaining batches of the run, from one set of loader workers."""
    if position.epoch >= epochs:
        return iter(())
    return loader.batches(position.epoch, epochs - position.epoch, position.step_in_epoch)


def _format(figures: dict) -> str:
    parts = []
    if "val/peak_error" in figures:
        parts.append(f"val peak error {figures['val/peak_error']:.2f} cells")
    if "val/auc" in figures:
        parts.append(f"val AUC {figures['val/auc']:.3f}")
    return ", ".join(parts) or "no validation data"


def _summary_writer(workdir: Path):
    from tensorboardX import SummaryWriter

    return SummaryWriter(str(workdir / "tensorboard"))


def _export(state: TrainState, config: TrainConfig, workdir: Path, say: Log) -> tuple[Path, Path | None]:
    """Write ``final.msgpack`` (ours) and ``final.pth`` (siamfc-pytorch) into the workdir."""
    variables = host_copy({"params": state.params, "batch_stats": state.batch_stats})
    weights = workdir / "final.msgpack"
    save_weights(weights, variables, config.model)
    pth: Path | None = workdir / "final.pth"
    try:
        export_pth(pth, variables)
    except WeightsError as error:  # PyTorch is optional at run time
        say(f"final.pth not written: {error}; convert later with python -m siamfc_jax.convert")
        pth = None
    say(f"weights: {weights}" + (f" and {pth}" if pth else ""))
    return weights, pth
