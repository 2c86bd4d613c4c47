"""Host-side reads and agreements that are legal when training spans several processes (host code).

With ``jax.distributed`` a replicated global array lives on devices of every process, and fetching
it whole is an error. Each process reads its own replica instead (:func:`local_replica`,
:func:`host_copy`), and values that differ between processes are combined with a collective
(:func:`any_process`, :func:`process_sums`). Every process must reach these collectives at the same
points, in the same order. With one process they reduce to local reads, and every transfer is explicit
(the loop runs under ``jax.transfer_guard("disallow")``).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

# How long processes wait for each other after preparing the data: another process may still be
# curating its own copy of a large dataset (hours for GOT-10k), and no collective runs before this.
PREPARATION_TIMEOUT_S = 24 * 3600


class ProcessLost(RuntimeError):
    """A collective failed: another process of the run died, was stopped, or did not answer in time."""


def local_replica(tree: Any) -> Any:
    """This process's copy of every replicated array of ``tree``, on its first local device.

    No data moves: the result holds single-device arrays that are already there (e.g. to give the
    parameters to a :class:`~siamfc_jax.tracker.Tracker`).
    """
    return jax.tree.map(lambda array: array.addressable_data(0), tree)


def host_copy(tree: Any) -> Any:
    """NumPy copies of the replicated arrays of ``tree``, read from this process's replica."""
    return jax.device_get(local_replica(tree))


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is set in any process (every process must call this at the same point)."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.asarray([flag]))))


def process_sums(values: np.ndarray) -> np.ndarray:
    """Element-wise sums of a (K,) float32 array over all processes (each passes its own)."""
    values = np.asarray(values, np.float32)
    if jax.process_count() == 1:
        return values
    return np.sum(multihost_utils.process_allgather(values), axis=0)


def wait_for_all_processes(name: str) -> None:
    """Block until every process has reached the barrier ``name`` (no-op with one process).

    A barrier of the coordination service rather than a device collective, so that it may wait up
    to :data:`PREPARATION_TIMEOUT_S` while the collective timeout stays short.
    """
    if jax.process_count() == 1:
        return
    import orbax.checkpoint as ocp

    ocp.multihost.sync_global_processes(
        name, timeout=PREPARATION_TIMEOUT_S, processes=set(range(jax.process_count()))
    )


def is_collective_failure(error: BaseException) -> bool:
    """Whether ``error`` is a failed collective of a multi-process run: a peer died, closed its
    connection or did not answer within the collective timeout. JAX 0.10 raises a
    ``JaxRuntimeError``, or for the CPU's gloo collectives a ``ValueError`` naming Gloo."""
    if jax.process_count() == 1:
        return False
    return isinstance(error, jax.errors.JaxRuntimeError) or (
        isinstance(error, ValueError) and "Gloo" in str(error)
    )


def lost_process_error(error: BaseException) -> ProcessLost:
    """A one-line :class:`ProcessLost` for a failed collective (:func:`is_collective_failure`)."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ProcessLost(
        f"process {jax.process_index()}: a collective with the other processes failed; another process "
        f"has probably died, been stopped, or stalled past the collective timeout ({detail})"
    )
