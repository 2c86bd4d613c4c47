"""Tracking live input: a camera, a network stream or any source OpenCV opens, frame by frame.

Host code (OpenCV, a thread). :func:`open_stream` opens a camera index (``"0"``) or a URL
(``rtsp://``, ``http://``, ``file://`` …) with ``cv2.VideoCapture``; a :class:`FrameReader` thread
decodes it and keeps only the newest frame. With ``drop_stale=True`` (live sources) a frame that
the tracker did not take before the next one arrived is dropped and counted, so the tracker always
works on the most recent frame and nothing queues up: the frame rate is the tracker's own. With
``drop_stale=False`` the reader waits for the tracker instead and every frame is tracked, in order
(used by the tests, where the boxes must not depend on timing).

:func:`run_live` tracks from a given box or one selected with the mouse (``cv2.selectROI``), can
show a window with the box and the live fps (Esc or q ends), and writes the box file and the
annotated video as frames arrive (each box line is flushed), so an interrupted run keeps what it saw.
Output names follow ``track.py``: ``<name>.txt`` (one ``x,y,w,h`` per tracked frame, 1-indexed),
``<name>.mp4`` and ``<name>.json`` (counts, the source index of every tracked frame, fps).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
from numpy.typing import ArrayLike

from siamfc_jax.evaluation.reports import format_boxes
from siamfc_jax.files import write_text_atomic
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.tracker import Tracker
from siamfc_jax.tracker.device import hyper_params
from siamfc_jax.tracker.loop import FrameResult, Job, track_jobs
from siamfc_jax.visualize import draw_tracking

STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "file"})
WINDOW_NAME = "siamfc_jax"
_QUIT_KEYS = frozenset({27, ord("q"), ord("Q")})  # Esc, q
_FPS_WINDOW = 30  # frames over which the shown fps is measured


def is_live_source(source: str) -> bool:
    """True for a camera index (``"0"``, unless a file of that name exists) or a stream URL."""
    if source.isdigit():
        return not os.path.exists(source)
    return urlparse(source).scheme.lower() in STREAM_SCHEMES


def source_name(source: str) -> str:
    """Base name of the outputs: ``camera0`` for a camera, else the URL path's stem (or ``stream``)."""
    if source.isdigit():
        return f"camera{int(source)}"
    stem = Path(urlparse(source).path).stem
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "stream"


def open_stream(source: str) -> cv2.VideoCapture:
    """A ``cv2.VideoCapture`` of a camera index or a URL.

    ``file://`` URLs are opened as the local file they name (OpenCV's FFmpeg backend has no file
    protocol on every build); the frames are the same as through the file path.

    Raises:
      DataError: OpenCV cannot open the source (the message names it).
    """
    if source.isdigit():
        capture = cv2.VideoCapture(int(source))
    else:
        url = urlparse(source)
        capture = cv2.VideoCapture(url.path if url.scheme.lower() == "file" else source)
    if not capture.isOpened():
        capture.release()
        raise DataError(f"{source}: OpenCV cannot open this camera or stream")
    return capture


class FrameReader:
    """A thread decoding ``capture`` that hands out the newest frame.

    Args:
      capture: an opened ``cv2.VideoCapture``; released when the reader stops.
      drop_stale: True: keep only the newest frame, counting the ones replaced before they were
        taken in :attr:`dropped`; False: wait until the previous frame was taken (no drops).

    Use as a context manager (starts and stops the thread). Frames are (H, W, 3) RGB uint8.
    """

    def __init__(self, capture: cv2.VideoCapture, drop_stale: bool = True) -> None:
        self.drop_stale = drop_stale
        self.frames_read = 0
        self.dropped = 0
        self._capture = capture
        self._slot: tuple[int, np.ndarray] | None = None
        self._ended = False
        self._stopping = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._read_all, name="siamfc-frame-reader", daemon=True)

    def __enter__(self) -> FrameReader:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _read_all(self) -> None:
        try:
            while True:
                ok, frame = self._capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                with self._condition:
                    while not self.drop_stale and self._slot is not None and not self._stopping:
                        self._condition.wait()
                    if self._stopping:
                        break
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = (self.frames_read, rgb)
                    self.frames_read += 1
                    self._condition.notify_all()
        finally:
            self._capture.release()
            with self._condition:
                self._ended = True
                self._condition.notify_all()

    def next_frame(self) -> tuple[int, np.ndarray] | None:
        """The newest frame not taken yet and its 0-based index in the source; None at the end."""
        with self._condition:
            while self._slot is None and not self._ended:
                self._condition.wait()
            item, self._slot = self._slot, None
            self._condition.notify_all()
            return item

    def stop(self) -> None:
        """Stop reading and release the capture (waits for the thread)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join()


def display_problem() -> str | None:
    """Why no OpenCV window can open here (no ``DISPLAY``/``WAYLAND_DISPLAY`` on Linux), or None."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display (DISPLAY is not set)"
    return None


def select_box(frame: np.ndarray) -> np.ndarray:
    """Let the user drag the target's box on ``frame`` (RGB); returns it 1-indexed ``[x, y, w, h]``.

    Raises:
      DataError: the selection was cancelled or empty.
    """
    window = f"{WINDOW_NAME}: drag the target's box, then Enter or Space (c cancels)"
    x, y, w, h = cv2.selectROI(window, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), showCrosshair=True)
    cv2.destroyWindow(window)
    if w <= 0 or h <= 0:
        raise DataError("no target selected (the box selection was cancelled or empty)")
    return np.array([x + 1, y + 1, w, h], np.float64)


# Live video goes through OpenCV's MPEG-4 Part 2 encoder, frame by frame to its final path, so that
# an interrupted run keeps what it saw; finished runs of files get H.264 (visualize).
VIDEO_FOURCC = "mp4v"


class _VideoOut:
    """Annotated frames appended straight to ``path`` (``mp4v``), finalised when closed."""

    def __init__(self, path: Path, frame_shape: tuple[int, ...], fps: float) -> None:
        height, width = frame_shape[:2]
        self._pad = (height % 2, width % 2)  # MPEG-4 needs even sides
        size = (width + self._pad[1], height + self._pad[0])
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), fps, size)
        if not self._writer.isOpened():
            raise OSError(f"{path}: OpenCV cannot write {VIDEO_FOURCC} MP4 video here")

    def write(self, annotated: np.ndarray) -> None:
        padded = cv2.copyMakeBorder(annotated, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_CONSTANT, value=0)
        self._writer.write(cv2.cvtColor(padded, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()


@dataclass
class LiveResult:
    """What a live run tracked.

    Attributes:
      name: base name of the outputs.
      boxes: (N, 4) float64 1-indexed ``[x, y, w, h]`` of the tracked frames (the first is the
        initial box), rounded to 4 decimals as in the box file.
      frame_indices: (N,) 0-based index in the source of each tracked frame.
      frames_read: frames decoded from the source.
      dropped: frames decoded but skipped because a newer one arrived first.
      fps: tracked frames per second of tracker time after the first frame (None for one frame).
      interrupted: ended by Ctrl-C (Esc or q in the window end a run normally).
      outputs: written files by kind (``boxes``, ``json``, ``video``).
    """

    name: str
    boxes: np.ndarray
    frame_indices: np.ndarray
    frames_read: int
    dropped: int
    fps: float | None
    interrupted: bool
    outputs: dict[str, Path] = field(default_factory=dict)


class _LiveOutput:
    """Each tracked frame's box line (flushed), annotated video frame and window; a quit key in
    the window ends the frame source."""

    def __init__(self, box_file, video: _VideoOut | None, show: bool, reader: FrameReader) -> None:
        self.box_file, self.video, self.show, self.reader = box_file, video, show, reader
        self.boxes: list[np.ndarray] = []
        self.shown_times: list[float] = []
        self.quit = False

    def __call__(self, result: FrameResult) -> None:
        current = result.boxes[0]
        self.boxes.append(current)
        self.box_file.write(format_boxes(current[None]))
        self.box_file.flush()
        self.shown_times = [*self.shown_times[-_FPS_WINDOW:], time.perf_counter()]
        if self.video is None and not self.show:
            return
        span = self.shown_times[-1] - self.shown_times[0]
        live_fps = (len(self.shown_times) - 1) / span if span > 0 else 0.0
        lines = [f"{live_fps:.1f} fps, {self.reader.dropped} dropped"]
        annotated = draw_tracking(result.frame, current, lines=lines)
        if self.video is not None:
            self.video.write(annotated)
        if self.show:
            cv2.imshow(WINDOW_NAME, cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))
            if cv2.waitKey(1) & 0xFF in _QUIT_KEYS:
                self.quit = True


def _live_frames(
    first: np.ndarray, reader: FrameReader, indices: list[int], output: _LiveOutput
) -> Iterator[np.ndarray]:
    """The first frame, then the reader's until it ends or the user quits; records each frame's
    index in the source in ``indices`` as it is taken."""
    yield first
    while not output.quit:
        item = reader.next_frame()
        if item is None:
            return
        indices.append(item[0])
        yield item[1]


def _live_job(
    tracker: Tracker, first: np.ndarray, box: np.ndarray, reader: FrameReader, indices: list[int],
    output: _LiveOutput, max_frames: int | None,
) -> Job:
    """The loop's job of a live source: its frames from ``first`` on, ``output`` on each."""
    return Job(
        frames=lambda: _live_frames(first, reader, indices, output),
        boxes=box[None],
        hyper=hyper_params(tracker.config),
        frame_size=(first.shape[1], first.shape[0]),
        num_frames=max_frames,
        on_frame=output,
    )


def run_live(
    tracker: Tracker,
    source: str,
    out_dir: str | os.PathLike,
    *,
    box: ArrayLike | None = None,
    show: bool = False,
    save_video: bool = False,
    drop_stale: bool = True,
    max_frames: int | None = None,
    info: Mapping | None = None,
    log: Callable[[str], None] = print,
) -> LiveResult:
    """Track a camera or stream ``source`` until it ends, ``max_frames`` are tracked, or the user stops.

    The frames go through the tracker's host loop (:func:`~siamfc_jax.tracker.loop.track_jobs`)
    with no step in flight and no frame read ahead, so each frame's box is out before the next
    frame is taken and the reader can drop stale ones.

    Args:
      tracker: its weights and config are used.
      source: camera index or URL (see :func:`open_stream`).
      out_dir: existing folder for ``<name>.txt``, ``<name>.json`` and, with ``save_video``,
        ``<name>.mp4``.
      box: initial 1-indexed ``[x, y, w, h]`` in the first frame; None: select it with the mouse.
      show: show a window with the box and the live fps; Esc or q ends the run.
      save_video: write the annotated frames to ``<name>.mp4`` as they are tracked.
      drop_stale: see :class:`FrameReader` (True for live use).
      max_frames: stop after this many tracked frames (the first included), or None.
      info: extra entries for the JSON (device, weights, config).
      log: where the one-line summary of the source goes.

    Raises:
      DataError: the source cannot be opened or yields no frame, or the selection was cancelled.
      ValueError: ``show`` or box selection without a display (the message says which).
    """
    problem = display_problem()
    if problem is not None and (show or box is None):
        raise ValueError(problem)
    name = source_name(source)
    out = Path(out_dir)
    outputs = {"boxes": out / f"{name}.txt", "json": out / f"{name}.json"}
    indices: list[int] = []
    times = np.zeros(0)
    interrupted = False
    video: _VideoOut | None = None
    capture = open_stream(source)
    source_fps = capture.get(cv2.CAP_PROP_FPS)
    reader = FrameReader(capture, drop_stale)
    output = _LiveOutput(None, None, show, reader)
    with reader, open(outputs["boxes"], "w", encoding="utf-8") as box_file:
        try:
            first = reader.next_frame()
            if first is None:
                raise DataError(f"{source}: no frame could be read")
            index, frame = first
            indices.append(index)
            log(f"live: {source}, {frame.shape[1]}x{frame.shape[0]}, tracking (Esc, q or Ctrl-C ends)")
            initial = select_box(frame) if box is None else np.asarray(box, np.float64)
            if save_video:
                outputs["video"] = out / f"{name}.mp4"
                fps = source_fps if 1 <= source_fps <= 240 else 30.0
                video = _VideoOut(outputs["video"], frame.shape, fps)
            output = _LiveOutput(box_file, video, show, reader)
            job = _live_job(tracker, frame, initial, reader, indices, output, max_frames)
            (done,) = track_jobs(tracker.variables, tracker.spec, [job], depth=0, read_ahead=0)
            times, interrupted = done.times[1:], done.interrupted
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if video is not None:
                video.close()
            if show:
                cv2.destroyAllWindows()
    return _finish_live(source, name, output.boxes, indices, times, reader, interrupted, outputs, info)


def _finish_live(
    source: str, name: str, boxes: list[np.ndarray], indices: list[int], times: np.ndarray,
    reader: FrameReader, interrupted: bool, outputs: dict[str, Path], info: Mapping | None,
) -> LiveResult:
    """The :class:`LiveResult` of a run, and its ``<name>.json``."""
    total = float(np.sum(times))
    fps = len(times) / total if len(times) and total > 0 else None
    result = LiveResult(
        name=name,
        boxes=np.array(boxes, np.float64).reshape(-1, 4),
        frame_indices=np.array(indices[: len(boxes)], np.int64),
        frames_read=reader.frames_read,
        dropped=reader.dropped,
        fps=fps,
        interrupted=interrupted,
        outputs=outputs,
    )
    record = {
        "source": source,
        "frames_tracked": len(boxes),
        "frames_read": result.frames_read,
        "frames_dropped": result.dropped,
        "fps": fps,
        "interrupted": interrupted,
        "frame_indices": result.frame_indices.tolist(),
        **(info or {}),
    }
    write_text_atomic(outputs["json"], json.dumps(record, indent=2) + "\n")
    return result


def format_live_result(result: LiveResult) -> str:
    """One line: frames tracked, read and dropped, and the tracker's fps."""
    fps = "n/a" if result.fps is None else f"{result.fps:.2f}"
    return (
        f"{result.name}: {len(result.boxes)} frames tracked, {result.frames_read} read, "
        f"{result.dropped} dropped as stale, {fps} fps"
    )
