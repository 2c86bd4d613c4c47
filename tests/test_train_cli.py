"""train.py's checks and messages (issue 13): the workdir before any work, the layouts an empty
dataset folder should have, a finished run, the setting that differs, and quiet, plain output.

One small run (4 synthetic sequences, 1 epoch) is trained in-process through the command line and
reused; the other cases stop before any training.
"""

from __future__ import annotations

import io
import re
import sys
import time

import pytest

from siamfc_jax.apps import train as train_app
from siamfc_jax.training import loop


def run_cli(*arguments: object) -> int:
    return train_app.main([str(argument) for argument in arguments])


def small_run(root, batch_size: int = 4) -> list:
    return [
        "--epochs", "1", "--batch-size", batch_size, "--synthetic-sequences", "4", "--val-sequences", "0",
        "--data-dir", root / "tfds", "--workdir", root / "run", "--no-progress",
    ]  # fmt: skip


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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 1-epoch run through the command line: its folder, exit status, output, seconds."""
    root = tmp_path_factory.mktemp("train_cli")
    arguments = small_run(root)
    capture = pytest.MonkeyPatch()  # stdout and stderr not terminals, as in a CI log
    started = time.monotonic()
    stdout, stderr = io.StringIO(), io.StringIO()
    capture.setattr(sys, "stdout", stdout)
    capture.setattr(sys, "stderr", stderr)
    try:
        status = run_cli(*arguments)
    finally:
        capture.undo()
    seconds = time.monotonic() - started
    return root, arguments, status, stdout.getvalue(), stderr.getvalue(), seconds


@pytest.mark.slow
def test_run_output_is_plain_and_quiet(finished_run):
    root, _, status, out, err, seconds = finished_run
    assert status == 0, err
    assert (root / "run" / "final.msgpack").is_file()
    # issue 13: no absl WARNING with the whole config, no TFDS "Downloading and preparing".
    for noise in ("Using custom data configuration", "Downloading and preparing", "WARNING:absl"):
        assert noise not in out and noise not in err, noise
    assert "curating synthetic_n4 training crops into" in out
    # Not a terminal: a plain line at least every 10 s (seconds of silence never exceed ~11).
    if seconds > 12:
        assert re.search(r"^\.\.\. .* \(\d+ s\)$", out, re.MULTILINE), out


@pytest.mark.slow
def test_finished_run_says_so_and_does_not_export_again(finished_run, capfd):
    root, arguments, status, *_ = finished_run
    assert status == 0
    weights = root / "run" / "final.msgpack"
    stamp = weights.stat().st_mtime_ns
    assert run_cli(*arguments) == 0
    out = capfd.readouterr().out
    assert f"finished: {root / 'run'} holds a completed run (1 epochs, step" in out
    assert "resuming" not in out and "curating" not in out
    assert weights.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_other_settings_name_the_setting_and_both_values(finished_run, capfd):
    root, _, status, *_ = finished_run
    assert status == 0
    assert run_cli(*small_run(root, batch_size=2)) == 1
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "different settings (optim.batch_size: 4 in the checkpoints, 2 now)" in lines[0]


def test_checkpoint_differences_are_listed_per_setting():
    from siamfc_jax.training.checkpoint import _differences

    stored = {"optim": {"batch_size": 8, "epochs": 6}, "seed": 0}
    assert _differences(stored, {"optim": {"batch_size": 8, "epochs": 10}, "seed": 1}) == [
        "optim.epochs: 6 in the checkpoints, 10 now",
        "seed: 0 in the checkpoints, 1 now",
    ]
