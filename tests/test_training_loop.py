"""The training loop: it learns, resumes exactly, stops cleanly on Ctrl-C, and exports weights.

Runs are tests/conftest.py's ``small_run``: a small synthetic world and smaller crops than SiamFC's,
on the suite's shared curated data (``synthetic_data_dir``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import torch

from siamfc_jax.apps import train as train_app
from siamfc_jax.config import OptimConfig, PairConfig
from siamfc_jax.models import SiamFC
from siamfc_jax.pipeline import sources
from siamfc_jax.pipeline.sources import prepare_training_data
from siamfc_jax.pipeline.tfds_builder import SiamfcCrops
from siamfc_jax.sequences import datasets
from siamfc_jax.training.loop import train
from siamfc_jax.training.state import TrainState, epoch_learning_rate, lr_schedule
from siamfc_jax.weights import load_variables
from tests.conftest import small_run
from tests.test_datasets import vid_root  # noqa: F401 (a fixture)
from tests.torch_reference import TorchNet

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("training")


def params_of(workdir: Path) -> dict:
    variables, _ = load_variables(workdir / "final.msgpack")
    return variables


def assert_same_weights(a: dict, b: dict) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_loss_falls_and_the_response_peak_moves_to_the_target(synthetic_data_dir, tmp):
    # 4 epochs of 6 steps of 4 pairs: the fewest of these steps after which both properties held
    # with a margin for every seed measured (3 epochs: the loss fell by 0.0103 on seed 0). Batch 4
    # and the shared data keep the other small runs' curated crops and convolution plan.
    config = small_run(
        synthetic_data_dir,
        tmp / "learn",
        optim=OptimConfig(epochs=4, batch_size=4),
        pairs=PairConfig(exemplar_sz=103, instance_sz=175, pairs_per_seq=4),
    )
    result = train(config, progress=False, log=lambda message: None)
    history = result.history
    assert result.step == 4 * 6 and result.epochs_completed == 4
    untrained, first, last = history[0], history[1], history[-1]
    print("peak error (cells):", [round(h["val/peak_error"], 2) for h in history])
    print("loss per epoch:", [round(h["train/loss"], 4) for h in history[1:]])
    # The balanced loss starts at log 2 = 0.693 (responses ~0 at init) and falls slowly in so few
    # steps: measured 0.684 -> 0.667 (seeds 1 and 2: falls of 0.016 and 0.015, all at least 0.0046
    # past the bound). The response peak of the fixed validation batch starts anywhere in the 8×8
    # map (~3 cells from the centre on average; 2.98, 3.19 and 2.82 measured) and moves to the
    # target: to 0.40, 0.57 and 0.57 of its untrained distance measured (1.18, 1.82 and 1.60 cells),
    # where 0.71 cells is the least possible, the centre of an even map lying between four cells.
    assert last["train/loss"] < first["train/loss"] - 0.01
    assert untrained["val/peak_error"] > 2.5
    assert last["val/peak_error"] < 0.7 * untrained["val/peak_error"]


def test_resume_continues_exactly_at_epoch_and_step_granularity(synthetic_data_dir, tmp):
    whole = small_run(synthetic_data_dir, tmp / "whole")
    reference = train(whole, progress=False, log=lambda message: None)
    assert reference.step == 2 * 3  # 6 sequences × 2 pairs / batch 4 = 3 steps per epoch

    # A run that died after its first epoch: its last checkpoint is the end of epoch 1.
    resumed = small_run(synthetic_data_dir, tmp / "resumed", save_every_steps=1, keep_checkpoints=10)
    train(resumed, progress=False, log=lambda message: None)
    checkpoints = Path(resumed.workdir) / "checkpoints"
    for step_dir in checkpoints.iterdir():
        if step_dir.name.isdigit() and int(step_dir.name) > 3:
            for path in sorted(step_dir.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            step_dir.rmdir()
    (Path(resumed.workdir) / "final.msgpack").unlink()
    messages = []
    train(resumed, progress=False, log=messages.append)
    assert any("resuming" in m and "epoch 2" in m for m in messages)
    assert_same_weights(params_of(Path(whole.workdir)), params_of(Path(resumed.workdir)))
    history = json.loads((Path(resumed.workdir) / "history.json").read_text())
    assert [round(h.get("train/loss", 0.0), 6) for h in history] == [
        round(h.get("train/loss", 0.0), 6) for h in reference.history
    ]


def test_resume_from_the_middle_of_an_epoch_is_exact(synthetic_data_dir, tmp):
    run = small_run(synthetic_data_dir, tmp / "midway", save_every_steps=1, keep_checkpoints=10)
    train(run, progress=False, log=lambda message: None)
    final = params_of(Path(run.workdir))
    whole = json.loads((Path(run.workdir) / "history.json").read_text())
    checkpoints = Path(run.workdir) / "checkpoints"
    for step_dir in checkpoints.iterdir():  # keep steps 1 and 2 of epoch 1
        if step_dir.name.isdigit() and int(step_dir.name) > 2:
            for path in sorted(step_dir.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            step_dir.rmdir()
    messages = []
    train(run, progress=False, log=messages.append)
    assert any("resuming" in m and "step 2 of 3" in m for m in messages)
    assert_same_weights(final, params_of(Path(run.workdir)))
    # Epoch 1's figures cover its 3 steps, not only the one after the resume: the same loss (summed
    # in step order either way) and at least the 2 steps' time recorded in the checkpoint.
    resumed = json.loads((Path(run.workdir) / "history.json").read_text())
    assert [r.get("train/loss") for r in resumed] == [r.get("train/loss") for r in whole]
    seconds_before = json.loads((checkpoints / "2" / "position" / "metadata").read_text())["seconds"]
    assert resumed[1]["epoch"] == 1 and resumed[1]["seconds"] >= round(seconds_before, 1) > 0


def test_resume_refuses_other_settings(synthetic_data_dir, tmp):
    whole = small_run(synthetic_data_dir, tmp / "whole")
    if not (Path(whole.workdir) / "checkpoints").exists():
        train(whole, progress=False, log=lambda message: None)
    other = small_run(synthetic_data_dir, tmp / "whole", optim=OptimConfig(epochs=2, batch_size=2))
    with pytest.raises(ValueError, match="different settings"):
        train(other, progress=False, log=lambda message: None)


def test_ctrl_c_saves_a_checkpoint_and_rerunning_finishes_as_if_uninterrupted(synthetic_data_dir, tmp):
    """SIGINT at the end of epoch 1 (while its line is logged) stops there, with the epoch's
    checkpoint and no final weights; the same call again resumes at epoch 2 and ends with the
    uninterrupted run's weights."""
    whole = small_run(synthetic_data_dir, tmp / "whole")
    if not (Path(whole.workdir) / "final.msgpack").exists():
        train(whole, progress=False, log=lambda message: None)
    run = small_run(synthetic_data_dir, tmp / "ctrl_c")

    def interrupt_after_epoch_1(message: str) -> None:
        messages.append(message)
        if message.startswith("epoch 1/"):
            os.kill(os.getpid(), signal.SIGINT)

    messages: list[str] = []
    result = train(run, progress=False, log=interrupt_after_epoch_1)
    assert result.interrupted and result.epochs_completed == 1 and result.step == 3
    assert messages[-1].startswith("interrupted: checkpoint at step 3 in "), messages
    assert not (Path(run.workdir) / "final.msgpack").exists()

    messages = []
    result = train(run, progress=False, log=messages.append)
    assert not result.interrupted and result.step == 6
    assert any("resuming" in m and "epoch 2, step 0 of 3" in m for m in messages), messages
    assert_same_weights(params_of(Path(whole.workdir)), params_of(Path(run.workdir)))


def test_a_finished_run_extended_to_more_epochs_continues_its_decay(synthetic_data_dir, tmp):
    """A larger epoch count is no other setting: the finished 2-epoch run trains a third epoch, at
    the rate its own decay reaches there, and keeps the records of its first two."""
    whole = small_run(synthetic_data_dir, tmp / "whole")
    if not (Path(whole.workdir) / "final.msgpack").exists():
        train(whole, progress=False, log=lambda message: None)
    shutil.copytree(whole.workdir, tmp / "extended")
    longer = small_run(synthetic_data_dir, tmp / "extended", optim=OptimConfig(epochs=3, batch_size=4))
    messages: list[str] = []
    result = train(longer, progress=False, log=messages.append)
    assert not result.interrupted and result.step == 9 and result.epochs_completed == 3
    third = epoch_learning_rate(OptimConfig(epochs=2, batch_size=4), 2)
    assert any(m.startswith("extending the run from 2 to 3 epochs") and f"{third:.2e}" in m for m in messages)
    assert any("resuming" in m and "epoch 3, step 0 of 3" in m for m in messages), messages
    history = json.loads((tmp / "extended" / "history.json").read_text())
    assert history[:3] == json.loads((Path(whole.workdir) / "history.json").read_text())
    assert [record["epoch"] for record in history] == [0, 1, 2, 3]
    again: list[str] = []
    train(longer, progress=False, log=again.append)
    assert any(m.startswith("finished:") and "(3 epochs, step 9)" in m for m in again), again


def cli_command(tmp: Path) -> list[str]:
    """``python train.py`` on the small CI schedule, in ``tmp / "cli"``."""
    return [
        sys.executable, "train.py", "--backbone", "v1", "--epochs", "1", "--synthetic-sequences", "8",
        "--val-sequences", "0", "--data-dir", str(tmp / "tfds_cli"), "--workdir", str(tmp / "cli"),
        "--no-progress",
    ]  # fmt: skip


def test_train_cli_ci_schedule_exports_weights_that_pytorch_runs_identically(tmp):
    """``python train.py --backbone v1 --epochs 1`` on the small CI schedule, end to end; its
    final.pth in siamfc-pytorch's network gives the responses of its final.msgpack here."""
    workdir = tmp / "cli"
    result = subprocess.run(cli_command(tmp), cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "epoch 1/1: loss" in result.stdout and "val peak error" in result.stdout
    # No absl WARNING dumping the config, no TFDS "Downloading and preparing" (the
    # heartbeat lines for output that is no terminal: tests/test_track_cli.py, timing-free).
    for noise in ("Using custom data configuration", "Downloading and preparing", "WARNING:absl"):
        assert noise not in result.stdout + result.stderr, noise
    assert "curating synthetic_n8_" in result.stdout  # the name carries the digest of its source
    history = json.loads((workdir / "history.json").read_text())
    assert [record["epoch"] for record in history] == [0, 1]

    variables, model_config = load_variables(workdir / "final.msgpack")
    net = TorchNet("v1")
    net.load_state_dict(torch.load(workdir / "final.pth", weights_only=True), strict=True)
    net.eval()
    rng = np.random.default_rng(0)
    exemplar = rng.uniform(0, 255, (1, 127, 127, 3)).astype(np.float32)
    search = rng.uniform(0, 255, (1, 255, 255, 3)).astype(np.float32)
    ours = np.asarray(SiamFC(model_config, precision="highest").apply(variables, exemplar, search))
    with torch.no_grad():
        ref = net(*(torch.from_numpy(x).permute(0, 3, 1, 2) for x in (exemplar, search)))
    ref = ref.permute(0, 2, 3, 1).numpy()
    assert np.abs(ours - ref).max() <= 1e-5 * np.abs(ref).max()  # float32 parity, as tests/test_models.py


def test_cli_rerun_of_a_finished_run_says_so_and_other_settings_are_named(tmp):
    # A rerun of a finished run must say so, not resume at "epoch 3, step 0 of 2" and export the
    # weights again; other settings are named with both values.
    workdir = tmp / "cli"
    if not (workdir / "final.msgpack").exists():
        subprocess.run(cli_command(tmp), cwd=REPO_ROOT, capture_output=True, timeout=600, check=True)
    stamp = (workdir / "final.msgpack").stat().st_mtime_ns
    again = subprocess.run(cli_command(tmp), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"finished: {workdir} holds a completed run (1 epochs, step" in again.stdout
    assert "resuming" not in again.stdout and "curating" not in again.stdout
    assert (workdir / "final.msgpack").stat().st_mtime_ns == stamp
    other = subprocess.run(
        [*cli_command(tmp), "--batch-size", "4"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert other.returncode == 1 and len(other.stderr.splitlines()) == 1, other.stderr
    assert "different settings (optim.batch_size: 8 in the checkpoints, 4 now)" in other.stderr


def test_cli_rejects_bad_arguments_in_one_line(tmp, capfd):
    # In-process (no JAX work happens before these checks): exit 2 for a bad command line, 1 for
    # missing data (siamfc_jax.cli's convention), one line each.
    for arguments, status, fragment in (
        (["--backbone", "v9"], 2, "backbone must be one of"),
        (["--epochs", "0"], 2, "argument --optim.epochs: epochs must be a positive integer"),
        (["--data", "imagenet:/x"], 2, "argument --data 'imagenet:/x': expected synthetic, got10k:DIR"),
        (["--data", f"got10k:{tmp / 'missing'}"], 1, "missing: no such directory"),
    ):
        assert train_app.main([*arguments, "--workdir", str(tmp / "bad")]) == status, arguments
        lines = capfd.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]


def test_training_makes_no_implicit_transfer_and_reads_no_parameters_back(guarded_run):
    """Every transfer of the loop (batches, parameters to the tracker, losses, figures, weights)
    is explicit: an implicit one, such as ``float()`` of a device value, raises under the guard
    (tests/conftest.py's ``guarded_run`` trains under it, recording every ``jax.device_get``).
    And validation runs on the parameters where they are: the only parameter-sized read of the
    whole run (untrained and one epoch of validation) is the export of the final weights."""
    result = guarded_run.result
    assert result.step == 3 and {"val/peak_error", "val/auc"} <= set(result.history[-1])
    assert len(result.history) == 2 and "val/auc" in result.history[0]
    parameter_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(params_of(Path(result.weights).parent)))
    assert sum(guarded_run.fetched) < 1.1 * parameter_bytes


def test_train_state_holds_only_what_the_step_reads():
    assert [field.name for field in dataclasses.fields(TrainState)] == ["params", "batch_stats", "opt_state"]


def test_logged_learning_rate_is_the_schedule_computed_on_the_host():
    optim = OptimConfig(epochs=5)
    schedule = lr_schedule(optim, steps_per_epoch=3)
    for epoch in range(5):
        rate = epoch_learning_rate(optim, epoch)
        assert type(rate) is float
        assert rate == pytest.approx(float(schedule(3 * epoch + 2)), rel=1e-6)


def test_validation_sequences_come_from_the_builders_download_folder(
    synthetic_data_dir, tmp, tmp_path, monkeypatch
):
    """The folder of the generated validation frames is the builder's fact alone: moved there,
    the sequences follow."""
    config = small_run(synthetic_data_dir, tmp / "unused", val_sequences=1)
    prepare_training_data(config, workers=1, progress=False)
    moved = tmp_path / "elsewhere"
    shutil.copytree(Path(config.data_dir) / "downloads", moved)
    monkeypatch.setattr(SiamfcCrops, "download_dir", property(lambda builder: moved))
    data = prepare_training_data(config, workers=1, progress=False)
    assert len(data.sequences) == 1 and moved in Path(data.sequences[0].frames[0]).parents


def test_vid_validation_sequences_use_the_annotation_cache(vid_root, tmp_path, monkeypatch):  # noqa: F811
    """The validation sequences of a VID run are read with the builder's parsed-annotation cache,
    so a later start parses no XML."""
    builder = SiamfcCrops(config="vid", data_dir=str(tmp_path / "tfds"))
    first = sources._validation_sequences(builder, vid_root, 1)
    assert list(builder.download_dir.rglob("imagenet_vid_val_*.npz"))

    def no_parsing(*args, **kwargs):
        raise AssertionError("VID's annotations were parsed again")

    monkeypatch.setattr(datasets, "_parse_vid_annotations", no_parsing)
    again = sources._validation_sequences(builder, vid_root, 1)
    assert [s.name for s in again] == [s.name for s in first] and len(first) == 1
