"""Curation of training data: every annotated frame becomes one crop centred on its target.

Host code (NumPy/OpenCV). SiamFC trains on pairs of crops, each centred on the target and holding
``context`` of margin around it. siamfc-pytorch cuts these crops from the full frames for every pair it
draws; here each annotated frame is cropped once, at the search-image size (255 x 255), and stored with
its box in crop coordinates and whether the frame passes siamfc-pytorch's frame filter. Pairs are then
made from the stored crops alone (:mod:`siamfc_jax.pipeline.pairs`).

Crop geometry (siamfc-pytorch's ``SiamFCTransforms._crop``, in float32 like its code): the box
``[x, y, w, h]`` (1-indexed) has 0-indexed centre ``[y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2]``;
``context = config.context * (w + h)``; the crop covers a square of side
``sqrt((w + context) * (h + context)) * instance_sz / exemplar_sz`` frame pixels, parts outside the
frame filled with the frame's mean colour, resized to ``instance_sz`` pixels.

Deliberate difference: siamfc-pytorch draws the resize interpolation at random per crop from
{linear, cubic, area, nearest, Lanczos-4}; curation uses :data:`CURATION_INTERPOLATION` (bilinear),
the interpolation the tracker crops its search images with at inference, so the network trains on the
resampling it is tested on. (Area averaging would alias less when shrinking large targets, but it is
not what the tracker feeds the network.) The random interpolation survives in the random stretch that
augments every crop (:mod:`siamfc_jax.pipeline.transforms`).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike

from siamfc_jax.config import PairConfig
from siamfc_jax.pipeline.crops import crop_and_resize, crop_window
from siamfc_jax.runtime import available_cores
from siamfc_jax.sequences.datasets import SequenceDataset
from siamfc_jax.sequences.frames import DataError, average_color
from siamfc_jax.sequences.sequence import Sequence

CURATION_INTERPOLATION = cv2.INTER_LINEAR

# siamfc-pytorch's frame filter (``Pair._filter``): box size limits in pixels and relative to the frame.
MIN_AREA = 20.0
MIN_SIDE = 20.0
MAX_SIDE = 500.0
MIN_RELATIVE_SIDE = 0.01
MAX_RELATIVE_SIDE = 0.5
MIN_ASPECT = 0.25
MAX_ASPECT = 4.0
MIN_COVER_FRACTION = 0.3



def crop_geometry(box: ArrayLike, config: PairConfig = PairConfig()) -> tuple[np.ndarray, float]:
    """Centre and side of the square that siamfc-pytorch crops around a box.

    Args:
        box: ``[x, y, w, h]`` in 1-indexed frame pixels.
        config: ``context``, ``exemplar_sz`` and ``instance_sz`` set the margin and scale.

    Returns:
        ``(center_yx, size)``: (2,) float32 0-indexed centre ``[y, x]`` and the side in frame pixels
        (float32 arithmetic, as siamfc-pytorch computes it).
    """
    x, y, w, h = np.asarray(box, dtype=np.float32)
    one, two = np.float32(1), np.float32(2)
    center_yx = np.array([y - one + (h - one) / two, x - one + (w - one) / two], dtype=np.float32)
    context = np.float32(config.context) * (w + h)
    size = np.sqrt((h + context) * (w + context)) * np.float32(config.instance_sz / config.exemplar_sz)
    return center_yx, float(size)


def box_in_crop(box: ArrayLike, window: tuple[int, int, int], out_size: int) -> np.ndarray:
    """Map a frame box into the resized crop of ``window``.

    Args:
        box: ``[x, y, w, h]`` in 1-indexed frame pixels.
        window: ``(top, left, side)`` from :func:`~siamfc_jax.pipeline.crops.crop_window`.
        out_size: side of the resized crop in pixels.

    Returns:
        (4,) float32 ``[x, y, w, h]`` in 1-indexed crop pixels. A box spans ``[x - 1, x - 1 + w)`` in
        continuous coordinates where pixel ``c`` covers ``[c, c + 1)``; the resize maps frame
        coordinate ``u`` to ``(u - left) * out_size / side`` (OpenCV's pixel-area convention).
    """
    x, y, w, h = np.asarray(box, dtype=np.float64)
    top, left, side = window
    scale = out_size / side
    return np.array(
        [(x - 1 - left) * scale + 1, (y - 1 - top) * scale + 1, w * scale, h * scale],
        dtype=np.float32,
    )


@dataclass(frozen=True)
class CuratedFrame:
    """One frame's crop.

    Attributes:
        crop: (instance_sz, instance_sz, 3) RGB uint8 centred on the target.
        box: (4,) float32 target box ``[x, y, w, h]`` in 1-indexed crop pixels.
        window: ``(top, left, side)`` of the square cut from the frame (0-indexed frame pixels; it may
            extend past the frame, where the crop holds the frame's mean colour).
    """

    crop: np.ndarray
    box: np.ndarray
    window: tuple[int, int, int]


def can_crop(box: ArrayLike) -> bool:
    """Whether a box defines a crop: finite, with positive width and height (absent targets do not)."""
    values = np.asarray(box, dtype=np.float64)
    return bool(np.all(np.isfinite(values)) and values[2] > 0 and values[3] > 0)


def curate_frame(
    frame: np.ndarray,
    box: ArrayLike,
    config: PairConfig = PairConfig(),
    interpolation: int = CURATION_INTERPOLATION,
) -> CuratedFrame:
    """Crop a frame around its target box as siamfc-pytorch does for training (module docstring).

    Args:
        frame: (H, W, 3) RGB uint8.
        box: ``[x, y, w, h]`` in 1-indexed frame pixels, finite with ``w, h > 0``.
        config: crop margin and sizes (``context``, ``exemplar_sz``, ``instance_sz``).
        interpolation: OpenCV resize flag (siamfc-pytorch's on-the-fly path draws it at random).

    Returns:
        The crop, the box in crop coordinates and the cut window.

    Raises:
        ValueError: the box is not finite or has no area.
    """
    if not can_crop(box):
        raise ValueError(f"box {list(np.asarray(box, np.float64))} is not finite or has no area")
    center_yx, size = crop_geometry(box, config)
    crop = crop_and_resize(
        frame, center_yx, size, config.instance_sz, average_color(frame), interpolation=interpolation
    )
    window = crop_window(center_yx, size)
    return CuratedFrame(crop=crop, box=box_in_crop(box, window, config.instance_sz), window=window)


def frame_filter(
    boxes: ArrayLike,
    frame_size: tuple[int, int],
    cover: ArrayLike | None = None,
    min_side: float = MIN_SIDE,
) -> np.ndarray:
    """Which frames siamfc-pytorch trains on (its ``Pair._filter``).

    A frame passes when its box has area >= 20, width and height in [``min_side`` (20), 500] pixels and in
    [1 %, 50 %] of the frame's, ``0.25 <= w / max(1, h) <= 4``, and, with GOT-10k cover labels ``c``
    (visible fraction in eighths), ``c > max(1, 0.3 * max(c))``. Boxes with NaN fail.

    Args:
        boxes: (N, 4) ``[x, y, w, h]`` in pixels.
        frame_size: ``(width, height)`` of the sequence's first frame in pixels.
        cover: (N,) cover labels 0..8, or None (no visibility criterion).
        min_side: smallest width and height in pixels (:attr:`PairConfig.min_target_side`).

    Returns:
        (N,) bool, True where the frame may be used.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = boxes[:, 2:]
    relative = sizes / np.asarray(frame_size, dtype=np.float64)
    aspect = sizes[:, 0] / np.maximum(1.0, sizes[:, 1])
    with np.errstate(invalid="ignore"):  # NaN boxes compare False, which rejects them
        keep = sizes[:, 0] * sizes[:, 1] >= MIN_AREA
        keep &= np.all(sizes >= min_side, axis=1) & np.all(sizes <= MAX_SIDE, axis=1)
        keep &= np.all(relative >= MIN_RELATIVE_SIDE, axis=1)
        keep &= np.all(relative <= MAX_RELATIVE_SIDE, axis=1)
        keep &= (aspect >= MIN_ASPECT) & (aspect <= MAX_ASPECT)
    if cover is not None:
        cover = np.asarray(cover, dtype=np.float64).reshape(-1)
        if len(cover) != len(boxes):
            raise ValueError(f"{len(cover)} cover labels for {len(boxes)} boxes")
        if len(cover):
            keep &= cover > max(1.0, MIN_COVER_FRACTION * cover.max())
    return keep


def annotated_boxes(sequence: Sequence) -> np.ndarray:
    """The per-frame boxes of a training sequence, checked against its frames.

    Returns:
        (N, 4) float64 boxes, one per frame.

    Raises:
        DataError: no per-frame ground truth, or not one box per frame (the message names the
            annotation file).
    """
    where = sequence.source or sequence.name
    if sequence.boxes is None:
        raise DataError(f"{where}: no per-frame ground truth, cannot train on it")
    if sequence.video is not None:
        raise DataError(f"{where}: training sequences must be image files, not a video")
    if len(sequence.boxes) != len(sequence.frames):
        raise DataError(
            f"{sequence.annotation}: {len(sequence.boxes)} ground-truth boxes for "
            f"{len(sequence.frames)} frames in {where}"
        )
    return sequence.boxes


def valid_frames(
    sequence: Sequence, frame_size: tuple[int, int], min_side: float = MIN_SIDE
) -> np.ndarray:
    """Sorted 0-based indices of the frames of ``sequence`` that pass :func:`frame_filter`."""
    boxes = annotated_boxes(sequence)
    return np.flatnonzero(frame_filter(boxes, frame_size, sequence.cover, min_side))


@dataclass(frozen=True)
class CuratedSequence:
    """All croppable frames of one sequence.

    Attributes:
        name: sequence name.
        frames: (M,) int64 0-based indices of the frames with a finite, non-empty box (the others have
            no target to crop), ascending.
        valid: (M,) bool, the frame filter's verdict for those frames.
        crops: M JPEG-encoded crops (bytes), RGB content, ``instance_sz`` square.
        boxes: (M, 4) float32 boxes in 1-indexed crop pixels.
        frame_boxes: (M, 4) float64 boxes in 1-indexed frame pixels (as annotated).
    """

    name: str
    frames: np.ndarray
    valid: np.ndarray
    crops: list[bytes]
    boxes: np.ndarray
    frame_boxes: np.ndarray


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an (H, W, 3) RGB uint8 image (OpenCV's encoder, quality 1..100)."""
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise ValueError(f"OpenCV could not JPEG-encode an image of shape {image.shape}")
    return encoded.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode JPEG bytes to (H, W, 3) RGB uint8 (OpenCV's decoder, as frames are read).

    libjpeg-turbo writes RGB directly: the same pixels as a BGR decode followed by a channel swap,
    without the extra pass and copy.
    """
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise ValueError(f"{len(data)} bytes cannot be decoded as an image")
    return image


def curate_sequence(
    sequence: Sequence, config: PairConfig = PairConfig(), jpeg_quality: int = 95
) -> CuratedSequence:
    """Decode every frame of ``sequence`` once and curate those with a target box.

    The filter uses the first frame's size, as siamfc-pytorch does.

    Raises:
        DataError: the sequence has no per-frame ground truth, a box count other than its frame count,
            or a frame that cannot be decoded (the message names the file).
    """
    boxes = annotated_boxes(sequence)
    frames, crops, crop_boxes = [], [], []
    valid = np.zeros(0, dtype=bool)
    for index, frame in enumerate(sequence.iter_frames()):
        if index == 0:
            height, width = frame.shape[:2]
            valid = frame_filter(boxes, (width, height), sequence.cover, config.min_target_side)
        if not can_crop(boxes[index]):
            continue
        curated = curate_frame(frame, boxes[index], config)
        frames.append(index)
        crops.append(encode_jpeg(curated.crop, jpeg_quality))
        crop_boxes.append(curated.box)
    frames_array = np.array(frames, dtype=np.int64)
    return CuratedSequence(
        name=sequence.name,
        frames=frames_array,
        valid=valid[frames_array] if len(frames_array) else np.zeros(0, dtype=bool),
        crops=crops,
        boxes=np.array(crop_boxes, dtype=np.float32).reshape(-1, 4),
        frame_boxes=boxes[frames_array].reshape(-1, 4),
    )


def runs(indices: ArrayLike) -> list[list[int]]:
    """Compress ascending integers into ``[start, stop)`` runs: ``[0, 1, 2, 5] -> [[0, 3], [5, 6]]``."""
    values = np.asarray(indices, dtype=np.int64)
    if len(values) == 0:
        return []
    breaks = np.flatnonzero(np.diff(values) != 1) + 1
    starts = values[np.concatenate([[0], breaks])]
    stops = values[np.concatenate([breaks - 1, [len(values) - 1]])] + 1
    return [[int(a), int(b)] for a, b in zip(starts, stops, strict=True)]


def expand_runs(pairs: list[list[int]]) -> np.ndarray:
    """Inverse of :func:`runs`: (N,) int64 ascending integers."""
    if not pairs:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in pairs])


# Sequences being curated per worker process at a time, bounding the crops waiting in memory.
_QUEUED_PER_WORKER = 2
_worker_job: tuple[SequenceDataset, PairConfig, int] | None = None


def _init_worker(dataset: SequenceDataset, config: PairConfig, jpeg_quality: int) -> None:
    global _worker_job
    _worker_job = (dataset, config, jpeg_quality)
    # One process per core already: OpenCV's own threads would only oversubscribe the cores.
    cv2.setNumThreads(1)
    # Ctrl-C reaches the whole process group; the parent decides what stops, and stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _curate_in_worker(index: int) -> CuratedSequence:
    assert _worker_job is not None, "_init_worker runs first in every worker"
    dataset, config, jpeg_quality = _worker_job
    return curate_sequence(dataset[index], config, jpeg_quality)


def curate_dataset(
    dataset: SequenceDataset,
    config: PairConfig = PairConfig(),
    jpeg_quality: int = 95,
    workers: int | None = None,
    progress: bool = True,
) -> Iterator[tuple[int, CuratedSequence]]:
    """Curate every sequence of a dataset, in parallel processes, yielding them in dataset order.

    Args:
        dataset: annotated image sequences.
        config: crop geometry.
        jpeg_quality: JPEG quality (1..100) of the stored crops.
        workers: processes (default: the available cores); 1 curates in this process.
        progress: show a tqdm progress bar (sequences) on stderr.

    Yields:
        ``(index, curated)`` for index ``0 .. len(dataset) - 1``.

    Raises:
        DataError: a sequence cannot be curated (see :func:`curate_sequence`).
    """
    from tqdm import tqdm

    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    count = len(dataset)
    workers = min(workers or available_cores(), max(count, 1))
    with tqdm(total=count, desc="curating sequences", unit="seq", disable=not progress) as bar:
        if workers == 1:
            for index in range(count):
                yield index, curate_sequence(dataset[index], config, jpeg_quality)
                bar.update()
            return
        # spawn, not fork: the caller may be a multi-threaded (JAX, TFDS) process.
        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(dataset, config, jpeg_quality),
        )
        try:
            queued: deque[Future[CuratedSequence]] = deque()
            for index in range(count):
                queued.append(pool.submit(_curate_in_worker, index))
                if len(queued) >= _QUEUED_PER_WORKER * workers:
                    yield index - len(queued) + 1, queued.popleft().result()
                    bar.update()
            while queued:
                yield count - len(queued), queued.popleft().result()
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
