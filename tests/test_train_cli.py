"""train.py's checks and messages that need no training (issue 13): the workdir before any work,
the layouts an empty dataset folder should have, the settings that differ.

A finished run, quiet output and the progress lines of a real run are checked on the run of
tests/test_training_loop.py's command-line test.
"""

from __future__ import annotations

import os

import pytest

from siamfc_jax.apps import train as train_app
from siamfc_jax.training import loop


def run_cli(*arguments: object) -> int:
    return train_app.main([str(argument) for argument in arguments])


def test_workdir_that_is_a_file_is_refused_before_any_work(tmp_path, capfd, monkeypatch):
    # issue 13: it failed only after 51 s of data generation.
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
    # issue 13: it printed a Python name (…tfds_builder.MANUAL_DOWNLOAD_INSTRUCTIONS).
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
