"""Validation during training: small evaluators whose ``run(state)`` yields ``(name, value)`` pairs.

Host code. Every process of a multi-process run calls ``run`` at the same points and gets the same
figures: the pair evaluator reads a replicated mean, the tracking evaluator splits the sequences
between the processes and adds up their scores. Parameters stay on the devices; nothing is copied
to the host and back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.evaluation.tracking import track_sequence
from siamfc_jax.sequences.sequence import Sequence as TrackedSequence
from siamfc_jax.tracker import Tracker
from siamfc_jax.training.distributed import host_copy, local_replica, process_sums
from siamfc_jax.training.state import TrainState
from siamfc_jax.training.step import make_peak_error_step, shard_batch


class Evaluator(Protocol):
    def run(self, state: TrainState) -> Iterator[tuple[str, float]]:
        """The evaluator's figures for ``state``, as ``(name, value)`` pairs."""
        ...


def _variables(state: TrainState) -> dict:
    return {"params": state.params, "batch_stats": state.batch_stats}


class PeakErrorEvaluator:
    """``val/peak_error``: mean distance in response cells from the response peak to the map centre
    (where the target is) over a fixed batch of validation pairs, in evaluation mode.

    Args:
      batch: this process's slice of the batch (``exemplar``, ``search`` uint8 images), uploaded
        once here.
      model_config: the network.
      mesh: the training mesh; the batch is split over it as in training.
    """

    def __init__(self, batch: dict[str, np.ndarray], model_config: ModelConfig, mesh: Mesh) -> None:
        self._batch = shard_batch(batch, mesh)
        errors = make_peak_error_step(model_config, mesh)
        self._mean = jax.jit(
            lambda variables, batch: jnp.mean(errors(variables, batch)),
            out_shardings=NamedSharding(mesh, P()),
        )

    def run(self, state: TrainState) -> Iterator[tuple[str, float]]:
        yield "val/peak_error", float(host_copy(self._mean(_variables(state), self._batch)))


class TrackingEvaluator:
    """``val/auc``: mean success AUC of tracking ``sequences`` from their first box
    (:func:`~siamfc_jax.evaluation.tracking.track_sequence`), over those with ground truth.

    Process ``p`` of ``n`` tracks sequences ``p, p + n, …`` on its first device with its own replica
    of the parameters; the sums of the scores are added up over the processes.
    """

    def __init__(
        self,
        sequences: Sequence[TrackedSequence],
        model_config: ModelConfig,
        tracker_config: TrackerConfig = TrackerConfig(),
    ) -> None:
        self._sequences = tuple(sequences)[jax.process_index() :: jax.process_count()]
        self._model_config = model_config
        self._tracker_config = tracker_config

    def run(self, state: TrainState) -> Iterator[tuple[str, float]]:
        tracker = Tracker((local_replica(_variables(state)), self._model_config), self._tracker_config)
        scores = [track_sequence(tracker, sequence, progress=False).scores for sequence in self._sequences]
        aucs = [score["auc"] for score in scores if score is not None]
        total, count = process_sums(np.asarray([sum(aucs), len(aucs)], np.float32))
        if count:
            yield "val/auc", float(total / count)
