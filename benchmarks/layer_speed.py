"""Where a tracking frame's time goes: ours against siamfc-pytorch's, stage by stage.

One frame of the tracker, cut into the stages that cost time on a CPU: the search crops at the
three scales, then each of the backbone's five blocks (convolution, BatchNorm, ReLU, pooling) on
the three 255 x 255 crops. Each stage is timed alone on both sides, with the same weights and
inputs, in alternating rounds:

- ours: the stage jitted on its own, as the tracker compiles it into its update program (the crop
  by :func:`siamfc_jax.ops.crop.crop_and_resize`, a block by the backbone's own module with the
  formulation "auto" chooses for that layer and shape). Alone, a stage does not share fusions with
  its neighbours, so the stages' sum can differ a little from the whole update;
- siamfc-pytorch: its crops (``cv2.copyMakeBorder`` and ``cv2.resize``, as
  ``benchmarks.track_speed.TorchTracker`` does them) and the blocks of ``tests/torch_reference.py``
  on the crops in the memory order siamfc-pytorch gives them (a permuted NHWC array).

The crops of both sides are also compared (our device crop must equal OpenCV's). The table gives
milliseconds per call (medians of ``--repeats`` rounds of ``--calls`` calls) and each stage's speed
ratio, siamfc-pytorch's time over ours (above 1: ours is faster). The last line is
``ours_ms=<sum> torch_ms=<sum> ours_over_torch=<ratio of the sums>``.

Default data: the first frame and box of ``../shared/siamfc/data/sequences/Crossing`` with
siamfc-pytorch's trained weights, or where those are missing, the synthetic demo sequence and the
packaged weights. Needs PyTorch (``requirements-dev.txt``).

Usage::

    python -m benchmarks.layer_speed [--calls 5] [--repeats 5] [--sequence DIR --weights FILE]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.track_speed import TorchTracker, load_torch_reference, machine_lines, open_data
from siamfc_jax.interop.torch_weights import WeightsError, flax_to_torch
from siamfc_jax.models.backbones import backbone_class
from siamfc_jax.ops.crop import crop_and_resize
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.runtime import (
    available_cores,
    setup_process,
)
from siamfc_jax.sequences.frames import DataError, read_image
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker


def seconds_per_call(call: Callable[[], object], calls: int) -> float:
    """Mean seconds of ``calls`` calls of ``call``, each waited for."""
    start = time.perf_counter()
    for _ in range(calls):
        jax.block_until_ready(call())
    return (time.perf_counter() - start) / calls


def one_block_backbone(backbone: str, index: int):
    """A backbone class of block ``index`` (1-based) of ``backbone`` alone: applied to variables
    ``{"conv1": <that block's variables>}``, it runs what the full network runs for that block."""
    full = backbone_class(backbone)
    return type(f"{full.__name__}Block{index}", (full,), {"blocks": (full.blocks[index - 1],)})


def stages(
    tracker: Tracker, torch_tracker: TorchTracker, frame: np.ndarray
) -> list[tuple[str, Callable, Callable]]:
    """``(name, ours, theirs)`` for the crop and every block; each runs its stage once per call on
    inputs prepared here (each block's input is the previous stage's output on that side)."""
    torch = torch_tracker.torch
    config = tracker.config
    search_sides = torch_tracker.search_side * torch_tracker.factors
    center = jnp.asarray(torch_tracker.center, jnp.float32)
    sizes = jnp.asarray(search_sides, jnp.float32)
    fill = jnp.asarray(torch_tracker.fill, jnp.float32)
    image = jax.device_put(frame)
    crop = jax.jit(functools.partial(crop_and_resize, out_size=config.instance_sz))
    our_crops = crop(image, center, sizes, fill=fill)
    their_crops = torch_tracker.search_crops(frame)
    difference = np.abs(np.asarray(our_crops) - np.stack(their_crops).astype(np.float32)).max()
    print(f"search crops: ours and OpenCV's differ by at most {difference:g} grey levels", flush=True)
    result = [("crop (3 scales)", lambda: crop(image, center, sizes, fill=fill),
               lambda: torch_tracker.search_crops(frame))]

    variables = tracker.prepared_variables  # what the tracker's update runs on
    ours_input = our_crops
    with torch.no_grad():
        theirs_input = torch_tracker.tensor(their_crops)
    backbone = tracker.model_config.backbone
    for index in range(1, len(backbone_class(backbone).blocks) + 1):
        name = f"conv{index}"
        block_variables = {
            collection: {"conv1": values["backbone"][name]}
            for collection, values in variables.items()
            if name in values.get("backbone", {})
        }
        # The block runs as the one-block backbone's conv1, by the formulations of the tracker's plan.
        plan = tracker.plan
        block_plan = ConvPlan((plan.layer(index),) * len(plan.layers), plan.correlation, plan.separable_pool)
        module = one_block_backbone(backbone, index)(precision=config.precision, plan=block_plan)
        ours = jax.jit(module.apply)
        theirs = getattr(torch_tracker.net.backbone, name)

        def run_ours(ours=ours, block_variables=block_variables, x=ours_input):
            return ours(block_variables, x)

        def run_theirs(theirs=theirs, x=theirs_input):
            with torch.no_grad():
                return theirs(x)

        result.append((f"{name} block", run_ours, run_theirs))
        ours_input = jax.block_until_ready(run_ours())
        theirs_input = run_theirs()
    return result


def run(args: argparse.Namespace) -> int:
    loaded = load_torch_reference()
    if loaded is None:
        raise DataError("PyTorch is not installed (pip install -r requirements-dev.txt)")
    torch, reference = loaded
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "siamfc_jax"
    sequence_dir, weights, data_note = open_data(args.sequence, args.weights, default_cache / "track_speed")
    sequence = open_sequence(sequence_dir)
    frame = read_image(sequence.frames[0])
    box = np.asarray(sequence.init_box, np.float64)
    tracker = Tracker(weights)
    net = reference.TorchNet(tracker.model_config.backbone, tracker.model_config.out_scale).eval()
    net.load_state_dict({key: torch.from_numpy(np.array(value))
                         for key, value in flax_to_torch(jax.device_get(tracker.variables)).items()})
    threads = available_cores()
    torch_tracker = TorchTracker(torch, net, tracker.config, frame, box, threads)
    timed = stages(tracker, torch_tracker, frame)
    for _, ours, theirs in timed:  # first calls: compilation, allocations, kernel selection
        jax.block_until_ready(ours())
        theirs()

    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, _, _ in timed}
    for repeat in range(args.repeats):
        for name, ours, theirs in timed:
            times[name][0].append(seconds_per_call(ours, args.calls))
            times[name][1].append(seconds_per_call(theirs, args.calls))
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

    print()
    for line in machine_lines():
        print(line)
    print(f"torch {torch.__version__} (CPU, {threads} threads); data: {data_note}, first frame "
          f"{frame.shape[1]}x{frame.shape[0]}; ms per call, medians of {args.repeats} rounds of "
          f"{args.calls} calls")
    print()
    header = f"{'stage':>16} | {'ours ms':>8} | {'torch ms':>8} | {'torch/ours':>10}"
    print(header)
    print("-+-".join("-" * len(part) for part in header.split(" | ")))
    ours_total = theirs_total = 0.0
    for name, (ours, theirs) in times.items():
        ours_ms, theirs_ms = 1e3 * statistics.median(ours), 1e3 * statistics.median(theirs)
        ours_total += ours_ms
        theirs_total += theirs_ms
        print(f"{name:>16} | {ours_ms:>8.2f} | {theirs_ms:>8.2f} | {theirs_ms / ours_ms:>10.2f}")
    print(f"{'sum':>16} | {ours_total:>8.2f} | {theirs_total:>8.2f} | {theirs_total / ours_total:>10.2f}")
    print(f"ours_ms={ours_total:.2f} torch_ms={theirs_total:.2f} "
          f"ours_over_torch={theirs_total / ours_total:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequence", type=Path,
                        help="sequence folder (default: shared Crossing, else the synthetic demo)")
    parser.add_argument("--weights", type=Path,
                        help="weights file (default: shared siamfc-pytorch weights, else the packaged ones)")
    parser.add_argument("--calls", type=int, default=5, help="calls per timing (default 5)")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds (default 5)")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.repeats < 1:
        parser.error("--calls and --repeats must be >= 1")
    try:
        return run(args)
    except (DataError, WeightsError) as error:
        print(f"layer_speed: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    setup_process(compilation_cache=False)  # as track.py runs; the restart repeats the imports above
    sys.exit(main())
