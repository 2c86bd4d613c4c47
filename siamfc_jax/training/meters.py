"""An epoch's loss and time, and the training throughput (host code).

The losses stay on the devices until read in batches (:meth:`EpochTotals.collect`), so that the host
does not wait for every step; the throughput is measured between such reads, where the device has
finished the steps counted.
"""

from __future__ import annotations

import dataclasses
import time

from siamfc_jax.training.checkpoint import Position
from siamfc_jax.training.distributed import host_copy


@dataclasses.dataclass
class EpochTotals:
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
        """Training seconds of the epoch so far (compilation included)."""
        return self.seconds + time.perf_counter() - self.started

    def position(self, step: int, epoch: int, next_step: int) -> Position:
        """The checkpoint position after ``next_step`` steps of ``epoch`` (rolling over at its end)."""
        if next_step >= self.steps_per_epoch:
            return Position(step, epoch + 1, 0)
        self.collect()
        return Position(step, epoch, next_step, self.loss_sum, self.elapsed())


class Throughput:
    """Pairs per second of this process's steps after its first (compilation, and the measuring of
    convolution formulations, make the first step's time no measure of training).

    :meth:`count` every step; :meth:`mark` where the device has finished the steps so far (their
    losses were read): the rate since the previous mark, and since the epoch's start.
    """

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.first_step = True  # until the mark after this process's first step
        self._steps = 0  # steps after the first, so far
        self._previous: tuple[float, int] | None = None  # (time, steps) of the newest mark
        self._epoch: tuple[float, int] | None = None  # (time, steps) of the epoch's start

    def count(self) -> None:
        self._steps += 0 if self.first_step else 1

    def start_epoch(self) -> None:
        """The epoch starts with the device idle (after the last epoch's end, or the first step)."""
        self._epoch = None if self.first_step else (time.perf_counter(), self._steps)

    def mark(self) -> float | None:
        """Pairs per second since the previous mark (None at the first step's)."""
        now = time.perf_counter()
        if self.first_step:
            self.first_step = False
            self._previous = self._epoch = (now, 0)
            return None
        assert self._previous is not None
        rate = pairs_per_second(self.batch, self._steps - self._previous[1], now - self._previous[0])
        self._previous = (now, self._steps)
        return rate

    def epoch_rate(self) -> float | None:
        """Pairs per second of the epoch's steps up to the newest mark, the first step left out."""
        if self._epoch is None or self._previous is None:
            return None
        steps, seconds = self._previous[1] - self._epoch[1], self._previous[0] - self._epoch[0]
        return pairs_per_second(self.batch, steps, seconds)


def pairs_per_second(batch: int, steps: int, seconds: float) -> float | None:
    """``steps`` batches of ``batch`` pairs in ``seconds``, per second (None for no steps)."""
    return steps * batch / max(seconds, 1e-9) if steps > 0 else None
