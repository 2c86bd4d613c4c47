"""Training checkpoints with Orbax: the train state plus where in the data stream training stands.

A checkpoint is saved at the end of every epoch, every ``save_every_steps`` steps if set, and on
Ctrl-C; only the newest ``keep`` are kept. With several processes (``jax.distributed``) every
process calls :meth:`Checkpointer.save` and :meth:`Checkpointer.restore` at the same points: Orbax
has each write its part into ``workdir``, which all hosts must share, with process 0 writing the
metadata and completing the checkpoint. Orbax writes each one into a temporary directory and
renames it when complete, so an interrupted save never replaces a good checkpoint. With the
position (epoch, step within it) the loader regenerates exactly the batches that follow, so a
resumed run continues with the same losses as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Collection
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from siamfc_jax.training.state import TrainState


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a checkpoint sits in training: the next batch to train on is step ``step_in_epoch`` of
    ``epoch``; ``step`` counts all steps so far. ``loss_sum`` and ``seconds`` are the sum of the
    losses and the training time of the epoch's first ``step_in_epoch`` steps, so that the epoch's
    figures after a resume cover all its steps (0 at an epoch's start)."""

    step: int
    epoch: int
    step_in_epoch: int
    loss_sum: float = 0.0
    seconds: float = 0.0


def _differences(stored: dict, wanted: dict, prefix: str = "", free: Collection[str] = ()) -> list[str]:
    """``setting: <stored> in the checkpoints, <wanted> now`` for each differing (nested) setting
    whose dotted path is not in ``free``."""
    lines = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            lines += _differences(old, new, f"{prefix}{key}.", free)
        elif old != new and prefix + key not in free:
            lines.append(f"{prefix}{key}: {old!r} in the checkpoints, {new!r} now")
    return lines


class Checkpointer:
    """Saves and restores :class:`TrainState` and :class:`Position` under ``<workdir>/checkpoints``.

    Args:
      workdir: the training run's directory.
      keep: how many of the newest checkpoints to keep.
      run_config: a JSON-serialisable description of the run, stored beside the checkpoints by the
        run that saved them; a resumed run must describe itself identically (a different batch size
        or seed would make the restored position meaningless) but for the dotted paths in ``free``.
      free: settings of ``run_config`` that may differ on resuming (the number of epochs: a run can
        be extended); :attr:`stored_run_config` keeps the stored values.

    Raises:
      ValueError: the checkpoints belong to a run with other settings (the message names them).
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        keep: int = 3,
        run_config: dict | None = None,
        free: Collection[str] = (),
    ):
        self.directory = Path(workdir).resolve() / "checkpoints"
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        if run_config is not None and jax.process_index() == 0 and not self._has_checkpoints():
            # Orbax writes the description once and never replaces it: one left by a run stopped
            # before its first checkpoint describes no checkpoint and would misdescribe this run.
            shutil.rmtree(self.directory / ocp.checkpoint_manager.METADATA_ITEM_NAME, ignore_errors=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options, metadata=run_config)
        stored = self._manager.metadata().custom_metadata if self.latest() is not None else None
        # The description stored with the checkpoints (None without any): the run as it started.
        self.stored_run_config: dict | None = stored or None
        changed = _differences(stored, run_config, free=free) if run_config is not None and stored else []
        if changed:
            self._manager.close()
            raise ValueError(
                f"{self.directory}: the checkpoints belong to a run with different settings "
                f"({'; '.join(changed)}); use another --workdir or the original settings"
            )

    def _has_checkpoints(self) -> bool:
        return self.directory.is_dir() and any(path.name.isdigit() for path in self.directory.iterdir())

    def latest(self) -> int | None:
        """Step of the newest checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, state: TrainState, position: Position) -> None:
        """Write a checkpoint for ``position.step`` (blocking until it is on disk).

        A step that already has one (the last step of an epoch saved by ``save_every_steps``, or a
        resumed run stopped before its first step) is left as it is: its state and position are
        the same.
        """
        if position.step in self._manager.all_steps():
            return
        self._manager.save(
            position.step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                position=ocp.args.JsonSave(dataclasses.asdict(position)),
            ),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore(self, template: TrainState, step: int | None = None) -> tuple[TrainState, Position]:
        """The checkpoint of ``step`` (default: the newest), shaped and placed like ``template``."""
        step = self.latest() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{self.directory}: no checkpoint to restore")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), position=ocp.args.JsonRestore()
            ),
        )
        return restored["state"], Position(**restored["position"])

    def position(self, step: int | None = None) -> Position:
        """The :class:`Position` stored with ``step`` (default: the newest), without its state."""
        step = self.latest() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{self.directory}: no checkpoint to restore")
        restored = self._manager.restore(step, args=ocp.args.Composite(position=ocp.args.JsonRestore()))
        return Position(**restored["position"])

    def close(self) -> None:
        """Finish pending writes and release the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
