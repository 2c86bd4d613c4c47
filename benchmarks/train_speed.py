"""Training speed: time per step and pairs per second of the data-parallel SiamFC train step.

Modes:

- ``device``: the step alone, on one random uint8 batch that is already on the devices (127 x 127
  exemplars, 239 x 239 searches, split over the devices as the training loop splits it);
- ``end-to-end``: as ``train.py`` runs it: :class:`~siamfc_jax.pipeline.loader.PairLoader` over a
  curated synthetic dataset (``--sequences`` sequences, prepared once under ``--data-dir``; the
  loader's ``--workers`` processes, 0 = threads in this process as train.py's default), each batch
  placed with :func:`~siamfc_jax.training.step.shard_batch`, then the step.

Each device count runs in its own process: on a CPU, XLA emulates N devices
(``--xla_force_host_platform_device_count``), which share the CPU's cores, so there the rows show
the cost of the data-parallel program, not a speed-up; on accelerators the first N devices are
used. Steps run after compilation and ``--warmup`` untimed steps, with the last step waited for;
``--repeats`` rounds alternate the modes (and formulations with ``--compare-impl``), and the table
gives medians. ``compiles`` counts XLA compilations during the timed steps (must be 0).

Usage::

    python -m benchmarks.train_speed [--batch-size 8] [--steps N] [--devices 1,2]
        [--conv-impl auto|lax|...] [--compare-impl [IMPL,...]] [--torch-device cpu|cuda]
        [--data-dir DIR] [--sequences 32] [--workers N] [--compute-dtype float32|bfloat16]

``--workers N`` feeds the end-to-end rows from N loader processes (as ``train.py --workers N``;
give ``--warmup`` enough steps for every worker's first batch); ``--compute-dtype bfloat16`` runs
our network in bfloat16 (``TrainConfig.compute_dtype``; siamfc-pytorch's row stays float32).

The 1-device run also times siamfc-pytorch's train step (``torch`` row, :func:`torch_train_step`) on
the same initial weights, alternating with ours.

The last line printed is ``pairs_per_s_device=<pairs/s> pairs_per_s_end_to_end=<pairs/s> ...
ours_over_torch=<ratio>``: the rates for the device count train.py uses by default (all devices of the
machine) and the first formulation; the ratio divides our 1-device device-only pairs/s by
siamfc-pytorch's. Before it, ``end to end / device only`` says how much of the device-only rate
the loader lets the step keep.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from benchmarks.track_speed import (
    REPO,
    CompileCounter,
    add_compare_impl_argument,
    add_torch_device_argument,
    check_torch_device,
    conv_impls,
    convolution_count,
    load_torch_reference,
    machine_lines,
    positive_counts,
    torch_device_line,
)
from siamfc_jax.config import COMPUTE_DTYPES, OptimConfig, PairConfig, TrainConfig
from siamfc_jax.interop.torch_weights import flax_to_torch
from siamfc_jax.pipeline.loader import PairLoader
from siamfc_jax.pipeline.sources import prepare_training_data
from siamfc_jax.plans import CONV_IMPL_CHOICES, Workload, named_plan
from siamfc_jax.runtime import (
    available_cores,
    describe_devices,
    setup_process,
)
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.training.state import create_train_state, make_optimizer
from siamfc_jax.training.step import data_mesh, make_train_step, shard_batch

RESULT_PREFIX = "train_speed result: "


def training_config(args: argparse.Namespace) -> TrainConfig:
    """The run whose steps are timed: synthetic data of ``--sequences`` sequences, one epoch long
    enough for every end-to-end measurement (its pairs per sequence are set for that)."""
    pairs_needed = args.batch_size * (args.warmup + args.steps)
    return TrainConfig(
        optim=OptimConfig(batch_size=args.batch_size),
        pairs=PairConfig(pairs_per_seq=math.ceil(pairs_needed / args.sequences)),
        data="synthetic",
        data_dir=str(args.data_dir),
        synthetic_sequences=args.sequences,
        val_sequences=0,
        workers=args.workers,
        compute_dtype=args.compute_dtype,
    )


# ---------------------------------------------------------------------------------------------
# One device count (child process)


def torch_train_step(variables: dict, batch_size: int, exemplar_sz: int, search_sz: int, threads: int,
                     device: str = "cpu"):
    """``(step, torch version, device line)``: ``step()`` runs one siamfc-pytorch train step on a fixed
    random batch on ``device`` and returns the loss (waiting for it); None without torch.

    The network is ``tests/torch_reference.py``'s with ``variables`` (our initial weights), in
    train mode; the loss is its balanced logistic loss on siamfc-pytorch's labels (radius 16 px,
    stride 8); the optimiser is siamfc-pytorch's: SGD, momentum 0.9, weight decay 5e-4 (learning
    rate 0.01, its first epoch's).
    """
    loaded = load_torch_reference()
    if loaded is None:
        return None
    torch, module = loaded
    check_torch_device(torch, device)
    torch.set_num_threads(threads)
    net = module.TorchNet("v1").train()
    net.load_state_dict({key: torch.from_numpy(np.array(value))
                         for key, value in flax_to_torch(jax.device_get(variables)).items()})
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(0)
    exemplars = torch.randint(0, 256, (batch_size, 3, exemplar_sz, exemplar_sz), generator=generator).float()
    searches = torch.randint(0, 256, (batch_size, 3, search_sz, search_sz), generator=generator).float()
    exemplars, searches = exemplars.to(device), searches.to(device)
    with torch.no_grad():
        size = net(exemplars[:1], searches[:1]).shape[-1]
    labels = module.labels(batch_size, size, size).to(device)

    def step() -> float:
        loss = module.balanced_loss(net(exemplars, searches), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    step()  # first call: allocations, kernel selection
    return step, torch.__version__, torch_device_line(torch, device, threads)


def measure(args: argparse.Namespace) -> dict:
    """Time the train step on the first ``args.child_devices`` devices; the figures as a dict."""
    devices = jax.devices()
    if len(devices) < args.child_devices:
        raise DataError(f"--devices asks for {args.child_devices} devices, this machine has {len(devices)}")
    mesh = data_mesh(devices[: args.child_devices])
    if args.batch_size % mesh.size:
        raise DataError(f"--batch-size {args.batch_size} does not split over {mesh.size} devices")
    config = training_config(args)
    data = prepare_training_data(config, workers=None, progress=False)
    loader = PairLoader(data.train, args.batch_size, seed=0, workers=args.workers, config=config.pairs)
    optimizer = make_optimizer(config.optim, loader.steps_per_epoch)
    state = jax.device_put(
        create_train_state(config.model, optimizer, jax.random.key(0)), NamedSharding(mesh, P())
    )
    sizes = config.pairs.exemplar_sz, config.pairs.search_sz
    workload = Workload.training(args.batch_size // mesh.size, *sizes)

    def train_step(impl: str):
        return make_train_step(
            config.model,
            config.loss,
            optimizer,
            mesh,
            config.pairs.exemplar_sz,
            config.pairs.search_sz,
            dtype=config.compute_dtype,
            plan=named_plan(impl, config.model, workload),
        )

    rng = np.random.default_rng(0)
    exemplar, search = config.pairs.exemplar_sz, config.pairs.search_sz
    device_batch = shard_batch(
        {
            "exemplar": rng.integers(0, 256, (args.batch_size, exemplar, exemplar, 3), np.uint8),
            "search": rng.integers(0, 256, (args.batch_size, search, search, 3), np.uint8),
        },
        mesh,
    )

    impls = conv_impls(args.conv_impl, args.compare_impl)
    counter = CompileCounter()
    programs, convolutions = {}, {}
    for impl in impls:
        lowered = jax.jit(train_step(impl), donate_argnums=0).lower(state, device_batch)
        programs[impl] = lowered.compile()
        convolutions[impl] = convolution_count(lowered)
        for _ in range(args.warmup):
            state, metrics = programs[impl](state, device_batch)
        jax.block_until_ready(metrics)
    print(f"[{mesh.size} device(s)] compiled {len(impls)} train steps ({len(counter)} XLA compilations)",
          file=sys.stderr, flush=True)
    torch_step = None
    if mesh.size == 1 and config.model.backbone == "v1":
        torch_step = torch_train_step(
            {"params": state.params, "batch_stats": state.batch_stats}, args.batch_size, exemplar, search,
            available_cores(), args.torch_device,
        )

    seconds: dict[str, list[float]] = collections.defaultdict(list)
    compiles: dict[str, int] = collections.Counter()
    for repeat in range(args.repeats):
        for impl in impls:
            for mode in ("device", "end-to-end"):
                before = len(counter)
                if mode == "device":
                    state, elapsed = time_device(programs[impl], state, device_batch, args.steps)
                else:
                    state, elapsed = time_end_to_end(programs[impl], state, loader, mesh, args)
                key = f"{impl} {mode}"
                compiles[key] += len(counter) - before
                seconds[key].append(elapsed)
                print(f"[{mesh.size} device(s)] repeat {repeat + 1}/{args.repeats}: {impl:>6} {mode:>10} "
                      f"{args.steps * args.batch_size / elapsed:8.2f} pairs/s", file=sys.stderr, flush=True)
        if torch_step is not None:
            start = time.perf_counter()
            for _ in range(args.steps):
                torch_step[0]()
            seconds["torch device"].append(time.perf_counter() - start)
            print(f"[{mesh.size} device(s)] repeat {repeat + 1}/{args.repeats}:  torch     device "
                  f"{args.steps * args.batch_size / seconds['torch device'][-1]:8.2f} pairs/s",
                  file=sys.stderr, flush=True)
    return {
        "devices": mesh.size,
        "device_line": describe_devices(),
        "torch": None if torch_step is None else torch_step[1],
        "torch_device": None if torch_step is None else torch_step[2],
        "convolutions": convolutions,
        "rows": [
            {"impl": key.split()[0], "mode": key.split()[1], "seconds": times, "compiles": compiles[key]}
            for key, times in seconds.items()
        ],
    }


def time_device(program, state, batch, steps: int):
    """``(state, seconds)`` of ``steps`` steps on one batch already on the devices."""
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = program(state, batch)
    jax.block_until_ready((state, metrics))
    return state, time.perf_counter() - start


def time_end_to_end(program, state, loader: PairLoader, mesh, args: argparse.Namespace):
    """``(state, seconds)`` of ``args.steps`` steps on the loader's batches, after ``args.warmup``
    untimed ones (which also absorb the loader's start)."""
    batches = loader.epoch(0)
    try:
        for _ in range(args.warmup):
            state, metrics = program(state, shard_batch(next(batches), mesh))
        jax.block_until_ready(metrics)
        start = time.perf_counter()
        for _ in range(args.steps):
            state, metrics = program(state, shard_batch(next(batches), mesh))
        jax.block_until_ready((state, metrics))
        return state, time.perf_counter() - start
    finally:
        batches.close()


# ---------------------------------------------------------------------------------------------
# All device counts (parent process)


def child_command(args: argparse.Namespace, devices: int) -> list[str]:
    """The command measuring ``devices`` devices in a fresh process."""
    command = [
        sys.executable, "-m", "benchmarks.train_speed", "--child-devices", str(devices),
        "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
        "--repeats", str(args.repeats), "--conv-impl", args.conv_impl, "--data-dir", str(args.data_dir),
        "--sequences", str(args.sequences), "--workers", str(args.workers),
        "--torch-device", args.torch_device, "--compute-dtype", args.compute_dtype,
    ]
    if args.compare_impl is None:
        return command
    listed = ",".join(args.compare_impl)
    return [*command, f"--compare-impl={listed}" if listed else "--compare-impl"]


def child_environment(base: dict[str, str], devices: int, on_cpu: bool) -> dict[str, str]:
    """The environment ``base`` of a child; on a CPU, XLA emulates ``devices`` devices there."""
    env = dict(base)
    if on_cpu:
        flag = f"--xla_force_host_platform_device_count={devices}"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}".strip()
    return env


def run(args: argparse.Namespace, child_base: dict[str, str]) -> int:
    on_cpu = jax.default_backend() == "cpu"
    for name, cpu_default, default in (("steps", 2, 20), ("warmup", 1, 3), ("repeats", 2, 3)):
        if getattr(args, name) is None:
            setattr(args, name, cpu_default if on_cpu else default)
    device_counts = args.devices or sorted({1, 2} if on_cpu else {1, jax.device_count()})
    default_count = jax.device_count()
    uneven = [count for count in device_counts if args.batch_size % count]
    if uneven:
        raise DataError(f"--batch-size {args.batch_size} does not split evenly over {uneven[0]} devices")
    config = training_config(args)
    print(f"preparing {args.sequences} synthetic sequences in {args.data_dir} (reused when present)",
          flush=True)
    data = prepare_training_data(config, workers=None, progress=True)

    results = []
    for count in device_counts:
        completed = subprocess.run(
            child_command(args, count), cwd=REPO, env=child_environment(child_base, count, on_cpu),
            stdout=subprocess.PIPE, text=True, check=False,
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if completed.returncode or not lines:
            raise RuntimeError(f"the measurement of {count} device(s) failed (exit {completed.returncode})")
        results.append(json.loads(lines[-1][len(RESULT_PREFIX):]))

    print()
    for line in machine_lines():
        print(line)
    for result in results:
        print(f"  {result['devices']} device(s) run: {result['device_line']}")
    print(f"data: {data.description}; {len(data.train.names)} sequences, loader workers {args.workers}; "
          f"compute dtype {args.compute_dtype}")
    print(f"batch {args.batch_size} pairs (127x127 exemplars, 239x239 searches); {args.steps} timed steps "
          f"after {args.warmup} warm-up steps, medians of {args.repeats} runs")
    convs = ", ".join(f"{impl}: {count}" for impl, count in results[0]["convolutions"].items())
    print(f"convolution ops per train step program: {convs}")
    print()
    header = (f"{'devices':>7} | {'impl':>6} | {'mode':>10} | {'ms/step':>8} | {'pairs/s':>8} | "
              f"{'compiles':>8}")
    print(header)
    print("-+-".join("-" * len(part) for part in header.split(" | ")))
    rates: dict[tuple[int, str, str], float] = {}
    for result in results:
        for row in result["rows"]:
            step_seconds = statistics.median(row["seconds"]) / args.steps
            key = (result["devices"], row["impl"], row["mode"])
            rates[key] = args.batch_size / step_seconds
            print(f"{result['devices']:>7} | {row['impl']:>6} | {row['mode']:>10} | "
                  f"{1e3 * step_seconds:>8.1f} | {rates[key]:>8.2f} | "
                  f"{'-' if row['impl'] == 'torch' else row['compiles']:>8}")

    impls = list(results[0]["convolutions"])
    if len(impls) > 1:
        print()
        print(f"pairs/s of the other formulations / {impls[0]}:")
        for count in device_counts:
            for mode in ("device", "end-to-end"):
                others = ", ".join(f"{impl} {rates[count, impl, mode] / rates[count, impls[0], mode]:.2f}"
                                   for impl in impls[1:])
                print(f"  {count} device(s) {mode:>10}: {others}")
    print()
    workers = (f"{args.workers} loader process{'es' * (args.workers > 1)}" if args.workers
               else "the loader's threads")
    print(f"end to end ({workers}) / device only:")
    for count in device_counts:
        for impl in impls:
            device, end = rates[count, impl, "device"], rates[count, impl, "end-to-end"]
            print(f"  {count} device(s) {impl:>6}: {end / device:.2f} "
                  f"({end:.1f} against {device:.1f} pairs/s)")
    summary_count = default_count if default_count in device_counts else device_counts[-1]
    device_rate = rates[summary_count, impls[0], "device"]
    end_rate = rates[summary_count, impls[0], "end-to-end"]
    torch_rate = rates.get((1, "torch", "device"))
    ratio = "nan"
    if torch_rate:
        torch_result = next(result for result in results if result["torch"])
        ratio = f"{rates[1, impls[0], 'device'] / torch_rate:.2f}"
        print()
        print(f"torch {torch_result['torch']} ({torch_result['torch_device']}): siamfc-pytorch's train step "
              f"(tests/torch_reference.py, balanced loss, SGD momentum 0.9, weight decay 5e-4) on the same "
              f"initial weights and a random batch")
        print(f"ours ({impls[0]}, 1 device, device) / siamfc-pytorch's train step: {ratio}")
    print(f"pairs_per_s_device={device_rate:.2f} pairs_per_s_end_to_end={end_rate:.2f} "
          f"devices={summary_count} conv_impl={impls[0]} ours_over_torch={ratio}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "siamfc_jax"
    parser.add_argument("--batch-size", type=int, default=8, help="global batch in pairs (default 8)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per run (default: 2 on CPU, else 20)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps before each run (default: 1 on CPU, else 3)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per row (default: 2 on CPU, else 3)")
    parser.add_argument("--devices", type=positive_counts, default=None,
                        help="device counts, comma-separated (default: 1,2 on CPU, else 1 and all)")
    parser.add_argument("--conv-impl", choices=CONV_IMPL_CHOICES, default="auto",
                        help="auto (default): this machine's training plan; or one formulation everywhere")
    add_compare_impl_argument(parser)
    add_torch_device_argument(parser)
    parser.add_argument("--data-dir", type=Path, default=default_cache / "train_speed",
                        help="TFDS directory for the curated synthetic crops (reused)")
    parser.add_argument("--sequences", type=int, default=32, help="synthetic training sequences (>= 2)")
    parser.add_argument("--workers", type=int, default=0, help="loader processes (default 0: threads)")
    parser.add_argument("--compute-dtype", choices=COMPUTE_DTYPES, default="float32",
                        help="our network's compute type (default float32)")
    parser.add_argument("--child-devices", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "warmup", "repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.sequences < 2 or args.workers < 0:
        parser.error("--sequences must be >= 2 and --workers >= 0")
    try:
        if args.child_devices is not None:
            print(RESULT_PREFIX + json.dumps(measure(args)), flush=True)
            return 0
        child_base = dict(os.environ)
        # The parent only asks JAX which devices there are; without this it would take most of a
        # GPU's memory away from the children (which get the environment as it was).
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        return run(args, child_base)
    except (DataError, RuntimeError) as error:
        print(f"train_speed: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    setup_process(compilation_cache=False)  # as track.py runs; the restart repeats the imports above
    sys.exit(main())
