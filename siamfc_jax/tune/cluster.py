"""Joining a ``jax.distributed`` run to evaluate or tune across processes and hosts (host code).

:mod:`siamfc_jax.evaluation.distributed` splits the work and merges the results without JAX (the
evaluation package runs none); this module starts JAX's coordination service and hands its
key-value store to it. ``track.py --distributed`` and ``python -m siamfc_jax.tune --distributed``
call :func:`connect` once their arguments are known to be good.
"""

from __future__ import annotations

from siamfc_jax.evaluation.distributed import Cluster, KeyValueChannel, ProcessFailed


def connect(coordinator: str | None, num_processes: int | None, process_id: int | None) -> Cluster:
    """Join the ``jax.distributed`` run (arguments as ``jax.distributed.initialize``'s; None:
    auto-detected, e.g. under SLURM) and return this process's :class:`Cluster`.

    Raises:
      ProcessFailed: the run cannot be joined (no coordinator answered, nothing to detect).
    """
    import jax

    # JAX has no public handle on the client that initialize() connects; orbax uses this one too.
    from jax._src import distributed

    try:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
    except (RuntimeError, ValueError) as error:
        detail = " ".join(str(error).split()) or type(error).__name__
        raise ProcessFailed(f"cannot join the distributed run ({detail})") from None
    client = distributed.global_state.client
    return Cluster(jax.process_index(), jax.process_count(), KeyValueChannel(client))
