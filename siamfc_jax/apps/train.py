"""Train SiamFC: ``python train.py [--config NAME] [--FIELD VALUE ...]``.

Thin command line over :func:`siamfc_jax.training.loop.train`. A run is a named config from
:mod:`siamfc_jax.configs` (``synthetic``, ``got10k``, ``vid``, ``default``, ``ci``; each module's
docstring holds its command, wall time and expected AUC). Every field of the config is a flag named
by its dotted path (``--optim.epochs 3``, ``--pairs.instance-sz 271``, ``--pairs.color-jitter``,
``--seed 1``); short flags (``--backbone``, ``--epochs``, ``--batch-size``, ``--lr``,
``--final-lr``, ``--weight-decay``, ``--pairs-per-seq``) are other names of the same flags. Without
``--config`` the config follows ``--data``: ``python train.py --backbone v1`` trains on the synthetic
world (:mod:`siamfc_jax.configs.synthetic`), ``--data got10k:DIR`` with siamfc-pytorch's recipe. See README.md
for multi-GPU and multi-host use. Running the same command again resumes from the newest checkpoint
(or says that the run is finished; a larger ``--optim.epochs`` extends a finished run, its learning
rate decaying on at the same rate). The workdir is checked before any work and held by the run
until it ends: a second run on it is refused (exit 1) naming the first's pid and host. When stderr
is not a terminal, a plain progress line (``... epoch 2/6, step 40 of 300 (95 s)``) is printed on it
at least every 10 s. Ctrl-C stops after the current step with a checkpoint (at once while the data is
prepared or the network validated) and exits with 130; a second Ctrl-C aborts without saving.
Installed: ``siamfc-train``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys

from siamfc_jax import cli, configs
from siamfc_jax.config import ConfigError, TrainConfig
from siamfc_jax.files import LockHeld, check_writable_dir, hold_folder
from siamfc_jax.runtime import setup_process
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.synthetic.config import SyntheticDataError
from siamfc_jax.weights import WeightsError

# Short names of config flags, for the fields most often changed.
ALIASES = {
    "model.backbone": ("--backbone",),
    "optim.epochs": ("--epochs",),
    "optim.batch_size": ("--batch-size",),
    "optim.initial_lr": ("--lr",),
    "optim.ultimate_lr": ("--final-lr",),
    "optim.weight_decay": ("--weight-decay",),
    "pairs.pairs_per_seq": ("--pairs-per-seq",),
}

_FIELD_HELP = {
    "model.backbone": "AlexNet variant: v1, v2 or v3",
    "model.out_scale": "response scale of the correlation head",
    "optim.epochs": "number of epochs",
    "optim.batch_size": "global batch size (divisible by the number of devices)",
    "optim.initial_lr": "initial learning rate",
    "optim.ultimate_lr": "learning rate the exponential decay reaches in the last epoch",
    "optim.weight_decay": "weight decay added to the gradient",
    "optim.momentum": "SGD momentum",
    "loss.r_pos": "radius of the positive labels, pixels of the search image",
    "loss.r_neg": "radius of the ignored band around the positives, pixels",
    "loss.neg_weight": "relative weight of the negative labels",
    "pairs.exemplar_sz": "side in pixels of the exemplar crop",
    "pairs.instance_sz": "side in pixels of the curated search crop",
    "pairs.context": "context margin around the target, as a fraction of (w + h)",
    "pairs.pairs_per_seq": "pairs per sequence per epoch",
    "pairs.min_target_side": "smallest box side in pixels of a training frame (siamfc-pytorch: 20)",
    "pairs.max_frame_gap": "largest frame distance between the two images of a pair",
    "pairs.max_stretch": "largest random stretch of a pair's images",
    "pairs.color_jitter": "PCA lighting noise on the pairs",
    "pairs.grayscale_prob": "probability of a grey pair",
    "data": "synthetic (generated), got10k:DIR, vid:DIR (ILSVRC2015) or folder:DIR",
    "data_dir": "TFDS directory for the curated crops (default $XDG_CACHE_HOME/siamfc_jax/tfds)",
    "workdir": "checkpoints, logs and final weights (default runs/<backbone>-<data kind>)",
    "seed": "seed of the initial weights and of the pair stream",
    "workers": "data loader processes (0: threads)",
    "synthetic_world": "synthetic world: basic, or rich (small targets, photographs, shake, ...)",
    "synthetic_sequences": "size of the synthetic training set",
    "val_data": "folder:DIR of real annotated sequences to track for the validation AUC",
    "val_sequences": "sequences tracked for the validation AUC per epoch (0: none)",
    "save_every_steps": "extra checkpoints every N steps (0: per epoch only)",
    "keep_checkpoints": "checkpoints kept",
    "log_every_steps": "steps between TensorBoard scalars",
    "compute_dtype": "the network's compute type in the train step: float32 or bfloat16 (parameters "
    "stay float32)",
    "decoded_crops_gb": "largest training split kept decoded on disk beside the curated crops, GB "
    "(0: decode the JPEG crops for every pair; the same pairs either way)",
}


def build_parser() -> tuple[argparse.ArgumentParser, list[str]]:
    """The argument parser and the dotted paths of its config flags (one per TrainConfig field)."""
    parser = cli.ArgumentParser(
        prog=cli.program_name("python train.py"),
        description="Train SiamFC (siamfc-pytorch's recipe) with data-parallel JAX.",
        epilog="Config fields not given keep the value of --config (see siamfc_jax/configs/ for each run).",
    )
    parser.add_argument(
        "--config",
        choices=configs.NAMES,
        help="the run (default: from --data: synthetic, got10k or vid; default for folder:DIR)",
    )
    parser.add_argument(
        "--show-config", action="store_true", help="print the resulting config as JSON and exit"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    cli.add_distributed_flags(parser)
    parser.add_argument(
        "--collective-timeout",
        type=cli.positive_integer,
        default=600,
        help="seconds a CPU collective waits for the other processes before failing (with "
        "--distributed; default 600)",
    )
    fields = parser.add_argument_group("config fields (default: the value in --config)")
    paths = cli.add_config_flags(fields, TrainConfig(), _FIELD_HELP, ALIASES)
    return parser, paths


def build_config(args: argparse.Namespace, paths: list[str]) -> TrainConfig:
    """The TrainConfig of ``--config`` (or the one ``--data`` selects) with the flags given.

    Raises:
      UsageError: a value its config refuses (the message names the flag).
    """
    try:
        return configs.build(args.config, cli.config_changes(args, paths))
    except ConfigError as error:
        raise cli.UsageError(f"argument {cli.flag(error.field)}: {error}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the command line in a process set up by :func:`siamfc_jax.runtime.setup_process`
    (:func:`siamfc_jax.apps.train_command`); returns the exit status (:mod:`siamfc_jax.cli`'s
    convention)."""

    def body() -> int:
        parser, paths = build_parser()
        args = parser.parse_args(argv)
        config = build_config(args, paths)
        if args.show_config:
            print(json.dumps(dataclasses.asdict(config), indent=1))
            return cli.EXIT_OK
        from siamfc_jax.pipeline.sources import parse_data_spec

        try:  # before any work: a malformed --data is a usage error, a missing dataset a data error
            parse_data_spec(config.data)
        except DataError as error:
            if str(error).startswith("--data "):
                raise cli.UsageError(f"argument {error}") from None
            raise
        check_writable_dir(config.workdir, "argument --workdir: ")
        if args.distributed:
            # Read when the backend starts, after initialize() below.
            setup_process(allocator=False, collective_timeout_s=args.collective_timeout)

        import jax

        from siamfc_jax.training.distributed import ProcessLost
        from siamfc_jax.training.loop import train

        if args.distributed:
            jax.distributed.initialize(
                coordinator_address=args.coordinator,
                num_processes=args.num_processes,
                process_id=args.process_id,
            )
        quiet = args.no_progress or not sys.stderr.isatty()
        try:
            with contextlib.ExitStack() as hold, cli.Heartbeat(enabled=quiet) as beat:
                if not args.distributed or jax.process_index() == 0:  # one run's processes share it
                    hold.enter_context(hold_folder(config.workdir, "argument --workdir: ", "--workdir"))
                result = train(config, progress=not args.no_progress, log=beat.say, status=beat.set_status)
        except (KeyboardInterrupt, ProcessLost, LockHeld) as error:
            lost = not isinstance(error, KeyboardInterrupt)
            status = cli.EXIT_INPUT if lost else cli.EXIT_INTERRUPTED
            cli.fail(str(error) if lost else "aborted without saving", status)
            if args.distributed:
                # jax.distributed's exit handler waits for every process at a shutdown barrier,
                # which a lost or aborted process never reaches: leave without it.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
            return status
        return cli.EXIT_INTERRUPTED if result.interrupted else cli.EXIT_OK

    return cli.run(body, (DataError, WeightsError, SyntheticDataError, ValueError, OSError))
