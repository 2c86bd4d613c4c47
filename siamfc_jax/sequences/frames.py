"""Frame files and videos, decoded as siamfc-pytorch reads them: (H, W, 3) RGB uint8 (host, OpenCV).

Also the errors raised for the user's data (:class:`DataError`) and the natural order of frame files.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
)
_DIGIT_RUNS = re.compile(r"(\d+)")


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
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        reason = "no such file" if not os.path.exists(path) else "OpenCV cannot open this video"
        raise DataError(f"{path}: {reason}")
    return capture


def count_video_frames(path: str) -> int:
    """Number of decodable frames of a video.

    The container's frame count is an estimate for some formats (it is derived from the duration for
    many mp4/mkv/webm files, and stays unchanged in a truncated file), so it is trusted only when frame
    ``count - 1`` can be grabbed and frame ``count`` cannot; otherwise every frame is grabbed and counted.
    """
    capture = open_video(path)
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
    capture = open_video(path)
    try:
        count = 0
        while capture.grab():
            count += 1
        return count
    finally:
        capture.release()


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
