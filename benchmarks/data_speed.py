"""Training-pair throughput: curated crops (siamfc_crops + PairLoader) vs siamfc-pytorch's on-the-fly path.

Both paths feed the same :class:`~siamfc_jax.pipeline.loader.PairLoader` (same sampling, augmentation,
batching and worker processes) from the same sequences; they differ only in where the two 255 x 255
crops of a pair come from:

- ours: two random reads of a curated ``siamfc_crops`` dataset and two 255 x 255 JPEG decodes;
- on the fly (:class:`~siamfc_jax.pipeline.pairs.FrameCrops`, siamfc-pytorch's path): read the
  sequence's annotation, decode the two full frames, crop each with a random interpolation.

Default data: a synthetic GOT-10k-layout set (:mod:`siamfc_jax.synthetic`) of 1280 x 720 frames
(GOT-10k's most common size; the frame size sets the on-the-fly cost), generated once into a cache
directory together with its curated dataset. Throughput is measured in steady state (after the
workers' first batches), alternating the two paths, ``--repeats`` times; the table gives medians.

Usage::

    python -m benchmarks.data_speed [--frame-size 1280x720] [--workers 1,2,16] [--seconds 4]

The last line printed is ``ratio=<ours / on-the-fly pairs/s at the largest worker count>``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import grain
import numpy as np
import tensorflow_datasets as tfds

from benchmarks.track_speed import cpu_model, positive_counts
from siamfc_jax import cli
from siamfc_jax.config import PairConfig
from siamfc_jax.pipeline.loader import PairLoader
from siamfc_jax.pipeline.pairs import CropSource, FrameCrops
from siamfc_jax.pipeline.tfds_builder import SiamfcCropsConfig, load_curated, prepare
from siamfc_jax.runtime import available_cores, setup_process
from siamfc_jax.sequences.datasets import GOT10k
from siamfc_jax.synthetic.config import SyntheticConfig, config_fingerprint
from siamfc_jax.synthetic.writer import write_got10k

# Assumed device-only throughput of one H100 training step, pairs per second (not measured here).
H100_PAIRS_PER_SECOND = (2000, 4000)


def synthetic_set(cache_dir: Path, frame_size: tuple[int, int], sequences: int, frames: int) -> Path:
    """The benchmark's GOT-10k-layout root (generated on first use, then reused)."""
    # The synthetic world's target sizes are tuned for 240-pixel-high frames; scale them with the
    # frame so that crops (about 4x the target) have realistic sizes.
    scale = frame_size[1] / 240
    config = SyntheticConfig(
        num_sequences=sequences,
        frames_per_sequence=frames,
        frame_size=frame_size,
        target_size_range=(28.0 * scale, min(90.0 * scale, min(frame_size) / 2)),
    )
    root = cache_dir / f"synthetic_{frame_size[0]}x{frame_size[1]}_{config_fingerprint(config)}"
    write_got10k(root, config, "train", progress=True)
    return root


def measure(source: CropSource, workers: int, batch_size: int, seconds: float, config: PairConfig) -> float:
    """Steady-state pairs per second of a PairLoader over ``source``."""
    loader = PairLoader(source, batch_size, seed=0, workers=workers, config=config)
    # Batches that were computed while the workers started (their prefetch buffers) are not timed.
    warmup = workers * loader.prefetch + 1
    batches = loader.epoch(0)
    timed, start = 0, 0.0
    try:
        for index, _ in enumerate(batches):
            if index + 1 == warmup:
                start = time.perf_counter()
            elif index + 1 > warmup:
                timed += 1
                if time.perf_counter() - start >= seconds and timed >= 3:
                    break
        else:
            raise RuntimeError("the epoch ended before the measurement: raise --pairs-per-seq")
    finally:
        batches.close()
    return timed * batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "siamfc_jax"
    parser.add_argument("--cache-dir", type=Path, default=default_cache / "data_speed")
    parser.add_argument("--frame-size", type=cli.frame_size, default=(1280, 720), help="WIDTHxHEIGHT")
    parser.add_argument("--sequences", type=int, default=24)
    parser.add_argument("--frames", type=int, default=40, help="frames per sequence")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=positive_counts, default=None,
                        help="comma-separated worker-process counts (default: 1, 2 and all cores)")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs-per-seq", type=int, default=2000, help="makes epochs long enough")
    args = parser.parse_args(argv)
    cores = available_cores()
    worker_counts = args.workers or sorted({1, min(2, cores), cores})

    root = synthetic_set(args.cache_dir, args.frame_size, args.sequences, args.frames)
    curation = SiamfcCropsConfig(name=f"bench_{root.name}", kind="got10k", validation_sequences=0)
    builder = prepare(curation, args.cache_dir / "tfds", manual_dir=root, progress=True)
    config = PairConfig(pairs_per_seq=args.pairs_per_seq)
    sources = {"ours": load_curated(builder, config=config), "on-the-fly": FrameCrops(GOT10k(root), config)}

    results: dict[tuple[str, int], list[float]] = {}
    for repeat in range(args.repeats):
        for workers in worker_counts:
            for name, source in sources.items():
                rate = measure(source, workers, args.batch_size, args.seconds, config)
                results.setdefault((name, workers), []).append(rate)
                progress = f"repeat {repeat + 1}/{args.repeats}: {name:>10} workers={workers:<3}"
                print(f"{progress} {rate:8.1f} pairs/s", flush=True)

    frame_bytes = np.mean([os.path.getsize(path) for path in GOT10k(root)[0].frames])
    shards = list(Path(builder.data_dir).glob("*.array_record*"))
    crop_bytes = sum(path.stat().st_size for path in shards) / builder.info.splits["train"].num_examples
    print()
    print(f"date: {datetime.date.today().isoformat()}")
    print(f"machine: {cpu_model()}, {cores} usable cores, {platform.system()} {platform.release()}")
    print(f"python {platform.python_version()}, OpenCV {cv2.__version__}, grain {grain.__version__}, "
          f"tensorflow-datasets {tfds.__version__}, NumPy {np.__version__}")
    print(f"data: {args.sequences} synthetic sequences x {args.frames} frames of "
          f"{args.frame_size[0]}x{args.frame_size[1]} (mean JPEG {frame_bytes / 1e3:.0f} kB), "
          f"curated crops {crop_bytes / 1e3:.1f} kB each; batch {args.batch_size}; "
          f"medians of {args.repeats} x {args.seconds:g} s")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print()
    print(f"{'workers':>7} | {'ours pairs/s':>12} | {'on-the-fly pairs/s':>18} | {'ratio':>6}")
    print(f"{'-' * 7}-+-{'-' * 12}-+-{'-' * 18}-+-{'-' * 6}")
    medians = {key: statistics.median(rates) for key, rates in results.items()}
    for workers in worker_counts:
        ours, theirs = medians["ours", workers], medians["on-the-fly", workers]
        print(f"{workers:>7} | {ours:>12.1f} | {theirs:>18.1f} | {ours / theirs:>6.2f}")
    per_worker = medians["ours", worker_counts[0]] / worker_counts[0]
    low, high = H100_PAIRS_PER_SECOND
    print()
    print(f"One H100 trains on an estimated {low}-{high} pairs/s (assumption, not measured). At "
          f"{per_worker:.0f} pairs/s per worker process (measured with {worker_counts[0]}), that takes "
          f"~{low / per_worker:.0f}-{high / per_worker:.0f} worker cores for ours and "
          f"~{low / (medians['on-the-fly', worker_counts[0]] / worker_counts[0]):.0f}-"
          f"{high / (medians['on-the-fly', worker_counts[0]] / worker_counts[0]):.0f} on the fly.")
    largest = worker_counts[-1]
    print(f"ratio={medians['ours', largest] / medians['on-the-fly', largest]:.2f}")
    return 0


if __name__ == "__main__":
    setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)
    sys.exit(main())
