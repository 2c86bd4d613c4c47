"""Pictures of tracking results: annotated frames and MP4 videos, success plots, frame strips.

Host code (OpenCV, matplotlib). Images are (H, W, 3) RGB uint8 as everywhere in siamfc_jax; boxes
are 1-indexed ``[x, y, w, h]`` in pixels, so a box's left column is pixel column ``x - 1``
(0-indexed) and its right column ``x + w - 2``. Every file is written atomically.

Plots use matplotlib's object API (``Figure``) with the Agg renderer, never ``pyplot``: nothing
needs a display, and no global backend is changed for the caller.
"""

from __future__ import annotations

import contextlib
import fractions
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from siamfc_jax.files import OutputError, atomic_path

PREDICTION_COLOR = (255, 48, 48)  # RGB
# Further targets of a multi-target run, after PREDICTION_COLOR (none of them green).
TARGET_COLORS = (PREDICTION_COLOR, (48, 96, 255), (255, 200, 0), (220, 48, 220), (0, 210, 230))
GROUND_TRUTH_COLOR = (48, 220, 48)
# H.264 in MP4, which browsers play, through PyAV's FFmpeg with libx264 (OpenCV's pip wheels have
# no H.264 encoder, only MPEG-4 Part 2, which browsers do not play).
VIDEO_CODEC = "libx264"
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MAX_LABELLED_CURVES = 10


def box_corners(box: ArrayLike) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """0-indexed ``((left, top), (right, bottom))`` pixel corners, inclusive, of a 1-indexed box.

    The box ``[x, y, w, h]`` covers pixel columns ``x - 1 … x + w - 2`` (0-indexed), likewise rows;
    fractional corners round half up, so both edges of a box move alike. A box narrower than a
    pixel is drawn one pixel wide. Returns None for a box that cannot be drawn (NaN, or zero or
    negative width or height).
    """
    x, y, w, h = (float(value) for value in np.asarray(box, np.float64).reshape(4))
    if not np.all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
        return None
    left, top = _round_half_up(x - 1), _round_half_up(y - 1)
    right, bottom = _round_half_up(x - 2 + w), _round_half_up(y - 2 + h)
    return (left, top), (max(left, right), max(top, bottom))


def _round_half_up(value: float) -> int:
    # Python's round() rounds half to even: the edges 10.5 and 11.5 of a 2-pixel box would go to
    # 10 and 12, drawing it 3 pixels wide.
    return math.floor(value + 0.5)


def line_thickness(image_shape: tuple[int, ...]) -> int:
    """Outline width in pixels for an image of ``image_shape`` (H, W, ...): 2 up to about 360
    pixels on the short side, then growing with it, so boxes stay visible in scaled-down views."""
    return max(2, round(min(image_shape[:2]) / 240))


def draw_box(canvas: np.ndarray, box: ArrayLike, color: tuple[int, int, int], thickness: int) -> None:
    """Draw the outline of a 1-indexed ``[x, y, w, h]`` box into ``canvas`` (H, W, 3), in place.

    The outline is the box's outermost ``thickness`` rings of pixels (see :func:`box_corners`), so
    it never covers pixels outside the box; parts outside the image are clipped. Boxes that cannot
    be drawn (NaN, empty) are skipped.
    """
    corners = box_corners(box)
    if corners is None:
        return
    (left, top), (right, bottom) = corners
    for ring in range(thickness):
        if left + ring > right - ring or top + ring > bottom - ring:
            break
        cv2.rectangle(canvas, (left + ring, top + ring), (right - ring, bottom - ring), color, 1)


def draw_tracking(
    image: np.ndarray,
    box: ArrayLike | None,
    ground_truth: ArrayLike | None = None,
    lines: Sequence[str] = (),
    thickness: int | None = None,
) -> np.ndarray:
    """A copy of ``image`` with the ground-truth box (green), the tracked box (red) and text lines.

    Args:
      image: (H, W, 3) RGB uint8 frame.
      box: (4,) tracked box, 1-indexed ``[x, y, w, h]``, or (N, 4) boxes of N targets (drawn in
        :data:`TARGET_COLORS`, in turn), or None.
      ground_truth: (4,) ground-truth box or None; NaN or empty boxes (absent target) are skipped.
      lines: text drawn top-left, one line each, on a dark band for legibility.
      thickness: outline width in pixels (see :func:`draw_box`); None picks
        :func:`line_thickness` of the image.

    Returns:
      (H, W, 3) RGB uint8 annotated frame; the tracked box is drawn over the ground truth.
    """
    canvas = np.ascontiguousarray(image).copy()
    thickness = line_thickness(canvas.shape) if thickness is None else thickness
    if ground_truth is not None:
        draw_box(canvas, ground_truth, GROUND_TRUTH_COLOR, thickness)
    if box is not None:
        for index, target in enumerate(np.asarray(box, np.float64).reshape(-1, 4)):
            draw_box(canvas, target, TARGET_COLORS[index % len(TARGET_COLORS)], thickness)
    scale = max(0.4, min(canvas.shape[:2]) / 600)
    line_height = round(22 * scale / 0.5)
    for index, text in enumerate(lines):
        (width, height), _ = cv2.getTextSize(text, _FONT, scale, 1)
        top = index * line_height
        cv2.rectangle(canvas, (0, top), (width + 8, top + line_height), (0, 0, 0), cv2.FILLED)
        origin = (4, top + (line_height + height) // 2)
        cv2.putText(canvas, text, origin, _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def _even_size(image: np.ndarray) -> np.ndarray:
    """Pad the bottom/right edge with black to even height and width.

    H.264 in 4:2:0 colour needs even frame sides.
    """
    height, width = image.shape[:2]
    return cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_CONSTANT, value=0)


class AnnotatedVideoWriter:
    """Context manager writing annotated frames to an H.264 MP4 file that browsers play, atomically.

    The video appears at ``path`` when the ``with`` block ends normally; after an exception the
    partial file is removed. Frames with an odd side are padded to even sides. Encoded by PyAV
    (FFmpeg's libx264, yuv420p, CRF 20, the index at the front for streaming).

    Args:
      path: the ``.mp4`` to write.
      frame_size: ``(width, height)`` of the frames that will be written.
      fps: frame rate stored in the file.

    Raises:
      OutputError: the video cannot be created (entering the context).
    """

    def __init__(self, path: str | os.PathLike, frame_size: tuple[int, int], fps: float = 30.0) -> None:
        self.path = Path(path)
        self.frame_size = frame_size
        self.fps = fps
        self.frames_written = 0
        self._stack = contextlib.ExitStack()
        self._container = None
        self._stream = None

    def __enter__(self) -> AnnotatedVideoWriter:
        import av  # PyAV: imported when a video is written, not with this module

        temporary = self._stack.enter_context(atomic_path(self.path))
        width, height = self.frame_size
        try:
            container = av.open(str(temporary), mode="w", format="mp4", options={"movflags": "+faststart"})
        except (OSError, av.FFmpegError) as error:
            self._stack.close()
            raise OutputError(f"{self.path}: cannot write the video here ({error})") from None
        stream = container.add_stream(VIDEO_CODEC, rate=fractions.Fraction(self.fps).limit_denominator(1001))
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        self._container, self._stream = container, stream
        return self

    def write(
        self,
        image: np.ndarray,
        box: ArrayLike | None,
        ground_truth: ArrayLike | None = None,
        lines: Sequence[str] = (),
    ) -> None:
        """Annotate (see :func:`draw_tracking`) and append one (H, W, 3) RGB uint8 frame."""
        import av

        if self._stream is None:
            raise RuntimeError("AnnotatedVideoWriter.write called outside its with block")
        height, width = image.shape[:2]
        if (width, height) != tuple(self.frame_size):
            raise ValueError(
                f"frame is {width}x{height}, the video {self.frame_size[0]}x{self.frame_size[1]}"
            )
        annotated = _even_size(draw_tracking(image, box, ground_truth, lines))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(annotated), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        container, stream = self._container, self._stream
        self._container = self._stream = None
        try:
            if container is not None:
                if kind is None:
                    for packet in stream.encode(None):  # flush the encoder's delayed frames
                        container.mux(packet)
                container.close()
        finally:
            self._stack.__exit__(kind, error, traceback)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an (H, W, 3) RGB uint8 image (format from the suffix, e.g. ``.png``) atomically.

    Raises:
      OSError: OpenCV cannot encode or write the file.
    """
    with atomic_path(path) as temporary:
        if not cv2.imwrite(str(temporary), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OutputError(f"{path}: OpenCV cannot write this image")


def tracking_strip(
    frames: Sequence[np.ndarray],
    boxes: ArrayLike,
    ground_truth: ArrayLike | None = None,
    labels: Sequence[str] | None = None,
    tile_height: int = 240,
    gap: int = 4,
) -> np.ndarray:
    """Frames side by side with their boxes drawn: a picture of a tracking run (e.g. for a README).

    Args:
      frames: K (H_k, W_k, 3) RGB uint8 frames.
      boxes: K tracked boxes, 1-indexed ``[x, y, w, h]`` in each frame's pixels: (K, 4), or K
        (N, 4) arrays for N targets.
      ground_truth: K ground-truth boxes (4,) or None each, or None.
      labels: K texts drawn on the tiles (e.g. frame numbers), or None.
      tile_height: height in pixels of every tile; each annotated frame is resized to it keeping
        its aspect ratio (area interpolation when shrinking, bicubic when enlarging).
      gap: white pixels between tiles.

    Returns:
      (tile_height, sum of tile widths + gaps, 3) RGB uint8 image.
    """
    if len(frames) == 0 or len(boxes) != len(frames):
        raise ValueError(f"need one box per frame and at least one frame, got {len(frames)} and {len(boxes)}")
    truth = [None] * len(frames) if ground_truth is None else list(ground_truth)
    tiles = []
    for index, frame in enumerate(frames):
        lines = () if labels is None else (labels[index],)
        annotated = draw_tracking(frame, boxes[index], truth[index], lines)
        height, width = annotated.shape[:2]
        if height != tile_height:
            new_width = max(1, round(width * tile_height / height))
            interpolation = cv2.INTER_AREA if tile_height < height else cv2.INTER_CUBIC
            annotated = cv2.resize(annotated, (new_width, tile_height), interpolation=interpolation)
        if tiles:
            tiles.append(np.full((tile_height, gap, 3), 255, np.uint8))
        tiles.append(annotated)
    return np.concatenate(tiles, axis=1)


def success_figure(
    curves: Mapping[str, ArrayLike],
    thresholds: ArrayLike,
    title: str = "Success plot of OPE",
    mean_label: str | None = None,
) -> Figure:
    """Success plot: fraction of frames whose IoU exceeds each threshold, per curve.

    Each legend entry reads ``name [AUC]`` with the AUC (mean of the curve) to 3 decimals, as in the
    OTB plots.

    Args:
      curves: name -> (T,) success rates, one per overlap threshold.
      thresholds: (T,) the overlap thresholds of the curves' rates, increasing (the evaluation's
        :data:`siamfc_jax.evaluation.metrics.SUCCESS_THRESHOLDS`).
      title: the axes title.
      mean_label: when given, the curves are drawn thin and their mean, the overall success curve
        of OTB, bold with this label. Of more than 10 curves the 10 of lowest AUC are labelled (the
        sequences to look at) and one legend line counts the others.

    Returns:
      A matplotlib ``Figure`` (not attached to pyplot); save it with :func:`save_figure`.

    Raises:
      ValueError: a curve has not one rate per threshold.
    """
    thresholds = np.asarray(thresholds, np.float64).reshape(-1)
    stacked = np.stack([np.asarray(curve, np.float64).reshape(-1) for curve in curves.values()])
    if stacked.shape[1] != thresholds.size:
        raise ValueError(f"curves of {stacked.shape[1]} rates for {thresholds.size} thresholds")
    figure = Figure(figsize=(6.0, 4.5), dpi=100)
    axes = figure.add_subplot()
    aucs = stacked.mean(axis=1)
    labelled = set(range(len(curves)))
    if mean_label is not None and len(curves) > _MAX_LABELLED_CURVES:
        # A legend of every sequence of a benchmark would hide the plot; the failures matter most.
        labelled = set(np.argsort(aucs, kind="stable")[:_MAX_LABELLED_CURVES].tolist())
    for index, (name, curve) in enumerate(zip(curves, stacked, strict=True)):
        style = {"linewidth": 2.0} if mean_label is None else {"linewidth": 0.8, "alpha": 0.6}
        label = f"{name} [{aucs[index]:.3f}]" if index in labelled else None
        axes.plot(thresholds, curve, label=label, **style)
    if len(labelled) < len(curves):
        others = len(curves) - len(labelled)
        axes.plot([], [], linewidth=0.8, alpha=0.6, color="grey", label=f"{others} more sequences")
    if mean_label is not None:
        mean = stacked.mean(axis=0)
        axes.plot(
            thresholds,
            mean,
            color="black",
            linewidth=2.5,
            label=f"{mean_label} [{np.mean(mean):.3f}]",
        )
    axes.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="overlap threshold (IoU)", ylabel="success rate")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower left", fontsize="small")
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: str | os.PathLike) -> None:
    """Render ``figure`` with Agg into ``path`` (format from the suffix, e.g. ``.png``), atomically."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary)
