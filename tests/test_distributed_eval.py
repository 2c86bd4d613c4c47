"""Evaluation across processes: two real processes (``jax.distributed`` on 127.0.0.1) track their
shares of a folder and process 0 writes the summary a one-process run writes; plus the pieces
(the split, the exchange of results, failures) without processes.

The folder is :mod:`synthetic_folder`'s three tiny sequences, tracked ``--batch 2`` with the
packaged weights. Children run in their own session with a wall-clock limit and are killed
whatever happens, so nothing outlives a failing test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic_folder import SEQUENCES, write_folder

from siamfc_jax.apps import track
from siamfc_jax.evaluation.distributed import (
    Cluster,
    ProcessFailed,
    balanced_split,
    decode_results,
    encode_results,
    reporting_failures,
)
from siamfc_jax.evaluation.scoring import SequenceResult

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 240
# What differs between a one-process and a two-process run of the same folder: speed and devices.
TIMING_FIELDS = ("fps",)
RUN_FIELDS = ("device",)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(arguments: list[str], log: Path, cache: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1", JAX_COMPILATION_CACHE_DIR=str(cache))
    with open(log, "w") as output:
        return subprocess.Popen(
            [sys.executable, "track.py", *arguments], cwd=REPO_ROOT, env=env, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def finish(children: list[subprocess.Popen]) -> list[int]:
    """Exit codes of ``children``; every one still running at the limit is killed."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    codes = []
    try:
        for child in children:
            codes.append(child.wait(max(deadline - time.monotonic(), 0.1)))
    except subprocess.TimeoutExpired:
        codes.append(None)
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    return codes


def comparable(summary: dict) -> dict:
    """``summary.json`` without the fields that legitimately differ between the runs."""
    summary = {key: value for key, value in summary.items() if key not in RUN_FIELDS}
    summary["overall"] = {k: v for k, v in summary["overall"].items() if k not in TIMING_FIELDS}
    summary["sequences"] = {
        name: {k: v for k, v in entry.items() if k not in TIMING_FIELDS}
        for name, entry in summary["sequences"].items()
    }
    return summary


def table_without_speed(text: str) -> list[str]:
    """``summary.md``'s lines, the fps column of the table left out."""
    return [line.rsplit("|", 2)[0] if line.startswith("|") else line for line in text.splitlines()]


@pytest.mark.slow
def test_two_processes_write_the_summary_of_one_process(tmp_path):
    root = write_folder(tmp_path / "sequences")
    cache, one, two = tmp_path / "cache", tmp_path / "one", tmp_path / "two"
    common = ["--seq", str(root), "--batch", "2", "--no-progress"]
    single = start([*common, "--out", str(one)], tmp_path / "one.log", cache)
    assert finish([single]) == [0], (tmp_path / "one.log").read_text()[-3000:]

    port = free_port()
    distributed = [*common, "--out", str(two), "--distributed", "--coordinator", f"127.0.0.1:{port}",
                   "--num-processes", "2"]  # fmt: skip
    logs = [tmp_path / f"process{rank}.log" for rank in range(2)]
    children = [start([*distributed, "--process-id", str(rank)], logs[rank], cache) for rank in range(2)]
    codes = finish(children)
    assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)

    # Balanced by frames: "wide" (9 frames) on process 0, "small" (6) and "tall" (4) on process 1.
    assert "process 1: tracked 2 of 3 sequences; process 0 writes the summary" in logs[1].read_text()
    expected = json.loads((one / "summary.json").read_text())
    merged = json.loads((two / "summary.json").read_text())
    assert comparable(merged) == comparable(expected)
    assert merged["overall"]["sequences"] == len(SEQUENCES) and not merged["interrupted"]
    assert table_without_speed((two / "summary.md").read_text()) == table_without_speed(
        (one / "summary.md").read_text()
    )
    assert (two / "summary_success.png").stat().st_size > 0
    for name in SEQUENCES:
        assert (two / f"{name}.txt").read_text() == (one / f"{name}.txt").read_text()


def test_balanced_split_is_deterministic_and_balanced():
    costs = [100, 10, 60, 50, 40, 30, 5]
    shares = balanced_split(costs, 2)
    assert shares == balanced_split(costs, 2)
    assert sorted(index for share in shares for index in share) == list(range(len(costs)))
    loads = [sum(costs[index] for index in share) for share in shares]
    assert loads == [150, 145]
    assert balanced_split([3, 3], 3) == [[0], [1], []]


class MemoryChannel:
    """An in-process :class:`~siamfc_jax.evaluation.distributed.Channel`."""

    def __init__(self, dead: tuple[int, ...] = ()) -> None:
        self.values: dict[str, bytes] = {}
        self.dead = dead

    def put(self, key: str, value: bytes) -> None:
        self.values[key] = value

    def poll(self, key: str) -> bytes | None:
        return self.values.get(key)

    def alive(self, process: int) -> bool:
        return process not in self.dead


def result(name: str, frames: int, scored: bool) -> SequenceResult:
    rng = np.random.default_rng(frames)
    return SequenceResult(
        name=name, num_frames=frames, boxes=rng.normal(size=(frames, 4)), times=rng.random(frames),
        scores={"auc": 0.1 + frames / 7, "precision": 1 / 3, "mean_iou": 0.5, "evaluated_frames": frames}
        if scored else None,
        ious=rng.random(frames) if scored else None, center_errors=rng.random(frames) if scored else None,
        warnings=("a warning",), outputs={"boxes": Path("out", f"{name}.txt")},
    )  # fmt: skip


def test_results_travel_exactly_and_process_0_merges_them():
    sent = {2: result("b", 5, True), 0: result("a", 3, False)}
    received, interrupted = decode_results(encode_results(sent, True))
    assert interrupted and sorted(received) == [0, 2]
    for index, original in sent.items():
        copy = received[index]
        for field in ("name", "num_frames", "scores", "warnings", "outputs", "interrupted"):
            assert getattr(copy, field) == getattr(original, field), field
        for field in ("boxes", "times", "ious", "center_errors"):
            expected, got = getattr(original, field), getattr(copy, field)
            assert (expected is None and got is None) or np.array_equal(expected, got), field

    channel = MemoryChannel()
    worker = Cluster(1, 2, channel).share([3, 4, 5])
    coordinator = Cluster(0, 2, channel).share([3, 4, 5])
    assert (coordinator.indices, worker.indices) == ((2,), (0, 1))
    own = worker.finish({0: sent[0]}, False, lambda merged, stopped: pytest.fail("not process 0's"))
    assert not own.outputs and [r.name for r in own.results] == ["a"]
    written = []
    coordinator.finish({2: sent[2]}, False, lambda merged, stopped: written.append((sorted(merged), stopped)))
    assert written == [([0, 2], False)]


def test_a_failed_or_ended_process_stops_the_wait():
    channel = MemoryChannel()
    cluster = Cluster(0, 2, channel)
    with pytest.raises(ValueError), reporting_failures(Cluster(1, 2, channel)):
        raise ValueError("frames/0003.jpg: cannot decode\nthe frame")
    with pytest.raises(ProcessFailed, match=r"^process 1: frames/0003.jpg: cannot decode the frame$"):
        cluster.wait("results", 1)
    with pytest.raises(ProcessFailed, match="process 1 ended before it sent its results"):
        Cluster(0, 2, MemoryChannel(dead=(1,))).wait("results", 1)
    with pytest.raises(ProcessFailed, match="sent no results"):
        Cluster(0, 2, MemoryChannel(), timeout_s=0.0).wait("results", 1)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--coordinator", "127.0.0.1:1234"], "error: argument --coordinator: only with --distributed"),
        (["--distributed"], "error: argument --distributed: needs --seq with a folder of sequences"),
    ],
)
def test_distributed_usage_mistakes(tmp_path, capsys, arguments, message):
    root = write_folder(tmp_path / "sequences")
    seq = root / "small" if arguments == ["--distributed"] else root
    assert track.main(["--seq", str(seq), "--out", str(tmp_path / "out"), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1


@pytest.mark.slow
def test_a_search_split_over_two_processes_writes_the_one_process_outputs(tmp_path):
    """Two processes as two threads over one in-memory channel (the tracking, the split and the
    merge are those of ``--distributed``; only the transport differs), against ``run_search``."""
    import jax

    from siamfc_jax.config import TrackerConfig
    from siamfc_jax.sequences.datasets import SequenceFolder
    from siamfc_jax.tune.distributed import run_distributed_search
    from siamfc_jax.tune.search import BEST_NAME, RESULTS_NAME, TABLE_NAME, run_search, search_settings
    from siamfc_jax.weights import default_weights_path, load_variables

    sequences = list(SequenceFolder(write_folder(tmp_path / "sequences")))
    weights = str(default_weights_path())
    variables, model_config = load_variables(weights)
    variables = jax.device_put(variables)
    base = TrackerConfig()
    candidates = [{"window_influence": 0.05}, {"window_influence": 0.4}]
    settings = search_settings(weights, sequences, base, None)
    options = {"settings": settings, "slots": 2, "log": lambda line: None}
    run_search(variables, model_config, base, candidates, sequences, tmp_path / "one", **options)

    channel = MemoryChannel()
    outcomes: dict[int, object] = {}

    def process(rank: int) -> None:
        try:
            outcomes[rank] = run_distributed_search(
                Cluster(rank, 2, channel, timeout_s=RUN_TIMEOUT_S), variables, model_config, base,
                candidates, sequences, tmp_path / "two", **options,
            )  # fmt: skip
        except BaseException as error:  # reported by the assertions below
            outcomes[rank] = error

    threads = [threading.Thread(target=process, args=(rank,)) for rank in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_TIMEOUT_S)
    assert not isinstance(outcomes[0], BaseException), outcomes[0]
    assert not isinstance(outcomes[1], BaseException), outcomes[1]
    assert outcomes[1] == (None, None, False) and not outcomes[0][2]
    one, two = tmp_path / "one", tmp_path / "two"
    assert json.loads((two / RESULTS_NAME).read_text()) == json.loads((one / RESULTS_NAME).read_text())
    for name in (TABLE_NAME, BEST_NAME):
        assert (two / name).read_text() == (one / name).read_text(), name
