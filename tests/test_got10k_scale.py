"""The GOT-10k-scale run end to end, scaled down: the synthetic world rendered in GOT-10k layout
(``python -m siamfc_jax.synthetic``), curated and trained on with ``python train.py --config got10k
--data got10k:DIR`` as the full run is (:mod:`configs.got10k`), shrunk by flags only.

The test prints the wall-time split (rendering, curation, training), read from when train.py's
lines arrive; docs/training.md quotes it.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from benchmarks.got10k_scale import arrival, render, timed_lines

# Scaled down from GOT-10k's 9,335 training sequences of about 150 frames: 8 sequences of 40 frames
# and 2 of 20 for the validation subset; two steps of batch 4 on 103/175 crops (the small in-process
# runs' steps: tests/conftest.py's small_run), so that a machine measures one convolution plan for both.
TRAIN_SEQUENCES = 8
TRAIN_FRAMES = 40
VAL_SEQUENCES = 2
VAL_FRAMES = 20
WORKERS = 2


@pytest.mark.slow
def test_scaled_down_got10k_run_renders_curates_and_trains_to_final_weights(tmp_path):
    data = tmp_path / "got10k"
    render_s = render(data, "train", 0, TRAIN_SEQUENCES, TRAIN_FRAMES, WORKERS)
    render_s += render(data, "val", 1, VAL_SEQUENCES, VAL_FRAMES, WORKERS)
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
    lines, status = timed_lines(command, echo=False)
    finished = time.monotonic()
    output = "\n".join(line for _, line in lines)
    assert status == 0, output
    curation_start = arrival(lines, "curating got10k_")
    curation_end = arrival(lines, "curated crops ready")
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
