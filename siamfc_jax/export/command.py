"""The command line of ``python -m siamfc_jax.export WEIGHTS OUT --format onnx|stablehlo``:
deployable artifacts.

WEIGHTS is a siamfc-pytorch ``.pth`` or a siamfc_jax weights file (any backbone); OUT a folder that
receives the files (see :mod:`siamfc_jax.export.onnx` and :mod:`siamfc_jax.export.stablehlo`) and a
JSON manifest. Existing files are replaced only with ``--force``.

Exit status: 0 done, 2 bad arguments, 1 unusable weights, output folder or missing optional package.
Errors are one line on stderr starting with ``error:``.
"""

from __future__ import annotations

import argparse

from siamfc_jax import cli
from siamfc_jax.config import TrackerConfig
from siamfc_jax.export.manifest import ExportError
from siamfc_jax.export.onnx import MissingDependencyError, export_onnx
from siamfc_jax.export.stablehlo import DEFAULT_PLATFORMS, export_stablehlo
from siamfc_jax.files import OutputError
from siamfc_jax.weights import WeightsError, load_variables

_PLATFORMS = ("cpu", "cuda", "rocm", "tpu")


def _platforms(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in _PLATFORMS]
    if not names or unknown:
        choices = ",".join(_PLATFORMS)
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {choices}, got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m siamfc_jax.export``."""
    parser = cli.ArgumentParser(
        prog="python -m siamfc_jax.export",
        description="Export SiamFC as ONNX networks or as StableHLO tracker steps.",
    )
    parser.add_argument("weights", metavar="WEIGHTS", help="siamfc-pytorch .pth or siamfc_jax weights file")
    parser.add_argument("out", metavar="OUT", help="output folder")
    parser.add_argument("--format", required=True, choices=("onnx", "stablehlo"), help="what to export")
    parser.add_argument(
        "--platforms",
        type=_platforms,
        default=DEFAULT_PLATFORMS,
        metavar="LIST",
        help=f"stablehlo: platforms to lower for (default: {','.join(DEFAULT_PLATFORMS)}); one platform "
        "gets the convolution plan the tracker runs there, several share uniform lax",
    )
    parser.add_argument("--force", action="store_true", help="replace files already in OUT")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line in a process set up by :func:`siamfc_jax.runtime.setup_process`
    (``python -m siamfc_jax.export``); returns the exit status (:mod:`siamfc_jax.cli`'s convention)."""

    def body() -> int:
        args = build_parser().parse_args(argv)
        variables, model_config = load_variables(args.weights)
        if args.format == "onnx":
            paths = export_onnx(variables, model_config, args.out, overwrite=args.force)
        else:
            paths = export_stablehlo(
                variables, model_config, args.out, TrackerConfig(), args.platforms, overwrite=args.force
            )
        print(f"backbone {model_config.backbone}: wrote " + ", ".join(str(path) for path in paths.values()))
        return cli.EXIT_OK

    return cli.run(body, (WeightsError, ExportError, MissingDependencyError, OutputError))
