"""The GOT-10k-scale run end to end, scaled down: the synthetic world rendered in GOT-10k layout
(``python -m siamfc_jax.synthetic``), curated and trained on with ``python train.py --config got10k
--data got10k:DIR`` as the full run is (:mod:`configs.got10k`), shrunk by flags only.

The test prints the wall-time split (rendering, curation, training), read from when train.py's
lines arrive; docs/training.md quotes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Scaled down from GOT-10k's 9,335 training sequences of about 150 frames: 8 sequences of 40 frames
# and 2 of 20 for the validation subset; two steps of batch 4 on 103/175 crops (the small in-process
# runs' steps: tests/conftest.py's small_run), so that a machine measures one convolution plan for both.
TRAIN_SEQUENCES = 8
TRAIN_FRAMES = 40
VAL_SEQUENCES = 2
VAL_FRAMES = 20
WORKERS = 2


def _environment() -> dict[str, str]:
    # Unbuffered, so that each line's arrival time is when train.py printed it; no autotuning, so
    # the times do not depend on other processes' load while formulations are measured.
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _render(root: Path, subset: str, seed: int, count: int, frames: int) -> float:
    """Write ``count`` synthetic sequences into ``root/subset``; returns the wall time in seconds."""
    start = time.monotonic()
    command = [
        sys.executable, "-m", "siamfc_jax.synthetic", "--out", str(root), "--subset", subset,
        "--seed", str(seed), "--num-sequences", str(count), "--frames", str(frames),
        "--workers", str(WORKERS), "--no-progress",
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO_ROOT, env=_environment(), capture_output=True)
    return time.monotonic() - start


def _timed_lines(command: list[str]) -> tuple[list[tuple[float, str]], int]:
    """Run ``command``; each line of its output with the monotonic time it arrived, and the status."""
    lines = []
    with subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
    return lines, process.returncode


def _arrival(lines: list[tuple[float, str]], prefix: str) -> float:
    """When the first line starting with ``prefix`` arrived (fails the test if none did)."""
    times = [when for when, line in lines if line.startswith(prefix)]
    assert times, f"no line starting with {prefix!r} in:\n" + "\n".join(line for _, line in lines)
    return times[0]


@pytest.mark.slow
def test_scaled_down_got10k_run_renders_curates_and_trains_to_final_weights(tmp_path):
    data = tmp_path / "got10k"
    render_s = _render(data, "train", 0, TRAIN_SEQUENCES, TRAIN_FRAMES)
    render_s += _render(data, "val", 1, VAL_SEQUENCES, VAL_FRAMES)
    listed = (data / "train" / "list.txt").read_text().split()
    assert len(listed) == TRAIN_SEQUENCES
    assert all(len(list((data / "train" / name).glob("*.jpg"))) == TRAIN_FRAMES for name in listed)

    workdir = tmp_path / "run"
    started = time.monotonic()
    command = [
        sys.executable, "train.py", "--config", "got10k", "--data", f"got10k:{data}",
        "--data-dir", str(tmp_path / "tfds"), "--workdir", str(workdir),
        "--optim.epochs", "1", "--optim.batch-size", "4", "--pairs.pairs-per-seq", "1",
        "--pairs.exemplar-sz", "103", "--pairs.instance-sz", "175", "--val-sequences", "1",
        "--no-progress",
    ]  # fmt: skip
    lines, status = _timed_lines(command)
    finished = time.monotonic()
    output = "\n".join(line for _, line in lines)
    assert status == 0, output
    curation_start = _arrival(lines, "curating got10k_")
    curation_end = _arrival(lines, "curated crops ready")
    assert (workdir / "final.pth").is_file() and (workdir / "final.msgpack").is_file()
    history = json.loads((workdir / "history.json").read_text())
    trained = [record for record in history if "train/loss" in record]
    assert len(trained) == 1 and 0 < trained[0]["train/loss"] < 1, history
    assert f"{TRAIN_SEQUENCES} training sequences" in output

    print(
        f"\nscaled-down GOT-10k run ({TRAIN_SEQUENCES}+{VAL_SEQUENCES} sequences, {WORKERS} render "
        f"workers): rendering {render_s:.1f} s, start-up {curation_start - started:.1f} s, curation "
        f"{curation_end - curation_start:.1f} s, training (compilation, 2 steps, validation, export) "
        f"{finished - curation_end:.1f} s"
    )
