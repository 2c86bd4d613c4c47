"""``python -m siamfc_jax.tune``: hyper-parameter search, or a checkpoint sweep with ``--checkpoints``.

Examples::

    python -m siamfc_jax.tune --seq data/OTB --out tune/ \\
        --grid window_influence=0.15,0.176,0.25 --grid scale_lr=0.45,0.59 --batch 8
    python -m siamfc_jax.tune --seq data/OTB --out tune/ --random 20 --seed 0 \\
        --range window_influence=0.1:0.4 --range scale_penalty=0.95:1
    python -m siamfc_jax.tune --checkpoints runs/v1-synthetic --seq data/val --out sweep/

``--out`` is held by the run until it ends: a second search or sweep into the same folder is
refused (exit 1) naming the first's pid and host, so two runs never mix their results.

Exit status as every siamfc_jax tool (:mod:`siamfc_jax.cli`): 0 done, 2 bad arguments, 1 bad data
or weights, 130 interrupted (what was finished is written; the same command continues).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import jax

from siamfc_jax import cli
from siamfc_jax.config import ConfigError, TrackerConfig
from siamfc_jax.evaluation.validation import is_sequence_root, validate_for_tracking
from siamfc_jax.io import hold_folder
from siamfc_jax.runtime import (
    choose_xla_cpu_libraries,
    describe_devices,
    enable_compilation_cache,
    keep_freed_host_memory,
    relaunch_with_mimalloc,
    select_platform,
)
from siamfc_jax.sequences.datasets import SequenceFolder
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tune.config_file import ConfigFileError, read_config_file
from siamfc_jax.tune.search import (
    BEST_NAME,
    TABLE_NAME,
    SearchError,
    grid_candidates,
    parse_grid,
    parse_ranges,
    random_candidates,
    run_search,
    search_settings,
)
from siamfc_jax.tune.sweep import SWEEP_NAME, run_sweep
from siamfc_jax.weights import WeightsError, default_weights_path, load_variables


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m siamfc_jax.tune",
        description="Search tracker hyper-parameters, or score every checkpoint of a training run.",
    )
    parser.add_argument(
        "--seq",
        required=True,
        type=cli.non_empty_path,
        metavar="ROOT",
        help="a folder of sequence folders (or one sequence)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=cli.non_empty_path,
        metavar="DIR",
        help="output folder (a rerun continues in it; one run at a time)",
    )
    parser.add_argument(
        "--weights", metavar="FILE", help="weights to search with (default: the packaged weights)"
    )
    parser.add_argument(
        "--config", metavar="FILE", help="base tracker config file (default: siamfc-pytorch's)"
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="grid values of a field (repeat per field)",
    )
    parser.add_argument(
        "--random",
        type=cli.positive_integer,
        metavar="N",
        help="draw N random candidates from the --range bounds",
    )
    parser.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="FIELD=LOW:HIGH",
        help="bounds of a field for --random",
    )
    parser.add_argument(
        "--seed", type=cli.non_negative_integer, default=0, help="seed of --random (default 0)"
    )
    parser.add_argument(
        "--checkpoints", metavar="WORKDIR", help="score every checkpoint of this training run instead"
    )
    parser.add_argument(
        "--batch", type=cli.positive_integer, default=8, metavar="K", help="jobs tracked together (default 8)"
    )
    parser.add_argument(
        "--max-frames",
        type=cli.positive_integer,
        metavar="N",
        help="track only the first N frames of each sequence",
    )
    parser.add_argument("--progress", action="store_true", help="progress bar on stderr")
    return parser


def _sequences(root: str) -> list:
    sequences = list(SequenceFolder(root)) if is_sequence_root(root) else [open_sequence(root)]
    for sequence in sequences:
        validate_for_tracking(sequence, require_ground_truth=True)
    return sequences


def _base_config(path: str | None) -> TrackerConfig:
    if path is None:
        return TrackerConfig()
    try:
        return TrackerConfig(**read_config_file(path))
    except ConfigFileError as error:
        raise cli.UsageError(f"argument --config: {error}") from None


def _run(args: argparse.Namespace) -> int:
    enable_compilation_cache()
    print(describe_devices(), flush=True)
    base = _base_config(args.config)
    if args.checkpoints is not None:
        if args.grid or args.random or args.range or args.weights:
            raise cli.UsageError("argument --checkpoints: takes no --grid, --random, --range or --weights")
        with hold_folder(args.out, "argument --out: ", "--out"):
            return _sweep(args, base)
    candidates = _candidates(args)
    with hold_folder(args.out, "argument --out: ", "--out"):
        return _search(args, base, candidates)


def _sweep(args: argparse.Namespace, base: TrackerConfig) -> int:
    """Score every checkpoint of ``--checkpoints`` (the folder is held)."""
    sequences = _sequences(args.seq)
    rows, interrupted = run_sweep(
        args.checkpoints,
        sequences,
        args.out,
        config=base,
        slots=args.batch,
        max_frames=args.max_frames,
        progress=args.progress,
    )
    print(f"wrote {args.out}/{SWEEP_NAME}.json, .md and .png ({len(rows)} checkpoints)")
    return (
        cli.fail("interrupted; rerun to continue", cli.EXIT_INTERRUPTED) if interrupted else cli.EXIT_OK
    )


def _candidates(args: argparse.Namespace) -> list:
    """The candidates of ``--grid`` or ``--random`` with ``--range``; usage errors name the flag."""
    try:
        if args.grid and args.random:
            raise cli.UsageError("argument --random: give either --grid or --random with --range")
        if args.random:
            if not args.range:
                raise cli.UsageError("argument --random: needs at least one --range FIELD=LOW:HIGH")
            candidates = random_candidates(parse_ranges(args.range), args.random, args.seed)
        elif args.grid:
            if args.range:
                raise cli.UsageError("argument --range: only with --random")
            candidates = grid_candidates(parse_grid(args.grid))
        else:
            raise cli.UsageError(
                "give --grid FIELD=V1,V2 (repeatable), --random N with --range, or --checkpoints"
            )
    except SearchError as error:
        raise cli.UsageError(str(error)) from None
    return candidates


def _search(args: argparse.Namespace, base: TrackerConfig, candidates: list) -> int:
    """Track every candidate over ``--seq`` and write the table and the best config (the folder is held)."""
    weights = args.weights or str(default_weights_path())
    sequences = _sequences(args.seq)
    variables, model_config = load_variables(weights)
    settings = search_settings(weights, sequences, base, args.max_frames)
    try:
        _, best, interrupted = run_search(
            jax.device_put(variables),
            model_config,
            base,
            candidates,
            sequences,
            args.out,
            settings=settings,
            slots=args.batch,
            max_frames=args.max_frames,
            progress=args.progress,
        )
    except SearchError as error:
        raise cli.UsageError(str(error)) from None
    print(Path(args.out, TABLE_NAME).read_text(), end="")
    if best is not None:
        changed = {
            name: value
            for name, value in dataclasses.asdict(best).items()
            if value != getattr(TrackerConfig(), name)
        }
        print(
            f"best config: {changed or 'the defaults'}; written to {args.out}/{BEST_NAME} (track.py --config)"
        )
    if interrupted:
        return cli.fail("interrupted; the same command continues the search", cli.EXIT_INTERRUPTED)
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    select_platform()
    keep_freed_host_memory()
    choose_xla_cpu_libraries()

    def body() -> int:
        args = build_parser().parse_args(argv)
        try:
            return _run(args)
        except ConfigError as error:
            raise cli.UsageError(f"argument {cli.flag(error.field)}: {error}") from None

    return cli.run(body, (DataError, WeightsError, SearchError, OSError))


if __name__ == "__main__":
    relaunch_with_mimalloc()  # before anything compiles; it repeats the imports above
    sys.exit(main())
