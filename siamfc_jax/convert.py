"""Convert SiamFC weights between siamfc-pytorch ``.pth`` and siamfc_jax's weights file.

Usage: ``python -m siamfc_jax.convert IN OUT [--float16] [--overwrite]`` (installed:
``siamfc-convert``). IN may be either format (recognised from its content); OUT's suffix decides
what is written: ``.pth`` (or ``.pt``) a siamfc-pytorch ``state_dict`` that siamfc-pytorch loads
with ``strict=True``, ``.msgpack`` our format. Any other suffix is refused, so a file never holds a
format its name denies. The backbone (AlexNetV1/V2/V3) is inferred from the weights. An existing
OUT is replaced only with ``--overwrite``; OUT is checked before anything is read.
"""

from __future__ import annotations

import sys
from pathlib import Path

from siamfc_jax import cli
from siamfc_jax.files import OutputError, check_writable_dir
from siamfc_jax.interop.torch_weights import WeightsError
from siamfc_jax.runtime import setup_process
from siamfc_jax.weights import PTH_SUFFIXES, export_pth, is_pth, load_variables, save_weights

NATIVE_SUFFIXES = (".msgpack",)


def target_format(target: Path) -> str:
    """``"pth"`` or ``"siamfc_jax"``: the format the suffix of ``target`` asks for.

    Raises:
      UsageError: the suffix names neither format.
    """
    suffix = target.suffix.lower()
    if suffix in PTH_SUFFIXES:
        return "pth"
    if suffix in NATIVE_SUFFIXES:
        return "siamfc_jax"
    known = ", ".join(PTH_SUFFIXES + NATIVE_SUFFIXES)
    raise cli.UsageError(
        f"argument target: {target}: the suffix decides the format; use {known} "
        "(.pth/.pt: siamfc-pytorch, .msgpack: siamfc_jax)"
    )


def check_target(target: Path, overwrite: bool) -> None:
    """Refuse an output that exists (without ``overwrite``) or cannot be written, before any work.

    Raises:
      OutputError: ``target`` is a folder, exists and not ``overwrite``, or its folder cannot be
        written (the message names ``target`` or its folder, never a temporary).
    """
    if target.is_dir():
        raise OutputError(f"argument target: {target} is a folder; name the output file")
    if target.exists() and not overwrite:
        raise OutputError(f"argument target: {target} exists; pass --overwrite to replace it")
    check_writable_dir(target.parent, "argument target: ")


def convert(source: Path, target: Path, float16: bool = False, overwrite: bool = False) -> str:
    """Convert ``source`` into ``target`` (format from its suffix); returns a one-line description.

    Raises:
      UsageError: ``target``'s suffix names no format, or ``float16`` with a ``.pth`` target.
      OutputError: ``target`` exists and not ``overwrite``, or cannot be written.
      WeightsError: ``source`` is missing or not weights.
    """
    import numpy as np


    wanted = target_format(target)
    if float16 and wanted == "pth":
        raise cli.UsageError("argument --float16: applies to .msgpack outputs only; .pth files are float32")
    check_target(target, overwrite)
    variables, config = load_variables(source)
    kind = "siamfc-pytorch" if is_pth(source) else "siamfc_jax"
    backbone = f"AlexNet{config.backbone.upper()}"
    if wanted == "pth":
        export_pth(target, variables)
        return f"{source} ({kind}, {backbone}) -> {target} (siamfc-pytorch .pth)"
    save_weights(target, variables, config, np.float16 if float16 else np.float32)
    return f"{source} ({kind}, {backbone}) -> {target} (siamfc_jax)"


def main(argv: list[str] | None = None) -> int:
    """Run the command line (``python -m siamfc_jax.convert``, ``siamfc-convert``); returns the exit
    status (:mod:`siamfc_jax.cli`'s convention).

    The process is set up first (:func:`siamfc_jax.runtime.setup_process`: the platform; converting
    computes nothing, so no restart and no XLA flags).
    """
    setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)

    def body() -> int:
        parser = cli.ArgumentParser(
            prog=cli.program_name("python -m siamfc_jax.convert"),
            description=(
                "Convert SiamFC weights between siamfc-pytorch .pth and siamfc_jax format; "
                "the output's suffix (.pth or .msgpack) decides its format."
            ),
        )
        parser.add_argument("source", type=Path, help="a siamfc-pytorch .pth or a siamfc_jax weights file")
        parser.add_argument("target", type=Path, help="output path: .pth (siamfc-pytorch) or .msgpack (ours)")
        parser.add_argument(
            "--float16", action="store_true", help="store siamfc_jax weights as float16 (half the size)"
        )
        parser.add_argument("--overwrite", action="store_true", help="replace an existing target")
        args = parser.parse_args(argv)
        if args.source.resolve() == args.target.resolve():
            raise cli.UsageError("source and target are the same file")
        print(convert(args.source, args.target, args.float16, args.overwrite))
        return cli.EXIT_OK

    return cli.run(body, (WeightsError, OSError))


if __name__ == "__main__":
    sys.exit(main())
