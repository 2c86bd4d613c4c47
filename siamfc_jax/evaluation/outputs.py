"""What a tracking run writes into its output folder, and the policy that keeps runs apart (host).

:func:`write_sequence_files` writes a tracked sequence's files and :class:`SequencePictures` its
annotated video and strip, frame by frame (the files are listed in
:mod:`siamfc_jax.evaluation.tracking`).

A run claims its output folder before it tracks anything (:func:`claim_outputs`): the folder must
be writable, and files that an earlier run left for the same sequences make it refuse unless
``--overwrite``, which removes them all first, so a folder never mixes the files of two runs. The
caller holds the folder for the whole run (:func:`siamfc_jax.files.hold_folder`), so that two runs
started together cannot both find it free.

A folder run that was interrupted continues with ``--resume``: :func:`finished_results` reads back
the sequences it finished (a complete ``<name>.txt`` and ``<name>.json`` not marked interrupted),
after checking that every result the folder holds for these sequences was made with the same
weights, tracker config and frame count; the rest are tracked again and the summary covers all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from siamfc_jax.evaluation.metrics import SUCCESS_THRESHOLDS
from siamfc_jax.evaluation.reports import (
    confidence_lists,
    format_boxes,
    frame_ious,
    scores_figure,
    scores_text,
    sequence_record,
    strip_indices,
    video_fps,
)
from siamfc_jax.evaluation.scoring import SUMMARY_NAME, SequenceResult, score, tracked_length
from siamfc_jax.files import OutputError, check_writable_dir, write_text_atomic
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.visualize import (
    AnnotatedVideoWriter,
    save_figure,
    success_figure,
    tracking_strip,
    write_image,
)

GOT10K_DIR = "got10k"

# Everything a run writes for sequence <name> (what claim_outputs looks for).
_SEQUENCE_SUFFIXES = (".txt", ".json", "_success.png", ".mp4", "_strip.png")
_TARGET_FILE = r"_target\d+\.(?:txt|json)"
_SUMMARY_FILES = tuple(f"{SUMMARY_NAME}{suffix}" for suffix in (".json", ".md", "_success.png"))


def target_name(name: str, target: int) -> str:
    """Stem of the files of target ``target`` (0-based) of sequence ``name``: ``bag_target1``."""
    return f"{name}_target{target + 1}"


def existing_outputs(out_dir: Path, names: Iterable[str], summary: bool = False) -> list[Path]:
    """The files in ``out_dir`` that a run over sequences ``names`` could write (see the module
    docstring), summary files included when ``summary``; sorted."""
    if not out_dir.is_dir():
        return []
    names = list(names)
    wanted = {name + suffix for name in names for suffix in _SEQUENCE_SUFFIXES}
    if summary:
        wanted.update(_SUMMARY_FILES)
    targets = [re.compile(re.escape(name) + _TARGET_FILE) for name in names]
    with os.scandir(out_dir) as entries:
        found = [
            Path(entry.path)
            for entry in entries
            if entry.name in wanted or any(pattern.fullmatch(entry.name) for pattern in targets)
        ]
    return sorted(found)


def remove_results(paths: Iterable[Path]) -> None:
    """Delete the files of an earlier run that ``--overwrite`` replaces.

    Raises:
      OutputError: a file cannot be removed (the message names it).
    """
    for path in paths:
        try:
            path.unlink()
        except OSError as error:
            raise OutputError(f"{path}: cannot remove the earlier result ({error.strerror})") from None


def claim_outputs(
    out_dir: str | os.PathLike,
    names: Iterable[str],
    *,
    overwrite: bool = False,
    summary: bool = False,
    what: str = "",
    resume_hint: bool = False,
) -> Path:
    """Make ``out_dir`` ready for a run over sequences ``names``, before anything is tracked.

    Creates the folder if needed and checks that it can be written. Files an earlier run left
    for these sequences (:func:`existing_outputs`) make it refuse, unless ``overwrite``, which
    removes them all first, so the folder never mixes the files of two runs.

    Args:
      what: how the user named the folder, put before messages (``"argument --out: "``).
      resume_hint: the refusal also suggests ``--resume`` (folder runs, which can continue).

    Raises:
      OutputError: the folder cannot be created or written, or holds earlier results and not
        ``overwrite`` (the message names the folder and the first files).
    """
    folder = check_writable_dir(out_dir, what)
    found = existing_outputs(folder, names, summary)
    if found and not overwrite:
        listed = ", ".join(path.name for path in found[:3]) + (", …" if len(found) > 3 else "")
        resume = "--resume to continue that run, " if resume_hint else ""
        raise OutputError(
            f"{what}{folder} already holds results of this run's sequences ({listed}); pass "
            f"{resume}--overwrite to replace them, or choose another --out"
        )
    remove_results(found)
    return folder


# What a resumed run must share with the results it keeps (besides the frame count).
_RUN_SETTINGS = ("weights", "backbone")


def _read_record(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable (a broken write)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _same_weights(recorded: object, current: object) -> bool:
    return os.path.abspath(str(recorded)) == os.path.abspath(str(current))


def settings_differences(record: Mapping, info: Mapping, frames: int) -> list[str]:
    """What differs between the run that wrote ``record`` (a sequence's JSON) and this one
    (``info``: :func:`~siamfc_jax.evaluation.reports.run_info`; ``frames`` it tracks), e.g.
    ``["weights a.pth, now b.pth", "config.window_influence 0.2, now 0.176"]``."""
    found = []
    for key in _RUN_SETTINGS:
        same = _same_weights if key == "weights" else (lambda a, b: a == b)
        if not same(record.get(key), info.get(key)):
            found.append(f"{key} {record.get(key)}, now {info.get(key)}")
    recorded, current = record.get("config") or {}, info.get("config") or {}
    for field in sorted(set(recorded) | set(current)):
        if recorded.get(field) != current.get(field):
            found.append(f"config.{field} {recorded.get(field)}, now {current.get(field)}")
    if record.get("frames") != frames:
        found.append(f"frames {record.get('frames')} (--max-frames), now {frames}")
    return found


def _finished_result(folder: Path, sequence: Sequence, record: Mapping) -> SequenceResult | None:
    """The result of ``sequence`` read back from its files, or None unless it finished whole."""
    frames = record.get("frames")
    if record.get("interrupted", True) or record.get("frames_tracked") != frames:
        return None
    try:
        boxes = np.loadtxt(folder / f"{sequence.name}.txt", delimiter=",", ndmin=2)
    except (OSError, ValueError):
        return None
    if boxes.shape != (frames, 4):
        return None
    # Per-frame times are not kept; these give the recorded first-frame time and the same speed.
    first = float(record.get("first_frame_seconds") or 0.0)
    timed = int(record.get("fps_frames") or 0)
    rest = float(record.get("tracking_seconds") or 0.0) - first
    times = np.array([first] + [rest / timed] * timed) if timed else np.array([first])
    scores, ious, errors = score(sequence, boxes)
    return SequenceResult(
        name=sequence.name, num_frames=frames, boxes=boxes, times=times[:frames], scores=scores,
        ious=ious, center_errors=errors,
        outputs={kind: folder / name for kind, name in (record.get("outputs") or {}).items()},
        warnings=tuple(record.get("warnings") or ()),
    )


def finished_results(
    folder: Path, sequences: list[Sequence], info: Mapping, max_frames: int | None = None
) -> dict[int, SequenceResult]:
    """The sequences an earlier run in ``folder`` finished, read back: index in ``sequences`` ->
    result (scored again from the box file, which holds the reported boxes exactly).

    Raises:
      OutputError: a result in ``folder`` of one of these sequences comes from a run with other
        settings (:func:`settings_differences`; the message names the file and what differs).
    """
    kept = {}
    for index, sequence in enumerate(sequences):
        record = _read_record(folder / f"{sequence.name}.json")
        if record is None:
            continue
        differences = settings_differences(record, info, tracked_length(sequence, max_frames))
        if differences:
            raise OutputError(
                f"argument --resume: {folder / (sequence.name + '.json')} comes from a run with other "
                f"settings ({'; '.join(differences)}); pass --overwrite to start again, or choose "
                "another --out"
            )
        result = _finished_result(folder, sequence, record)
        if result is not None:
            kept[index] = result
    return kept


class SequencePictures:
    """The annotated video and strip of a run (either optional), fed frame by frame.

    Boxes are (4,) for one target or (N, 4) for several; the ground truth (green) is drawn where
    the sequence has it for the frame.
    """

    def __init__(
        self,
        stack: contextlib.ExitStack,
        sequence: Sequence,
        out_dir: Path,
        total: int,
        save_video: bool,
        save_strip: bool,
    ) -> None:
        self.sequence, self.total = sequence, total
        self.wanted = set(strip_indices(total)) if save_strip else set()
        self.strip: dict[int, np.ndarray] = {}
        self.outputs: dict[str, Path] = {}
        self.video = None
        if save_video:
            writer = AnnotatedVideoWriter(
                out_dir / f"{sequence.name}.mp4", sequence.frame_size, video_fps(sequence)
            )
            self.video = stack.enter_context(writer)
            self.outputs["video"] = writer.path

    def truth(self, index: int) -> np.ndarray | None:
        boxes = self.sequence.boxes
        return None if boxes is None or index >= len(boxes) else boxes[index]

    def on_frame(self, index: int, frame: np.ndarray, box: np.ndarray, fps: float | None) -> None:
        if index in self.wanted:
            self.strip[index] = frame
        if self.video is not None:
            speed = "" if fps is None else f"  {fps:.1f} fps"
            label = f"{self.sequence.name}  frame {index + 1}/{self.total}{speed}"
            self.video.write(frame, box, self.truth(index), (label,))

    def write_strip(self, boxes: np.ndarray, out_dir: Path) -> None:
        """Write ``<name>_strip.png`` from the tracked ``boxes`` (T, 4) or (T, N, 4)."""
        if not self.strip:
            return
        indices = sorted(self.strip)
        image = tracking_strip(
            [self.strip[index] for index in indices],
            [boxes[index] for index in indices],
            [self.truth(index) for index in indices],
            [f"#{index + 1}" for index in indices],
        )
        path = out_dir / f"{self.sequence.name}_strip.png"
        write_image(path, image)
        self.outputs["strip"] = path


@dataclasses.dataclass(frozen=True)
class FileOptions:
    """Which optional files a sequence's run writes (module docstring): ``save_scores`` the
    confidence text and plot, ``got10k`` the GOT-10k submission files."""

    save_scores: bool = False
    got10k: bool = False


def write_sequence_files(
    result: SequenceResult,
    confidence: np.ndarray,
    sequence: Sequence,
    out_dir: Path,
    info: Mapping,
    options: FileOptions = FileOptions(),
    outputs: Mapping[str, Path] | None = None,
) -> SequenceResult:
    """Write a tracked sequence's box file, JSON, success plot and the optional files; returns
    ``result`` with ``outputs`` naming them (``outputs``: files written already, e.g. the video)."""
    name = sequence.name
    outputs = {**(outputs or {}), "boxes": out_dir / f"{name}.txt"}
    write_text_atomic(outputs["boxes"], format_boxes(result.boxes))
    if result.scores is not None:
        outputs["success_plot"] = out_dir / f"{name}_success.png"
        figure = success_figure({name: result.success_curve}, SUCCESS_THRESHOLDS)
        save_figure(figure, outputs["success_plot"])
    if options.save_scores:
        outputs["scores"] = out_dir / f"{name}_scores.txt"
        write_text_atomic(outputs["scores"], scores_text(confidence))
        outputs["scores_plot"] = out_dir / f"{name}_scores.png"
        figure = scores_figure(name, confidence, frame_ious(sequence, result.boxes))
        save_figure(figure, outputs["scores_plot"])
    if options.got10k:
        folder = out_dir / GOT10K_DIR / name
        folder.mkdir(parents=True, exist_ok=True)
        outputs["got10k_boxes"] = folder / f"{name}_001.txt"
        write_text_atomic(outputs["got10k_boxes"], format_boxes(result.boxes))
        outputs["got10k_times"] = folder / f"{name}_time.txt"
        write_text_atomic(outputs["got10k_times"], "".join(f"{value:.8f}\n" for value in result.times))
    outputs["json"] = out_dir / f"{name}.json"
    result = dataclasses.replace(result, outputs=outputs)
    record = sequence_record(result, sequence, info)
    record["confidence"] = confidence_lists(confidence)
    record["outputs"] = {kind: os.path.relpath(path, out_dir) for kind, path in outputs.items()}
    write_text_atomic(outputs["json"], json.dumps(record, indent=1) + "\n")
    return result
