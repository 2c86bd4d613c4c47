"""Batched benchmark speed: target-frames/s of one-at-a-time tracking and of batched runs, side by side.

The same jobs in every row: ``--jobs`` sequences alternating OTB *Crossing* (360 x 240) and VOT
*bag* (480 x 360) from ``../shared`` (siamfc-pytorch's trained weights), ``--frames`` frames each.

- ``sequential``: :class:`~siamfc_jax.tracker.Tracker` over each sequence in turn (what
  ``track.py --seq ROOT`` does), frames decoded from disk;
- ``batched K``: :func:`~siamfc_jax.evaluation.tracking.track_sequences` with K slots (what
  ``track.py --seq ROOT --batch K`` does): frames of both sizes in one padded 384 x 512 buffer.

Each row is compiled and run once before it is timed; times cover decoding, uploads, device steps,
and box downloads, not compilation. ``ratio``: the row's target-frames/s over the sequential row's.

Usage::

    python -m benchmarks.batched_speed [--jobs 16] [--frames 6] [--slots 1,4,16]
"""

from __future__ import annotations

import argparse
import time

import jax

from benchmarks.track_speed import machine_lines
from siamfc_jax.evaluation.tracking import SequenceJob, track_sequences
from siamfc_jax.runtime import setup_process
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker
from siamfc_jax.tracker.device import hyper_params
from siamfc_jax.weights import load_variables
from tests.conftest import SHARED_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--slots", default="1,4,16")
    args = parser.parse_args()
    for line in machine_lines():
        print(line)
    data = SHARED_ROOT / "siamfc" / "data" / "sequences"
    sources = [open_sequence(data / "Crossing"), open_sequence(data / "bag")]
    sequences = [sources[index % 2] for index in range(args.jobs)]
    weights = load_variables(SHARED_ROOT / "siamfc" / "weights" / "siamfc_original_v1.pth")
    tracker = Tracker(weights)
    target_frames = args.jobs * args.frames

    def sequential(warm_up: bool = False) -> None:
        for sequence in sequences:
            tracker.track(sequence.frames[: args.frames], sequence.init_box)

    def batched(slots: int):
        jobs = [SequenceJob(sequence, hyper_params(tracker.config)) for sequence in sequences]
        variables = jax.device_put(tracker.variables)

        def run(warm_up: bool = False) -> None:
            for _ in track_sequences(
                variables, tracker.spec, jobs, slots=slots,
                max_frames=args.frames, warm_up=warm_up,
            ):
                pass

        return run

    rows = [("sequential", sequential)] + [
        (f"batched K={slots}", batched(slots)) for slots in (int(k) for k in args.slots.split(","))
    ]
    print(f"{args.jobs} jobs x {args.frames} frames = {target_frames} target-frames per row")
    print(f"{'mode':>14} | {'seconds':>8} | {'target-frames/s':>15} | {'ratio':>6}")
    baseline = None
    for name, run in rows:
        for source in sources:  # compile (sequential: per frame size) outside the timing
            if name == "sequential":
                tracker.track(source.frames[:2], source.init_box)
        if name != "sequential":
            run(warm_up=True)  # compiles the programs for this K
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        rate = target_frames / seconds
        baseline = baseline or rate
        print(f"{name:>14} | {seconds:8.1f} | {rate:15.2f} | {rate / baseline:6.2f}")


if __name__ == "__main__":
    setup_process(compilation_cache=False)  # as track.py runs; the restart repeats the imports above
    main()
