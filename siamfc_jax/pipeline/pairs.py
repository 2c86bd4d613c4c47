"""Training pairs: which two frames of which sequence, their crops, augmented (host code).

A :class:`CropSource` gives, per sequence, the frames that pass the frame filter and a target-centred
``instance_sz`` crop of any of them. Two sources share that interface:

- :class:`CuratedCrops` reads the crops curated once by the ``siamfc_crops`` TFDS dataset
  (:mod:`siamfc_jax.pipeline.tfds_builder`): two rows of the split's decoded crop store where it has
  one (:mod:`siamfc_jax.pipeline.crop_store`: no decode, no record read), else two random record
  reads and two 255 x 255 JPEG decodes, the same pixels either way;
- :class:`FrameCrops` is siamfc-pytorch's on-the-fly path: it decodes the two full frames and crops
  them with an interpolation drawn at random, needing no preparation.

:class:`PairSampler` turns a source into pairs the way siamfc-pytorch's ``Pair`` dataset does: an epoch
visits every sequence ``pairs_per_seq`` times in a random order; a sequence with fewer than 2 valid
frames is replaced by a uniformly drawn other one (siamfc-pytorch redraws until it finds a usable
sequence, which amounts to the same distribution); the two frames come from :func:`sample_frame_pair`;
the crops are augmented by :func:`siamfc_jax.pipeline.transforms.augment_pair`.

Determinism: every random draw of pair ``index`` of ``epoch`` comes from a generator seeded with
``(seed, epoch, index)``, and the epoch's order from one seeded with ``(seed, epoch)``, so a pair does
not depend on which worker makes it, on how many there are, or on the other pairs.
"""

from __future__ import annotations

import abc
import copy
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from siamfc_jax.config import PairConfig
from siamfc_jax.pipeline.crop_store import CropStore
from siamfc_jax.pipeline.crops import crop_and_resize
from siamfc_jax.pipeline.curate import (
    crop_geometry,
    decode_jpeg,
    expand_runs,
    valid_frames,
)
from siamfc_jax.pipeline.transforms import INTERPOLATIONS, augment_pair
from siamfc_jax.sequences.datasets import SequenceDataset
from siamfc_jax.sequences.frames import DataError, average_color, read_image
from siamfc_jax.sequences.sequence import Sequence

# Version of the curated dataset's metadata layout that this module reads.
CURATION_FORMAT = 1
# siamfc-pytorch's pair sampling: tries to find two frames less than max_frame_gap apart.
FRAME_PAIR_TRIES = 100
# Redraws of a sequence with fewer than 2 valid frames before giving up (siamfc-pytorch recurses
# without bound; a dataset where this many draws fail is almost entirely unusable).
SEQUENCE_REDRAWS = 1000
# EXIF orientations (5..8) under which OpenCV's decoder swaps the stored width and height.
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION = 0x0112


def pair_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of every random draw of pair ``index`` in ``epoch``."""
    return np.random.default_rng([seed, epoch, 1, index])


def epoch_order(num_sequences: int, pairs_per_seq: int, seed: int, epoch: int) -> np.ndarray:
    """(num_sequences * pairs_per_seq,) int64 sequence index of each pair of an epoch.

    Each sequence appears ``pairs_per_seq`` times, in a random order drawn from ``(seed, epoch)``.
    """
    rng = np.random.default_rng([seed, epoch, 0])
    return rng.permutation(num_sequences * pairs_per_seq) % num_sequences


def sample_frame_pair(
    frames: np.ndarray, rng: np.random.Generator, max_gap: int = 100
) -> tuple[int, int]:
    """Exemplar and search frame indices from a sequence's valid frames (siamfc-pytorch's rule).

    One frame: it twice. Two: both, in order. More: up to 100 draws of two distinct frames (sorted,
    so the exemplar is the earlier one) until they are less than ``max_gap`` frames apart; if none is,
    one frame drawn at random, twice.

    Args:
        frames: (N,) ascending 0-based frame indices, N >= 1.
        rng: random source.
        max_gap: the search frame is less than this many frames after the exemplar frame.

    Returns:
        ``(exemplar_frame, search_frame)``.
    """
    count = len(frames)
    if count == 0:
        raise ValueError("no valid frame to sample a pair from")
    if count == 1:
        return int(frames[0]), int(frames[0])
    if count == 2:
        return int(frames[0]), int(frames[1])
    for _ in range(FRAME_PAIR_TRIES):
        exemplar, search = np.sort(rng.choice(frames, 2, replace=False))
        if search - exemplar < max_gap:
            return int(exemplar), int(search)
    frame = int(rng.choice(frames))
    return frame, frame


class SequenceCrops(abc.ABC):
    """One sequence as a source of training crops.

    Attributes:
        valid_frames: (N,) int64 ascending 0-based indices of the frames that pass the frame filter.
    """

    valid_frames: np.ndarray

    @abc.abstractmethod
    def crop(self, frame: int, rng: np.random.Generator) -> np.ndarray:
        """(instance_sz, instance_sz, 3) RGB uint8 crop of ``frame`` centred on its target."""


class CropSource(abc.ABC):
    """Sequences from which training pairs are made (random access, picklable for worker processes)."""

    @property
    @abc.abstractmethod
    def num_sequences(self) -> int:
        """Number of sequences."""

    @abc.abstractmethod
    def sequence(self, index: int) -> SequenceCrops:
        """Sequence ``index`` (0 <= index < num_sequences)."""


class _CuratedSequence(SequenceCrops):
    def __init__(
        self,
        records: Any,
        first_record: int,
        stored_frames: np.ndarray,
        valid: np.ndarray,
        store: CropStore | None,
    ):
        self._records = records
        self._first_record = first_record
        self._stored_frames = stored_frames
        self.valid_frames = valid
        self._store = store

    def crop(self, frame: int, rng: np.random.Generator) -> np.ndarray:
        position = int(np.searchsorted(self._stored_frames, frame))
        if position == len(self._stored_frames) or self._stored_frames[position] != frame:
            raise IndexError(f"frame {frame} has no curated crop")
        record = self._first_record + position
        if self._store is not None:
            # The record's index follows from the metadata: the record itself is not read.
            return self._store[record]
        return decode_jpeg(self._records[record]["crop"])


class CuratedCrops(CropSource):
    """Crops of a prepared ``siamfc_crops`` split: random access to one record per curated frame.

    A crop is the JPEG of its record, decoded; or, with a store (:meth:`with_store`), the store's row
    of that record's index, which the metadata gives without reading the record.

    Args:
        records: the split's random-access data source (``builder.as_data_source(split)``): record
            ``i`` is a dict with ``crop`` (JPEG bytes), ``sequence`` and ``frame``.
        metadata: the dataset's metadata (``builder.info.metadata``), which lists per sequence its
            curated frames and valid frames; records are stored sequence by sequence, frames ascending.
        split: the split's name in ``metadata``.
        config: must have the crop geometry the dataset was curated with.

    Raises:
        DataError: the metadata is missing or of another format, its geometry differs from
            ``config``'s, or it does not match the records.
    """

    def __init__(
        self,
        records: Any,
        metadata: Mapping[str, Any],
        split: str = "train",
        config: PairConfig = PairConfig(),
    ) -> None:
        curation = metadata.get("curation")
        if not curation or curation.get("format") != CURATION_FORMAT:
            raise DataError(
                f"dataset metadata has no curation record of format {CURATION_FORMAT}: not a "
                "siamfc_crops dataset written by this version"
            )
        # Datasets curated before min_target_side existed used siamfc-pytorch's 20 px.
        curated = {"min_target_side": PairConfig().min_target_side, **curation}
        for name in ("exemplar_sz", "instance_sz", "context", "min_target_side"):
            if curated[name] != getattr(config, name):
                raise DataError(
                    f"the dataset was curated with {name}={curated[name]}, the pair config has "
                    f"{getattr(config, name)}: prepare the dataset with this config"
                )
        splits = metadata.get("splits", {})
        if split not in splits:
            raise DataError(f"split {split!r} not in the dataset (it has {sorted(splits)})")
        listing = splits[split]
        self._names = tuple(listing["names"])
        self._stored = [expand_runs(frames) for frames in listing["frames"]]
        self._valid = [expand_runs(valid) for valid in listing["valid"]]
        counts = np.array([len(frames) for frames in self._stored], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self._records = records
        self._crop_shape = (curated["instance_sz"], curated["instance_sz"], 3)
        self.split = split
        self._store: CropStore | None = None
        if len(records) != self._offsets[-1]:
            raise DataError(
                f"split {split!r} has {len(records)} records but its metadata lists "
                f"{self._offsets[-1]} curated frames"
            )
        if not any(len(valid) >= 2 for valid in self._valid):
            raise DataError(f"split {split!r}: no sequence has 2 frames that pass the frame filter")
        self._check_order()

    def _check_order(self) -> None:
        """Spot-check that records lie where the metadata says (first and last of a few sequences)."""
        nonempty = [index for index, frames in enumerate(self._stored) if len(frames)]
        for index in {nonempty[0], nonempty[len(nonempty) // 2], nonempty[-1]}:
            for position in (0, len(self._stored[index]) - 1):
                record = self._records[int(self._offsets[index]) + position]
                expected = (index, int(self._stored[index][position]))
                if (int(record["sequence"]), int(record["frame"])) != expected:
                    raise DataError(
                        f"record {int(self._offsets[index]) + position} holds sequence "
                        f"{int(record['sequence'])} frame {int(record['frame'])}, the metadata says "
                        f"sequence {expected[0]} frame {expected[1]}: the dataset is corrupt"
                    )

    @property
    def num_sequences(self) -> int:
        return len(self._names)

    @property
    def names(self) -> tuple[str, ...]:
        """Sequence names, in sequence-index order."""
        return self._names

    def sequence(self, index: int) -> SequenceCrops:
        return _CuratedSequence(
            self._records, int(self._offsets[index]), self._stored[index], self._valid[index], self._store
        )

    @property
    def store_shape(self) -> tuple[int, int, int, int]:
        """``(records, instance_sz, instance_sz, 3)``: the shape of the split's decoded crops."""
        return (int(self._offsets[-1]), *self._crop_shape)

    def jpeg(self, record: int) -> bytes:
        """The JPEG bytes of record ``record``'s crop (what a store decodes)."""
        return self._records[record]["crop"]

    @property
    def store(self) -> CropStore | None:
        """The decoded crops that pairs read, or None where they decode the JPEG crops."""
        return self._store

    def with_store(self, store: CropStore | None) -> CuratedCrops:
        """These crops, read from ``store`` (the split's decoded crops,
        :func:`~siamfc_jax.pipeline.crop_store.open_or_write_store`) instead of decoded per pair, or
        decoded per pair again with None. Pairs are the same, pixel for pixel.

        Raises:
            DataError: the store's shape is not the split's.
        """
        if store is not None and tuple(store.shape) != self.store_shape:
            raise DataError(
                f"{store.path}: holds {store.shape} crops, split {self.split!r} has {self.store_shape}"
            )
        other = copy.copy(self)
        other._store = store
        return other


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file as OpenCV decodes it, from its header alone.

    Pillow reads the header; OpenCV applies the EXIF orientation, so orientations that rotate by
    90 degrees swap the two.

    Raises:
        DataError: the file is missing or not an image.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot be read as an image ({error})") from None
    return (height, width) if orientation in _TRANSPOSING_ORIENTATIONS else (width, height)


class _FrameSequence(SequenceCrops):
    def __init__(self, sequence: Sequence, config: PairConfig):
        self._sequence = sequence
        self._config = config
        frames = sequence.frames
        self.valid_frames = (
            valid_frames(sequence, image_size(frames[0]), config.min_target_side)
            if frames
            else np.zeros(0, int)
        )

    def crop(self, frame: int, rng: np.random.Generator) -> np.ndarray:
        image = read_image(self._sequence.frames[frame])
        center_yx, size = crop_geometry(self._sequence.boxes[frame], self._config)
        interpolation = INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))]
        return crop_and_resize(
            image, center_yx, size, self._config.instance_sz, average_color(image), interpolation
        )


class FrameCrops(CropSource):
    """siamfc-pytorch's on-the-fly crops: read the sequence, decode full frames, crop each pair anew.

    Per pair: the sequence's annotation files are read and filtered (the first frame's size comes
    from its file header, where siamfc-pytorch decodes the whole frame), the two frames are decoded,
    and each is cropped with an interpolation drawn from
    :data:`~siamfc_jax.pipeline.transforms.INTERPOLATIONS` and the frame's mean colour as padding.

    Args:
        dataset: annotated image sequences (GOT-10k, ImageNet VID, a folder of sequences).
        config: crop geometry.
    """

    def __init__(self, dataset: SequenceDataset, config: PairConfig = PairConfig()) -> None:
        self._dataset = dataset
        self._config = config

    @property
    def num_sequences(self) -> int:
        return len(self._dataset)

    def sequence(self, index: int) -> SequenceCrops:
        return _FrameSequence(self._dataset[index], self._config)


class PairSampler:
    """Random-access training pairs of a :class:`CropSource`, deterministic in ``(seed, epoch, index)``.

    Args:
        source: the sequences and their crops.
        config: pairs per sequence, frame gap and augmentation.
        seed: base seed (>= 0).
    """

    def __init__(self, source: CropSource, config: PairConfig = PairConfig(), seed: int = 0) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if config.pairs_per_seq < 1:
            raise ValueError(f"pairs_per_seq must be >= 1, got {config.pairs_per_seq}")
        if source.num_sequences < 1:
            raise DataError("the pair source has no sequence")
        self.source = source
        self.config = config
        self.seed = seed
        self._order: tuple[int, np.ndarray] | None = None

    @property
    def shapes(self) -> dict[str, tuple[int, int, int]]:
        """Shape of each image of a pair: ``exemplar`` and ``search`` (side, side, 3), uint8 RGB."""
        return {
            "exemplar": (self.config.exemplar_sz, self.config.exemplar_sz, 3),
            "search": (self.config.search_sz, self.config.search_sz, 3),
        }

    def __len__(self) -> int:
        """Pairs per epoch: ``num_sequences * pairs_per_seq``."""
        return self.source.num_sequences * self.config.pairs_per_seq

    def order(self, epoch: int) -> np.ndarray:
        """(len(self),) sequence index of each pair of ``epoch`` before redraws (see module docstring)."""
        cached = self._order  # one read: worker threads may replace it concurrently
        if cached is None or cached[0] != epoch:
            cached = (epoch, epoch_order(self.source.num_sequences, self.config.pairs_per_seq,
                                         self.seed, epoch))
            self._order = cached
        return cached[1]

    def _draw(self, epoch: int, index: int) -> tuple[np.random.Generator, int, SequenceCrops, int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"pair {index} out of range for {len(self)} pairs per epoch")
        rng = pair_rng(self.seed, epoch, index)
        sequence_index = int(self.order(epoch)[index])
        for _ in range(SEQUENCE_REDRAWS):
            sequence = self.source.sequence(sequence_index)
            if len(sequence.valid_frames) >= 2:
                exemplar, search = sample_frame_pair(
                    sequence.valid_frames, rng, self.config.max_frame_gap
                )
                return rng, sequence_index, sequence, exemplar, search
            sequence_index = int(rng.integers(self.source.num_sequences))
        raise DataError(
            f"{SEQUENCE_REDRAWS} sequences drawn in a row have fewer than 2 frames that pass the "
            "frame filter: the dataset has (almost) no usable sequence"
        )

    def frames(self, epoch: int, index: int) -> tuple[int, int, int]:
        """``(sequence, exemplar_frame, search_frame)`` of pair ``index`` of ``epoch``."""
        _, sequence_index, _, exemplar, search = self._draw(epoch, index)
        return sequence_index, exemplar, search

    def pair(self, epoch: int, index: int) -> dict[str, np.ndarray]:
        """Pair ``index`` of ``epoch``.

        Returns:
            ``exemplar``: (exemplar_sz, exemplar_sz, 3) and ``search``: (search_sz, search_sz, 3)
            RGB uint8 (127 and 239 by default), C-contiguous.
        """
        pair = {key: np.empty(shape, np.uint8) for key, shape in self.shapes.items()}
        self.pair_into(epoch, index, pair["exemplar"], pair["search"])
        return pair

    def pair_into(self, epoch: int, index: int, exemplar: np.ndarray, search: np.ndarray) -> None:
        """Write pair ``index`` of ``epoch`` into ``exemplar`` (exemplar_sz, exemplar_sz, 3) and
        ``search`` (search_sz, search_sz, 3) uint8 arrays, e.g. rows of a batch (one copy per image)."""
        rng, _, sequence, exemplar_frame, search_frame = self._draw(epoch, index)
        exemplar_crop = sequence.crop(exemplar_frame, rng)
        search_crop = sequence.crop(search_frame, rng)
        exemplar[...], search[...] = augment_pair(exemplar_crop, search_crop, rng, self.config)
