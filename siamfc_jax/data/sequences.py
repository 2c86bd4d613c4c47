"""Single tracking sequences: their frames (image files or a video) and their boxes.

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
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
from numpy.typing import ArrayLike

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
)
GOT10K_MARKERS = ("absence.label", "cover.label", "meta_info.ini")

_SEPARATORS = re.compile(r"[,\s]+")
_DIGIT_RUNS = re.compile(r"(\d+)")


class DataError(ValueError):
    """A problem with the user's data; the message names the file (and the line where relevant)."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file as siamfc-pytorch does: (H, W, 3) RGB uint8.

    Raises:
        DataError: the file is missing or OpenCV cannot decode it.
    """
    image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if image is None:
        reason = "no such file" if not os.path.exists(path) else "cannot be decoded as an image"
        raise DataError(f"{path}: {reason}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _open_video(path: str) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        reason = "no such file" if not os.path.exists(path) else "OpenCV cannot open this video"
        raise DataError(f"{path}: {reason}")
    return capture


def _count_video_frames(path: str) -> int:
    """Number of decodable frames of a video.

    The container's frame count is an estimate for some formats (it is derived from the duration for
    many mp4/mkv/webm files, and stays unchanged in a truncated file), so it is trusted only when frame
    ``count - 1`` can be grabbed and frame ``count`` cannot; otherwise every frame is grabbed and counted.
    """
    capture = _open_video(path)
    try:
        announced = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        if math.isfinite(announced) and announced >= 1:
            count = int(announced)
            if (
                capture.set(cv2.CAP_PROP_POS_FRAMES, count - 1)
                and capture.grab()
                and not capture.grab()
            ):
                return count
    finally:
        capture.release()
    capture = _open_video(path)
    try:
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _box_array(box: ArrayLike, what: str) -> np.ndarray:
    array = np.array(box, dtype=np.float64)
    if array.shape != (4,):
        raise DataError(f"{what} must be 4 numbers x, y, w, h; got {box!r}")
    return _readonly(array)


@dataclass(frozen=True, eq=False, kw_only=True)
class Sequence:
    """One tracking sequence: frames from image files or a video, and optional annotation.

    Attributes:
        name: sequence name (folder name, video file stem, ``<snippet>.<trackid>`` for ImageNet VID).
        frames: image file paths in frame order; empty when ``video`` is set.
        video: path of a video file whose frames are decoded in order, or None.
        boxes: (N, 4) float64 per-frame ground truth ``[x, y, w, h]`` (1-indexed pixels), one row per
            frame, or None without per-frame ground truth. Rows may be NaN (or zero-size) where the
            target is absent.
        init_box: (4,) float64 box the tracker starts from in frame 0: the box given to
            :func:`open_sequence` if any, else the first ground-truth box (the only one in the GOT-10k
            test split); None when neither exists. Defaults to ``boxes[0]``.
        absence: (N,) bool, True where the target is absent (GOT-10k ``absence.label``, LaSOT full
            occlusion or out of view), or None.
        cover: (N,) int64 GOT-10k visible fraction in eighths (0..8), or None.
        meta: string key/value information (GOT-10k ``meta_info.ini``, ImageNet VID class and track id).
        source: the folder, video file or glob pattern the sequence was read from (for messages).
        annotation: path of the ground-truth file (for ImageNet VID: the snippet's annotation
            folder), or None.

    Arrays are stored read-only, so a Sequence is immutable. Equality is identity.
    """

    name: str
    frames: tuple[str, ...] = ()
    video: str | None = None
    boxes: np.ndarray | None = None
    init_box: np.ndarray | None = None
    absence: np.ndarray | None = None
    cover: np.ndarray | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    annotation: str | None = None

    def __post_init__(self) -> None:
        if self.video is not None and self.frames:
            raise ValueError("a Sequence has either frames or a video, not both")
        set_field = object.__setattr__
        set_field(self, "frames", tuple(os.fspath(path) for path in self.frames))
        if self.video is not None:
            set_field(self, "video", os.fspath(self.video))
        if self.boxes is not None:
            boxes = np.array(self.boxes, dtype=np.float64).reshape(-1, 4)
            set_field(self, "boxes", _readonly(boxes))
        if self.init_box is not None:
            set_field(self, "init_box", _box_array(self.init_box, "init_box"))
        elif self.boxes is not None and len(self.boxes) > 0:
            set_field(self, "init_box", _readonly(self.boxes[0].copy()))
        if self.absence is not None:
            set_field(self, "absence", _readonly(np.array(self.absence, dtype=bool).reshape(-1)))
        if self.cover is not None:
            set_field(self, "cover", _readonly(np.array(self.cover, dtype=np.int64).reshape(-1)))
        set_field(self, "meta", MappingProxyType(dict(self.meta)))

    def __len__(self) -> int:
        """Number of frames (for a video: of decodable frames, see ``_count_video_frames``)."""
        if self.video is None:
            return len(self.frames)
        return self._video_length

    @cached_property
    def _video_length(self) -> int:
        return _count_video_frames(str(self.video))

    def _read_frame_file(self, index: int) -> np.ndarray:
        path = self.frames[index]
        try:
            return read_image(path)
        except DataError as error:
            raise DataError(f"{error} (frame {index} of sequence {self.name!r})") from None

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield the frames in order as (H, W, 3) RGB uint8 arrays.

        Raises:
            DataError: a frame cannot be decoded; the message names the file and the 0-based frame index.
        """
        if self.video is None:
            for index in range(len(self.frames)):
                yield self._read_frame_file(index)
            return
        total = len(self)
        capture = _open_video(self.video)
        try:
            for index in range(total):
                ok, frame = capture.read()
                if not ok:
                    raise DataError(f"{self.video}: frame {index} of {total} cannot be decoded")
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) of an image sequence as (H, W, 3) RGB uint8.

        Raises:
            TypeError: the sequence is a video (video frames are read in order with ``iter_frames``,
                because seeking is not frame-accurate for every codec).
            IndexError: ``index`` is out of range.
        """
        if self.video is not None:
            raise TypeError(f"{self.video} is a video: read its frames in order with iter_frames()")
        return self._read_frame_file(index)

    @cached_property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) in pixels of the first frame.

        Raises:
            DataError: there are no frames, or the first one cannot be decoded.
        """
        if self.video is None:
            if not self.frames:
                raise DataError(f"{self.source or self.name}: no frames found")
            first = self._read_frame_file(0)
        else:
            capture = _open_video(self.video)
            try:
                ok, first = capture.read()
            finally:
                capture.release()
            if not ok:
                raise DataError(f"{self.video}: frame 0 cannot be decoded")
        height, width = first.shape[:2]
        return width, height


# ----------------------------------------------------------------------------- annotation files


def _read_lines(path: Path) -> list[str]:
    """Lines of a text file, trailing blank lines dropped (a final newline is common)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot be read as text ({error})") from None
    return text.rstrip().splitlines()


def _tokens(path: Path, line_number: int, line: str) -> list[str]:
    stripped = line.strip(" \t\r\n,")
    if not stripped:
        raise DataError(f"{path}:{line_number}: empty line")
    return _SEPARATORS.split(stripped)


def _number_rows(path: Path, widths: tuple[int, ...]) -> list[list[float]]:
    """Rows of numbers, one per line; each must have one of ``widths`` values (NaN allowed)."""
    rows = []
    for line_number, line in enumerate(_read_lines(path), start=1):
        tokens = _tokens(path, line_number, line)
        try:
            values = [float(token) for token in tokens]
        except ValueError:
            hint = " (VOT segmentation masks are not supported)" if line.startswith("m") else ""
            raise DataError(
                f"{path}:{line_number}: non-numeric value in {line.strip()!r}{hint}"
            ) from None
        if len(values) not in widths:
            expected = " or ".join(str(width) for width in widths)
            raise DataError(
                f"{path}:{line_number}: expected {expected} numbers, found {len(values)} "
                f"in {line.strip()!r}"
            )
        if any(math.isinf(value) for value in values):
            raise DataError(f"{path}:{line_number}: infinite value in {line.strip()!r}")
        rows.append(values)
    return rows


def read_boxes(path: str | os.PathLike) -> np.ndarray:
    """Read a box file: one ``x, y, w, h`` per line separated by commas, tabs or spaces.

    Returns:
        (N, 4) float64 boxes as written (1-indexed pixels for OTB/GOT-10k/LaSOT); NaN stays NaN.

    Raises:
        DataError: missing file, or a line with a count of numbers other than 4 or a non-number;
            the message gives ``file:line``.
    """
    rows = _number_rows(Path(path), (4,))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def polygons_to_rects(polygons: ArrayLike) -> np.ndarray:
    """Axis-aligned rectangles spanning polygons.

    Args:
        polygons: (N, 2K) ``x1, y1, ..., xK, yK`` in pixels.

    Returns:
        (N, 4) float64 ``[min x, min y, max x - min x, max y - min y]``.
    """
    points = np.asarray(polygons, dtype=np.float64)
    xs, ys = points[:, 0::2], points[:, 1::2]
    left, top = xs.min(axis=1), ys.min(axis=1)
    return np.stack([left, top, xs.max(axis=1) - left, ys.max(axis=1) - top], axis=1)


def read_vot_boxes(path: str | os.PathLike) -> np.ndarray:
    """Read a VOT ``groundtruth.txt``: per line a rectangle ``x,y,w,h`` or a polygon ``x1,y1,...,y4``.

    Polygons become the axis-aligned rectangle spanning them (:func:`polygons_to_rects`).

    Returns:
        (N, 4) float64 boxes.
    """
    rows = _number_rows(Path(path), (4, 8))
    boxes = np.empty((len(rows), 4), dtype=np.float64)
    for index, values in enumerate(rows):
        if len(values) == 8:
            boxes[index] = polygons_to_rects(np.array([values]))[0]
        else:
            boxes[index] = values
    return boxes


def _read_labels(path: Path, allowed: range) -> np.ndarray:
    """Integer labels, one per line or separated by commas/whitespace on one or more lines."""
    labels = []
    for line_number, line in enumerate(_read_lines(path), start=1):
        for token in _tokens(path, line_number, line):
            try:
                label = int(token)
            except ValueError:
                label = None
            if label not in allowed:
                raise DataError(
                    f"{path}:{line_number}: label {token!r} is not an integer in "
                    f"{allowed.start}..{allowed.stop - 1}"
                )
            labels.append(label)
    return np.array(labels, dtype=np.int64)


def _read_meta(path: Path) -> dict[str, str]:
    """``key: value`` lines of a GOT-10k ``meta_info.ini`` (section headers and other lines skipped)."""
    meta = {}
    for line in _read_lines(path):
        key, colon, value = line.partition(":")
        if colon and key.strip() and not line.lstrip().startswith(("[", "#", ";")):
            meta[key.strip()] = value.strip()
    return meta


def _check_length(path: Path, values: np.ndarray, expected: int, of_what: str) -> None:
    if len(values) != expected:
        raise DataError(f"{path}: {len(values)} labels for {expected} {of_what}")


# ----------------------------------------------------------------------------- frame files


def _natural_key(path: str) -> list:
    # re.split with a capturing group alternates text and digit runs, so keys compare position-wise.
    return [int(part) if index % 2 else part for index, part in enumerate(_DIGIT_RUNS.split(path))]


def _image_files(directory: Path) -> tuple[str, ...]:
    """Image files directly inside ``directory``, in natural order."""
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory")
    with os.scandir(directory) as entries:
        paths = [
            entry.path
            for entry in entries
            if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
        ]
    return tuple(sorted(paths, key=_natural_key))


def _has_images(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return any(
            entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
            for entry in entries
        )


# ----------------------------------------------------------------------------- readers


def _otb_annotation(directory: Path) -> Path | None:
    main = directory / "groundtruth_rect.txt"
    if main.is_file():
        return main
    variants = sorted(directory.glob("groundtruth_rect.*.txt"), key=lambda p: _natural_key(p.name))
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
        frames=_image_files(directory / "img"),
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
    frames = _image_files(directory)
    boxes: np.ndarray | None = read_boxes(annotation)
    init_box = None
    if len(boxes) == 1 and len(frames) > 1:
        init_box, boxes = boxes[0], None
    labelled = len(frames) if boxes is None else len(boxes)
    of_what = "frames" if boxes is None else f"ground-truth lines in {annotation.name}"
    absence = cover = None
    if (directory / "absence.label").is_file():
        absence = _read_labels(directory / "absence.label", range(2)).astype(bool)
        _check_length(directory / "absence.label", absence, labelled, of_what)
    if (directory / "cover.label").is_file():
        cover = _read_labels(directory / "cover.label", range(9))
        _check_length(directory / "cover.label", cover, labelled, of_what)
    meta_file = directory / "meta_info.ini"
    return Sequence(
        name=directory.name,
        frames=frames,
        boxes=boxes,
        init_box=init_box,
        absence=absence,
        cover=cover,
        meta=_read_meta(meta_file) if meta_file.is_file() else {},
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
        frames=_image_files(color if color.is_dir() else directory),
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
            flags = _read_labels(flag_file, range(2)).astype(bool)
            _check_length(flag_file, flags, len(boxes), f"ground-truth lines in {annotation.name}")
            absence = flags if absence is None else absence | flags
    return Sequence(
        name=directory.name,
        frames=_image_files(directory / "img"),
        boxes=boxes,
        absence=absence,
        source=str(directory),
        annotation=str(annotation),
    )


def read_image_folder(directory: str | os.PathLike) -> Sequence:
    """A folder of image files without annotation (natural order)."""
    directory = Path(directory)
    return Sequence(name=directory.name, frames=_image_files(directory), source=str(directory))


def read_video(path: str | os.PathLike) -> Sequence:
    """A video file without annotation; frames are decoded in order by OpenCV.

    Raises:
        DataError: the file is missing or OpenCV cannot open it.
    """
    path = Path(path)
    _open_video(str(path)).release()
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
    return Sequence(name=name, frames=sorted(paths, key=_natural_key), source=pattern)


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
    frame_count = len(_image_files(directory))
    if frame_count == 0:
        return None
    # A single-line ground truth for several frames is GOT-10k's test split (initial box only).
    single_line = len(_read_lines(annotation)) == 1
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
        elif _has_images(location):
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
        sequence = dataclasses.replace(sequence, init_box=_box_array(box, "box"))
    return sequence


def _format_box(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{value:g}" for value in box) + "]"


def validate_for_tracking(sequence: Sequence, require_ground_truth: bool = False) -> None:
    """Check that a sequence can be tracked (and evaluated), raising a DataError that says why not.

    Checks: there are frames; per-frame ground truth, if any, has exactly one box per frame (required
    when ``require_ground_truth``); there is an initial box, finite, with positive width and height,
    overlapping the first frame (whose pixel columns span ``[1, W + 1)`` in 1-indexed coordinates).
    Later ground-truth boxes may be NaN or empty (absent target).
    """
    where = sequence.source or sequence.name
    count = len(sequence)
    if count == 0:
        raise DataError(f"{where}: no frames found")
    boxes = sequence.boxes
    if boxes is not None and len(boxes) != count:
        relation = "fewer" if len(boxes) < count else "more"
        raise DataError(
            f"{sequence.annotation}: {len(boxes)} ground-truth boxes for {count} frames in {where} "
            f"({relation} boxes than frames)"
        )
    if require_ground_truth and boxes is None:
        raise DataError(f"{where}: no per-frame ground truth")
    box = sequence.init_box
    if box is None:
        raise DataError(f"{where}: no initial box (no ground truth: give one as x, y, w, h)")
    from_annotation = boxes is not None and np.array_equal(box, boxes[0], equal_nan=True)
    what = f"{sequence.annotation}:1: first box" if from_annotation else f"{where}: initial box"
    if not np.all(np.isfinite(box)):
        raise DataError(f"{what} {_format_box(box)} is not finite")
    if box[2] <= 0 or box[3] <= 0:
        raise DataError(f"{what} {_format_box(box)} has zero or negative width or height")
    width, height = sequence.frame_size
    if box[0] + box[2] <= 1 or box[1] + box[3] <= 1 or box[0] >= width + 1 or box[1] >= height + 1:
        raise DataError(
            f"{what} {_format_box(box)} lies entirely outside the {width}x{height} first frame"
        )
