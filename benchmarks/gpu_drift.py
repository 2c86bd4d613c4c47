"""Where tracking on a GPU parts from the CPU: one sequence tracked by siamfc-pytorch's tracker path
and by ours on each device, every run's boxes against every other's.

Runs (VOT *bag* by default, started from the first box of siamfc-pytorch's stored boxes, with the
weights those boxes were made with):

- ``stored``: siamfc-pytorch's own boxes (``../shared/siamfc/reference/siamfc_pytorch``; its CPU);
- ``torch-cpu``, ``torch-cuda``, ``torch-cuda-fp32`` (``--torch-device``): siamfc-pytorch's per-frame
  path (:class:`benchmarks.track_speed.TorchTracker`: its OpenCV crops, its network, its
  post-processing, its float32 state) with the network on the CPU (all usable cores), on the GPU
  with PyTorch's defaults (as siamfc-pytorch runs there: cuDNN may compute float32 convolutions
  in TF32), or on the GPU with TF32 off;
- ``jax-<platform>`` (``--jax-platform``): ours (``Tracker.track``, the machine's stored tracking
  plan or the platform's default), each in its own process with ``JAX_PLATFORMS`` set, as track.py
  would run there.

Prints each run's success AUC against the ground truth, then for every pair of runs the mean and
least IoU of their boxes, the first frame (0-indexed) whose IoU is below 0.99, and the first frame
whose boxes differ by more than 0.01 px. ``--out DIR`` also writes each run's boxes
(``DIR/<run>.txt``, as the stored file: ``x,y,w,h`` per line). The fps printed per run are
indicative only (siamfc-pytorch's include its start and first calls). A run that cannot run on the
machine is left out and the exit status is 1.

Usage::

    python -m benchmarks.gpu_drift [--sequence bag] [--torch-device cpu,cuda,cuda-fp32]
        [--jax-platform cuda,cpu] [--frames N] [--out DIR]

On a CPU-only machine ``--torch-device cpu --jax-platform cpu`` must agree with the stored boxes
(mean IoU >= 0.99, as the parity test asks).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from benchmarks.track_speed import REPO, TorchTracker, load_torch_reference
from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.evaluation.metrics import evaluate, iou
from siamfc_jax.runtime import available_cores, describe_devices, setup_process
from siamfc_jax.sequences.frames import DataError, read_image
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker, fit_config

SHARED = REPO.parent / "shared" / "siamfc"
REFERENCE = SHARED / "reference" / "siamfc_pytorch"
WEIGHTS = SHARED / "weights" / "siamfc_original_v1.pth"
TORCH_DEVICES = ("cpu", "cuda", "cuda-fp32")
RESULT_PREFIX = "gpu_drift boxes: "
# Boxes "part" below this IoU (the parity test's bound on the mean) and "differ" beyond this many
# pixels in any coordinate (the stored boxes have 4 decimals; float32 at 500 px resolves 3e-5).
PART_IOU = 0.99
DIFFER_PX = 0.01


def comma_list(choices: tuple[str, ...] | None) -> Callable[[str], list[str]]:
    """argparse type: a comma-separated list, each among ``choices`` (any name where None)."""

    def parse(text: str) -> list[str]:
        names = [name for name in text.split(",") if name]
        if not names or (choices is not None and not set(names) <= set(choices)):
            expected = ", ".join(choices) if choices else "names"
            raise argparse.ArgumentTypeError(f"expected comma-separated {expected}, got {text!r}")
        return list(dict.fromkeys(names))

    return parse


def torch_boxes(frames: list[str], box: np.ndarray, device: str) -> tuple[np.ndarray, float, str]:
    """``(boxes, seconds, description)`` of siamfc-pytorch's path over ``frames`` on ``device``
    (``cuda-fp32``: the GPU with cuDNN's TF32 off); seconds of the updates, decoding excluded."""
    loaded = load_torch_reference()
    if loaded is None:
        raise DataError("PyTorch is not installed")
    torch, reference = loaded
    where = "cuda" if device.startswith("cuda") else "cpu"
    if where == "cuda" and not torch.cuda.is_available():
        raise DataError(f"--torch-device {device}: this PyTorch sees no CUDA device")
    # Set for every run, so that a cuda-fp32 run does not leave TF32 off for a later cuda run.
    torch.backends.cudnn.allow_tf32 = device != "cuda-fp32"
    net = reference.TorchNet("v1").eval()
    net.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    net.to(where)
    config = fit_config(TrackerConfig(), ModelConfig())
    images = [read_image(path) for path in frames]
    threads = available_cores()
    boxes = np.zeros((len(frames), 4))
    boxes[0] = box
    started = time.perf_counter()
    tracker = TorchTracker(torch, net, config, images[0], box, threads, where)
    for index in range(1, len(images)):
        boxes[index] = tracker.update(images[index])
    seconds = time.perf_counter() - started
    if where == "cuda":
        described = (f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, cuDNN TF32 "
                     f"{'allowed' if torch.backends.cudnn.allow_tf32 else 'off'}")
    else:
        described = f"torch {torch.__version__}, CPU, {threads} threads"
    return boxes, seconds, described


def jax_boxes(
    sequence: str, frames: int, platform: str | None, base: dict[str, str]
) -> tuple[np.ndarray, float, str, str]:
    """``(boxes, seconds, backend, description)`` of ours over the first ``frames`` frames of
    ``sequence``, tracked in a child process with the environment ``base`` and ``JAX_PLATFORMS``
    set to ``platform`` (None: as in ``base``)."""
    env = dict(base)
    if platform is not None:
        env["JAX_PLATFORMS"] = platform
    command = [sys.executable, "-m", "benchmarks.gpu_drift", "--child", "--frames", str(frames),
               "--sequence", sequence]
    completed = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, check=False)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode or not lines:
        raise RuntimeError(f"ours with JAX_PLATFORMS={platform} failed (exit {completed.returncode})")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    return np.asarray(result["boxes"]), result["seconds"], result["backend"], result["description"]


def child(args: argparse.Namespace) -> int:
    """Track with ours on this process's JAX backend; print the boxes as one JSON line."""
    frames, box = sequence_frames(args.sequence, args.frames)
    tracker = Tracker(str(WEIGHTS))
    tracker.track(frames[:2], box)  # compiles init and update, outside the timing
    started = time.perf_counter()
    boxes, _ = tracker.track(frames, box)
    seconds = time.perf_counter() - started
    result = {
        "boxes": boxes.tolist(),
        "seconds": seconds,
        "backend": jax.default_backend(),
        "description": f"jax {jax.__version__}, {describe_devices()}, plan {tracker.spec.plan.describe()}",
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def sequence_frames(sequence: str, frames: int | None) -> tuple[list[str], np.ndarray]:
    """The frame paths (the first ``frames``) and siamfc-pytorch's start box of ``sequence`` (a
    name under ``../shared/siamfc/data/sequences`` or a folder whose name is one)."""
    folder = SHARED / "data" / "sequences" / Path(sequence).name
    paths = list(open_sequence(folder).frames)[:frames]
    return paths, stored_boxes(folder.name)[0]


def stored_boxes(name: str) -> np.ndarray:
    """siamfc-pytorch's stored boxes of the shared sequence ``name``, (N, 4) 1-indexed x, y, w, h."""
    return np.loadtxt(REFERENCE / f"{name}.txt", delimiter=",", ndmin=2)


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float | int | None]:
    """Agreement of two runs' boxes: mean and least IoU, the first frame below :data:`PART_IOU` and
    the first whose boxes differ by more than :data:`DIFFER_PX` pixels (None: no such frame)."""
    overlaps = iou(a, b)
    parted = np.flatnonzero(overlaps < PART_IOU)
    differ = np.flatnonzero(np.abs(a - b).max(axis=1) > DIFFER_PX)
    return {
        "mean_iou": float(overlaps.mean()),
        "min_iou": float(overlaps.min()),
        "parts_at": int(parted[0]) if parted.size else None,
        "differs_at": int(differ[0]) if differ.size else None,
    }


def report(runs: dict[str, np.ndarray], truth: np.ndarray) -> list[str]:
    """The lines of the AUC list and the pairwise table."""
    lines = [f"{'run':>16} | {'AUC':>6} | {'mean IoU with ground truth':>26}"]
    for name, boxes in runs.items():
        scores = evaluate(boxes, truth)
        lines.append(f"{name:>16} | {scores['auc']:6.4f} | {float(np.nanmean(iou(boxes, truth))):26.4f}")
    lines += ["", f"{'run':>16} | {'run':>16} | {'mean IoU':>9} | {'least IoU':>9} | "
              f"{f'first IoU<{PART_IOU}':>14} | {f'first >{DIFFER_PX} px':>13}"]
    for (first, a), (second, b) in itertools.combinations(runs.items(), 2):
        figures = compare(a, b)
        parts = "-" if figures["parts_at"] is None else str(figures["parts_at"])
        differs = "-" if figures["differs_at"] is None else str(figures["differs_at"])
        lines.append(f"{first:>16} | {second:>16} | {figures['mean_iou']:9.6f} | {figures['min_iou']:9.6f} | "
                     f"{parts:>14} | {differs:>13}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequence", default="bag", help="shared sequence: bag (default) or Crossing")
    parser.add_argument("--torch-device", type=comma_list(TORCH_DEVICES), default=["cpu"],
                        help=f"siamfc-pytorch's runs, among {', '.join(TORCH_DEVICES)} (default cpu)")
    parser.add_argument("--jax-platform", type=comma_list(None), default=None,
                        help="ours, one process per JAX platform, e.g. cuda,cpu (default: JAX's choice)")
    parser.add_argument("--frames", type=int, default=None, help="track only the first N (>= 2) frames")
    parser.add_argument("--out", type=Path, help="write each run's boxes to OUT/<run>.txt")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frames is not None and args.frames < 2:
        parser.error("--frames must be >= 2")
    try:
        if args.child:
            return child(args)
        frames, box = sequence_frames(args.sequence, args.frames)
        truth = np.asarray(open_sequence(SHARED / "data" / "sequences" / Path(args.sequence).name).boxes)
    except DataError as error:
        print(f"gpu_drift: error: {error}", file=sys.stderr)
        return 1
    child_base = dict(os.environ)
    # This process runs no JAX program; should anything start a backend here, it must not take
    # the GPU memory the children need (they get the environment as it was).
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    runs = {"stored": stored_boxes(Path(args.sequence).name)[: len(frames)]}
    print(f"{Path(args.sequence).name}: {len(frames)} frames, weights {WEIGHTS.name}; stored: "
          f"siamfc-pytorch's boxes ({REFERENCE.relative_to(SHARED.parent)}, its CPU)", flush=True)
    failed = 0
    # A run that cannot run here (no CUDA for PyTorch, say) is left out; the others are compared.
    for device in args.torch_device:
        try:
            boxes, seconds, described = torch_boxes(frames, box, device)
        except (DataError, RuntimeError) as error:
            print(f"torch-{device}: not run: {error}", flush=True)
            failed += 1
            continue
        runs[f"torch-{device}"] = boxes
        print(f"torch-{device}: {described}; {(len(frames) - 1) / seconds:.1f} fps", flush=True)
    for platform in args.jax_platform or [None]:
        try:
            boxes, seconds, backend, described = jax_boxes(args.sequence, len(frames), platform, child_base)
        except RuntimeError as error:
            print(f"jax ({platform or 'default platform'}): not run: {error}", flush=True)
            failed += 1
            continue
        runs[f"jax-{backend}"] = boxes
        print(f"jax-{backend}: {described}; {(len(frames) - 1) / seconds:.1f} fps", flush=True)
    print()
    for line in report(runs, truth[: len(frames)]):
        print(line)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, boxes in runs.items():
            np.savetxt(args.out / f"{name}.txt", boxes, fmt="%.4f", delimiter=",")
    return 1 if failed else 0


if __name__ == "__main__":
    # The parent runs no JAX program; a child sets its process up as track.py does.
    if "--child" in sys.argv:
        setup_process(compilation_cache=False)
    else:
        setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)
    sys.exit(main())
