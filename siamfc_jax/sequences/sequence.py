"""The :class:`Sequence` type: one tracking sequence's frames (image files or a video) and boxes.

Boxes are float64 ``[x, y, w, h]`` in pixels with a 1-indexed left-top corner (OTB / GOT-10k).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

from siamfc_jax.sequences.frames import DataError, decode_image, video_frame_counts, video_frames

OnWarning = Callable[[str], None]


def readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def box_array(box: ArrayLike, what: str) -> np.ndarray:
    array = np.array(box, dtype=np.float64)
    if array.shape != (4,):
        raise DataError(f"{what} must be 4 numbers x, y, w, h; got {box!r}")
    return readonly(array)


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
            set_field(self, "boxes", readonly(boxes))
        if self.init_box is not None:
            set_field(self, "init_box", box_array(self.init_box, "init_box"))
        elif self.boxes is not None and len(self.boxes) > 0:
            set_field(self, "init_box", readonly(self.boxes[0].copy()))
        if self.absence is not None:
            set_field(self, "absence", readonly(np.array(self.absence, dtype=bool).reshape(-1)))
        if self.cover is not None:
            set_field(self, "cover", readonly(np.array(self.cover, dtype=np.int64).reshape(-1)))
        set_field(self, "meta", MappingProxyType(dict(self.meta)))

    def __len__(self) -> int:
        """Number of frames (for a video: of decodable frames, see ``video_frame_counts``)."""
        if self.video is None:
            return len(self.frames)
        return self._video_counts[0]

    @cached_property
    def _video_counts(self) -> tuple[int, int | None]:
        return video_frame_counts(str(self.video))

    def frame_label(self, index: int) -> str:
        """How messages name frame ``index`` (0-based): its file (or the video) and its 1-indexed
        number, e.g. ``img/0003.jpg (frame 3 of 120 of sequence 'otb')``."""
        where = self.frames[index] if self.video is None else self.video
        return f"{where} (frame {index + 1} of {len(self)} of sequence {self.name!r})"

    def _read_frame_file(self, index: int, on_warning: OnWarning | None = None) -> np.ndarray:
        try:
            image, messages = decode_image(self.frames[index])
        except DataError as error:
            reason = str(error).removeprefix(f"{self.frames[index]}: ")
            raise DataError(f"{self.frame_label(index)}: {reason}") from None
        if messages and on_warning is not None:
            on_warning(f"{self.frame_label(index)}: decoded with errors: {'; '.join(messages)}")
        return image

    def iter_frames(self, on_warning: OnWarning | None = None) -> Iterator[np.ndarray]:
        """Yield the frames in order as (H, W, 3) RGB uint8 arrays.

        Args:
            on_warning: receives one line per damaged frame that still decodes (a truncated JPEG
                decodes partly grey; the decoder's messages, kept off the terminal, are quoted)
                and, for a video that decodes fewer frames than its container announces (a
                truncated file), one line before the first frame. None: damage goes unreported.

        Raises:
            DataError: a frame cannot be decoded; the message names the file (or video) and the
                1-indexed frame number.
        """
        if self.video is None:
            for index in range(len(self.frames)):
                yield self._read_frame_file(index, on_warning)
            return
        total, announced = self._video_counts
        if announced is not None and announced > total and on_warning is not None:
            on_warning(
                f"{self.video}: the container announces {announced} frames but only the first "
                f"{total} can be decoded (a truncated or damaged file?); the sequence ends there"
            )
        frames = video_frames(self.video)
        try:
            for index in range(total):
                decoded = next(frames, None)
                if decoded is None:
                    raise DataError(f"{self.frame_label(index)}: cannot be decoded")
                image, messages = decoded
                if messages and on_warning is not None:
                    on_warning(f"{self.frame_label(index)}: decoded with errors: {'; '.join(messages)}")
                yield image
        finally:
            frames.close()

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
            frames = video_frames(self.video)
            decoded = next(frames, None)
            frames.close()
            if decoded is None:
                raise DataError(f"{self.video}: frame 1 cannot be decoded")
            first = decoded[0]
        height, width = first.shape[:2]
        return width, height
