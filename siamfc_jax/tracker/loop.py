"""The one host loop of tracking: *jobs* (a frame source and its targets' first boxes) in K slots.

Host code driving :func:`~siamfc_jax.tracker.device.start` and
:func:`~siamfc_jax.tracker.device.step`. :func:`track_jobs` tracks jobs in ``slots`` slots, one
target per slot (several targets of a job share its frames): each step moves every slot one frame
on; when a job ends its slots are free and the next job starts in them. A job that ends by itself
(a live source) gives no frame count.

Frames of different sizes share one padded buffer: each job's frame sits in the top-left corner of
its entry and the rest of the entry holds the job's fill colour (the first frame's mean colour),
which is the colour the crop gives pixels outside the frame, so every crop, and so every box, is
the one tracking the unpadded frame gives. The buffer's size is the largest frame height and width
among the jobs, each rounded up to a multiple of :data:`PAD_MULTIPLE` (64) pixels, so that folders
of similar sizes share compiled programs (and JAX's persistent cache); one job alone is tracked in
its own frame size, unpadded.

Speed: frames are decoded ahead in a thread per job (a small bounded queue; OpenCV releases the
GIL while decoding), and the next step is dispatched before the previous step's boxes are read
back (``depth`` steps in flight; JAX dispatches asynchronously), so decoding, the host's work on
each result and the device's step overlap. Results still come per frame and in order: each job's
``on_frame`` gets every frame's :class:`FrameResult` (boxes rounded to :data:`BOX_DECIMALS`, the
box files' decimals). A frame's seconds are the wall time between the job's successive results
(the steady-state time per frame); the first frame's, that of starting the job. Compilation
happens in an untimed warm-up before the first job starts.

Restarts: ``on_frame`` may return a :class:`Restart` asking to start the job's targets again at a
later frame with new boxes (the VOT protocol re-initialises 5 frames after a failure); the frames
between are delivered as skipped (NaN boxes, no time).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import NamedTuple

import jax
import numpy as np

from siamfc_jax.sequences.frames import DataError
from siamfc_jax.tracker.device import (
    HyperParams,
    TrackerSpec,
    empty_states,
    prepare_variables,
    start,
    step,
)
from siamfc_jax.tracker.host import fill_color

PAD_MULTIPLE = 64
# Decimals of the boxes a job's results hold: those of the box files.
BOX_DECIMALS = 4


class Restart(NamedTuple):
    """A request to start a job's targets again: at the 0-based ``frame`` with ``boxes`` (N, 4),
    1-indexed ``[x, y, w, h]`` in that frame. The frame must not have been dispatched yet: at
    least ``depth + 1`` frames after the one whose result asked for it."""

    frame: int
    boxes: np.ndarray


class FrameResult(NamedTuple):
    """One frame of a job, as its ``on_frame`` gets it.

    Attributes:
      index: the 0-based frame index in the job's source.
      frame: the (H, W, 3) RGB uint8 frame.
      boxes: (N, 4) float64 1-indexed ``[x, y, w, h]``, rounded to :data:`BOX_DECIMALS`; the given
        boxes on a (re)start, NaN on a skipped frame.
      seconds: wall time since the job's previous result (module docstring); 0 when skipped.
      confidence: (N, 2) float64 ``response_peak``, ``windowed_peak``
        (:class:`~siamfc_jax.tracker.device.Confidence`); NaN on (re)started and skipped frames.
    """

    index: int
    frame: np.ndarray
    boxes: np.ndarray
    seconds: float
    confidence: np.ndarray


OnFrame = Callable[[FrameResult], "Restart | None"]


@dataclasses.dataclass(frozen=True, eq=False)
class Job:
    """Targets to track through one frame source.

    Attributes:
      frames: opens the source: an iterator of (H, W, 3) RGB uint8 frames of one size (closed
        when the job ends, if it has ``close``).
      boxes: (N, 4) first boxes, 1-indexed ``[x, y, w, h]`` in frame 0 (checked by the caller).
      hyper: the targets' :class:`~siamfc_jax.tracker.device.HyperParams`.
      frame_size: (width, height) of the frames.
      num_frames: how many frames to track, or None: until the source ends.
      on_frame: gets each frame's :class:`FrameResult`, in order; may return a :class:`Restart`.
      label: names frame i (0-based) in error messages.
    """

    frames: Callable[[], Iterator[np.ndarray]]
    boxes: np.ndarray
    hyper: HyperParams
    frame_size: tuple[int, int]
    num_frames: int | None = None
    on_frame: OnFrame | None = None
    label: Callable[[int], str] = lambda index: f"frame {index + 1}"


@dataclasses.dataclass(frozen=True, eq=False)
class JobResult:
    """A finished job: its index among the jobs given; (T, N, 4) boxes, (T,) seconds and
    (T, N, 2) confidence of the T frames delivered (as in :class:`FrameResult`); and whether
    Ctrl-C ended it."""

    index: int
    boxes: np.ndarray
    times: np.ndarray
    confidence: np.ndarray
    interrupted: bool = False


def padded_size(frame_sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """(height, width) of the frame buffer for frames of ``(width, height)`` sizes (module docstring)."""
    width = max(size[0] for size in frame_sizes)
    height = max(size[1] for size in frame_sizes)
    return tuple(-(-side // PAD_MULTIPLE) * PAD_MULTIPLE for side in (height, width))  # type: ignore[return-value]


_END = object()


class FrameFeed:
    """A job's frames, decoded ``read_ahead`` frames ahead in a thread (0: read when asked).

    :meth:`next` returns the next frame or None at the end, raising what the source raised.
    """

    def __init__(self, job: Job, read_ahead: int) -> None:
        self._source = job.frames()
        self._left = job.num_frames
        self._queue: queue.Queue | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if read_ahead > 0:
            self._queue = queue.Queue(maxsize=read_ahead)
            self._thread = threading.Thread(target=self._read_all, name="siamfc-frame-feed", daemon=True)
            self._thread.start()

    def _read_one(self) -> object:
        if self._left is not None:
            if self._left <= 0:
                return _END
            self._left -= 1
        return next(self._source, _END)

    def _put(self, item: tuple[str, object]) -> None:
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def _read_all(self) -> None:
        try:
            while not self._stopping.is_set():
                frame = self._read_one()
                self._put(("frame", frame))
                if frame is _END:
                    break
        except BaseException as error:  # handed to the loop's thread, which raises it
            self._put(("error", error))
        finally:
            self._close_source()

    def _close_source(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def next(self) -> np.ndarray | None:
        if self._queue is None:
            frame = self._read_one()
        else:
            kind, frame = self._queue.get()
            if kind == "error":
                raise frame
        return None if frame is _END else frame

    def close(self) -> None:
        """Stop reading and close the source (waits for the thread)."""
        if self._thread is None:
            self._close_source()
            return
        self._stopping.set()
        self._thread.join()


@dataclasses.dataclass(eq=False)
class _Running:
    """A job in its slots: where it stands and what it delivered."""

    index: int
    job: Job
    slots: list[int]
    entry: int
    feed: FrameFeed
    shape: tuple[int, ...] | None = None
    fill: np.ndarray | None = None
    generation: int = 0
    next_frame: int = 0
    ended: bool = False
    released: bool = False
    restart: Restart | None = None
    skip_until: int = -1
    in_flight: int = 0
    last_result: float = 0.0
    first: _Action | None = None
    boxes: list = dataclasses.field(default_factory=list)
    times: list = dataclasses.field(default_factory=list)
    confidence: list = dataclasses.field(default_factory=list)

    def result(self, interrupted: bool = False) -> JobResult:
        targets = len(self.job.boxes)
        return JobResult(
            self.index,
            np.array(self.boxes, np.float64).reshape(-1, targets, 4),
            np.array(self.times, np.float64),
            np.array(self.confidence, np.float64).reshape(-1, targets, 2),
            interrupted,
        )


class _Action(NamedTuple):
    """What one step record holds for a job's frame: ``kind`` is "step", "start" or "skip"."""

    running: _Running
    index: int
    frame: np.ndarray
    kind: str
    boxes: np.ndarray | None = None
    seconds: float = 0.0


class _Slots:
    """The device side of a run: the K slots' states, the frame buffers and the per-slot arrays."""

    def __init__(self, variables: dict, spec: TrackerSpec, jobs: list[Job], slots: int, depth: int) -> None:
        self.variables, self.spec = variables, spec
        targets = [len(job.boxes) for job in jobs]
        if max(targets) > slots and len(jobs) > 1:
            raise ValueError(f"a job of {max(targets)} targets needs at least that many slots, got {slots}")
        # One job alone: its frames go to the device as they are, in no buffer.
        self.unpadded = len(jobs) == 1
        self.num_slots = max(targets) if self.unpadded else slots
        self.num_frames = 1 if self.unpadded else self.num_slots
        if self.unpadded:
            self.height, self.width = jobs[0].frame_size[1], jobs[0].frame_size[0]
        else:
            self.height, self.width = padded_size([job.frame_size for job in jobs])
        shape = (self.num_frames, self.height, self.width, 3)
        # Each step reads its own buffer: one the device may still read is never written.
        self.buffers = [np.zeros(shape, np.uint8) for _ in range(depth + 2)]
        self.painted: list[list[tuple[int, int] | None]] = [[None] * self.num_frames for _ in self.buffers]
        self.turn = 0
        self.frame_of_slot = np.zeros(self.num_slots, np.int32)
        self.hyper = jax.tree.map(lambda leaf: np.stack([leaf] * self.num_slots), jobs[0].hyper)
        self.device_args: tuple | None = None
        self.states = empty_states(self.num_slots, spec)

    def warm_up(self) -> None:
        """Compile :func:`start` and :func:`step` for this run's shapes (on unused slot 0)."""
        box = np.array([1, 1, 2, 2], np.float32)
        self.states = start(
            self.variables, self.states, *jax.device_put((np.int32(0), self.buffers[0][0], box)),
            *jax.device_put((np.zeros(3, np.float32), np.ones(2, np.float32))), spec=self.spec,
        )
        self.states, boxes, _ = step(
            self.variables, self.states, jax.device_put(self.buffers[0]), *self._per_slot(), spec=self.spec
        )
        jax.block_until_ready(boxes)

    def assign(self, running: _Running) -> None:
        """Point the job's slots at its frame entry and its hyper-parameters."""
        for slot in running.slots:
            self.frame_of_slot[slot] = running.entry
            for field, value in enumerate(running.job.hyper):
                self.hyper[field][slot] = value
        self.device_args = None

    def _per_slot(self) -> tuple:
        if self.device_args is None:
            self.device_args = jax.device_put((self.frame_of_slot, self.hyper))
        return self.device_args

    def start(self, running: _Running, frame: np.ndarray, boxes: np.ndarray) -> None:
        """Start the job's slots on ``frame`` with ``boxes`` (N, 4)."""
        running.fill = fill_color(frame)
        running.generation += 1
        padded = np.full((self.height, self.width, 3), running.fill.astype(np.uint8))
        padded[: frame.shape[0], : frame.shape[1]] = frame
        image, fill, frame_hw = jax.device_put(
            (padded, running.fill, np.asarray(frame.shape[:2], np.float32))
        )
        for slot, box in zip(running.slots, boxes, strict=True):
            slot_index, box = jax.device_put((np.int32(slot), np.asarray(box, np.float32)))
            self.states = start(
                self.variables, self.states, slot_index, image, box, fill, frame_hw, spec=self.spec
            )

    def place(self, running: _Running, frame: np.ndarray) -> None:
        """Put the job's frame in its entry of the next step's buffer, the rest in its fill colour."""
        buffer, painted = self.buffers[self.turn], self.painted[self.turn]
        owner = (id(running), running.generation)
        if painted[running.entry] != owner:
            buffer[running.entry] = running.fill.astype(np.uint8)  # a whole grey level already
            painted[running.entry] = owner
        buffer[running.entry, : frame.shape[0], : frame.shape[1]] = frame

    def step(self, only: np.ndarray | None) -> tuple[jax.Array, jax.Array]:
        """Dispatch one step of every slot on the buffer (or on ``only``, one job's unpadded
        (1, H, W, 3) frame); returns the (K, 4) boxes and the confidence, not yet read back."""
        frames = self.buffers[self.turn] if only is None else only
        self.turn = (self.turn + 1) % len(self.buffers)
        self.states, boxes, confidence = step(
            self.variables, self.states, jax.device_put(frames), *self._per_slot(), spec=self.spec
        )
        return boxes, confidence


def check_frame(job: Job, index: int, frame: np.ndarray, first: tuple[int, ...]) -> None:
    """Refuse frame ``index`` of ``job`` when its shape differs from the ``first`` frame's: the
    state is in the first frame's pixels.

    Raises:
      DataError: naming the frame (``job.label``) and both sizes.
    """
    if frame.shape != first:
        raise DataError(
            f"{job.label(index)}: the frame is {frame.shape[1]}x{frame.shape[0]}, frame 1 is "
            f"{first[1]}x{first[0]}; a sequence must keep one frame size"
        )


def _check_fits(job: Job, frame: np.ndarray, limit: tuple[int, int]) -> None:
    """Refuse a first frame larger than the (height, width) ``limit`` its job's size gave."""
    if frame.shape[0] > limit[0] or frame.shape[1] > limit[1]:
        raise DataError(
            f"{job.label(0)}: the frame is {frame.shape[1]}x{frame.shape[0]}, larger than the "
            f"{limit[1]}x{limit[0]} its job declared"
        )


def _advance(device: _Slots, running: _Running) -> _Action | None:
    """Read the job's next frame and say what to do with it; None when the job has ended."""
    index = running.next_frame
    frame = running.feed.next()
    if frame is None:
        running.ended = True
        running.feed.close()
        return None
    check_frame(running.job, index, frame, running.shape)
    running.next_frame += 1
    restart = running.restart
    if restart is not None and index == restart.frame:
        running.restart = None
        return _Action(running, index, frame, "start", restart.boxes)
    if index < running.skip_until:
        return _Action(running, index, frame, "skip")
    if not device.unpadded:
        device.place(running, frame)
    return _Action(running, index, frame, "step")


def _admit(device: _Slots, index: int, job: Job, free: list[int], read_ahead: int) -> _Running:
    """Start ``job`` in slots taken from ``free`` on its first frame (the action in ``first``)."""
    slots = [free.pop(0) for _ in job.boxes]
    entry = slots[0] if device.num_frames > 1 else 0
    running = _Running(index, job, slots, entry, FrameFeed(job, read_ahead))
    frame = running.feed.next()
    if frame is None:
        running.feed.close()
        raise DataError(f"{job.label(0)}: no frame could be read")
    limit = (job.frame_size[1], job.frame_size[0]) if device.unpadded else (device.height, device.width)
    _check_fits(job, frame, limit)
    running.shape = frame.shape
    running.next_frame = 1
    device.assign(running)
    started = time.perf_counter()
    device.start(running, frame, job.boxes)
    jax.block_until_ready(device.states.center)
    running.first = _Action(running, 0, frame, "start", job.boxes, time.perf_counter() - started)
    return running


def _frame_result(action: _Action, boxes: np.ndarray | None, confidence, now: float) -> FrameResult:
    """The :class:`FrameResult` of one action, from the step's (K, 4) boxes and confidence."""
    running = action.running
    targets = len(running.job.boxes)
    no_confidence = np.full((targets, 2), np.nan)
    seconds = now - running.last_result
    if action.kind == "start":
        rounded = np.round(np.asarray(action.boxes, np.float64), BOX_DECIMALS)
        if action.index == 0:
            seconds = action.seconds
        return FrameResult(action.index, action.frame, rounded, seconds, no_confidence)
    if action.kind == "skip" or action.index < running.skip_until:
        return FrameResult(action.index, action.frame, np.full((targets, 4), np.nan), 0.0, no_confidence)
    slots = running.slots
    peaks = np.stack([confidence.response_peak[slots], confidence.windowed_peak[slots]], axis=1)
    rounded = np.round(boxes[slots].astype(np.float64), BOX_DECIMALS)
    return FrameResult(action.index, action.frame, rounded, seconds, peaks.astype(np.float64))


def _check_restart(running: _Running, index: int, restart: Restart) -> Restart:
    boxes = np.asarray(restart.boxes, np.float64).reshape(len(running.job.boxes), 4)
    total = running.job.num_frames
    if restart.frame < running.next_frame or running.ended or (total is not None and restart.frame >= total):
        raise ValueError(
            f"restart at frame {restart.frame} asked on frame {index}: it must come after the "
            f"frames already dispatched (up to {running.next_frame - 1}) and before the job's end"
        )
    return Restart(restart.frame, boxes)


def _deliver(record: tuple) -> None:
    """Read one step's boxes back and hand every frame of the record to its job's ``on_frame``."""
    arrays, actions = record
    boxes = confidence = None
    if arrays is not None:
        boxes, confidence = jax.device_get(arrays)
    now = time.perf_counter()
    for action in actions:
        running = action.running
        result = _frame_result(action, boxes, confidence, now)
        running.last_result = now
        running.in_flight -= 1
        running.boxes.append(result.boxes)
        running.times.append(result.seconds)
        running.confidence.append(result.confidence)
        if running.job.on_frame is not None:
            restart = running.job.on_frame(result)
            if restart is not None:
                running.restart = _check_restart(running, action.index, restart)
                running.skip_until = running.restart.frame


def track_jobs(
    variables: dict,
    spec: TrackerSpec,
    jobs: list[Job],
    *,
    slots: int = 1,
    depth: int = 1,
    read_ahead: int = 4,
    warm_up: bool = True,
) -> Iterator[JobResult]:
    """Track ``jobs`` in ``slots`` slots; yields each job's result when it ends (not in order).

    Ctrl-C ends the run: the jobs in their slots are yielded with what they delivered, marked
    ``interrupted``, and the jobs not started are dropped.

    Args:
      variables: device-resident ``{"params", "batch_stats"}`` (prepared here for ``spec``).
      spec: the :class:`~siamfc_jax.tracker.device.TrackerSpec` (each job brings its traced
        hyper-parameters).
      jobs: what to track (module docstring).
      slots: how many targets move together (K); one job alone takes one slot per target.
      depth: steps dispatched before the oldest one's boxes are read back (0 for live input, so
        that each frame's box comes before the next frame is taken).
      read_ahead: frames decoded ahead per job in its thread (0: decoded when needed, in this
        thread, e.g. for a source that already reads in its own thread).
      warm_up: compile (and run once on unused slots) before timing the first frame; False when
        the programs for these shapes are known to be compiled (benchmarks).

    Raises:
      DataError: a frame cannot be decoded, or changes size within a job.
      ValueError: ``slots``, ``depth`` or ``read_ahead`` out of range, or a :class:`Restart` at a
        frame already dispatched.
    """
    jobs = list(jobs)
    if not jobs:
        return
    if slots < 1 or depth < 0 or read_ahead < 0:
        raise ValueError(f"need slots >= 1, depth >= 0, read_ahead >= 0; got {slots}, {depth}, {read_ahead}")
    device = _Slots(prepare_variables(variables, spec), spec, jobs, slots, depth)
    if warm_up:
        device.warm_up()
    pending = deque(enumerate(jobs))
    free = list(range(device.num_slots))
    running: list[_Running] = []
    records: deque[tuple] = deque()
    try:
        while pending or running:
            advanced = [_advance(device, job) for job in running if not job.ended]
            actions = [action for action in advanced if action is not None]
            for job in running:
                if job.ended and not job.released:
                    free.extend(job.slots)
                    job.released = True
            stepped = [action for action in actions if action.kind == "step"]
            arrays = None
            if stepped:
                arrays = device.step(stepped[0].frame[None] if device.unpadded else None)
            for action in actions:
                if action.kind == "start":
                    device.start(action.running, action.frame, action.boxes)
            while pending and len(free) >= len(pending[0][1].boxes):
                index, job = pending.popleft()
                running.append(_admit(device, index, job, free, read_ahead))
                actions.append(running[-1].first)
            for action in actions:
                action.running.in_flight += 1
            records.append((arrays, actions))
            more = bool(pending) or any(not job.ended for job in running)
            while records and (len(records) > depth or not more):
                _deliver(records.popleft())
                for job in [job for job in running if job.ended and job.in_flight == 0]:
                    running.remove(job)
                    yield job.result()
    except KeyboardInterrupt:
        for job in running:
            yield job.result(interrupted=True)
    finally:
        for job in running:
            if not job.ended:
                job.feed.close()
