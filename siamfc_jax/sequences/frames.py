"""Frame files and videos, decoded as siamfc-pytorch reads them: (H, W, 3) RGB uint8 (host).

Also the errors raised for the user's data (:class:`DataError`) and the natural order of frame files.

Images are decoded by OpenCV (``cv2.imdecode`` on the file's bytes, read once: ``cv2.imread``'s
pixels), videos by PyAV (FFmpeg), whose frames are OpenCV's to the bit (``tests/test_sequences.py``
checks it on ``bag.avi``). On the healthy path decoding threads run in parallel: no lock, no
process-wide state.

Damage is reported by the decoders themselves, by writing to the process's file descriptor 2
("Premature end of JPEG file", "ac-tex damaged"), past Python and naming no file; the caller should
name the frame instead:

- FFmpeg's messages are caught per thread through PyAV's log capture (``av.logging.Capture``), for
  the frame being decoded. PyAV passes them on only at the level
  :func:`siamfc_jax.runtime.setup_process` sets (errors); at PyAV's default level they are dropped.
- libjpeg-turbo (inside OpenCV) prints its warnings itself. A cheap look at a JPEG file's bytes
  (:func:`jpeg_damage`: the start and end markers) finds the common damage, a truncated file or
  data after its end; only such a file is decoded (by ``cv2.imread``, which decodes what a
  truncated file holds) with fd 2 caught (:func:`native_stderr_captured`, one thread at a time),
  so libjpeg's own message is quoted. Damage the look cannot see (bit errors inside the
  compressed data of a file that starts and ends well) still reaches the terminal, naming no file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import av.logging
import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
)
_DIGIT_RUNS = re.compile(r"(\d+)")
# File descriptor 2 belongs to the whole process: one capture at a time.
_STDERR_LOCK = threading.Lock()
# JPEG markers: start and end of image.
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"


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
    (libjpeg's warnings, printed by OpenCV's bundled libjpeg-turbo itself). Python's own
    ``sys.stderr`` is flushed first, so nothing written before is caught. fd 2 is shared by every
    thread, so captures run one at a time and catch what other threads write meanwhile: only for
    files already known to be damaged (:func:`decode_image`).
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
            lines.extend(line.strip() for line in text.splitlines() if line.strip())


def jpeg_damage(data: bytes) -> str | None:
    """What the markers of a JPEG file's bytes ``data`` say is wrong, or None (also for data that is
    not a JPEG, which does not start with the start-of-image marker).

    A JPEG ends with the end-of-image marker, after which only zero bytes are allowed (padding some
    writers add). Without one the file is truncated; bytes other than zeros after it are data the
    decoder ignores. An end marker inside the file (e.g. of an embedded EXIF thumbnail) can make a
    truncated file read as one with data after its end: either way it is damaged.
    """
    if not data.startswith(_JPEG_SOI):
        return None
    body = data.rstrip(b"\x00")
    if body.endswith(_JPEG_EOI):
        return None
    end = body.rfind(_JPEG_EOI, len(_JPEG_SOI))
    if end < 0:
        return "the file ends before the JPEG end-of-image marker (truncated)"
    return f"{len(body) - end - len(_JPEG_EOI)} bytes after the JPEG end-of-image marker"


def decode_image(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """:func:`read_image`, plus what is wrong with a damaged file that still decodes: libjpeg's own
    messages (e.g. "Premature end of JPEG file" for a truncated file, which decodes partly grey),
    kept off the terminal, else :func:`jpeg_damage`'s finding. Empty for a healthy file.

    Raises:
        DataError: the file is missing, cannot be read, or OpenCV cannot decode it.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    damage = jpeg_damage(data)
    messages: list[str] = []
    if not data:  # cv2.imdecode refuses an empty buffer with an exception
        image = None
    elif damage is None:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    else:
        # cv2.imread, which decodes what a truncated file holds where cv2.imdecode refuses it.
        with native_stderr_captured() as messages:
            image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: cannot be decoded as an image")
    if damage is not None and not messages:
        messages.append(damage)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), messages


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file as siamfc-pytorch does (``cv2.imread``'s pixels): (H, W, 3) RGB uint8.

    Raises:
        DataError: the file is missing, cannot be read, or OpenCV cannot decode it.
    """
    return decode_image(path)[0]


def _ffmpeg_messages(logs: list) -> list[str]:
    # PyAV's records are (level, component, message), e.g. (16, "mpeg4", "Error at MB: 391\n").
    return [f"{name}: {message.strip()}" if name else message.strip() for _, name, message in logs]


def _open_container(path: str) -> av.container.InputContainer:
    try:
        container = av.open(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (av.FFmpegError, OSError) as error:
        raise DataError(f"{path}: cannot be opened as a video ({error})") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{path}: holds no video stream")
    return container


def check_video(path: str) -> None:
    """Check that ``path`` opens as a video (a container with a video stream).

    Raises:
        DataError: the file is missing, is not a video, or holds no video stream.
    """
    _open_container(path).close()


def video_frames(path: str) -> Iterator[tuple[np.ndarray, list[str]]]:
    """The frames of the video ``path`` in order, each as (H, W, 3) RGB uint8 with FFmpeg's messages
    while it was decoded (``"mpeg4: Error at MB: 391"``; empty for a healthy frame). Ends at the end
    of the stream or at the first frame that cannot be decoded (a truncated file).

    Raises:
        DataError: the file is missing or cannot be opened as a video.
    """
    with _open_container(path) as container:
        decoded = container.decode(container.streams.video[0])
        while True:
            # Only this thread's messages, and only while it decodes (not while the caller runs).
            with av.logging.Capture(local=True) as logs:
                try:
                    frame = next(decoded)
                except (StopIteration, av.FFmpegError):
                    return
                image = frame.to_ndarray(format="rgb24")
            yield image, _ffmpeg_messages(logs)


def _decodable_frames(container: av.container.InputContainer) -> int:
    stream = container.streams.video[0]
    count = 0
    with av.logging.Capture(local=True):  # the damage is reported as the frames are read
        try:
            for _ in container.decode(stream):
                count += 1
        except av.FFmpegError:
            pass
    return count


def _announced_count_holds(container: av.container.InputContainer, announced: int) -> bool:
    """Whether the video has ``announced`` frames, all decodable to the end: as many packets
    (read without decoding) and, from the last key frame on, one decoded frame per packet."""
    stream = container.streams.video[0]
    # A file that cannot be read to its end or seek in is counted frame by frame; the damage is
    # reported as the frames are read.
    with av.logging.Capture(local=True):
        try:
            packets = [(packet.is_keyframe, packet.pts) for packet in container.demux(stream) if packet.size]
            keys = [index for index, (is_key, pts) in enumerate(packets) if is_key and pts is not None]
            if len(packets) != announced or not keys:
                return False
            container.seek(packets[keys[-1]][1], stream=stream, backward=True, any_frame=False)
        except av.FFmpegError:
            return False
    return _decodable_frames(container) == announced - keys[-1]


def video_frame_counts(path: str) -> tuple[int, int | None]:
    """``(decodable, announced)``: frames of a video that decode, and the container's frame count
    (None where it states none).

    The container's count is an estimate for some formats (derived from the duration for many
    mp4/mkv/webm files, and unchanged in a truncated file), so it is trusted only where the file
    holds as many packets and the frames from the last key frame on decode; otherwise every frame
    is decoded and counted. A truncated file decodes fewer frames than it announces.

    Raises:
        DataError: the file is missing or cannot be opened as a video.
    """
    with _open_container(path) as container:
        announced = container.streams.video[0].frames or None
        if announced is not None and _announced_count_holds(container, announced):
            return announced, announced
    with _open_container(path) as container:
        return _decodable_frames(container), announced


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
