"""A GOT-10k-scale run's wall time, measured on a scaled-down set and projected to full scale.

The run of ``siamfc_jax.configs.got10k`` on the synthetic world in GOT-10k's layout
(docs/training.md, "A GOT-10k-scale synthetic run"), with fewer sequences:

1. rendering: ``python -m siamfc_jax.synthetic`` writes ``--sequences`` training sequences and
   ``--val-sequences`` validation ones of ``--frames`` frames (``--workers`` processes);
2. start-up and curation: ``train.py --config got10k --data got10k:DIR --workers W`` curates the
   training crops (W processes), timed from the arrival of its lines;
3. training: ``--epochs`` epochs (at least 2) of ``--pairs-per-epoch`` pairs (GOT-10k's 9,335 by
   default: each sequence gives ``ceil(pairs / sequences)`` pairs, so that an epoch is as long as a
   full-scale one), each ending with its checkpoint and the validation of 3 sequences, then the
   export of the final weights.

The full-scale projection: rendering and curation scale with the frames (9,335 training and 180
validation sequences of 150 frames; curation only the training ones); start-up stays; training is
the first epoch's overhead (compilation, the untrained network's validation) plus 50 times the last
epoch's wall time (its train steps scaled to 9,335 pairs, its checkpoint and validation as they
are), plus the export. Everything runs in a temporary folder (``--work-dir``), removed at the end
unless ``--keep``. Arguments after ``--`` go to train.py last (e.g. smaller crops for a CPU check).

Usage::

    python -m benchmarks.got10k_scale [--sequences 467] [--frames 150] [--epochs 2] [--workers N]
    python -m benchmarks.got10k_scale --sequences 8 --frames 20 --pairs-per-epoch 8 --batch-size 4 \\
        --workers 2 -- --pairs.exemplar-sz 87 --pairs.instance-sz 119   # a CPU check

The last line printed is ``projected_s render=<s> startup=<s> curate=<s> train=<s> total=<s>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.track_speed import REPO, cpu_model
from siamfc_jax.runtime import available_cores, setup_process

# GOT-10k's training set, its validation set, its mean sequence length (frames) and siamfc-pytorch's
# recipe on it: one pair per sequence per epoch, 50 epochs.
FULL_TRAIN_SEQUENCES = 9335
FULL_VAL_SEQUENCES = 180
FULL_FRAMES = 150
FULL_EPOCHS = 50
# Validation sequences train.py tracks after every epoch (TrainConfig.val_sequences' default).
TRACKED_VAL_SEQUENCES = 3
EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+): ")


@dataclasses.dataclass(frozen=True)
class Measured:
    """Seconds of each phase of the scaled run (wall time) and what it did.

    ``epoch_ends`` are the arrival times of train.py's epoch lines, relative to the end of
    curation; ``epoch_train_s`` the training seconds of each epoch (history.json: the steps alone).
    """

    render_s: float
    startup_s: float
    curate_s: float
    epoch_ends: tuple[float, ...]
    epoch_train_s: tuple[float, ...]
    end_s: float
    rendered_frames: int
    curated_frames: int
    pairs_per_epoch: int

    @property
    def total_s(self) -> float:
        return self.render_s + self.startup_s + self.curate_s + self.end_s


@dataclasses.dataclass(frozen=True)
class Projection:
    """Full-scale seconds of each phase, projected from a :class:`Measured` run."""

    render_s: float
    startup_s: float
    curate_s: float
    first_epoch_overhead_s: float
    epoch_s: float
    export_s: float

    @property
    def train_s(self) -> float:
        return self.first_epoch_overhead_s + FULL_EPOCHS * self.epoch_s + self.export_s

    @property
    def total_s(self) -> float:
        return self.render_s + self.startup_s + self.curate_s + self.train_s


def project(measured: Measured) -> Projection:
    """The full-scale run's phases from the scaled one (see the module docstring)."""
    if len(measured.epoch_ends) < 2:
        raise ValueError("the projection needs at least 2 epochs")
    full_rendered = (FULL_TRAIN_SEQUENCES + FULL_VAL_SEQUENCES) * FULL_FRAMES
    full_curated = FULL_TRAIN_SEQUENCES * FULL_FRAMES
    last_wall = measured.epoch_ends[-1] - measured.epoch_ends[-2]
    last_train = measured.epoch_train_s[-1]
    # The steps scale with the pairs; the checkpoint and the validation of the epoch's end do not.
    epoch_s = last_train * FULL_TRAIN_SEQUENCES / measured.pairs_per_epoch + max(last_wall - last_train, 0.0)
    return Projection(
        render_s=measured.render_s * full_rendered / measured.rendered_frames,
        startup_s=measured.startup_s,
        curate_s=measured.curate_s * full_curated / measured.curated_frames,
        first_epoch_overhead_s=max(measured.epoch_ends[0] - last_wall, 0.0),
        epoch_s=epoch_s,
        export_s=measured.end_s - measured.epoch_ends[-1],
    )


def report(measured: Measured, projection: Projection, sequences: int) -> list[str]:
    """The table of measured and projected seconds, and the last line."""
    pairs = measured.pairs_per_epoch
    last_wall = measured.epoch_ends[-1] - measured.epoch_ends[-2]
    last_train = measured.epoch_train_s[-1]
    rows = [
        ("rendering", measured.render_s, f"{measured.rendered_frames / measured.render_s:,.0f} frames/s",
         projection.render_s),
        ("train.py start-up", measured.startup_s, "", projection.startup_s),
        ("curation", measured.curate_s, f"{measured.curated_frames / measured.curate_s:,.0f} frames/s",
         projection.curate_s),
        ("first epoch's overhead", projection.first_epoch_overhead_s,
         "compilation, untrained validation", projection.first_epoch_overhead_s),
        (f"one epoch ({pairs:,} pairs)", last_wall,
         f"{pairs / last_train:,.0f} pairs/s in the steps, {last_wall - last_train:.1f} s checkpoint "
         f"and validation", FULL_EPOCHS * projection.epoch_s),
        ("final weights", projection.export_s, "export", projection.export_s),
    ]
    lines = [
        f"{'phase':>24} | {'measured s':>10} | {'full scale s':>12} | rate",
        "-" * 90,
    ]
    for name, seconds, rate, full in rows:
        lines.append(f"{name:>24} | {seconds:10.1f} | {full:12.0f} | {rate}")
    lines += [
        f"{'total':>24} | {measured.total_s:10.1f} | "
        f"{projection.total_s:12.0f} | {projection.total_s / 3600:.2f} h at full scale",
        "",
        f"full scale: {FULL_TRAIN_SEQUENCES:,} + {FULL_VAL_SEQUENCES} sequences of {FULL_FRAMES} frames "
        f"({FULL_TRAIN_SEQUENCES / sequences:.1f} times the training sequences here), "
        f"{FULL_EPOCHS} epochs of {FULL_TRAIN_SEQUENCES:,} pairs; the epoch row's full-scale figure is all "
        f"{FULL_EPOCHS} epochs",
        f"projected_s render={projection.render_s:.0f} startup={projection.startup_s:.0f} "
        f"curate={projection.curate_s:.0f} train={projection.train_s:.0f} total={projection.total_s:.0f}",
    ]
    return lines


def render(root: Path, subset: str, seed: int, count: int, frames: int, workers: int) -> float:
    """Write ``count`` synthetic sequences into ``root/subset``; the wall time in seconds."""
    started = time.monotonic()
    command = [
        sys.executable, "-m", "siamfc_jax.synthetic", "--out", str(root), "--subset", subset,
        "--seed", str(seed), "--num-sequences", str(count), "--frames", str(frames),
        "--workers", str(workers), "--no-progress",
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO)
    return time.monotonic() - started


def timed_lines(command: list[str], echo: bool = True) -> tuple[list[tuple[float, str]], int]:
    """Run ``command`` in the repository (echoing its output unless ``echo`` is false); each line
    with the monotonic time it arrived, and the exit status."""
    lines = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # each line arrives when it is printed
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
            if echo:
                print(f"  train.py: {line.rstrip()}", flush=True)
    return lines, process.returncode


def arrival(lines: list[tuple[float, str]], prefix: str) -> float:
    """When the first line starting with ``prefix`` arrived.

    Raises:
        RuntimeError: no line starts with ``prefix`` (the message holds the output).
    """
    for when, line in lines:
        if line.startswith(prefix):
            return when
    output = "\n".join(line for _, line in lines)
    raise RuntimeError(f"train.py printed no line starting with {prefix!r}:\n{output}")


def run(args: argparse.Namespace, root: Path) -> Measured:
    """Render, curate and train in ``root``; the phases' seconds."""
    data = root / "got10k"
    scaled_val = round(FULL_VAL_SEQUENCES * args.sequences / FULL_TRAIN_SEQUENCES)
    val_sequences = max(TRACKED_VAL_SEQUENCES, scaled_val)
    print(f"rendering {args.sequences} training and {val_sequences} validation sequences of {args.frames} "
          f"frames ({args.workers} processes)", flush=True)
    render_s = render(data, "train", 0, args.sequences, args.frames, args.workers)
    render_s += render(data, "val", 1, val_sequences, args.frames, args.workers)
    pairs_per_seq = math.ceil(args.pairs_per_epoch / args.sequences)
    workdir = root / "run"
    command = [
        sys.executable, "train.py", "--config", "got10k", "--data", f"got10k:{data}",
        "--data-dir", str(root / "tfds"), "--workdir", str(workdir), "--workers", str(args.workers),
        "--optim.epochs", str(args.epochs), "--optim.batch-size", str(args.batch_size),
        "--pairs.pairs-per-seq", str(pairs_per_seq), "--no-progress", *args.train_args,
    ]  # fmt: skip
    print(f"$ {' '.join(command)}", flush=True)
    started = time.monotonic()
    lines, status = timed_lines(command)
    finished = time.monotonic()
    if status:
        raise RuntimeError(f"train.py failed (exit {status})")
    curation_start = arrival(lines, "curating got10k_")
    curation_end = arrival(lines, "curated crops ready")
    epoch_ends = tuple(when - curation_end for when, line in lines if EPOCH_LINE.match(line))
    history = [record for record in json.loads((workdir / "history.json").read_text()) if record["epoch"] > 0]
    epoch_train_s = tuple(float(record["seconds"]) for record in history)
    return Measured(
        render_s=render_s,
        startup_s=curation_start - started,
        curate_s=curation_end - curation_start,
        epoch_ends=epoch_ends,
        epoch_train_s=epoch_train_s,
        end_s=finished - curation_end,
        rendered_frames=(args.sequences + val_sequences) * args.frames,
        curated_frames=args.sequences * args.frames,
        # train.py's epoch: whole batches of the sequences' pairs (the step count after epoch 1).
        pairs_per_epoch=history[0]["step"] * args.batch_size,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    train_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=467,
                        help="training sequences (default 467, 1/20 of GOT-10k's 9,335)")
    parser.add_argument("--frames", type=int, default=FULL_FRAMES, help="frames per sequence (default 150)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs (>= 2; default 2)")
    parser.add_argument("--pairs-per-epoch", type=int, default=FULL_TRAIN_SEQUENCES,
                        help="pairs per epoch (default 9,335, a full-scale epoch)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per train step (default 8)")
    parser.add_argument("--workers", type=int, default=available_cores(),
                        help="processes rendering, curating and loading (default: all usable cores)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="folder for the data and the run (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the data and the run")
    args = parser.parse_args(own)
    args.train_args = train_args
    if min(args.sequences, args.frames, args.epochs) < 2 or min(args.pairs_per_epoch, args.workers,
                                                                args.batch_size) < 1:
        parser.error("--sequences, --frames and --epochs must be >= 2, --pairs-per-epoch, --workers and "
                     "--batch-size >= 1")
    # No JAX here: on a GPU this process would take the memory train.py needs (train.py names its devices).
    print(f"date: {datetime.date.today().isoformat()}")
    print(f"machine: {cpu_model()}, {available_cores()} usable cores, "
          f"{platform.system()} {platform.release()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    root = Path(tempfile.mkdtemp(prefix="got10k_scale_", dir=args.work_dir))
    try:
        measured = run(args, root)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"got10k_scale: error: {error}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"scaled run: {args.sequences} training sequences of {args.frames} frames, "
          f"{measured.pairs_per_epoch:,} pairs per epoch, {args.epochs} epochs, {args.workers} workers")
    for line in report(measured, project(measured), args.sequences):
        print(line)
    return 0


if __name__ == "__main__":
    setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)
    sys.exit(main())
