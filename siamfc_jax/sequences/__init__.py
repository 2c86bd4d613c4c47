"""Tracking sequences: frames (image files or a video), boxes, benchmark layouts and datasets (host).

- :mod:`~siamfc_jax.sequences.frames`: decoding frames as siamfc-pytorch does, :class:`DataError`;
- :mod:`~siamfc_jax.sequences.sequence`: the :class:`Sequence` type;
- :mod:`~siamfc_jax.sequences.annotations`: ground-truth, label and meta files;
- :mod:`~siamfc_jax.sequences.readers`: OTB, LaSOT, GOT-10k, VOT folders, videos, globs
  (:func:`open_sequence` detects which);
- :mod:`~siamfc_jax.sequences.datasets`: the sequences of a dataset root (GOT-10k, ImageNet VID,
  a folder of sequences).

Boxes are 1-indexed ``[x, y, w, h]`` in pixels throughout, as in OTB and GOT-10k. The tracker,
evaluation and the training input pipeline all read sequences through this package.
"""

from siamfc_jax.sequences.datasets import GOT10k, ImageNetVID, SequenceDataset, SequenceFolder, open_dataset
from siamfc_jax.sequences.frames import DataError, read_image
from siamfc_jax.sequences.readers import is_sequence_dir, open_sequence
from siamfc_jax.sequences.sequence import Sequence

__all__ = [
    "DataError",
    "GOT10k",
    "ImageNetVID",
    "Sequence",
    "SequenceDataset",
    "SequenceFolder",
    "is_sequence_dir",
    "open_dataset",
    "open_sequence",
    "read_image",
]
