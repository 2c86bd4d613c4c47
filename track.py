"""Track objects with SiamFC: ``python track.py [--seq PATH] [--box x,y,w,h] [--weights FILE]``.

Thin command line over :mod:`siamfc_jax.evaluation`. ``--seq`` takes a sequence (OTB, GOT-10k,
VOT or LaSOT folder, folder of images, video file, quoted glob of images) or a folder of sequence
folders (an OTB or GOT-10k val root), which is evaluated sequence by sequence with a summary.
Without ``--seq`` it runs the demo: a synthetic sequence generated once into a cache folder
(``$XDG_CACHE_HOME/siamfc_jax/demo``, else ``~/.cache/siamfc_jax/demo``), tracked with the packaged
weights, with an annotated video, a success plot and a strip of frames written to ``--out``.

Compiled tracker steps are kept between runs in JAX's persistent compilation cache
(``$XDG_CACHE_HOME/siamfc_jax/jax``, else ``~/.cache/siamfc_jax/jax``; ``JAX_COMPILATION_CACHE_DIR``
chooses another folder), so only the first run at a frame size waits for compilation.

Exit status: 0 done, 2 bad arguments, 1 unusable data, weights or output folder, 130 interrupted
(Ctrl-C; what was finished is written). Errors are one line on stderr starting with ``error:``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
from pathlib import Path

from siamfc_jax.config import ConfigError, TrackerConfig
from siamfc_jax.data.datasets import SequenceFolder
from siamfc_jax.data.sequences import DataError, open_sequence, validate_for_tracking
from siamfc_jax.data.synthetic import SyntheticDataError, ensure_demo_sequence
from siamfc_jax.evaluation import (
    format_result,
    format_table,
    is_sequence_root,
    run_folder,
    run_info,
    run_sequence,
)
from siamfc_jax.runtime import cache_dir, describe_devices, enable_compilation_cache, select_platform
from siamfc_jax.tracker import Tracker
from siamfc_jax.weights import WeightsError, default_weights_path

_FIELD_HELP = {
    "exemplar_sz": "side in pixels of the exemplar crop",
    "instance_sz": "side in pixels of the search crop",
    "context": "context margin around the target, as a fraction of (w + h)",
    "scale_num": "number of search scales (odd)",
    "scale_step": "ratio between neighbouring search scales",
    "scale_lr": "learning rate of the target size",
    "scale_penalty": "response multiplier of the scales other than the middle one",
    "window_influence": "weight of the cosine window in the response",
    "response_sz": "side of the raw response map (default: the network's, 17 for AlexNetV1)",
    "response_up": "upsampling factor of the response map",
    "total_stride": "network stride in pixels (default: the network's, 8 for AlexNetV1)",
    "precision": "matmul/convolution precision on the device: highest, high or default",
    "conv_impl": "convolution formulation: auto (on CPU the fastest measured per layer, lax elsewhere), "
    "lax, matmul or shift",
}
_BOX_SEPARATORS = re.compile(r"[,\s]+")


class UsageError(Exception):
    """A bad command line; the message names the argument."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of argparse's usage block
        head, _, extra = message.partition(": ")
        if head == "unrecognized arguments" and any(os.path.exists(word) for word in extra.split()):
            # The shell expanded an unquoted glob into many file names.
            message += " (quote a glob pattern: --seq 'frames/*.jpg')"
        raise UsageError(message)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x,y,w,h"`` (commas and/or spaces) -> four finite floats, 1-indexed pixels, w and h > 0."""
    parts = [part for part in _BOX_SEPARATORS.split(text.strip()) if part]
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError(f"expected 4 numbers x,y,w,h (1-indexed pixels), got {text!r}")
    if values[2] <= 0 or values[3] <= 0:
        raise argparse.ArgumentTypeError(f"width and height must be > 0, got {text!r}")
    return values  # type: ignore[return-value]


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _positive_integer(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every :class:`TrackerConfig` field has a flag (``--scale-step`` …)."""
    parser = _Parser(
        prog="python track.py",
        description=(
            "Track an object with SiamFC and score it against the ground truth when there is one. "
            "Without --seq: the synthetic demo."
        ),
        epilog=(
            "Outputs in --out: <name>.txt (x,y,w,h per frame, 1-indexed), <name>.json (fps, scores, "
            "config), <name>_success.png (with ground truth), <name>.mp4 (--save-video), "
            "<name>_strip.png (--save-strip); for a folder of sequences also summary.json, "
            "summary.md and summary_success.png. A box starting with '-' needs '=': --box=-3,4,50,60."
        ),
    )
    parser.add_argument(
        "--seq",
        metavar="PATH",
        help=(
            "OTB/GOT-10k/VOT/LaSOT sequence folder, folder of images, video file, quoted glob of "
            "images, or a folder of sequence folders (evaluated one by one)"
        ),
    )
    parser.add_argument(
        "--box",
        type=parse_box,
        metavar="X,Y,W,H",
        help="initial box in frame 1 (1-indexed pixels); replaces the first ground-truth box",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="siamfc-pytorch .pth or siamfc_jax weights file (default: the packaged weights)",
    )
    parser.add_argument("--out", default="outputs", metavar="DIR", help="output folder (default: outputs)")
    parser.add_argument(
        "--max-frames",
        type=_positive_integer,
        metavar="N",
        help="track (and score) only the first N frames of each sequence",
    )
    parser.add_argument("--save-video", action="store_true", help="write an annotated <name>.mp4")
    parser.add_argument(
        "--save-strip", action="store_true", help="write <name>_strip.png: 5 annotated frames in a row"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
    parser.add_argument(
        "--demo-dir",
        metavar="DIR",
        help="where the demo sequence is generated and reused (default: the cache folder)",
    )
    tracker = parser.add_argument_group("tracker settings (default: siamfc-pytorch's)")
    defaults = TrackerConfig()
    for field in dataclasses.fields(TrackerConfig):
        # config.py uses postponed annotations, so field.type is the annotation's text.
        kind = str(field.type)
        parse, metavar = (_integer, "N") if kind.startswith("int") else (_finite_float, "X")
        if kind == "str":
            parse, metavar = str, "NAME"
        default = getattr(defaults, field.name)
        shown = "" if default is None else f" (default: {default})"
        tracker.add_argument(
            _flag(field.name),
            dest=field.name,
            type=parse,
            metavar=metavar,
            help=_FIELD_HELP.get(field.name, field.name) + shown,
        )
    return parser


def tracker_config(args: argparse.Namespace) -> TrackerConfig:
    """The :class:`TrackerConfig` of the defaults with the flags given.

    Raises:
      UsageError: a setting is out of range (the message names its flag).
    """
    changes = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(TrackerConfig)
        if getattr(args, field.name) is not None
    }
    try:
        return TrackerConfig(**changes)
    except ConfigError as error:
        raise UsageError(f"argument {_flag(error.field)}: {error}") from None


def demo_cache_dir() -> Path:
    """Where the demo sequence is generated: ``cache_dir() / "demo"``."""
    return cache_dir() / "demo"


def prepare_out_dir(path: str) -> Path:
    """Create the output folder ``path`` if needed.

    Raises:
      UsageError: ``path`` is not a folder or cannot be created (the message names ``--out``).
    """
    out_dir = Path(path)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"argument --out: {out_dir} exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"argument --out: cannot create {out_dir} ({error.strerror})") from None
    return out_dir


def _fail(message: str, status: int) -> int:
    # Messages from libraries (PyTorch, OpenCV) may span lines; the error stays one line.
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return status


def _run(args: argparse.Namespace, config: TrackerConfig) -> int:
    """Everything after argument parsing; raises the errors :func:`main` turns into messages."""
    if args.seq is None and args.box is not None:
        raise UsageError("argument --box: needs --seq (the demo sequence has its own box)")
    if args.seq is not None and args.demo_dir is not None:
        raise UsageError("argument --demo-dir: only for the demo, which runs without --seq")
    enable_compilation_cache()  # before anything compiles: JAX decides on the cache once
    device = describe_devices()
    print(device, flush=True)
    weights = args.weights or default_weights_path()
    save_video, save_strip = args.save_video, args.save_strip
    sequences = None
    if args.seq is None:
        demo_dir = Path(args.demo_dir) if args.demo_dir else demo_cache_dir()
        print(f"demo: synthetic sequence in {demo_dir} (generated on first use, then reused)", flush=True)
        sequence = open_sequence(ensure_demo_sequence(demo_dir))
        save_video = save_strip = True
    elif is_sequence_root(args.seq):
        if args.box is not None:
            raise UsageError(f"argument --box: {args.seq} is a folder of sequences; --box needs one sequence")
        sequences = list(SequenceFolder(args.seq))
        for sequence in sequences:
            validate_for_tracking(sequence)
    else:
        sequence = open_sequence(args.seq, box=args.box)
    if sequences is None:
        validate_for_tracking(sequence)
    try:
        tracker = Tracker(weights, config)
    except ConfigError as error:
        raise UsageError(f"argument {_flag(error.field)}: {error}") from None
    out_dir = prepare_out_dir(args.out)  # only once the input and the weights are known to be good
    info = run_info(tracker, str(weights), device)
    options = {
        "info": info,
        "max_frames": args.max_frames,
        "save_video": save_video,
        "save_strip": save_strip,
        "progress": args.progress,
    }

    if sequences is not None:
        result = run_folder(tracker, sequences, out_dir, **options, log=print)
        print(format_table(result.results, result.overall), end="")
        overall = result.overall
        fps = "n/a" if overall["fps"] is None else f"{overall['fps']:.2f}"
        scores = ""
        if overall["auc"] is not None:
            scores = (
                f", mean AUC {overall['auc']:.3f}, precision@20px {overall['precision']:.3f}, "
                f"mean IoU {overall['mean_iou']:.3f}"
            )
        print(f"overall: {overall['sequences']} sequences, {overall['frames']} frames, {fps} fps{scores}")
        print("wrote: " + ", ".join(str(path) for path in result.outputs.values()) + " (and per sequence)")
        if result.interrupted:
            return _fail(f"interrupted; the summary in {out_dir} covers the finished sequences", 130)
        return 0

    result = run_sequence(tracker, sequence, out_dir, **options)
    print(format_result(result))
    print(f"outputs in {out_dir.resolve()}:")
    for kind, path in result.outputs.items():
        print(f"  {kind.replace('_', ' ')}: {path.name}")
    if result.interrupted:
        return _fail(f"interrupted; wrote the {result.frames_tracked} frames tracked to {out_dir}", 130)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring)."""
    select_platform()
    try:
        args = build_parser().parse_args(argv)
        return _run(args, tracker_config(args))
    except UsageError as error:
        return _fail(str(error), 2)
    except (DataError, WeightsError, SyntheticDataError, OSError) as error:
        return _fail(str(error), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
