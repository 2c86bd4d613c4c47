"""Training-pair throughput: curated crops (siamfc_crops + PairLoader) vs siamfc-pytorch's on-the-fly path.

Every path feeds the same :class:`~siamfc_jax.pipeline.loader.PairLoader` (same sampling, augmentation,
batching and worker processes) from the same sequences; they differ only in where the two 255 x 255
crops of a pair come from:

- ours: what ``train.py`` does by default: two rows of the split's decoded crop store
  (:mod:`siamfc_jax.pipeline.crop_store`, mapped from disk: no decode, no record read) where the
  split is within ``TrainConfig.decoded_crops_gb`` and fits on the disk, which the benchmark's set
  does (the store is written on first use; the line printed before the measurements says what was
  chosen);
- ours-jpeg: the path of splits too large for a store: two random reads of the curated
  ``siamfc_crops`` dataset and two 255 x 255 JPEG decodes;
- on the fly (:class:`~siamfc_jax.pipeline.pairs.FrameCrops`, siamfc-pytorch's path): read the
  sequence's annotation, decode the two full frames, crop each with a random interpolation.

Default data: a synthetic GOT-10k-layout set (:mod:`siamfc_jax.synthetic`) of 1280 x 720 frames
(GOT-10k's most common size; the frame size sets the on-the-fly cost), generated once into a cache
directory together with its curated dataset. Throughput is measured in steady state (after the
workers' first batches), alternating the paths, ``--repeats`` times; the table gives medians of
pairs per second and of pairs per CPU second of the worker processes. The second is what one worker
core delivers whatever else the machine runs (on a shared machine the first is not), so it is the
figure to multiply by cores.

Usage::

    python -m benchmarks.data_speed [--frame-size 1280x720] [--workers 1,2,16] [--seconds 4]
    python -m benchmarks.data_speed --workers 1 --sources ours,ours-jpeg

The last line printed is ``ratio=<ours / on-the-fly pairs/s at the largest worker count>`` when both
are measured.
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
from siamfc_jax.config import PairConfig, TrainConfig
from siamfc_jax.pipeline.loader import PairLoader
from siamfc_jax.pipeline.pairs import CropSource, FrameCrops
from siamfc_jax.pipeline.tfds_builder import SiamfcCropsConfig, load_curated, prepare, with_crop_store
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


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's living child processes (Linux ``/proc``)."""
    ticks = 0
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                # Fields after the command name: state is field 3, utime and stime fields 14 and 15.
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended since it was listed
                continue
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(
    source: CropSource, workers: int, batch_size: int, seconds: float, config: PairConfig
) -> tuple[float, float]:
    """Steady-state ``(pairs per second, pairs per worker CPU second)`` of a PairLoader over ``source``.

    The second figure is NaN without workers.
    """
    loader = PairLoader(source, batch_size, seed=0, workers=workers, config=config)
    # Batches that were computed while the workers started (their prefetch buffers) are not timed.
    warmup = max(workers, 1) * loader.prefetch + 1
    batches = loader.epoch(0)
    timed, start, cpu = 0, 0.0, 0.0
    try:
        for index, _ in enumerate(batches):
            if index + 1 == warmup:
                start, cpu = time.perf_counter(), children_cpu_seconds()
            elif index + 1 > warmup:
                timed += 1
                if time.perf_counter() - start >= seconds and timed >= 3:
                    break
        else:
            raise RuntimeError("the epoch ended before the measurement: raise --pairs-per-seq")
        elapsed, cpu = time.perf_counter() - start, children_cpu_seconds() - cpu
    finally:
        batches.close()
    return timed * batch_size / elapsed, timed * batch_size / cpu if workers else float("nan")


SOURCES = ("ours", "ours-jpeg", "on-the-fly")


def source_names(text: str) -> list[str]:
    """``"ours,on-the-fly"`` -> the named sources, in :data:`SOURCES` order."""
    names = {name.strip() for name in text.split(",")}
    if not names or not names <= set(SOURCES):
        raise argparse.ArgumentTypeError(f"sources are among {', '.join(SOURCES)}, got {text!r}")
    return [name for name in SOURCES if name in names]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "siamfc_jax"
    parser.add_argument("--cache-dir", type=Path, default=default_cache / "data_speed")
    parser.add_argument("--frame-size", type=cli.frame_size, default=(1280, 720), help="WIDTHxHEIGHT")
    parser.add_argument("--sequences", type=int, default=24)
    parser.add_argument("--frames", type=int, default=40, help="frames per sequence")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=positive_counts, default=None,
                        help="comma-separated worker-process counts (default: 1, 2 and all cores)")
    parser.add_argument("--sources", type=source_names, default=["ours", "on-the-fly"],
                        help=f"comma-separated, among {', '.join(SOURCES)} (default: ours,on-the-fly)")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs-per-seq", type=int, default=2000, help="makes epochs long enough")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = available_cores()
    worker_counts = args.workers or sorted({1, min(2, cores), cores})

    root = synthetic_set(args.cache_dir, args.frame_size, args.sequences, args.frames)
    curation = SiamfcCropsConfig(name=f"bench_{root.name}", kind="got10k", validation_sequences=0)
    builder = prepare(curation, args.cache_dir / "tfds", manual_dir=root, progress=True)
    config = PairConfig(pairs_per_seq=args.pairs_per_seq)
    curated = load_curated(builder, config=config)
    records = builder.info.splits["train"].num_examples
    default_budget = round(TrainConfig().decoded_crops_gb * 1e9)
    stored = curated
    if "ours" in args.sources:
        stored = with_crop_store(curated, builder, default_budget, progress=True)
    makers = {
        "ours": lambda: stored,
        "ours-jpeg": lambda: curated,
        "on-the-fly": lambda: FrameCrops(GOT10k(root), config),
    }

    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for repeat in range(args.repeats):
        for workers in worker_counts:
            for name in args.sources:
                rates = measure(makers[name](), workers, args.batch_size, args.seconds, config)
                results.setdefault((name, workers), []).append(rates)
                progress = f"repeat {repeat + 1}/{args.repeats}: {name:>11} workers={workers:<3}"
                print(f"{progress} {rates[0]:8.1f} pairs/s {rates[1]:8.1f} pairs/worker-CPU-s", flush=True)

    frame_bytes = np.mean([os.path.getsize(path) for path in GOT10k(root)[0].frames])
    shards = list(Path(builder.data_dir).glob("*.array_record*"))
    crop_bytes = sum(path.stat().st_size for path in shards) / records
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
    report(results, args.sources, worker_counts)
    return 0


def report(
    results: dict[tuple[str, int], list[tuple[float, float]]], sources: list[str], worker_counts: list[int]
) -> None:
    """The table (medians of pairs/s and of pairs per worker CPU second), the H100 estimate, the ratio."""
    medians = {
        key: tuple(statistics.median(rates[k] for rates in runs) for k in range(2))
        for key, runs in results.items()
    }
    header = " | ".join(f"{name + ' pairs/s':>19} | {'per worker-CPU-s':>16}" for name in sources)
    print(f"{'workers':>7} | {header}")
    print("-" * (10 + len(header)))
    for workers in worker_counts:
        row = " | ".join(f"{medians[name, workers][0]:>19.1f} | {medians[name, workers][1]:>16.1f}"
                         for name in sources)
        print(f"{workers:>7} | {row}")
    print()
    low, high = H100_PAIRS_PER_SECOND
    for name in sources:
        per_core = medians[name, worker_counts[0]][1]
        workers = f"{worker_counts[0]} worker{'s' * (worker_counts[0] > 1)}"
        print(f"{name}: {per_core:.0f} pairs per worker CPU second (with {workers}); "
              f"an H100's estimated {low}-{high} pairs/s (assumption, not measured) takes "
              f"~{low / per_core:.0f}-{high / per_core:.0f} such cores.")
    if "ours" in sources and "ours-jpeg" in sources:
        per_cpu = medians["ours", worker_counts[0]][1] / medians["ours-jpeg", worker_counts[0]][1]
        print(f"ours / ours-jpeg, pairs per worker CPU second: {per_cpu:.2f}")
    if "ours" in sources and "on-the-fly" in sources:
        largest = worker_counts[-1]
        print(f"ratio={medians['ours', largest][0] / medians['on-the-fly', largest][0]:.2f}")


if __name__ == "__main__":
    setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)
    sys.exit(main())
