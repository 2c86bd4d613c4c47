"""Train SiamFC: ``python train.py --backbone v1 [--data synthetic|got10k:DIR|vid:DIR|folder:DIR]``
(installed: ``siamfc-train``).

Command line over :func:`siamfc_jax.training.loop.train`; see README.md for the schedules,
multi-GPU and multi-host use. Running the same command again resumes from the newest checkpoint
(or says that the run is finished). The workdir is checked before any work; when stderr is not a
terminal, a plain progress line is printed at least every 10 s.
"""

from __future__ import annotations

import argparse
import sys

from siamfc_jax import cli
from siamfc_jax.config import (
    BACKBONES,
    SYNTHETIC_SCHEDULE,
    LossConfig,
    ModelConfig,
    OptimConfig,
    PairConfig,
    TrainConfig,
    replace,
)
from siamfc_jax.io import check_writable_dir
from siamfc_jax.runtime import select_platform
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.synthetic.config import SyntheticDataError
from siamfc_jax.weights import WeightsError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.ArgumentParser(
        prog=cli.program_name("python train.py"),
        description="Train SiamFC (siamfc-pytorch's recipe) with data-parallel JAX.",
    )
    parser.add_argument("--backbone", choices=BACKBONES, default="v1", help="AlexNet variant (default v1)")
    parser.add_argument(
        "--data",
        default="synthetic",
        help="synthetic (default, generated), got10k:DIR, vid:DIR (ILSVRC2015) or folder:DIR",
    )
    parser.add_argument(
        "--data-dir", help="TFDS directory for the curated crops (default ~/tensorflow_datasets)"
    )
    parser.add_argument(
        "--workdir", help="checkpoints, logs and final weights (default runs/<backbone>-<data>)"
    )
    parser.add_argument(
        "--epochs", type=cli.positive_integer, help=f"default 50; synthetic: {SYNTHETIC_SCHEDULE['epochs']}"
    )
    parser.add_argument("--batch-size", type=cli.positive_integer, help="global batch size (default 8)")
    parser.add_argument("--lr", type=cli.positive_float, help="initial learning rate (default 1e-2)")
    parser.add_argument(
        "--final-lr", type=cli.positive_float, help="learning rate the decay aims at (default 1e-5)"
    )
    parser.add_argument("--weight-decay", type=cli.finite_float, help="default 5e-4")
    parser.add_argument(
        "--pairs-per-seq", type=cli.positive_integer, help="pairs per sequence per epoch (default 1)"
    )
    parser.add_argument("--seed", type=cli.non_negative_integer, default=0)
    parser.add_argument(
        "--workers",
        type=cli.non_negative_integer,
        default=0,
        help="data loader processes (default 0: threads)",
    )
    parser.add_argument(
        "--synthetic-sequences",
        type=cli.positive_integer,
        help="size of the synthetic training set (default 300)",
    )
    parser.add_argument(
        "--val-sequences",
        type=cli.non_negative_integer,
        help="sequences tracked for validation AUC per epoch (default 3)",
    )
    parser.add_argument(
        "--save-every-steps",
        type=cli.non_negative_integer,
        help="extra checkpoints every N steps (default: per epoch only)",
    )
    parser.add_argument("--keep-checkpoints", type=cli.positive_integer, help="checkpoints kept (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host: jax.distributed.initialize() (auto-detected, or the 3 flags below)",
    )
    parser.add_argument("--coordinator", help="host:port of process 0 (with --distributed)")
    parser.add_argument(
        "--num-processes", type=cli.positive_integer, help="number of processes (with --distributed)"
    )
    parser.add_argument(
        "--process-id", type=cli.non_negative_integer, help="this process's index (with --distributed)"
    )
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """A TrainConfig from the flags: siamfc-pytorch's defaults, the synthetic schedule for synthetic data."""
    schedule = SYNTHETIC_SCHEDULE if args.data == "synthetic" else {}
    epochs = args.epochs or schedule.get("epochs")
    pairs_per_seq = args.pairs_per_seq or schedule.get("pairs_per_seq")
    optim = replace(
        OptimConfig(),
        epochs=epochs,
        batch_size=args.batch_size,
        initial_lr=args.lr,
        ultimate_lr=args.final_lr,
        weight_decay=args.weight_decay,
    )
    kind = args.data.partition(":")[0]
    return replace(
        TrainConfig(
            model=ModelConfig(backbone=args.backbone),
            optim=optim,
            loss=LossConfig(),
            pairs=replace(PairConfig(), pairs_per_seq=pairs_per_seq),
            data=args.data,
            workdir=args.workdir or f"runs/{args.backbone}-{kind}",
            seed=args.seed,
            workers=args.workers,
        ),
        data_dir=args.data_dir,
        synthetic_sequences=args.synthetic_sequences,
        val_sequences=args.val_sequences,
        save_every_steps=args.save_every_steps,
        keep_checkpoints=args.keep_checkpoints,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (:mod:`siamfc_jax.cli`'s convention)."""
    select_platform()

    def body() -> int:
        args = parse_args(argv)
        try:
            config = build_config(args)
        except ValueError as error:
            raise cli.UsageError(str(error)) from None
        from siamfc_jax.pipeline.sources import parse_data_spec

        try:  # before any work: a malformed --data is a usage error, a missing dataset a data error
            parse_data_spec(config.data)
        except DataError as error:
            if str(error).startswith("--data "):
                raise cli.UsageError(f"argument {error}") from None
            raise
        check_writable_dir(config.workdir, "argument --workdir: ")

        import jax

        from siamfc_jax.training.loop import train

        if args.distributed:
            jax.distributed.initialize(
                coordinator_address=args.coordinator,
                num_processes=args.num_processes,
                process_id=args.process_id,
            )
        quiet = args.no_progress or not sys.stderr.isatty()
        try:
            with cli.Heartbeat(enabled=quiet) as beat:
                result = train(config, progress=not args.no_progress, log=beat.say)
        except KeyboardInterrupt:
            return cli.fail("aborted without saving", cli.EXIT_INTERRUPTED)
        return cli.EXIT_INTERRUPTED if result.interrupted else cli.EXIT_OK

    return cli.run(body, (DataError, WeightsError, SyntheticDataError, ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
