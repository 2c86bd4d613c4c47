"""The command line of ``python -m siamfc_jax.tune``: hyper-parameter search, or a checkpoint sweep
with ``--checkpoints``.

Examples::

    python -m siamfc_jax.tune --seq data/OTB --out tune/ \\
        --grid window_influence=0.15,0.176,0.25 --grid scale_lr=0.45,0.59 --batch 8
    python -m siamfc_jax.tune --seq data/OTB --out tune/ --random 20 --seed 0 \\
        --range window_influence=0.1:0.4 --range scale_penalty=0.95:1
    python -m siamfc_jax.tune --seq vot-workspace/sequences --out tune-vot/ --protocol vot \\
        --grid window_influence=0.15,0.176,0.25
    python -m siamfc_jax.tune --checkpoints runs/v1-synthetic --seq data/val --out sweep/
    # on each of N hosts, I = 0 .. N-1 (process 0 writes the outputs; see docs/evaluation.md)
    python -m siamfc_jax.tune --seq data/OTB --out tune/ --grid scale_lr=0.45,0.59 --distributed \\
        --coordinator HOST0:1234 --num-processes N --process-id I

Exit status as every siamfc_jax tool (:mod:`siamfc_jax.cli`): 0 done, 2 bad arguments, 1 bad data
or weights, 130 interrupted (what was finished is written; the same command continues).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from pathlib import Path

import jax

from siamfc_jax import cli
from siamfc_jax.config import ConfigError, TrackerConfig
from siamfc_jax.evaluation.distributed import Cluster, ProcessFailed, reporting_failures
from siamfc_jax.evaluation.validation import is_sequence_root, validate_for_tracking
from siamfc_jax.evaluation.vot_runs import vot_groundtruth
from siamfc_jax.files import hold_folder
from siamfc_jax.plans import CONV_IMPL_CHOICES, Workload, named_plan
from siamfc_jax.runtime import describe_devices
from siamfc_jax.sequences.datasets import SequenceFolder
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tune.cluster import connect
from siamfc_jax.tune.config_file import ConfigFileError, read_config_file
from siamfc_jax.tune.distributed import run_distributed_search
from siamfc_jax.tune.search import (
    BEST_NAME,
    TABLE_NAME,
    VOT,
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
        "--seq", required=True, type=cli.non_empty_path, metavar="ROOT",
        help="a folder of sequence folders (or one sequence)",
    )
    parser.add_argument(
        "--out", required=True, type=cli.non_empty_path, metavar="DIR",
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
    parser.add_argument(
        "--conv-impl",
        choices=CONV_IMPL_CHOICES,
        default="auto",
        metavar="NAME",
        help="search: how the network computes its convolutions: auto (default: this machine's plan, "
        "measured once on the CPU and stored) or one formulation for every layer: "
        + ", ".join(CONV_IMPL_CHOICES[1:]),
    )
    parser.add_argument(
        "--protocol",
        choices=(VOT,),
        help="vot: search on VOT sequences under VOT's supervised experiment, ranked by EAO "
        "(vot2018 interval) where a sequence is longer than 100 frames, else by accuracy with "
        "fewer failures breaking ties (default: success AUC)",
    )
    cli.add_distributed_flags(parser.add_argument_group(
        "several processes or hosts (a search; each process tracks a share of the runs, process 0 "
        "writes the outputs)"
    ))
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


def _check_sweep_arguments(args) -> None:
    """``--checkpoints`` takes none of a search's arguments."""
    if args.distributed:
        raise cli.UsageError("argument --distributed: a search only, not --checkpoints")
    if args.grid or args.random or args.range or args.weights or args.protocol:
        raise cli.UsageError(
            "argument --checkpoints: takes no --grid, --random, --range, --weights or --protocol"
        )


def _sweep(args, base: TrackerConfig, sequences: list) -> int:
    """``--checkpoints``: score every checkpoint of a training run on ``sequences``."""
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


def _candidates(args) -> list[dict]:
    """The candidates of ``--grid`` or ``--random`` with ``--range``."""
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


def _run(args, cluster: Cluster | None = None) -> int:
    print(describe_devices(), flush=True)
    base = _base_config(args.config)
    candidates = None
    if args.checkpoints is not None:
        _check_sweep_arguments(args)
    else:
        candidates = _candidates(args)
        if cluster is not None and args.protocol is not None:
            raise cli.UsageError("argument --distributed: a search by success AUC only, not --protocol vot")
    # The input is checked before --out is taken (and so created).
    sequences = _sequences(args.seq)
    if args.protocol == VOT:
        for sequence in sequences:  # VOT ground truth
            vot_groundtruth(sequence, args.max_frames)
    with contextlib.ExitStack() as hold:
        # One run writes into --out at a time (with several processes, process 0 holds it).
        if cluster is None or cluster.coordinator:
            hold.enter_context(hold_folder(args.out, "argument --out: ", "--out"))
        if candidates is None:
            return _sweep(args, base, sequences)
        return _search(args, base, candidates, cluster, sequences)


def _search(
    args, base: TrackerConfig, candidates: list[dict], cluster: Cluster | None, sequences: list
) -> int:
    """A search of ``candidates`` on ``sequences``, its outputs in ``--out``."""
    weights = args.weights or str(default_weights_path())
    variables, model_config = load_variables(weights)
    settings = search_settings(weights, sequences, base, args.max_frames, args.protocol)
    plan = named_plan(args.conv_impl, model_config, Workload.tracking(base))
    if cluster is None:
        search = functools.partial(run_search, protocol=args.protocol)
    else:
        search = functools.partial(run_distributed_search, cluster)
    try:
        _, best, interrupted = search(
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
            plan=plan,
        )
    except SearchError as error:
        raise cli.UsageError(str(error)) from None
    if cluster is not None and not cluster.coordinator:
        print(f"process {cluster.process}: done; process 0 writes {args.out}/{TABLE_NAME}")
        return cli.EXIT_INTERRUPTED if interrupted else cli.EXIT_OK
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
    """Run the command line in a process set up by :func:`siamfc_jax.runtime.setup_process`
    (``python -m siamfc_jax.tune``); returns the exit status (:mod:`siamfc_jax.cli`'s convention)."""

    def body() -> int:
        args = build_parser().parse_args(argv)
        cli.check_distributed_flags(args)
        cluster = connect(args.coordinator, args.num_processes, args.process_id) if args.distributed else None
        try:
            with reporting_failures(cluster):
                return _run(args, cluster)
        except ConfigError as error:
            raise cli.UsageError(f"argument {cli.flag(error.field)}: {error}") from None

    return cli.run(body, (DataError, WeightsError, SearchError, OSError, ProcessFailed))
