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
import sys
from pathlib import Path

from siamfc_jax import cli
from siamfc_jax.config import ConfigError, TrackerConfig
from siamfc_jax.evaluation.reports import format_overall, format_result, format_table, run_info
from siamfc_jax.evaluation.runner import run_folder, run_sequence
from siamfc_jax.evaluation.validation import is_sequence_root, validate_for_tracking
from siamfc_jax.runtime import describe_devices, enable_compilation_cache, select_platform
from siamfc_jax.sequences.datasets import SequenceFolder
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.synthetic.config import SyntheticDataError
from siamfc_jax.synthetic.demo import default_demo_dir, ensure_demo_sequence
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
    "conv_impl": "convolution formulation: auto (matmul on CPU, lax elsewhere), lax or matmul",
}
def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every :class:`TrackerConfig` field has a flag (``--scale-step`` …)."""
    parser = cli.ArgumentParser(
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
        type=cli.parse_box,
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
        type=cli.positive_integer,
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
        raise cli.UsageError(f"argument {cli.flag(error.field)}: {error}") from None


def prepare_out_dir(path: str) -> Path:
    """Create the output folder ``path`` if needed.

    Raises:
      UsageError: ``path`` is not a folder or cannot be created (the message names ``--out``).
    """
    out_dir = Path(path)
    if out_dir.exists() and not out_dir.is_dir():
        raise cli.UsageError(f"argument --out: {out_dir} exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise cli.UsageError(f"argument --out: cannot create {out_dir} ({error.strerror})") from None
    return out_dir


def _run(args: argparse.Namespace, config: TrackerConfig) -> int:
    """Everything after argument parsing; raises the errors :func:`main` turns into messages."""
    if args.seq is None and args.box is not None:
        raise cli.UsageError("argument --box: needs --seq (the demo sequence has its own box)")
    if args.seq is not None and args.demo_dir is not None:
        raise cli.UsageError("argument --demo-dir: only for the demo, which runs without --seq")
    enable_compilation_cache()  # before anything compiles: JAX decides on the cache once
    device = describe_devices()
    print(device, flush=True)
    weights = args.weights or default_weights_path()
    save_video, save_strip = args.save_video, args.save_strip
    sequences = None
    if args.seq is None:
        demo_dir = Path(args.demo_dir) if args.demo_dir else default_demo_dir()
        print(f"demo: synthetic sequence in {demo_dir} (generated on first use, then reused)", flush=True)
        sequence = open_sequence(ensure_demo_sequence(demo_dir))
        save_video = save_strip = True
    elif is_sequence_root(args.seq):
        if args.box is not None:
            raise cli.UsageError(
                f"argument --box: {args.seq} is a folder of sequences; --box needs one sequence"
            )
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
        raise cli.UsageError(f"argument {cli.flag(error.field)}: {error}") from None
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
        print(format_overall(result.overall))
        print("wrote: " + ", ".join(str(path) for path in result.outputs.values()) + " (and per sequence)")
        if result.interrupted:
            message = f"interrupted; the summary in {out_dir} covers the finished sequences"
            return cli.fail(message, cli.EXIT_INTERRUPTED)
        return cli.EXIT_OK

    result = run_sequence(tracker, sequence, out_dir, **options)
    print(format_result(result))
    print(f"outputs in {out_dir.resolve()}:")
    for kind, path in result.outputs.items():
        print(f"  {kind.replace('_', ' ')}: {path.name}")
    if result.interrupted:
        message = f"interrupted; wrote the {result.frames_tracked} frames tracked to {out_dir}"
        return cli.fail(message, cli.EXIT_INTERRUPTED)
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (:mod:`siamfc_jax.cli`'s convention)."""
    select_platform()

    def body() -> int:
        args = build_parser().parse_args(argv)
        return _run(args, tracker_config(args))

    return cli.run(body, (DataError, WeightsError, SyntheticDataError, OSError))


if __name__ == "__main__":
    sys.exit(main())
