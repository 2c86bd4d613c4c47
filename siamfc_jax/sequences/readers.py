"""Readers of single tracking sequences in the benchmarks' folder layouts.

Host code (files, OpenCV). Frames are decoded the way siamfc-pytorch reads them: ``cv2.imread``, then
BGR -> RGB, giving uint8 arrays of shape (H, W, 3). Boxes are float64 ``[x, y, w, h]`` in pixels with
a 1-indexed left-top corner (OTB / GOT-10k convention).

:func:`open_sequence` recognises these layouts:

- OTB: ``img/*.jpg`` + ``groundtruth_rect.txt`` (or, when that is missing, the first
  ``groundtruth_rect.<k>.txt``), numbers separated by commas, tabs or spaces;
- LaSOT: ``img/*.jpg`` + ``groundtruth.txt`` (+ ``full_occlusion.txt`` and ``out_of_view.txt``);
- GOT-10k: ``*.jpg`` + ``groundtruth.txt`` (+ ``absence.label``, ``cover.label``, ``meta_info.ini``);
  a ground truth of a single line for several frames (the test split) is an initial box only;
- VOT: ``*.jpg`` or ``color/*.jpg`` + ``groundtruth.txt`` whose lines are rectangles (4 numbers) or
  rotated polygons (8 numbers, turned into the axis-aligned rectangle spanning them);
- a folder of images without annotation, a video file, a glob pattern of image files.

Frame files are ordered naturally (digit runs compare as numbers), which is the plain sorted order for
the zero-padded names of all the benchmarks and the expected order for ``frame9.jpg, frame10.jpg``.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from siamfc_jax.sequences.annotations import (
    check_length,
    read_boxes,
    read_labels,
    read_lines,
    read_meta,
    read_vot_boxes,
)
from siamfc_jax.sequences.frames import (
    VIDEO_SUFFIXES,
    DataError,
    check_video,
    has_images,
    image_files,
    natural_key,
)
from siamfc_jax.sequences.sequence import Sequence, box_array

GOT10K_MARKERS = ("absence.label", "cover.label", "meta_info.ini")
# ----------------------------------------------------------------------------- readers


def _otb_annotation(directory: Path) -> Path | None:
    main = directory / "groundtruth_rect.txt"
    if main.is_file():
        return main
    variants = sorted(directory.glob("groundtruth_rect.*.txt"), key=lambda p: natural_key(p.name))
    return variants[0] if variants else None


def read_otb(directory: str | os.PathLike) -> Sequence:
    """OTB sequence folder: ``img/*`` + ``groundtruth_rect.txt`` (else ``groundtruth_rect.<k>.txt``).

    The ground truth is not checked against the frame count here (a few OTB sequences annotate a
    sub-range of their frames): see :func:`validate_for_tracking`.
    """
    directory = Path(directory)
    annotation = _otb_annotation(directory)
    if annotation is None:
        raise DataError(f"{directory}: no groundtruth_rect.txt")
    return Sequence(
        name=directory.name,
        frames=image_files(directory / "img"),
        boxes=read_boxes(annotation),
        meta={"annotation_file": annotation.name},
        source=str(directory),
        annotation=str(annotation),
    )


def read_got10k(directory: str | os.PathLike) -> Sequence:
    """GOT-10k sequence folder: ``*.jpg`` + ``groundtruth.txt`` (+ absence/cover labels, meta info).

    When ``groundtruth.txt`` has a single line for several frames (test split), that line becomes
    ``init_box`` and ``boxes`` is None. ``absence.label`` and ``cover.label`` must have one label per
    ground-truth line.
    """
    directory = Path(directory)
    annotation = directory / "groundtruth.txt"
    frames = image_files(directory)
    boxes: np.ndarray | None = read_boxes(annotation)
    init_box = None
    if len(boxes) == 1 and len(frames) > 1:
        init_box, boxes = boxes[0], None
    labelled = len(frames) if boxes is None else len(boxes)
    of_what = "frames" if boxes is None else f"ground-truth lines in {annotation.name}"
    absence = cover = None
    if (directory / "absence.label").is_file():
        absence = read_labels(directory / "absence.label", range(2)).astype(bool)
        check_length(directory / "absence.label", absence, labelled, of_what)
    if (directory / "cover.label").is_file():
        cover = read_labels(directory / "cover.label", range(9))
        check_length(directory / "cover.label", cover, labelled, of_what)
    meta_file = directory / "meta_info.ini"
    return Sequence(
        name=directory.name,
        frames=frames,
        boxes=boxes,
        init_box=init_box,
        absence=absence,
        cover=cover,
        meta=read_meta(meta_file) if meta_file.is_file() else {},
        source=str(directory),
        annotation=str(annotation),
    )


def read_vot(directory: str | os.PathLike) -> Sequence:
    """VOT sequence folder: ``*.jpg`` (or ``color/*.jpg``) + ``groundtruth.txt`` (rectangles/polygons)."""
    directory = Path(directory)
    annotation = directory / "groundtruth.txt"
    color = directory / "color"
    return Sequence(
        name=directory.name,
        frames=image_files(color if color.is_dir() else directory),
        boxes=read_vot_boxes(annotation),
        source=str(directory),
        annotation=str(annotation),
    )


def read_lasot(directory: str | os.PathLike) -> Sequence:
    """LaSOT sequence folder: ``img/*.jpg`` + ``groundtruth.txt`` (+ occlusion / out-of-view flags).

    ``absence`` is ``full_occlusion | out_of_view`` for the flag files present (None if neither is).
    """
    directory = Path(directory)
    annotation = directory / "groundtruth.txt"
    boxes = read_boxes(annotation)
    absence = None
    for flag_name in ("full_occlusion.txt", "out_of_view.txt"):
        flag_file = directory / flag_name
        if flag_file.is_file():
            flags = read_labels(flag_file, range(2)).astype(bool)
            check_length(flag_file, flags, len(boxes), f"ground-truth lines in {annotation.name}")
            absence = flags if absence is None else absence | flags
    return Sequence(
        name=directory.name,
        frames=image_files(directory / "img"),
        boxes=boxes,
        absence=absence,
        source=str(directory),
        annotation=str(annotation),
    )


def read_image_folder(directory: str | os.PathLike) -> Sequence:
    """A folder of image files without annotation (natural order)."""
    directory = Path(directory)
    return Sequence(name=directory.name, frames=image_files(directory), source=str(directory))


def read_video(path: str | os.PathLike) -> Sequence:
    """A video file without annotation; frames are decoded in order (PyAV, as OpenCV decodes them).

    Raises:
        DataError: the file is missing or cannot be opened as a video.
    """
    path = Path(path)
    check_video(str(path))
    return Sequence(name=path.stem, video=str(path), source=str(path))


def read_image_glob(pattern: str) -> Sequence:
    """Image files matching a glob pattern (``*``, ``?``, ``[...]``), in natural order, no annotation.

    Raises:
        DataError: the pattern matches no file.
    """
    paths = [path for path in glob.glob(pattern) if os.path.isfile(path)]
    if not paths:
        raise DataError(f"{pattern}: the pattern matches no file")
    name = Path(pattern).parent.name or "frames"
    return Sequence(name=name, frames=sorted(paths, key=natural_key), source=pattern)


_READERS = {
    "otb": read_otb,
    "lasot": read_lasot,
    "got10k": read_got10k,
    "vot": read_vot,
}


def _layout(directory: Path) -> str | None:
    """Which annotated layout ``directory`` has (a key of ``_READERS``), or None."""
    if not directory.is_dir():
        return None
    annotation = directory / "groundtruth.txt"
    if (directory / "img").is_dir():
        if _otb_annotation(directory) is not None:
            return "otb"
        if annotation.is_file():
            return "lasot"
        return None
    if not annotation.is_file():
        return None
    if (directory / "color").is_dir():
        return "vot"
    if any((directory / marker).is_file() for marker in GOT10K_MARKERS):
        return "got10k"
    frame_count = len(image_files(directory))
    if frame_count == 0:
        return None
    # A single-line ground truth for several frames is GOT-10k's test split (initial box only).
    single_line = len(read_lines(annotation)) == 1
    return "got10k" if single_line and frame_count > 1 else "vot"


def is_sequence_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an annotated sequence folder (OTB, LaSOT, GOT-10k or VOT layout)."""
    return _layout(Path(path)) is not None


def open_sequence(path: str | os.PathLike, box: ArrayLike | None = None) -> Sequence:
    """Open a sequence, detecting its kind (see the module docstring).

    Args:
        path: sequence folder, folder of images, video file, or glob pattern of image files.
        box: optional initial box ``[x, y, w, h]`` (1-indexed pixels) in frame 0; it becomes
            ``init_box`` and takes precedence over the first ground-truth box.

    Raises:
        DataError: ``path`` is none of the above, or a file in it is missing or malformed.
    """
    text = os.fspath(path)
    location = Path(text)
    if location.is_dir():
        layout = _layout(location)
        if layout is not None:
            sequence = _READERS[layout](location)
        elif has_images(location):
            sequence = read_image_folder(location)
        else:
            raise DataError(
                f"{location}: not a sequence folder (no image files, and no OTB, LaSOT, GOT-10k "
                "or VOT layout)"
            )
    elif location.is_file():
        if location.suffix.lower() not in VIDEO_SUFFIXES:
            known = ", ".join(sorted(VIDEO_SUFFIXES))
            raise DataError(f"{location}: not a video file (known suffixes: {known})")
        sequence = read_video(location)
    elif glob.has_magic(text):
        sequence = read_image_glob(text)
    else:
        raise DataError(f"{location}: no such file or directory")
    if box is not None:
        sequence = dataclasses.replace(sequence, init_box=box_array(box, "box"))
    return sequence
