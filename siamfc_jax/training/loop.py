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

The run is an epoch function (:func:`_train_epoch`) followed by the epoch's end (:func:`_end_epoch`:
checkpoint, validation, record), with periodic actions after every step, as
``clu.periodic_actions`` has them: progress every ``log_every_steps``, a checkpoint every
``save_every_steps``, and the stop check.

Ctrl-C (SIGINT) is handled from the first line to the last. Where a train step is under way
(compiling it, training, saving a checkpoint) the first Ctrl-C lets it finish, and the run stops
after it, with a checkpoint of every step done; where none is (preparing the data, validating: no
training is lost), the work is abandoned at once. Either way :func:`train` returns with
``interrupted`` set and its last line says where the checkpoint is. A second Ctrl-C raises
``KeyboardInterrupt`` at once, saving nothing. A validation abandoned after an epoch leaves that
epoch's record without validation figures (the checkpoint of the epoch's end is saved before it).
With several processes, a Ctrl-C reaching any of them stops all of them at the same step, agreed at
the points where they all pause anyway (a log step, a checkpoint, an epoch's end); there validation,
which runs collectives, is not abandoned.

Throughput (``pairs/s``) counts the steps after the first one of each process, whose time is mostly
compilation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from siamfc_jax.config import OptimConfig, TrainConfig
from siamfc_jax.files import write_text_atomic
from siamfc_jax.interop.torch_weights import WeightsError
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
from siamfc_jax.training.meters import EpochTotals, Throughput
from siamfc_jax.training.state import TrainState, create_train_state, epoch_learning_rate, make_optimizer
from siamfc_jax.training.step import data_mesh, make_train_step, shard_batch, shared_machine_plan
from siamfc_jax.training.stopping import StopRequest, TrainingStopped
from siamfc_jax.weights import export_pth, save_weights

Log = Callable[[str], None]
Status = Callable[[str], None]
VALIDATION_BATCH = 16
# Settings a resumed run may change: more epochs extend a run (see decay_schedule).
EXTENSIBLE_SETTINGS = ("optim.epochs",)


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
    """The settings that determine a run's trajectory; a resumed run must have the same, but for
    :data:`EXTENSIBLE_SETTINGS` (the stored ``optim.epochs`` is the epochs the run started with)."""
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


def decay_schedule(config: OptimConfig, stored: dict | None) -> OptimConfig:
    """The optimiser settings whose learning-rate decay the run follows.

    The decay is fixed by the epochs the run started with (``stored``: its checkpoints' run
    identity, None for a new run): siamfc-pytorch's ``initial_lr · γ^epoch`` with
    ``γ = (ultimate_lr / initial_lr)^(1 / epochs)``. A run extended to more epochs keeps the rates
    of the epochs it trained and goes on decaying by the same γ per epoch, past ``ultimate_lr``; it
    is the run that was trained, continued, not a run planned longer from the start (whose earlier
    epochs would have trained at higher rates).
    """
    if stored is None:
        return config
    return dataclasses.replace(config, epochs=int(stored["optim"]["epochs"]))


@dataclasses.dataclass
class _Run:
    """A run in progress: what its epochs share, and the state, step count and history it advances."""

    config: TrainConfig
    schedule: OptimConfig
    mesh: Mesh
    steps_per_epoch: int
    batches: Iterator[dict]
    train_step: Callable[[TrainState, dict], tuple[TrainState, dict[str, jax.Array]]]
    evaluators: list[Evaluator]
    checkpointer: Checkpointer
    stop: StopRequest
    log: Log
    status: Status
    writer: Any
    progress: bool
    state: TrainState
    step: int
    history: list[dict]
    meter: Throughput

    @property
    def single(self) -> bool:
        return jax.process_count() == 1


def train(
    config: TrainConfig, progress: bool = True, log: Log = print, status: Status | None = None
) -> TrainResult:
    """Train as ``config`` says, resuming from ``<workdir>/checkpoints`` when it holds a checkpoint.

    With several processes (``jax.distributed`` initialised) every process calls this with the same
    config; process 0 logs and exports, all of them checkpoint. ``log`` gets the run's lines,
    ``status`` what it is doing now ("compiling the train step", "epoch 2/6, step 40 of 300"), e.g.
    for a heartbeat. Ctrl-C: see the module's docstring.

    Raises:
      DataError: the training data is missing or malformed.
      ValueError: inconsistent settings (e.g. a batch that does not split over the devices, or a
        workdir whose checkpoints belong to other settings).
      ProcessLost: with several processes, a collective failed (another process died or stalled).
      KeyboardInterrupt: a second Ctrl-C.
    """
    is_main = jax.process_index() == 0
    log = log if is_main else (lambda message: None)
    status = status if status is not None and is_main else (lambda text: None)
    try:
        with StopRequest(log, several_processes=jax.process_count() > 1) as stop:
            return _train(config, progress and is_main, log, status, stop)
    except Exception as error:
        if is_collective_failure(error):
            raise lost_process_error(error) from error
        raise


def _train(config: TrainConfig, progress: bool, log: Log, status: Status, stop: StopRequest) -> TrainResult:
    workdir = Path(config.workdir).expanduser()
    log(describe_devices())
    log(describe_allocator())
    # Before any work: checkpoints of other settings are refused, a finished run is not redone.
    checkpointer = Checkpointer(
        workdir, config.keep_checkpoints, run_identity(config), free=EXTENSIBLE_SETTINGS
    )
    with contextlib.closing(checkpointer):
        finished = _finished_run(workdir, checkpointer, config.optim.epochs)
        if finished is not None:
            log(
                f"finished: {workdir} holds a completed run ({finished.epochs_completed} epochs, step "
                f"{finished.step}); weights in {finished.weights}. Nothing to do (another --workdir "
                "trains anew, a larger --optim.epochs extends it)"
            )
            return finished
        try:
            run, position = _start(config, checkpointer, progress, log, status, stop)
        except TrainingStopped:
            log(_interrupted_line(checkpointer))
            return TrainResult(checkpointer.latest() or 0, 0, True, [])
        interrupted = _run_epochs(run, position)
        _close(run)
        epochs = config.optim.epochs
        completed = sum(1 for record in run.history if record["epoch"] > 0)
        interrupted = interrupted and run.step < epochs * run.steps_per_epoch
        result = TrainResult(run.step, completed, interrupted, run.history)
        if interrupted:
            log(_interrupted_line(checkpointer))
        elif jax.process_index() == 0:
            status("exporting the weights")
            result.weights, result.pth = _export(run.state, config, workdir, log)
    return result


def _start(
    config: TrainConfig,
    checkpointer: Checkpointer,
    progress: bool,
    log: Log,
    status: Status,
    stop: StopRequest,
) -> tuple[_Run, Position]:
    """Prepare the data, make or restore the state, validate the untrained network: the run at its
    (resumed) position. Raises :class:`TrainingStopped` on Ctrl-C before the first step."""
    mesh = data_mesh()
    batch = config.optim.batch_size
    if batch % mesh.size:
        raise ValueError(f"--batch-size {batch} does not split evenly over {mesh.size} devices")
    status("preparing the training data")
    with stop.abandonable():
        data = prepare_training_data(config, workers=config.workers or None, progress=progress, log=log)
        wait_for_all_processes("siamfc_jax/training_data_ready")
    data = _same_crop_source_everywhere(data, log)
    log(f"data: {data.description}; {len(data.train.names)} training sequences")
    loader = PairLoader(
        data.train,
        batch,
        seed=config.seed,
        workers=config.workers,
        config=config.pairs,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    schedule = decay_schedule(config.optim, checkpointer.stored_run_config)
    optimizer = make_optimizer(schedule, loader.steps_per_epoch)
    state, position = _initial_state(config, optimizer, mesh, checkpointer, loader.steps_per_epoch, log)
    if schedule.epochs < config.optim.epochs:
        log(
            f"extending the run from {schedule.epochs} to {config.optim.epochs} epochs: the learning "
            f"rate goes on decaying as in the first {schedule.epochs} (epoch {config.optim.epochs}: "
            f"{epoch_learning_rate(schedule, config.optim.epochs - 1):.2e})"
        )
    workdir = Path(config.workdir).expanduser()
    run = _Run(
        config=config,
        schedule=schedule,
        mesh=mesh,
        steps_per_epoch=loader.steps_per_epoch,
        batches=_batches(loader, position, config.optim.epochs),
        train_step=_make_train_step(config, optimizer, mesh, log),
        evaluators=_evaluators(data, config, mesh),
        checkpointer=checkpointer,
        stop=stop,
        log=log,
        status=status,
        writer=_summary_writer(workdir) if jax.process_index() == 0 else None,
        progress=progress,
        state=state,
        step=position.step,
        history=_read_history(workdir, position),
        meter=Throughput(batch),
    )
    if position.step == 0 and run.evaluators:
        untrained = _validate(run)
        if untrained is None or any_process(stop.requested):
            _close(run)
            raise TrainingStopped
        log("untrained: " + _format(untrained))
        _record(run, {"epoch": 0, "step": 0, **untrained})
    if run.single and stop.requested:
        _close(run)
        raise TrainingStopped
    return run, position


def _same_crop_source_everywhere(data: TrainingData, log: Log) -> TrainingData:
    """``data`` with training crops from the decoded store only where every process has one (each
    decides on its own disk): all processes then read their crops the same way, and so share one
    throughput. The pairs are the same either way."""
    has_store = data.train.store is not None
    if not any_process(not has_store) or not has_store:
        return data
    log("decoded crops: not in every process; every process decodes the JPEG crops")
    return dataclasses.replace(data, train=data.train.with_store(None))


def _close(run: _Run) -> None:
    if run.writer is not None:
        run.writer.close()


def _make_train_step(config: TrainConfig, optimizer, mesh: Mesh, log: Log) -> Callable:
    """The run's compiled-on-first-call train step, on the machine's convolution plan for a device's
    share of the batch (every process runs process 0's plan)."""
    sizes = config.pairs.exemplar_sz, config.pairs.search_sz
    workload = Workload.training(config.optim.batch_size // mesh.size, *sizes)
    plan = shared_machine_plan(config.model, workload, log)
    return make_train_step(
        config.model, config.loss, optimizer, mesh, *sizes, dtype=config.compute_dtype, plan=plan
    )


def _initial_state(
    config: TrainConfig, optimizer, mesh: Mesh, checkpointer: Checkpointer, steps_per_epoch: int, log: Log
) -> tuple[TrainState, Position]:
    """A fresh state at position 0, or the newest checkpoint's state and position."""
    # Initialised on the devices, placed replicated: nothing goes from the host to them.
    state = jax.jit(
        lambda: create_train_state(config.model, optimizer, jax.random.key(config.seed)),
        out_shardings=NamedSharding(mesh, P()),
    )()
    if checkpointer.latest() is None:
        return state, Position(0, 0, 0)
    state, position = checkpointer.restore(state)
    log(
        f"resuming from {checkpointer.directory / str(position.step)} (epoch {position.epoch + 1}, "
        f"step {position.step_in_epoch} of {steps_per_epoch})"
    )
    return state, position


def _read_history(workdir: Path, position: Position) -> list[dict]:
    """history.json's records up to ``position``: those after it (a run that died later) are redone."""
    path = workdir / "history.json"
    if not position.step or not path.is_file():
        return []
    return [record for record in json.loads(path.read_text()) if record["step"] <= position.step]


def _run_epochs(run: _Run, position: Position) -> bool:
    """Train from ``position`` to the last epoch; returns whether a Ctrl-C stopped the run."""
    epochs = run.config.optim.epochs
    for epoch in range(position.epoch, epochs):
        totals = EpochTotals(run.steps_per_epoch)
        first = 0
        if epoch == position.epoch:  # the epoch's loss and time so far, from the checkpoint
            first, totals.loss_sum = position.step_in_epoch, position.loss_sum
            totals.seconds = position.seconds
        run.meter.start_epoch()
        if _train_epoch(run, epoch, first, totals):
            return True
        if _end_epoch(run, epoch, totals):
            return True
    return False


def _train_epoch(run: _Run, epoch: int, first: int, totals: EpochTotals) -> bool:
    """Steps ``first ..`` of ``epoch``, each followed by the periodic actions; returns whether a stop
    was agreed, after a step whose checkpoint is then saved (at the epoch's last step the epoch's
    end saves it)."""
    epochs, steps = run.config.optim.epochs, run.steps_per_epoch
    bar = tqdm(
        total=steps,
        initial=first,
        desc=f"epoch {epoch + 1}/{epochs}",
        disable=not run.progress,
        dynamic_ncols=True,
    )
    with contextlib.closing(bar):
        for step_in_epoch in range(first, steps):
            if run.meter.first_step:
                run.status("compiling the train step")
            run.state, metrics = run.train_step(run.state, shard_batch(next(run.batches), run.mesh))
            run.step += 1
            run.meter.count()
            totals.pending.append(metrics["loss"])
            bar.update(1)
            done = step_in_epoch + 1
            run.status(f"epoch {epoch + 1}/{epochs}, step {done} of {steps}")
            logged = _report_progress(run, epoch, totals, bar, last=done == steps)
            saved = _save_every(run, epoch, done, totals)
            if done < steps and _stop_agreed(run, paused=logged or saved):
                if not saved:
                    _save(run, totals.position(run.step, epoch, done))
                return True
    return False


def _report_progress(run: _Run, epoch: int, totals: EpochTotals, bar: tqdm, last: bool) -> bool:
    """Periodic action: every ``log_every_steps`` steps and at the epoch's end, the newest loss, the
    learning rate and the throughput on the bar and in TensorBoard. Returns whether it ran."""
    first = run.meter.first_step
    if not (first or last or run.step % run.config.log_every_steps == 0):
        return False
    loss = totals.collect()  # waits for the step: the throughput below is real
    rate = run.meter.mark()
    if first:
        run.log("pairs/s: counted over the steps after this process's first (its compilation)")
    if rate is None:
        return True
    lr = epoch_learning_rate(run.schedule, epoch)
    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", pairs_s=f"{rate:.1f}")
    if run.writer is not None:
        run.writer.add_scalar("train/loss", loss, run.step)
        run.writer.add_scalar("train/lr", lr, run.step)
        run.writer.add_scalar("train/pairs_per_s", rate, run.step)
    return True


def _save_every(run: _Run, epoch: int, done: int, totals: EpochTotals) -> bool:
    """Periodic action: a checkpoint every ``save_every_steps`` steps. Returns whether it ran."""
    every = run.config.save_every_steps
    if not every or run.step % every:
        return False
    _save(run, totals.position(run.step, epoch, done))
    return True


def _save(run: _Run, position: Position) -> None:
    run.status("saving a checkpoint")
    run.checkpointer.save(run.state, position)


def _stop_agreed(run: _Run, paused: bool) -> bool:
    """Periodic action: whether to stop now. One process checks after every step; several agree
    where they all pause anyway (``paused``: a log step, a checkpoint; and the epoch's end)."""
    return (run.single or paused) and any_process(run.stop.requested)


def _end_epoch(run: _Run, epoch: int, totals: EpochTotals) -> bool:
    """The epoch's checkpoint, validation and record (history.json, TensorBoard, the log line).
    Returns whether a Ctrl-C stopped the run (during or before it)."""
    totals.collect()
    seconds, rate = totals.elapsed(), run.meter.epoch_rate()
    _save(run, Position(run.step, epoch + 1, 0))
    figures = _validate(run)
    epoch_loss = totals.loss_sum / run.steps_per_epoch
    record = {"epoch": epoch + 1, "step": run.step, "train/loss": epoch_loss, **(figures or {})}
    _record(run, {**record, "seconds": round(seconds, 1)})
    text = _format(figures) if figures is not None else "validation interrupted: no figures"
    rate_text = f", {rate:.1f} pairs/s" if rate is not None else ""
    run.log(f"epoch {epoch + 1}/{run.config.optim.epochs}: loss {epoch_loss:.4f}, {text}{rate_text}")
    return figures is None or _stop_agreed(run, paused=True)


def _record(run: _Run, record: dict) -> None:
    """Add ``record`` to the history and write history.json (process 0), at once: a run stopped
    later resumes with it."""
    run.history.append(record)
    if jax.process_index() == 0:
        history_path = Path(run.config.workdir).expanduser() / "history.json"
        write_text_atomic(history_path, json.dumps(run.history, indent=1) + "\n")


def _validate(run: _Run) -> dict | None:
    """The evaluators' figures of the current state (also to TensorBoard), or None when a Ctrl-C
    abandoned them (one process only: several run collectives in them, and finish them)."""
    run.status("validating")
    try:
        with run.stop.abandonable(allowed=run.single):
            figures = dict(pair for evaluator in run.evaluators for pair in evaluator.run(run.state))
    except TrainingStopped:
        return None
    if run.writer is not None:
        for name, value in figures.items():
            run.writer.add_scalar(name, value, run.step)
        run.writer.flush()
    return figures


def _interrupted_line(checkpointer: Checkpointer) -> str:
    step = checkpointer.latest()
    if step is None:
        return "interrupted before the first step: no checkpoint; run the same command again to start"
    return (
        f"interrupted: checkpoint at step {step} in {checkpointer.directory}; run the same command "
        "again to resume"
    )


def _finished_run(workdir: Path, checkpointer: Checkpointer, epochs: int) -> TrainResult | None:
    """The result of a run that completed in ``workdir`` (checkpoints and exported weights), or None.

    Complete means: the newest checkpoint is the end of the last of ``epochs`` epochs (or later),
    and ``final.msgpack`` (written only after it) exists; the checkpointer has checked that the
    run's settings are this one's. Weights left beside older checkpoints (a run rolled back to one
    of them, or a finished run extended to more epochs) do not count: that run resumes.
    """
    weights, pth = workdir / "final.msgpack", workdir / "final.pth"
    step = checkpointer.latest()
    if step is None or not weights.is_file() or checkpointer.position(step).epoch < epochs:
        return None
    history_path = workdir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.is_file() else []
    completed = sum(1 for record in history if record["epoch"] > 0)
    return TrainResult(step, completed, False, history, weights, pth if pth.is_file() else None)


def _evaluators(data: TrainingData, config: TrainConfig, mesh: Mesh) -> list[Evaluator]:
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


def _export(state: TrainState, config: TrainConfig, workdir: Path, log: Log) -> tuple[Path, Path | None]:
    """Write ``final.msgpack`` (ours) and ``final.pth`` (siamfc-pytorch) into the workdir."""
    variables = host_copy({"params": state.params, "batch_stats": state.batch_stats})
    weights = workdir / "final.msgpack"
    save_weights(weights, variables, config.model)
    pth: Path | None = workdir / "final.pth"
    try:
        export_pth(pth, variables)
    except WeightsError as error:  # PyTorch is optional at run time
        log(f"final.pth not written: {error}; convert later with python -m siamfc_jax.convert")
        pth = None
    log(f"weights: {weights}" + (f" and {pth}" if pth else ""))
    return weights, pth
