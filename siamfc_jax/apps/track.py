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
host (:func:`siamfc_jax.files.hold_folder`). ``--resume`` continues an interrupted folder run: the
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
from collections.abc import Callable
from pathlib import Path

import numpy as np

from siamfc_jax import cli
from siamfc_jax.apps.track_arguments import build_parser, initial_boxes, tracker_config
from siamfc_jax.config import ConfigError, TrackerConfig
from siamfc_jax.evaluation.distributed import Cluster, ProcessFailed, Share, reporting_failures
from siamfc_jax.evaluation.outputs import FileOptions, claim_outputs, finished_results, target_name
from siamfc_jax.evaluation.reports import format_overall, format_result, format_table, run_info
from siamfc_jax.evaluation.scoring import SUMMARY_NAME, tracked_length
from siamfc_jax.evaluation.tracking import (
    progress_enabled,
    run_folder,
    run_sequence,
    run_targets,
)
from siamfc_jax.evaluation.validation import check_target_boxes, is_sequence_root, validate_for_tracking
from siamfc_jax.evaluation.vot_runs import (
    DEFAULT_STACK,
    VOT_PROTOCOL,
    claim_vot_outputs,
    run_vot,
    vot_groundtruth,
)
from siamfc_jax.files import hold_folder
from siamfc_jax.live import display_problem, format_live_result, is_live_source, run_live, source_name
from siamfc_jax.plans import Log, Workload, named_plan
from siamfc_jax.runtime import describe_allocator, describe_devices
from siamfc_jax.sequences.datasets import SequenceFolder
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.synthetic.config import SyntheticDataError
from siamfc_jax.synthetic.demo import default_demo_dir, ensure_demo_sequence
from siamfc_jax.tracker import BatchTracker, Tracker, fit_config
from siamfc_jax.tune.cluster import connect
from siamfc_jax.weights import WeightsError, default_weights_path, load_variables

HEARTBEAT_SECONDS = 10.0


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
    if args.protocol == VOT_PROTOCOL and (args.box or args.boxes or args.save_scores):
        given = "--save-scores" if args.save_scores else "--box" if args.box else "--boxes"
        raise cli.UsageError(f"argument {given}: not with --protocol vot (it starts from the ground truth)")
    if args.vot_stack is not None and args.protocol != VOT_PROTOCOL:
        raise cli.UsageError("argument --vot-stack: only with --protocol vot")
    cli.check_distributed_flags(args)
    if args.distributed and (args.seq is None or args.box or args.boxes or not is_sequence_root(args.seq)):
        raise cli.UsageError("argument --distributed: needs --seq with a folder of sequences, no --box")
    folder = args.seq is not None and is_sequence_root(args.seq)
    if args.resume and (args.overwrite or args.distributed or not folder):
        raise cli.UsageError(
            "argument --resume: needs --seq with a folder of sequences, no --overwrite or --distributed"
        )
    boxes = initial_boxes(args)
    cluster = connect(args.coordinator, args.num_processes, args.process_id) if args.distributed else None
    beat = cli.Heartbeat(enabled=not progress_enabled(args.progress), interval=HEARTBEAT_SECONDS)
    # hold keeps --out this run's (hold_folder) until the run ends, whichever way it ends.
    with contextlib.ExitStack() as hold, beat as heartbeat, reporting_failures(cluster):
        return _track(args, config, boxes, heartbeat, hold, cluster)


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


def _load_tracker(
    weights: object, config: TrackerConfig, targets: int, conv_impl: str, log: Log
) -> Tracker | BatchTracker:
    """The tracker of one target or of ``targets`` on the plan ``--conv-impl`` names; a config that
    does not fit the weights is a usage error naming its flag, before anything is measured."""
    variables, model_config = load_variables(weights)
    try:
        fit_config(config, model_config)
    except ConfigError as error:
        raise cli.UsageError(f"argument {cli.flag(error.field)}: {error}") from None
    plan = named_plan(conv_impl, model_config, Workload.tracking(config), log)
    return (BatchTracker if targets > 1 else Tracker)((variables, model_config), config, plan)


def _claim(
    args: argparse.Namespace, sequences: list[Sequence], folder: bool, info: dict, hold: contextlib.ExitStack,
    share: Share | None,
) -> tuple[Path, dict]:
    """Take ``--out`` for this run (held until ``hold`` closes) and claim it; with ``--resume``,
    the results kept from the earlier run (index -> result). With several processes, each claims
    its share's files (:meth:`Share.claim_outputs`)."""
    what = "argument --out: "
    names = [sequence.name for sequence in sequences]
    if share is not None:
        return share.claim_outputs(args.out, names, overwrite=args.overwrite, what=what), {}
    out_dir = hold.enter_context(hold_folder(args.out, what, "--out"))
    kept = finished_results(out_dir, sequences, info, args.max_frames) if args.resume else {}
    names = [name for index, name in enumerate(names) if index not in kept]
    claim_outputs(
        out_dir, names, overwrite=args.overwrite or args.resume, summary=folder, what=what, resume_hint=folder
    )
    return out_dir, kept


def _track(
    args: argparse.Namespace, config: TrackerConfig, boxes: list, heartbeat: cli.Heartbeat,
    hold: contextlib.ExitStack, cluster: Cluster | None = None,
) -> int:
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
    tracker = _load_tracker(weights, config, len(boxes), args.conv_impl, heartbeat.say)
    if args.protocol == VOT_PROTOCOL:
        return _track_vot(args, tracker, sequences, run_info(tracker, str(weights), device), heartbeat)
    # Only once the input and the weights are known to be good, and before anything is tracked.
    names = [sequence.name for sequence in sequences]
    if folder and SUMMARY_NAME in names:
        raise DataError(f"{args.seq}: a sequence named {SUMMARY_NAME!r} would overwrite the summary")
    costs = [tracked_length(sequence, args.max_frames) for sequence in sequences]
    share = None if cluster is None else cluster.share(costs)
    info = run_info(tracker, str(weights), device)
    out_dir, kept = _claim(args, sequences, folder, info, hold, share)
    if kept:
        heartbeat.say(f"resuming: {len(kept)} of {len(sequences)} sequences finished earlier, kept")

    def status(line: str) -> None:
        heartbeat.status = line

    if folder or args.batch is not None or args.save_scores or args.protocol is not None:
        return _track_folder(args, tracker, sequences, out_dir, info, heartbeat, status, kept, share)
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
    heartbeat: cli.Heartbeat, status: Callable[[str], None], kept: dict, share: Share | None = None,
) -> int:
    """Track ``sequences`` (but those ``kept`` from an earlier run; with several processes, this
    process's ``share``) one by one or ``--batch`` together, print the summary table."""
    result = run_folder(
        tracker, sequences, out_dir, info=info, slots=args.batch or 1, max_frames=args.max_frames,
        save_video=args.save_video, save_strip=args.save_strip,
        files=FileOptions(save_scores=args.save_scores), protocol=args.protocol,
        progress=args.progress, log=heartbeat.say, status=status, kept=kept, share=share,
    )
    print(format_table(result.results, result.overall), end="")
    print(format_overall(result.overall))
    if share is not None and not share.cluster.coordinator:
        print(f"process {share.cluster.process}: tracked {len(result.results)} of {len(sequences)} "
              "sequences; process 0 writes the summary")
        return cli.EXIT_INTERRUPTED if result.interrupted else cli.EXIT_OK
    print("wrote: " + ", ".join(str(path) for path in result.outputs.values()) + " (and per sequence)")
    if result.interrupted:
        message = f"interrupted; the summary in {out_dir} covers the finished sequences"
        return cli.fail(message, cli.EXIT_INTERRUPTED)
    return cli.EXIT_OK


def _track_vot(
    args: argparse.Namespace, tracker: Tracker, sequences: list[Sequence], info: dict,
    heartbeat: cli.Heartbeat,
) -> int:
    """``--protocol vot``: the supervised experiment (:mod:`siamfc_jax.evaluation.vot_runs`)."""
    groundtruths = [vot_groundtruth(sequence, args.max_frames) for sequence in sequences]
    out_dir = claim_vot_outputs(
        args.out, [sequence.name for sequence in sequences], overwrite=args.overwrite, what="argument --out: "
    )
    record, outputs, interrupted = run_vot(
        tracker, sequences, out_dir, info=info, stack=args.vot_stack or DEFAULT_STACK, slots=args.batch or 1,
        max_frames=args.max_frames, groundtruths=groundtruths, progress=progress_enabled(args.progress),
        log=heartbeat.say,
    )
    if record is not None:
        print(outputs["table"].read_text(encoding="utf-8"), end="")
        print("wrote: " + ", ".join(str(path) for path in outputs.values()))
    if interrupted:
        return cli.fail(f"interrupted; {out_dir} holds the finished sequences", cli.EXIT_INTERRUPTED)
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
    tracker = _load_tracker(weights, config, 1, args.conv_impl, print)
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
    """Run the command line in a process set up by :func:`siamfc_jax.runtime.setup_process`
    (:func:`siamfc_jax.apps.track_command`); returns the exit status (:mod:`siamfc_jax.cli`'s
    convention)."""

    def body() -> int:
        args = build_parser().parse_args(argv)
        return _run(args, tracker_config(args))

    return cli.run(body, (DataError, WeightsError, SyntheticDataError, OSError, ProcessFailed))
