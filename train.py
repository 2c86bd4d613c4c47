"""Train SiamFC: ``python train.py --backbone v1 [--data synthetic|got10k:DIR|vid:DIR|folder:DIR]``.

Thin command line over :func:`siamfc_jax.training.loop.train`; see README.md for the schedules,
multi-GPU and multi-host use. Running the same command again resumes from the newest checkpoint.
"""

from __future__ import annotations

import argparse
import sys

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
from siamfc_jax.runtime import select_platform


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of argparse's usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python train.py",
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
        "--epochs", type=_positive(int), help=f"default 50; synthetic: {SYNTHETIC_SCHEDULE['epochs']}"
    )
    parser.add_argument("--batch-size", type=_positive(int), help="global batch size (default 8)")
    parser.add_argument("--lr", type=_positive(float), help="initial learning rate (default 1e-2)")
    parser.add_argument(
        "--final-lr", type=_positive(float), help="learning rate the decay aims at (default 1e-5)"
    )
    parser.add_argument("--weight-decay", type=float, help="default 5e-4")
    parser.add_argument(
        "--pairs-per-seq", type=_positive(int), help="pairs per sequence per epoch (default 1)"
    )
    parser.add_argument("--seed", type=_non_negative, default=0)
    parser.add_argument(
        "--workers", type=_non_negative, default=0, help="data loader processes (default 0: threads)"
    )
    parser.add_argument(
        "--synthetic-sequences", type=_positive(int), help="size of the synthetic training set (default 300)"
    )
    parser.add_argument(
        "--val-sequences",
        type=_non_negative,
        help="sequences tracked for validation AUC per epoch (default 3)",
    )
    parser.add_argument(
        "--save-every-steps",
        type=_non_negative,
        help="extra checkpoints every N steps (default: per epoch only)",
    )
    parser.add_argument("--keep-checkpoints", type=_positive(int), help="checkpoints kept (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host: jax.distributed.initialize() (auto-detected, or the 3 flags below)",
    )
    parser.add_argument("--coordinator", help="host:port of process 0 (with --distributed)")
    parser.add_argument(
        "--num-processes", type=_positive(int), help="number of processes (with --distributed)"
    )
    parser.add_argument("--process-id", type=_non_negative, help="this process's index (with --distributed)")
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
    select_platform()
    args = parse_args(argv)
    try:
        config = build_config(args)
    except ValueError as error:
        print(f"python train.py: error: {error}", file=sys.stderr)
        return 2

    import jax

    from siamfc_jax.data.sequences import DataError
    from siamfc_jax.training.loop import train

    if args.distributed:
        jax.distributed.initialize(
            coordinator_address=args.coordinator, num_processes=args.num_processes, process_id=args.process_id
        )
    try:
        result = train(config, progress=not args.no_progress)
    except (DataError, ValueError, OSError) as error:
        print(f"python train.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python train.py: aborted without saving", file=sys.stderr)
        return 130
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
