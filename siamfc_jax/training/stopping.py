"""Ctrl-C during training: stop after the current step, or abandon work that holds no step.

Host code. :class:`StopRequest` replaces the SIGINT handler while training runs (in the main thread;
elsewhere Python delivers no signals). The loop marks the work it may abandon (data preparation,
validation: abandoning them loses no training) with :meth:`StopRequest.abandonable`; everywhere else (a
train step being compiled or run, a checkpoint being written) the first Ctrl-C only sets
:attr:`StopRequest.requested`, which the loop reads after each step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


class TrainingStopped(BaseException):
    """Ctrl-C in work that holds no train step (data preparation, validation): it is abandoned.

    A ``BaseException``, as ``KeyboardInterrupt`` is, so that no ``except Exception`` swallows it,
    and not a ``KeyboardInterrupt``, which the tracker's frame loop takes as the end of a sequence.
    """


class StopRequest:
    """This process's Ctrl-C: the first asks to stop (at once inside :meth:`abandonable` work, else
    after the current step), a second aborts at once (``KeyboardInterrupt``).

    Only this process's flag: the loop combines the processes' flags
    (:func:`~siamfc_jax.training.distributed.any_process`)."""

    def __init__(self, log: Callable[[str], None], several_processes: bool = False) -> None:
        self.requested = False
        self._log = log
        self._when = (
            "at the next log step, checkpoint or epoch end, with the other processes"
            if several_processes
            else "after this step"
        )
        self._abandonable = False
        self._previous = None

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._abandonable:
            self._log("\nstopping now; Ctrl-C again to abort without saving")
            raise TrainingStopped
        self._log(f"\nstopping {self._when}; Ctrl-C again to abort without saving")

    @contextlib.contextmanager
    def abandonable(self, allowed: bool = True) -> Iterator[None]:
        """Within: Ctrl-C raises :class:`TrainingStopped` (when ``allowed``), as does entering after one."""
        if allowed and self.requested:
            raise TrainingStopped
        self._abandonable = allowed
        try:
            yield
        finally:
            self._abandonable = False

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
