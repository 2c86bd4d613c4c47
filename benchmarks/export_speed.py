"""Speed of the exported networks in onnxruntime beside ours, on the CPU, in one run.

Rows (frames per second; one frame = what a tracker update asks of its network):

- ``network, ours``: the backbone on three 255 x 255 search crops plus the correlation with a
  cached exemplar, jitted, with the tracker's convolution formulation (``auto``: matmul on CPU);
- ``network, onnxruntime``: the same on the exported ``embed.onnx`` + ``head.onnx``
  (CPUExecutionProvider, one intra-op thread per usable core);
- ``tracker update, ours``: :meth:`siamfc_jax.tracker.Tracker.update` (crops, network,
  upsampling, peak, state; upload of the frame and download of the box);
- ``StableHLO update``: the exported update step (``jax.export``, matmul formulation) called from
  the deserialised artifact.

Data: the first frames of ``../shared/siamfc/data/sequences/Crossing`` with the shared real weights;
search crops are real crops around the first box. ``--repeats`` rounds alternate the rows; the table
gives medians and the ratio of each row to ``network, ours``.

Usage::

    python -m benchmarks.export_speed [--frames 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from benchmarks.track_speed import machine_lines
from siamfc_jax.config import TrackerConfig
from siamfc_jax.export.onnx import export_onnx, import_optional
from siamfc_jax.export.stablehlo import export_steps
from siamfc_jax.models import SiamFC, cross_correlate
from siamfc_jax.pipeline.crops import crop_and_resize
from siamfc_jax.runtime import available_cores, setup_process
from siamfc_jax.sequences.frames import average_color
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker

SHARED = Path(__file__).resolve().parents[2] / "shared" / "siamfc"
WEIGHTS = SHARED / "weights" / "siamfc_original_v1.pth"
SEQUENCE = SHARED / "data" / "sequences" / "Crossing"


def real_crops(
    frames: list[np.ndarray], box: np.ndarray, config: TrackerConfig
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The (1, 127, 127, 3) exemplar of the first frame and (3, 255, 255, 3) search crops of each
    frame, float32, around the first box's centre (the geometry of the tracker's first update)."""
    x, y, w, h = box
    center = np.array([y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2])
    exemplar_side = np.sqrt((h + config.context * (w + h)) * (w + config.context * (w + h)))
    search_side = exemplar_side * config.instance_sz / config.exemplar_sz
    fill = np.rint(average_color(frames[0]))
    factors = config.scale_step ** np.array([-1.0, 0.0, 1.0])
    exemplar = crop_and_resize(frames[0], center, exemplar_side, config.exemplar_sz, fill)[None]
    searches = [
        np.stack([crop_and_resize(f, center, search_side * s, config.instance_sz, fill) for s in factors])
        for f in frames
    ]
    return exemplar.astype(np.float32), [crops.astype(np.float32) for crops in searches]


def timed(step, inputs) -> float:
    """Frames per second of ``step`` over ``inputs``."""
    start = time.perf_counter()
    for item in inputs:
        step(item)
    return len(inputs) / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> int:
    ort = import_optional("onnxruntime", "this benchmark")
    if not WEIGHTS.is_file() or not SEQUENCE.is_dir():
        print(f"error: needs {WEIGHTS} and {SEQUENCE} (../shared)", file=sys.stderr)
        return 1
    for line in machine_lines():
        print(line)
    sequence = open_sequence(SEQUENCE)
    frames = [frame for _, frame in zip(range(args.frames + 1), sequence.iter_frames(), strict=False)]
    tracker = Tracker(WEIGHTS)
    variables, model_config, config = tracker.variables, tracker.model_config, tracker.config
    exemplar, crops = real_crops(frames, sequence.init_box, config)
    model = SiamFC(model_config, precision=config.precision, plan=tracker.plan)
    kernel = model.apply(variables, exemplar, method=SiamFC.embed)

    @jax.jit
    def network(searches):
        features = model.apply(variables, searches, method=SiamFC.embed)
        correlation = tracker.plan.correlation
        return cross_correlate(kernel, features, model_config.out_scale, config.precision, correlation)

    with tempfile.TemporaryDirectory() as folder:
        export_onnx(variables, model_config, folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = available_cores()
        providers = ["CPUExecutionProvider"]
        embed = ort.InferenceSession(f"{folder}/embed.onnx", options, providers=providers)
        head = ort.InferenceSession(f"{folder}/head.onnx", options, providers=providers)
    kernel_host = np.asarray(kernel)

    def onnx_network(searches):
        features = embed.run(None, {"images": searches})[0]
        return head.run(None, {"exemplar_features": kernel_host, "search_features": features})[0]

    def ours_network(searches):
        jax.block_until_ready(network(searches))

    exported_init, exported_update = export_steps(variables, model_config, config, platforms=("cpu",))
    init_step, update_step = jax.jit(exported_init.call), jax.jit(exported_update.call)
    box32 = np.asarray(sequence.init_box, np.float32)
    state = [init_step(frames[0], box32)]

    def stablehlo_update(frame):
        *new_state, box = update_step(*state[0], frame)
        state[0] = new_state
        np.asarray(box)

    tracker.init(frames[0], sequence.init_box)
    rows = {
        "network, ours": (ours_network, crops[1:]),
        "network, onnxruntime": (onnx_network, crops[1:]),
        "tracker update, ours": (tracker.update, frames[1:]),
        "StableHLO update": (stablehlo_update, frames[1:]),
    }
    for step, inputs in rows.values():  # compile and warm up
        step(inputs[0])
    results: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, (step, inputs) in rows.items():
            results[name].append(timed(step, inputs))
    medians = {name: statistics.median(values) for name, values in results.items()}
    base = medians["network, ours"]
    print(f"{args.frames} frames, median of {args.repeats} alternating rounds")
    print(f"{'row':>22} | {'fps':>7} | vs network, ours")
    for name, fps in medians.items():
        print(f"{name:>22} | {fps:7.2f} | {fps / base:.2f}x")
    ratio = medians["network, onnxruntime"] / base
    print(f"onnxruntime_over_ours_network={ratio:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export_speed", description=__doc__)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)
    sys.exit(main())
