"""Frame files and videos, decoded as siamfc-pytorch reads them: (H, W, 3) RGB uint8 (host, OpenCV).

Also the errors raised for the user's data (:class:`DataError`) and the natural order of frame files.

libjpeg and FFmpeg report damage ("Premature end of JPEG file", "ac-tex damaged") by writing to the
process's file descriptor 2 themselves, past Python, naming no file. :func:`native_stderr_captured`
routes those lines to the caller instead, who can name the frame they belong to.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
)
_DIGIT_RUNS = re.compile(r"(\d+)")
# FFmpeg's log prefix, e.g. "[mpeg4 @ 0x5609be7b8380] ": the component is kept, the address dropped.
_FFMPEG_PREFIX = re.compile(r"\[([^\]@]+?) @ 0x[0-9a-fA-F]+\]\s*")
# File descriptor 2 belongs to the whole process: one capture at a time.
_STDERR_LOCK = threading.Lock()


class DataError(ValueError):
    """A problem with the user's data; the message names the file (and the line where relevant)."""


def average_color(image: np.ndarray) -> np.ndarray:
    """Per-channel mean (C,) float64 of an (H, W, C) uint8 image (C <= 4), in grey levels.

    siamfc-pytorch fills the parts of every crop that fall outside the frame with this colour of a
    sequence's first frame (``np.mean``). OpenCV's sum of uint8 pixels is exact, so one division
    gives NumPy's mean to the last bit, some hundred times faster on large frames. (``cv2.mean``
    is not equal: it multiplies by the reciprocal of the count and can be one ulp off.)
    """
    if image.ndim != 3 or not 1 <= image.shape[2] <= 4:
        raise ValueError(f"image must be (H, W, C) with C <= 4, got shape {image.shape}")
    sums = np.array(cv2.sumElems(image)[: image.shape[2]], dtype=np.float64)
    return sums / (image.shape[0] * image.shape[1])


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[list[str]]:
    """Route file descriptor 2 into a temporary file while the block runs.

    Yields a list that, when the block ends, holds the non-empty lines written to fd 2 meanwhile
    (by libjpeg, FFmpeg, OpenCV), FFmpeg's ``[codec @ 0x…]`` prefixes shortened to ``codec:``.
    Python's own ``sys.stderr`` is flushed first, so nothing written before is caught. Captures
    are serialised: fd 2 is shared by every thread.
    """
    lines: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            for line in text.splitlines():
                line = _FFMPEG_PREFIX.sub(lambda match: f"{match.group(1).strip()}: ", line).strip()
                if line:
                    lines.append(line)


def decode_image(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """:func:`read_image`, plus the decoder's own messages (e.g. libjpeg's "Premature end of JPEG
    file" for a truncated file, which still decodes, partly grey), kept off the terminal.

    Raises:
        DataError: the file is missing or OpenCV cannot decode it.
    """
    with native_stderr_captured() as messages:
        image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if image is None:
        reason = "no such file" if not os.path.exists(path) else "cannot be decoded as an image"
        raise DataError(f"{path}: {reason}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), messages


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


def open_video(path: str) -> cv2.VideoCapture:
    """An OpenCV capture of the video ``path``; FFmpeg's messages are kept off the terminal.

    Raises:
        DataError: the file is missing or cannot be opened (with FFmpeg's last message, if any).
    """
    with native_stderr_captured() as messages:
        capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file")
        detail = f" ({messages[-1]})" if messages else ""
        raise DataError(f"{path}: OpenCV cannot open this video{detail}")
    return capture


def video_frame_counts(path: str) -> tuple[int, int | None]:
    """``(decodable, announced)``: frames of a video that decode, and the container's frame count
    (None where it states none).

    The container's count is an estimate for some formats (derived from the duration for many
    mp4/mkv/webm files, and unchanged in a truncated file), so it is trusted only when frame
    ``count - 1`` can be grabbed and frame ``count`` cannot; otherwise every frame is grabbed and
    counted. A truncated file decodes fewer frames than it announces.
    """
    capture = open_video(path)
    announced = None
    try:
        with native_stderr_captured():
            reported = capture.get(cv2.CAP_PROP_FRAME_COUNT)
            if math.isfinite(reported) and reported >= 1:
                announced = int(reported)
                if (
                    capture.set(cv2.CAP_PROP_POS_FRAMES, announced - 1)
                    and capture.grab()
                    and not capture.grab()
                ):
                    return announced, announced
    finally:
        capture.release()
    capture = open_video(path)
    try:
        count = 0
        with native_stderr_captured():
            while capture.grab():
                count += 1
        return count, announced
    finally:
        capture.release()


def count_video_frames(path: str) -> int:
    """Number of decodable frames of a video (see :func:`video_frame_counts`)."""
    return video_frame_counts(path)[0]


# ----------------------------------------------------------------------------- frame files


def natural_key(path: str) -> list:
    # re.split with a capturing group alternates text and digit runs, so keys compare position-wise.
    return [int(part) if index % 2 else part for index, part in enumerate(_DIGIT_RUNS.split(path))]


def image_files(directory: Path) -> tuple[str, ...]:
    """Image files directly inside ``directory``, in natural order."""
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory")
    with os.scandir(directory) as entries:
        paths = [
            entry.path
            for entry in entries
            if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
        ]
    return tuple(sorted(paths, key=natural_key))


def has_images(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return any(
            entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
            for entry in entries
        )
