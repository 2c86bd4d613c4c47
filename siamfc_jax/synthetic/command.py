"""The command line of ``python -m siamfc_jax.synthetic --out DIR``: writes a synthetic dataset."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from siamfc_jax import cli
from siamfc_jax.synthetic.config import WORLDS, SyntheticConfig, world_config
from siamfc_jax.synthetic.writer import write_got10k


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (:mod:`siamfc_jax.cli`'s convention)."""

    def body() -> int:
        defaults = SyntheticConfig()
        parser = cli.ArgumentParser(
            prog="python -m siamfc_jax.synthetic",
            description="Write a synthetic tracking dataset in GOT-10k layout (resumable).",
        )
        parser.add_argument("--out", required=True, help="dataset root; sequences go to OUT/SUBSET")
        parser.add_argument(
            "--world", choices=tuple(WORLDS), default="basic", help="which synthetic world (default basic)"
        )
        parser.add_argument(
            "--num-sequences",
            type=cli.positive_integer,
            default=defaults.num_sequences,
            help="sequences in the subset (default %(default)s; GOT-10k's train has 9335, its val 180)",
        )
        parser.add_argument(
            "--frames",
            type=cli.positive_integer,
            default=defaults.frames_per_sequence,
            help="frames per sequence (default %(default)s; GOT-10k's train averages about 150)",
        )
        parser.add_argument("--seed", type=cli.non_negative_integer, default=defaults.seed)
        parser.add_argument("--subset", default="train", help="GOT-10k subset folder (train, val, test)")
        parser.add_argument(
            "--workers", type=cli.positive_integer, default=None, help="processes (default: CPU cores)"
        )
        parser.add_argument(
            "--frame-size",
            type=cli.frame_size,
            default=defaults.frame_size,
            help="WIDTHxHEIGHT of the frames (default %(default)s)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        args = parser.parse_args(argv)
        config = dataclasses.replace(
            world_config(args.world, args.num_sequences),
            frames_per_sequence=args.frames,
            seed=args.seed,
            frame_size=args.frame_size,
        )
        subset_dir = write_got10k(
            args.out, config, args.subset, workers=args.workers, progress=not args.no_progress
        )
        print(f"{config.num_sequences} sequences in {subset_dir}")
        return cli.EXIT_OK

    return cli.run(body, (ValueError, OSError))
