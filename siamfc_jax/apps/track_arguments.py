"""The command line of ``track.py``: its arguments, the tracker settings they make, the initial boxes.

Every :class:`~siamfc_jax.config.TrackerConfig` field is a flag; :mod:`siamfc_jax.apps.track` runs
what they ask for.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from siamfc_jax import cli
from siamfc_jax.config import COMPUTE_DTYPES, TRACKER_PRECISIONS, ConfigError, TrackerConfig
from siamfc_jax.evaluation.metrics import PROTOCOLS
from siamfc_jax.evaluation.vot_runs import (
    DEFAULT_STACK,
    VOT_PROTOCOL,
    VOT_STACKS,
)
from siamfc_jax.ops.conv import FORMULATIONS
from siamfc_jax.plans import CONV_IMPL_CHOICES
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.tune.config_file import ConfigFileError, read_config_file


def _alternatives(names: tuple[str, ...]) -> str:
    """``("a", "b", "c")`` -> ``"a, b or c"``, for help texts."""
    return f"{', '.join(names[:-1])} or {names[-1]}"


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
    "precision": f"matmul/convolution precision on the device: {_alternatives(TRACKER_PRECISIONS)}",
    "compute_dtype": f"the backbone's compute type: {_alternatives(COMPUTE_DTYPES)} (weights, "
    "features and boxes stay float32)",
}
def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every :class:`TrackerConfig` field has a flag (``--scale-step`` …)."""
    parser = cli.ArgumentParser(
        prog=cli.program_name("python track.py"),
        description=(
            "Track an object with SiamFC and score it against the ground truth when there is one. "
            "Without --seq: the synthetic demo."
        ),
        epilog=(
            "Outputs in --out: <name>.txt (x,y,w,h per frame, 1-indexed), <name>.json (fps, scores, "
            "config, warnings), <name>_success.png (with ground truth), <name>.mp4 (--save-video, "
            "H.264), <name>_strip.png (--save-strip); several targets: <name>_target<k>.txt and "
            ".json each; for a folder of sequences also summary.json, summary.md and "
            "summary_success.png; with --protocol vot instead vot/siamfc_jax/baseline/<seq>/<seq>_001.txt "
            "(vot-toolkit's results layout), vot_summary.json, vot_summary.md and vot_eao.png. "
            "A box starting with '-' needs '=': --box=-3,4,50,60. "
            "Exit status: 0 done, 1 bad data, weights or output, 2 bad arguments, 130 interrupted."
        ),
    )
    _add_input_arguments(parser)
    _add_output_arguments(parser)
    _add_batch_arguments(parser)
    _add_tracker_arguments(parser)
    cli.add_distributed_flags(parser.add_argument_group(
        "several processes or hosts (a folder of sequences; each process tracks a share, process 0 "
        "writes the summary)"
    ))
    return parser


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """``--seq``, ``--box``, ``--boxes``: what to track."""
    parser.add_argument(
        "--seq",
        type=cli.non_empty_path,
        metavar="PATH",
        help=(
            "OTB/GOT-10k/VOT/LaSOT sequence folder, folder of images, video file, quoted glob of "
            "images, a folder of sequence folders (evaluated one by one), or live input: a camera "
            "index (0) or a stream URL (rtsp://, http://, file://)"
        ),
    )
    parser.add_argument(
        "--box",
        type=cli.parse_box,
        action="append",
        metavar="X,Y,W,H",
        help=(
            "initial box in frame 1 (1-indexed pixels); replaces the first ground-truth box. "
            "Repeat it to track several targets together (one output file per target). A box "
            "starting with '-' needs '=': --box=-5,4,50,60"
        ),
    )
    parser.add_argument(
        "--boxes",
        metavar="FILE",
        help="initial boxes of several targets, one x,y,w,h per line (# starts a comment)",
    )


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--weights``, ``--out`` and what is written or shown."""
    parser.add_argument(
        "--weights",
        metavar="FILE",
        help="siamfc-pytorch .pth or siamfc_jax weights file (default: the packaged weights)",
    )
    parser.add_argument("--out", default="outputs", metavar="DIR", help="output folder (default: outputs)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of an earlier run of the same sequences in --out (default: refuse)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="folder of sequences: keep the sequences an interrupted run finished in --out, track the "
        "rest and summarize all (refused if that run used other weights or settings)",
    )
    parser.add_argument(
        "--max-frames",
        type=cli.positive_integer,
        metavar="N",
        help="track (and score) only the first N frames of each sequence",
    )
    parser.add_argument("--save-video", action="store_true", help="write an annotated <name>.mp4")
    parser.add_argument(
        "--save-strip", action="store_true", help="write <name>_strip.png: 5 annotated frames in a row"
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="live input: show the box and the fps in a window (Esc or q ends)",
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


def _add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """``--batch``, ``--save-scores``, ``--protocol``: folder runs."""
    batched = parser.add_argument_group(
        "folder runs (siamfc_jax.evaluation.tracking; --batch: no --save-video / --save-strip)"
    )
    batched.add_argument(
        "--batch", type=cli.positive_integer, metavar="K", help="track K sequences together"
    )
    batched.add_argument(
        "--save-scores",
        action="store_true",
        help="write <name>_scores.txt/.png: the response peak per frame, before and after the window",
    )
    batched.add_argument(
        "--protocol",
        choices=(*PROTOCOLS, VOT_PROTOCOL),
        help=(
            "also report this benchmark's figures (got10k: also its submission files); vot: run VOT's "
            "supervised experiment instead (restarts after failures; vot/, vot_summary.*, vot_eao.png)"
        ),
    )
    batched.add_argument(
        "--vot-stack",
        choices=VOT_STACKS,
        help=f"--protocol vot: the stack whose EAO interval is used (default: {DEFAULT_STACK})",
    )


def _add_tracker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--conv-impl``, ``--config`` and a flag per :class:`TrackerConfig` field."""
    parser.add_argument(
        "--conv-impl",
        choices=CONV_IMPL_CHOICES,
        default="auto",
        metavar="NAME",
        help="how the network computes its convolutions: auto (default: this machine's plan, measured "
        f"once on the CPU and stored), or one formulation for every layer: {_alternatives(FORMULATIONS)}",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="tracker settings file (JSON, e.g. tune's best_config.json); flags override it",
    )
    tracker = parser.add_argument_group("tracker settings (default: siamfc-pytorch's)")
    defaults = TrackerConfig()
    for field in dataclasses.fields(TrackerConfig):
        # config.py uses postponed annotations, so field.type is the annotation's text.
        kind = str(field.type)
        parse, metavar = (cli.integer, "N") if kind.startswith("int") else (cli.finite_float, "X")
        if kind == "str":
            parse, metavar = str, "NAME"
        default = getattr(defaults, field.name)
        shown = "" if default is None else f" (default: {default})"
        tracker.add_argument(
            cli.flag(field.name),
            dest=field.name,
            type=parse,
            metavar=metavar,
            help=_FIELD_HELP.get(field.name, field.name) + shown,
        )


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
    if args.config is not None:
        try:
            changes = {**read_config_file(args.config), **changes}
        except ConfigFileError as error:
            raise cli.UsageError(f"argument --config: {error}") from None
    try:
        return TrackerConfig(**changes)
    except ConfigError as error:
        raise cli.UsageError(f"argument {cli.flag(error.field)}: {error}") from None


def read_boxes_file(path: str) -> list[tuple[float, float, float, float]]:
    """Boxes of ``--boxes FILE``: one ``x,y,w,h`` per line, blank lines and ``#`` comments skipped.

    Raises:
      DataError: the file cannot be read, a line is not a box, or there is none (the message
        names the file and line).
    """
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise DataError(f"{path}: cannot read the boxes file ({error.strerror})") from None
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            boxes.append(cli.parse_box(line))
        except argparse.ArgumentTypeError as error:
            raise DataError(f"{path}:{number}: {error}") from None
    if not boxes:
        raise DataError(f"{path}: no boxes (one x,y,w,h per line)")
    return boxes


def initial_boxes(args: argparse.Namespace) -> list[tuple[float, float, float, float]]:
    """The boxes of ``--box`` (repeated) and ``--boxes FILE``, in that order."""
    boxes = list(args.box or [])
    if args.boxes is not None:
        boxes += read_boxes_file(args.boxes)
    return boxes
