"""Track objects with SiamFC: ``python track.py [--seq PATH] [--box x,y,w,h] [--weights FILE]``
(installed: ``siamfc-track``).

The command line over :mod:`siamfc_jax.evaluation`. ``--seq`` takes a sequence (OTB, GOT-10k,
VOT or LaSOT folder, folder of images, video file, quoted glob of images) or a folder of sequence
folders (an OTB or GOT-10k val root), which is evaluated sequence by sequence with a summary.
Without ``--seq`` it runs the demo: a synthetic sequence generated once into a cache folder
(``$XDG_CACHE_HOME/siamfc_jax/demo``, else ``~/.cache/siamfc_jax/demo``), tracked with the packaged
weights, with an annotated video, a success plot and a strip of frames written to ``--out``.

Compiled tracker steps are kept between runs in JAX's persistent compilation cache
(``$XDG_CACHE_HOME/siamfc_jax/jax``, else ``~/.cache/siamfc_jax/jax``; ``JAX_COMPILATION_CACHE_DIR``
chooses another folder), so only the first run at a frame size waits for compilation.

``--out`` is checked before anything is tracked: it must be a folder that can be written, and a
folder holding files of an earlier run of the same sequences is refused unless ``--overwrite``
(which removes those files first), so results are never silently replaced or mixed, and is held
by the run until it ends: a second run into the same folder is refused, naming the first's pid and
host (:func:`siamfc_jax.io.hold_folder`). ``--resume`` continues an interrupted folder run: the
sequences it finished are kept (refused when it used other weights, tracker settings or
``--max-frames``), the others tracked, and the summary covers them all. Several
``--box`` (or ``--boxes FILE``) track several targets together through a
:class:`~siamfc_jax.tracker.BatchTracker`, one box file and JSON per target.

Exit status: 0 done, 2 bad arguments, 1 unusable data, weights or output folder, 130 interrupted
(Ctrl-C; what was finished is written). Errors are one line on stderr starting with ``error:``;
damage that does not stop the run is a ``warning:`` line and recorded in the JSON. When stderr is
not a terminal (no progress bars), a plain progress line is printed at least every 10 s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from siamfc_jax import cli
from siamfc_jax.config import CONV_IMPLS, TRACKER_PRECISIONS, ConfigError, TrackerConfig
from siamfc_jax.evaluation.metrics import PROTOCOLS
from siamfc_jax.evaluation.outputs import FileOptions, claim_outputs, finished_results, target_name
from siamfc_jax.evaluation.reports import format_overall, format_result, format_table, run_info
from siamfc_jax.evaluation.scoring import SUMMARY_NAME
from siamfc_jax.evaluation.tracking import (
    progress_enabled,
    run_folder,
    run_sequence,
    run_targets,
)
from siamfc_jax.evaluation.validation import check_target_boxes, is_sequence_root, validate_for_tracking
from siamfc_jax.io import hold_folder
from siamfc_jax.live import display_problem, format_live_result, is_live_source, run_live, source_name
from siamfc_jax.runtime import (
    choose_xla_cpu_libraries,
    describe_allocator,
    describe_devices,
    enable_compilation_cache,
    keep_freed_host_memory,
    relaunch_with_mimalloc,
    select_platform,
)
from siamfc_jax.sequences.datasets import SequenceFolder
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.synthetic.config import SyntheticDataError
from siamfc_jax.synthetic.demo import default_demo_dir, ensure_demo_sequence
from siamfc_jax.tracker import BatchTracker, Tracker
from siamfc_jax.tune.config_file import ConfigFileError, read_config_file
from siamfc_jax.weights import WeightsError, default_weights_path

HEARTBEAT_SECONDS = 10.0


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
    "conv_impl": "convolution formulation: auto (on CPU the fastest measured per layer, on GPUs "
    f"lax_per_group, lax elsewhere), {_alternatives(CONV_IMPLS[1:])}",
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
            "summary_success.png. A box starting with '-' needs '=': --box=-3,4,50,60. "
            "Exit status: 0 done, 1 bad data, weights or output, 2 bad arguments, 130 interrupted."
        ),
    )
    _add_input_arguments(parser)
    _add_output_arguments(parser)
    _add_batch_arguments(parser)
    _add_tracker_arguments(parser)
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
        choices=PROTOCOLS,
        help="also report this benchmark's figures (got10k: also its submission files)",
    )


def _add_tracker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and a flag per :class:`TrackerConfig` field."""
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


def _run(args: argparse.Namespace, config: TrackerConfig) -> int:
    """Everything after argument parsing; raises the errors :func:`main` turns into messages."""
    given = "--box" if args.box else "--boxes"
    if args.seq is None and (args.box or args.boxes):
        raise cli.UsageError(f"argument {given}: needs --seq (the demo sequence has its own box)")
    if args.seq is not None and args.demo_dir is not None:
        raise cli.UsageError("argument --demo-dir: only for the demo, which runs without --seq")
    if (args.batch is not None or args.save_scores or args.protocol is not None) and (
        args.seq is None or args.save_video or args.save_strip
    ):
        raise cli.UsageError("argument --batch/--save-scores/--protocol: need --seq, no video or strip")
    if args.resume and (args.overwrite or args.seq is None or not is_sequence_root(args.seq)):
        raise cli.UsageError("argument --resume: needs --seq with a folder of sequences, no --overwrite")
    boxes = initial_boxes(args)
    beat = cli.Heartbeat(enabled=not progress_enabled(args.progress), interval=HEARTBEAT_SECONDS)
    # hold keeps --out this run's (hold_folder) until the run ends, whichever way it ends.
    with contextlib.ExitStack() as hold, beat as heartbeat:
        return _track(args, config, boxes, heartbeat, hold)


def _open_input(
    args: argparse.Namespace, boxes: list, heartbeat: cli.Heartbeat
) -> tuple[list[Sequence], bool, bool]:
    """The sequences to track (one, or a folder's), validated, and whether a video and a strip
    are wanted (always for the demo)."""
    save_video, save_strip = args.save_video, args.save_strip
    if args.seq is None:
        demo_dir = Path(args.demo_dir) if args.demo_dir else default_demo_dir()
        heartbeat.say(f"demo: synthetic sequence in {demo_dir} (generated on first use, then reused)")
        sequences = [open_sequence(ensure_demo_sequence(demo_dir))]
        save_video = save_strip = True
    elif is_sequence_root(args.seq):
        if boxes:
            given = "--box" if args.box else "--boxes"
            raise cli.UsageError(
                f"argument {given}: {args.seq} is a folder of sequences; {given} needs one sequence"
            )
        sequences = list(SequenceFolder(args.seq))
    elif len(boxes) > 1:
        sequences = [open_sequence(args.seq)]
        check_target_boxes(sequences[0], np.asarray(boxes, np.float64))
        return sequences, save_video, save_strip
    else:
        sequences = [open_sequence(args.seq, box=boxes[0] if boxes else None)]
    for sequence in sequences:
        validate_for_tracking(sequence, max_frames=args.max_frames)  # its warnings come when tracking
    return sequences, save_video, save_strip


def _load_tracker(weights: object, config: TrackerConfig, targets: int) -> Tracker | BatchTracker:
    """The tracker of one target or of ``targets``; a config that does not fit the weights is a
    usage error naming its flag."""
    try:
        return (BatchTracker if targets > 1 else Tracker)(weights, config)
    except ConfigError as error:
        raise cli.UsageError(f"argument {cli.flag(error.field)}: {error}") from None


def _claim(
    args: argparse.Namespace, sequences: list[Sequence], folder: bool, info: dict, hold: contextlib.ExitStack
) -> tuple[Path, dict]:
    """Take ``--out`` for this run (held until ``hold`` closes) and claim it; with ``--resume``,
    the results kept from the earlier run (index -> result)."""
    what = "argument --out: "
    out_dir = hold.enter_context(hold_folder(args.out, what, "--out"))
    kept = finished_results(out_dir, sequences, info, args.max_frames) if args.resume else {}
    names = [sequence.name for index, sequence in enumerate(sequences) if index not in kept]
    claim_outputs(
        out_dir, names, overwrite=args.overwrite or args.resume, summary=folder, what=what, resume_hint=folder
    )
    return out_dir, kept


def _track(
    args: argparse.Namespace, config: TrackerConfig, boxes: list, heartbeat: cli.Heartbeat,
    hold: contextlib.ExitStack,
) -> int:
    enable_compilation_cache()  # before anything compiles: JAX decides on the cache once
    device = describe_devices()
    heartbeat.say(device)
    heartbeat.say(describe_allocator())
    weights = args.weights or default_weights_path()
    if args.seq is not None and is_live_source(args.seq):
        return _run_live(args, config, boxes, weights, device, hold)
    if args.show:
        raise cli.UsageError("argument --show: only for live input (a camera index or a stream URL)")
    sequences, save_video, save_strip = _open_input(args, boxes, heartbeat)
    folder = args.seq is not None and is_sequence_root(args.seq)
    heartbeat.status = "loading the weights"
    tracker = _load_tracker(weights, config, len(boxes))
    # Only once the input and the weights are known to be good, and before anything is tracked.
    names = [sequence.name for sequence in sequences]
    if folder and SUMMARY_NAME in names:
        raise DataError(f"{args.seq}: a sequence named {SUMMARY_NAME!r} would overwrite the summary")
    info = run_info(tracker, str(weights), device)
    out_dir, kept = _claim(args, sequences, folder, info, hold)
    if kept:
        heartbeat.say(f"resuming: {len(kept)} of {len(sequences)} sequences finished earlier, kept")

    def status(line: str) -> None:
        heartbeat.status = line

    if folder or args.batch is not None or args.save_scores or args.protocol is not None:
        return _track_folder(args, tracker, sequences, out_dir, info, heartbeat, status, kept)
    options = {"info": info, "max_frames": args.max_frames, "save_video": save_video,
               "save_strip": save_strip, "progress": args.progress, "status": status}
    if len(boxes) > 1:
        results = run_targets(tracker, sequences[0], np.asarray(boxes, np.float64), out_dir, **options)
        _report_targets(results, sequences[0], out_dir, heartbeat)
        result = results[0]
    else:
        result = run_sequence(tracker, sequences[0], out_dir, **options)
        heartbeat.say(format_result(result))
        heartbeat.say(f"outputs in {out_dir.resolve()}:")
        for kind_name, path in result.outputs.items():
            heartbeat.say(f"  {kind_name.replace('_', ' ')}: {path.name}")
    if result.interrupted:
        message = f"interrupted; wrote the {result.frames_tracked} frames tracked to {out_dir}"
        return cli.fail(message, cli.EXIT_INTERRUPTED)
    return cli.EXIT_OK


def _track_folder(
    args: argparse.Namespace, tracker: Tracker, sequences: list[Sequence], out_dir: Path, info: dict,
    heartbeat: cli.Heartbeat, status: Callable[[str], None], kept: dict,
) -> int:
    """Track ``sequences`` (but those ``kept`` from an earlier run) one by one or ``--batch``
    together, print the summary table."""
    result = run_folder(
        tracker, sequences, out_dir, info=info, slots=args.batch or 1, max_frames=args.max_frames,
        save_video=args.save_video, save_strip=args.save_strip,
        files=FileOptions(save_scores=args.save_scores), protocol=args.protocol,
        progress=args.progress, log=heartbeat.say, status=status, kept=kept,
    )
    print(format_table(result.results, result.overall), end="")
    print(format_overall(result.overall))
    print("wrote: " + ", ".join(str(path) for path in result.outputs.values()) + " (and per sequence)")
    if result.interrupted:
        message = f"interrupted; the summary in {out_dir} covers the finished sequences"
        return cli.fail(message, cli.EXIT_INTERRUPTED)
    return cli.EXIT_OK


def _report_targets(results: list, sequence: Sequence, out_dir: Path, heartbeat: cli.Heartbeat) -> None:
    """Say what tracking several targets of ``sequence`` gave and wrote."""
    for result in results:
        heartbeat.say(format_result(result))
    heartbeat.say(f"outputs in {out_dir.resolve()}:")
    for kind_name, path in {**results[0].outputs, "boxes": None, "json": None}.items():
        if path is not None:
            heartbeat.say(f"  {kind_name.replace('_', ' ')}: {path.name}")
    names = ", ".join(f"{target_name(sequence.name, index)}.txt/.json" for index in range(len(results)))
    heartbeat.say(f"  per target: {names}")


def _run_live(
    args: argparse.Namespace, config: TrackerConfig, boxes: list, weights: object, device: str,
    hold: contextlib.ExitStack,
) -> int:
    """Live input (camera or stream, :mod:`siamfc_jax.live`): track until it ends or the user stops."""
    if len(boxes) > 1:
        raise cli.UsageError("argument --box: live input tracks one target; give one box")
    problem = display_problem()
    if problem is not None and (args.show or not boxes):
        flag = "--show" if args.show else "--box"
        raise cli.UsageError(f"argument {flag}: {problem}; pass --box X,Y,W,H and leave out --show")
    try:
        tracker = Tracker(weights, config)
    except ConfigError as error:
        raise cli.UsageError(f"argument {cli.flag(error.field)}: {error}") from None
    out_dir = hold.enter_context(hold_folder(args.out, "argument --out: ", "--out"))
    claim_outputs(out_dir, [source_name(args.seq)], overwrite=args.overwrite, what="argument --out: ")
    result = run_live(
        tracker,
        args.seq,
        out_dir,
        box=boxes[0] if boxes else None,
        show=args.show,
        save_video=args.save_video,
        max_frames=args.max_frames,
        info=run_info(tracker, str(weights), device),
    )
    print(format_live_result(result))
    print("wrote: " + ", ".join(str(path) for path in result.outputs.values()))
    if result.interrupted:
        message = f"interrupted; wrote the {len(result.boxes)} frames tracked to {out_dir}"
        return cli.fail(message, cli.EXIT_INTERRUPTED)
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (:mod:`siamfc_jax.cli`'s convention)."""
    select_platform()
    keep_freed_host_memory()
    choose_xla_cpu_libraries()

    def body() -> int:
        args = build_parser().parse_args(argv)
        return _run(args, tracker_config(args))

    return cli.run(body, (DataError, WeightsError, SyntheticDataError, OSError))


if __name__ == "__main__":
    relaunch_with_mimalloc()  # before anything compiles; it repeats the imports above
    sys.exit(main())
