"""Convert SiamFC weights between siamfc-pytorch ``.pth`` and siamfc_jax's weights file.

Usage: ``python -m siamfc_jax.convert IN OUT``. The direction follows from IN's content: a PyTorch
file becomes our format, our format becomes a ``.pth`` ``state_dict`` that siamfc-pytorch loads with
``strict=True``. The backbone (AlexNetV1/V2/V3) is inferred from the weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from siamfc_jax import cli
from siamfc_jax.interop.torch_weights import WeightsError
from siamfc_jax.runtime import select_platform
from siamfc_jax.weights import export_pth, is_pth, load_variables, save_weights


def convert(source: Path, target: Path, float16: bool = False) -> str:
    """Convert ``source`` into ``target``; returns a one-line description of what was done."""
    variables, config = load_variables(source)
    if is_pth(source):
        save_weights(target, variables, config, np.float16 if float16 else np.float32)
        return f"{source} (siamfc-pytorch, AlexNet{config.backbone.upper()}) -> {target} (siamfc_jax)"
    if float16:
        raise WeightsError("--float16 applies to siamfc_jax outputs only; .pth files are float32")
    export_pth(target, variables)
    return f"{source} (siamfc_jax, AlexNet{config.backbone.upper()}) -> {target} (siamfc-pytorch .pth)"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (:mod:`siamfc_jax.cli`'s convention)."""
    select_platform()

    def body() -> int:
        parser = cli.ArgumentParser(
            prog="python -m siamfc_jax.convert",
            description="Convert SiamFC weights between siamfc-pytorch .pth and siamfc_jax format.",
        )
        parser.add_argument("source", type=Path, help="a siamfc-pytorch .pth or a siamfc_jax weights file")
        parser.add_argument("target", type=Path, help="output path (the other format)")
        parser.add_argument(
            "--float16", action="store_true", help="store siamfc_jax weights as float16 (half the size)"
        )
        args = parser.parse_args(argv)
        if args.source.resolve() == args.target.resolve():
            raise cli.UsageError("source and target are the same file")
        print(convert(args.source, args.target, args.float16))
        return cli.EXIT_OK

    return cli.run(body, (WeightsError, OSError))


if __name__ == "__main__":
    sys.exit(main())
