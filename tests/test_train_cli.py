"""train.py's checks and messages that need no training: the workdir before any work,
the layouts an empty dataset folder should have, the settings that differ; the heartbeat, the
throughput's clock and the decay of an extended run; and Ctrl-C in every phase of a real run.

A finished run, quiet output and the progress lines of a real run are checked on the run of
tests/test_training_loop.py's command-line test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siamfc_jax import cli
from siamfc_jax.apps import train as train_app
from siamfc_jax.config import OptimConfig
from siamfc_jax.training import loop, meters
from siamfc_jax.training.state import epoch_learning_rate

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_cli(*arguments: object) -> int:
    return train_app.main([str(argument) for argument in arguments])


def test_workdir_that_is_a_file_is_refused_before_any_work(tmp_path, capfd, monkeypatch):
    # Refused before any data is generated (which takes about a minute), not after.
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(loop, "train", no_training)
    workdir = tmp_path / "a_file"
    workdir.write_text("x")
    assert run_cli("--workdir", workdir, "--data-dir", tmp_path / "tfds") == 1
    assert capfd.readouterr().err.splitlines() == [
        f"error: argument --workdir: {workdir} exists and is not a folder"
    ]
    assert not (tmp_path / "tfds").exists()


def test_empty_dataset_folder_names_the_expected_layout(tmp_path, capfd):
    # The message names the layout the folder should have, not a Python name.
    empty = tmp_path / "empty"
    empty.mkdir()
    arguments = ["--data", f"folder:{empty}", "--data-dir", tmp_path / "tfds", "--workdir", tmp_path / "w"]
    assert run_cli(*arguments) == 1
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and str(empty) in lines[0]
    assert "MANUAL_DOWNLOAD_INSTRUCTIONS" not in lines[0]
    assert "a folder whose subfolders are annotated sequences (OTB, LaSOT, GOT-10k or VOT layout)" in lines[0]


def test_checkpoint_differences_are_listed_per_setting():
    from siamfc_jax.training.checkpoint import _differences

    stored = {"optim": {"batch_size": 8, "epochs": 6}, "seed": 0}
    assert _differences(stored, {"optim": {"batch_size": 8, "epochs": 10}, "seed": 1}) == [
        "optim.epochs: 6 in the checkpoints, 10 now",
        "seed: 0 in the checkpoints, 1 now",
    ]


def test_distributed_passes_the_collective_timeout_before_jax_starts(tmp_path, monkeypatch):
    """``--collective-timeout`` reaches XLA_FLAGS (through runtime.setup_process) before
    jax.distributed.initialize, after which the backend reads the flags; nothing is trained."""
    import jax

    class Initialized(Exception):
        pass

    flags_at_initialize = []

    def initialize(**arguments):
        flags_at_initialize.append(os.environ["XLA_FLAGS"])
        raise Initialized

    monkeypatch.setattr(jax.distributed, "initialize", initialize)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax_cache"))
    with pytest.raises(Initialized):
        run_cli("--config", "ci", "--workdir", tmp_path / "w", "--distributed", "--collective-timeout", 42)
    (flags,) = flags_at_initialize
    assert "--xla_cpu_collective_timeout_seconds=42" in flags.split()
    assert flags.startswith("--xla_force_host_platform_device_count=1 ")  # the user's flags kept


def test_heartbeat_repeats_the_status_not_the_last_line(capsys):
    """say() prints on stdout and leaves the status; heartbeat lines go to stderr."""
    with cli.Heartbeat(enabled=True, interval=0.05) as beat:
        beat.set_status("preparing the training data")
        beat.say("malloc: libmimalloc.so.3")
        time.sleep(0.4)
    out, err = capsys.readouterr()
    assert out == "malloc: libmimalloc.so.3\n"
    beats = err.splitlines()
    pattern = r"\.\.\. preparing the training data \(\d+ s\)"
    assert beats and all(re.fullmatch(pattern, line) for line in beats), beats


def test_throughput_leaves_out_the_first_step_of_the_process(monkeypatch):
    clock = iter([0.0, 100.0, 101.0, 103.0])
    monkeypatch.setattr(meters.time, "perf_counter", lambda: next(clock))
    meter = meters.Throughput(batch=4)
    meter.start_epoch()  # the first step's epoch: timed from the first step's end
    meter.count()
    assert meter.mark() is None  # t = 0: the first step (compilation) done
    for _ in range(2):
        meter.count()
    assert meter.mark() == pytest.approx(8 / 100.0)  # t = 100: 2 steps
    meter.start_epoch()  # t = 101
    meter.count()
    assert meter.mark() == pytest.approx(4 / 3.0)  # t = 103: 1 step since the previous mark
    assert meter.epoch_rate() == pytest.approx(4 / 2.0)  # and since the epoch's start


def test_the_decay_of_an_extended_run_goes_on_at_the_rate_it_started_with():
    optim = OptimConfig(epochs=8, initial_lr=1e-2, ultimate_lr=1e-4)
    stored = {"optim": dataclasses.asdict(dataclasses.replace(optim, epochs=4))}
    schedule = loop.decay_schedule(optim, stored)
    assert schedule.epochs == 4 and loop.decay_schedule(optim, None) == optim
    # The epochs trained keep their rates; past them the same factor, below ultimate_lr.
    rates = [epoch_learning_rate(schedule, epoch) for epoch in range(8)]
    assert rates[:4] == [epoch_learning_rate(dataclasses.replace(optim, epochs=4), e) for e in range(4)]
    assert rates[4] == pytest.approx(1e-4) and rates[7] == pytest.approx(1e-4 * 0.1**1.5)


# Ctrl-C in every phase of a real run: `python train.py` on a tiny run (4 sequences, 2 steps of 4
# pairs per epoch, 3 epochs, one validation sequence), SIGINT sent to its process group as a
# terminal's Ctrl-C is (so that worker processes get it too).
def signal_command(tmp: Path) -> list[str]:
    return [
        sys.executable, "train.py", "--config", "ci", "--synthetic-sequences", "4", "--val-sequences",
        "1", "--optim.epochs", "3", "--data-dir", str(tmp / "tfds"), "--workdir", str(tmp / "run"),
        "--no-progress",
    ]  # fmt: skip


def run_until(tmp: Path, name: str, trigger: str | None) -> tuple[int, str, str]:
    """Run the command; SIGINT its process group once ``trigger`` is in its stdout (None: never)."""
    out, err = tmp / f"{name}.out", tmp / f"{name}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        child = subprocess.Popen(
            signal_command(tmp), cwd=REPO_ROOT, stdout=stdout, stderr=stderr, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 600
            while trigger is not None and trigger not in out.read_text():
                assert child.poll() is None, f"{name} ended before {trigger!r}:\n{out.read_text()}"
                assert time.monotonic() < deadline, f"{name}: no {trigger!r}"
                time.sleep(0.05)
            if trigger is not None:
                os.killpg(child.pid, signal.SIGINT)
            code = child.wait(600)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    return code, out.read_text(), err.read_text()


def interrupted_at(output: str) -> int:
    (line,) = [line for line in output.splitlines() if line.startswith("interrupted")]
    return int(re.search(r"checkpoint at step (\d+) in ", line).group(1))


@pytest.mark.slow
def test_ctrl_c_in_every_phase_stops_with_a_checkpoint_and_the_same_command_resumes(tmp_path):
    checkpoints = tmp_path / "run" / "checkpoints"
    # Data preparation (curation in worker processes): abandoned at once, nothing to save.
    code, out, err = run_until(tmp_path, "prepare", "curating")
    assert code == 130, out + err
    assert "interrupted before the first step: no checkpoint" in out.splitlines()[-1], out
    assert "Traceback" not in err, err
    # The untrained validation is done, the first step compiles: it finishes and is saved.
    code, out, err = run_until(tmp_path, "compile", "untrained:")
    assert code == 130 and "Traceback" not in err, out + err
    assert interrupted_at(out) == 1 and (checkpoints / "1").is_dir() and "Traceback" not in err
    # Resumed at epoch 1's last step; after it the epoch's checkpoint, then validation: abandoned.
    code, out, err = run_until(tmp_path, "validate", "pairs/s: counted")
    assert code == 130 and "resuming from" in out and "step 1 of 2" in out, out + err
    assert interrupted_at(out) == 2 and (checkpoints / "2").is_dir()
    # Mid-epoch 2 (or its end, when the signal comes during the next step): after the step.
    code, out, err = run_until(tmp_path, "train", "pairs/s: counted")
    assert code == 130 and "epoch 2, step 0 of 2" in out, out + err
    assert interrupted_at(out) in (3, 4) and (checkpoints / str(interrupted_at(out))).is_dir()
    assert not (tmp_path / "run" / "final.msgpack").exists()
    # The same command finishes the run.
    code, out, err = run_until(tmp_path, "finish", None)
    assert code == 0 and "resuming from" in out, out + err
    assert (tmp_path / "run" / "final.msgpack").is_file()
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [record["epoch"] for record in history] == [0, 1, 2, 3]


def test_checkpoints_describe_the_run_that_saved_them_and_free_settings_may_differ(tmp_path):
    import jax.numpy as jnp

    from siamfc_jax.training.checkpoint import Checkpointer, Position

    def identity(batch: int, epochs: int) -> dict:
        return {"optim": {"batch_size": batch, "epochs": epochs}}

    # A run stopped before its first checkpoint leaves a description of nothing: the next one's counts.
    Checkpointer(tmp_path, run_config=identity(8, 2)).close()
    checkpointer = Checkpointer(tmp_path, run_config=identity(4, 2))
    checkpointer.save({"x": jnp.zeros(2)}, Position(1, 0, 1))
    checkpointer.close()
    with pytest.raises(ValueError, match=r"optim\.batch_size: 4 in the checkpoints, 8 now"):
        Checkpointer(tmp_path, run_config=identity(8, 2))
    with pytest.raises(ValueError, match=r"optim\.epochs: 2 in the checkpoints, 3 now"):
        Checkpointer(tmp_path, run_config=identity(4, 3))
    extended = Checkpointer(tmp_path, run_config=identity(4, 3), free=("optim.epochs",))
    assert extended.stored_run_config == identity(4, 2)
    extended.close()
