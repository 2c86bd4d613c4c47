"""Evaluation across processes and hosts: each process tracks its share, process 0 merges (host code).

With ``--distributed`` every process of a ``jax.distributed`` run opens the same sorted list of
jobs (sequences, or candidate × sequence pairs for tuning) and takes a deterministic share of it
(:func:`balanced_split`, balanced by the frames each job tracks), which it tracks on its own
devices and writes into ``--out``. The per-job results then travel to process 0, the coordinator,
through the key-value store of the coordination service that ``jax.distributed.initialize`` starts
(:class:`KeyValueChannel`), never through the output folder: the hosts need not share a
filesystem. Process 0 merges them in job order and writes the summary, so the summary holds the
same numbers as a one-process run's. Without a shared ``--out`` each host keeps the per-sequence
files of its own share and process 0 also holds the summary.

A process that fails posts its one-line error before it ends (:func:`reporting_failures`), and
every process waiting on another gives up with that line, or when the other process is no longer
alive, instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from siamfc_jax.evaluation.outputs import claim_outputs
from siamfc_jax.evaluation.scoring import FolderResult, SequenceResult, summarize

# Key prefix in the coordination service, apart from the keys JAX itself uses there.
KEY_PREFIX = "siamfc_jax/evaluation"
POLL_SECONDS = 0.2
# Shares are balanced by frames, not by time: a host may finish hours before another one.
WAIT_TIMEOUT_S = 7 * 24 * 3600
_ARRAYS = ("boxes", "times", "ious", "center_errors")


class ProcessFailed(RuntimeError):
    """Another process of the run failed, ended or did not answer; the message is one line."""


class Channel(Protocol):
    """Where processes leave values for each other (the key-value store of ``jax.distributed``)."""

    def put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` (each key is written once)."""

    def poll(self, key: str) -> bytes | None:
        """The value of ``key``, or None while it is not there."""

    def alive(self, process: int) -> bool:
        """Whether process ``process`` is still running."""


class KeyValueChannel:
    """:class:`Channel` over the coordination service's key-value store of ``jax.distributed``.

    JAX has no public API for that store; its client is the one ``jax.distributed.initialize``
    connected (orbax's multi-host helpers use the same), so no extra port or service is needed.
    """

    def __init__(self, client: object) -> None:
        self._client = client

    def put(self, key: str, value: bytes) -> None:
        self._client.key_value_set_bytes(f"{KEY_PREFIX}/{key}", value)

    def poll(self, key: str) -> bytes | None:
        try:
            return self._client.key_value_try_get_bytes(f"{KEY_PREFIX}/{key}")
        except Exception:  # the client raises a bare runtime error for a missing key
            return None

    def alive(self, process: int) -> bool:
        try:
            return process in self._client.get_live_nodes([process])
        except Exception:  # a service that cannot answer says nothing about the process
            return True


def balanced_split(costs: list[int], count: int) -> list[list[int]]:
    """Split jobs of ``costs`` (frames) into ``count`` shares of nearly equal total cost.

    Deterministic: the largest job first (ties: the lower index) goes to the share with the
    least cost so far (ties: the lower share). Each share's indices are ascending.
    """
    shares: list[list[int]] = [[] for _ in range(count)]
    loads = [0] * count
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        target = min(range(count), key=lambda share: (loads[share], share))
        shares[target].append(index)
        loads[target] += costs[index]
    return [sorted(share) for share in shares]


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in a ``jax.distributed`` run and the channel to the other processes."""

    process: int
    count: int
    channel: Channel
    timeout_s: float = WAIT_TIMEOUT_S

    @property
    def coordinator(self) -> bool:
        return self.process == 0

    def put(self, name: str, value: bytes) -> None:
        """Post this process's ``value`` for step ``name``."""
        self.channel.put(f"{name}/{self.process}", value)

    def wait(self, name: str, process: int) -> bytes:
        """Process ``process``'s value for step ``name``, once it is there.

        Raises:
          ProcessFailed: a process posted an error, ``process`` ended without posting, or it did
            not post within :attr:`timeout_s`.
        """
        deadline = time.monotonic() + self.timeout_s
        while True:
            value = self.channel.poll(f"{name}/{process}")
            if value is not None:
                return value
            for other in range(self.count):
                error = self.channel.poll(f"failed/{other}")
                if error is not None:
                    raise ProcessFailed(f"process {other}: {error.decode()}")
            if not self.channel.alive(process):
                raise ProcessFailed(f"process {process} ended before it sent its results ({name})")
            if time.monotonic() > deadline:
                raise ProcessFailed(f"process {process} sent no results ({name}) in {self.timeout_s:.0f} s")
            time.sleep(POLL_SECONDS)

    def share(self, costs: list[int]) -> Share:
        """This process's share of jobs of ``costs`` (:func:`balanced_split`)."""
        return Share(self, tuple(balanced_split(costs, self.count)[self.process]))


@contextlib.contextmanager
def reporting_failures(cluster: Cluster | None) -> Iterator[None]:
    """Post the one-line error of whatever ends this process early, so that no other process
    waits for it; the error still propagates (Ctrl-C included)."""
    try:
        yield
    except BaseException as error:
        if cluster is not None and not isinstance(error, ProcessFailed):
            message = " ".join(str(error).split()) or type(error).__name__
            if isinstance(error, KeyboardInterrupt):
                message = "interrupted"
            with contextlib.suppress(Exception):
                cluster.channel.put(f"failed/{cluster.process}", message.encode())
        raise


def encode_results(results: Mapping[int, SequenceResult], interrupted: bool) -> bytes:
    """Bytes of the finished results by job index (exact: arrays as float64, scores as JSON)."""
    arrays: dict[str, np.ndarray] = {}
    records = []
    for index, result in results.items():
        for name in _ARRAYS:
            value = getattr(result, name)
            if value is not None:
                arrays[f"{index}.{name}"] = np.asarray(value)
        records.append({
            "index": index, "name": result.name, "num_frames": result.num_frames, "scores": result.scores,
            "interrupted": result.interrupted, "warnings": list(result.warnings),
            "outputs": {kind: str(path) for kind, path in result.outputs.items()},
        })  # fmt: skip
    document = json.dumps({"interrupted": interrupted, "results": records})
    arrays["document"] = np.frombuffer(document.encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_results(data: bytes) -> tuple[dict[int, SequenceResult], bool]:
    """:func:`encode_results`'s results and ``interrupted``."""
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        document = json.loads(stored["document"].tobytes().decode())
        results = {}
        for record in document["results"]:
            index = record["index"]
            arrays = {name: stored[f"{index}.{name}"] for name in _ARRAYS if f"{index}.{name}" in stored}
            results[index] = SequenceResult(
                name=record["name"], num_frames=record["num_frames"], scores=record["scores"],
                interrupted=record["interrupted"], warnings=tuple(record["warnings"]),
                outputs={kind: Path(path) for kind, path in record["outputs"].items()},
                **arrays,
            )  # fmt: skip
    return results, document["interrupted"]


@dataclasses.dataclass(frozen=True)
class Share:
    """The jobs (indices into the sorted job list) one process tracks, and how results meet.

    :func:`~siamfc_jax.evaluation.tracking.run_folder` tracks :attr:`indices` only and ends
    with :meth:`finish`.
    """

    cluster: Cluster
    indices: tuple[int, ...]

    def claim_outputs(self, out_dir: str, names: list[str], *, overwrite: bool, what: str) -> Path:
        """:func:`~siamfc_jax.evaluation.outputs.claim_outputs` across processes: process 0 claims
        every sequence's files and the summary; the others wait for it (a shared folder is then
        ready) and claim their own sequences' files (a folder of their own host)."""
        cluster = self.cluster
        if cluster.coordinator:
            folder = claim_outputs(out_dir, names, overwrite=overwrite, summary=True, what=what)
            cluster.put("claimed", b"")
            return folder
        cluster.wait("claimed", 0)
        own = [names[index] for index in self.indices]
        return claim_outputs(out_dir, own, overwrite=overwrite, what=what)

    def finish(
        self,
        finished: dict[int, SequenceResult],
        interrupted: bool,
        write_summary: Callable[[dict[int, SequenceResult], bool], FolderResult],
    ) -> FolderResult:
        """Send this share's results to process 0, which merges every share's and calls
        ``write_summary(results by index, interrupted)``; the other processes return their own
        results with no summary files."""
        cluster = self.cluster
        if not cluster.coordinator:
            cluster.put("results", encode_results(finished, interrupted))
            results = tuple(finished[index] for index in sorted(finished))
            return FolderResult(results, summarize(results), interrupted, {})
        merged = dict(finished)
        for process in range(1, cluster.count):
            results, stopped = decode_results(cluster.wait("results", process))
            merged.update(results)
            interrupted = interrupted or stopped
        return write_summary(merged, interrupted)
