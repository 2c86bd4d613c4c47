"""The :class:`Sequence` type: one tracking sequence's frames (image files or a video) and boxes.

Boxes are float64 ``[x, y, w, h]`` in pixels with a 1-indexed left-top corner (OTB / GOT-10k).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import cv2
import numpy as np
from numpy.typing import ArrayLike

from siamfc_jax.sequences.frames import DataError, count_video_frames, open_video, read_image


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
        """Number of frames (for a video: of decodable frames, see ``count_video_frames``)."""
        if self.video is None:
            return len(self.frames)
        return self._video_length

    @cached_property
    def _video_length(self) -> int:
        return count_video_frames(str(self.video))

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
        capture = open_video(self.video)
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
            capture = open_video(self.video)
            try:
                ok, first = capture.read()
            finally:
                capture.release()
            if not ok:
                raise DataError(f"{self.video}: frame 0 cannot be decoded")
        height, width = first.shape[:2]
        return width, height
