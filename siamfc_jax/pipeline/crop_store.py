"""Decoded crop store: every curated crop of a split, decoded once, in one raw uint8 array on disk.

A pair drawn from JPEG crops costs two record reads and two 255 x 255 JPEG decodes, about half of a
loader worker's time. In real schedules a crop is drawn less than once over a whole run (GOT-10k:
933 k draws over 1.4 M crops), so keeping decoded crops per process saves nothing; decoding the
split once into a file that every worker process maps does. The store of split ``<split>`` of a
prepared ``siamfc_crops`` dataset is::

    <dataset directory>/decoded/<split>.npy

a NumPy ``.npy`` file holding one C-ordered (N, instance_sz, instance_sz, 3) RGB uint8 array, row
``i`` the crop of record ``i`` decoded by :func:`~siamfc_jax.pipeline.curate.decode_jpeg` (the
decode the JPEG path makes for every pair, so pairs are the same, pixel for pixel). Workers read it
through ``np.memmap``: the operating system's page cache holds it once for all of them, and a draw
costs neither a decode nor a record read.

It is written once, by :func:`open_or_write_store`: decoded by threads (OpenCV releases the GIL),
into a temporary file renamed onto the store's name when complete and flushed to disk, so a store
with its final name is whole. Processes that start together take turns on
``decoded/.<split>.lock``; the first writes, the others find the store complete. A store whose
size, shape or spot-checked rows do not match the records is written anew.

A store takes ``N * instance_sz^2 * 3`` bytes: 195 kB a crop at 255 x 255, 3.5 GB for the default
synthetic set (18 k crops), 270 GB for GOT-10k (1.4 M crops). It is written only within a budget
(``TrainConfig.decoded_crops_gb``) and where the disk has that much free beyond
:data:`DISK_RESERVE_BYTES`; otherwise pairs decode the JPEG crops.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from siamfc_jax.files import atomic_path, exclusive_lock
from siamfc_jax.pipeline.curate import decode_jpeg
from siamfc_jax.runtime import available_cores
from siamfc_jax.sequences.frames import DataError

# Folder of the stores beside a curated dataset's files, and a store's name in it.
STORE_FOLDER = "decoded"
STORE_SUFFIX = ".npy"
# Free disk space left untouched after a store is written (checkpoints, logs, the system), bytes.
DISK_RESERVE_BYTES = 2**30
# Records each decoding task handles: large enough that the tasks' overhead does not count.
_CHUNK_RECORDS = 64


def store_path(dataset_dir: str | os.PathLike, split: str) -> Path:
    """Where the store of ``split`` of the curated dataset in ``dataset_dir`` lives."""
    return Path(dataset_dir) / STORE_FOLDER / f"{split}{STORE_SUFFIX}"


class CropStore:
    """Read access to a complete store: crop ``i`` is row ``i``, a read-only view of the mapped file.

    The file is mapped on first use in each process; pickling keeps the path and shape only, so a
    worker process that unpickles a source maps the file itself and shares its pages with the others.

    Args:
        path: the store file (written by :func:`write_store`).
        shape: ``(N, side, side, 3)`` the file must hold.
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int, int, int]) -> None:
        self.path = Path(path)
        self.shape = tuple(int(size) for size in shape)
        self._array: np.ndarray | None = None
        self._mapping = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "shape": self.shape}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["shape"])

    def __len__(self) -> int:
        """Crops held."""
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes of the crops (the file is a header longer)."""
        return int(np.prod(self.shape))

    @property
    def array(self) -> np.ndarray:
        """(N, side, side, 3) uint8 read-only array over the file (mapped on first use).

        Raises:
            DataError: the file is missing, incomplete or of another shape.
        """
        array = self._array  # one read: the lock-free path once mapped
        if array is None:
            # One mapping per process: loader threads that start together wait for it rather than
            # each parsing the header (NumPy parses it with ``ast.literal_eval``, which CPython 3.11
            # does not make safe to run in several threads at once).
            with self._mapping:
                if self._array is None:
                    self._array = _map(self.path, self.shape)
                array = self._array
        return array

    def __getitem__(self, record: int) -> np.ndarray:
        """(side, side, 3) RGB uint8 crop of record ``record`` (a read-only view)."""
        return self.array[record]


def _map(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The store at ``path`` mapped read-only, as a plain ndarray (indexing a ``np.memmap`` is slower);
    checked to hold a whole uint8 array of ``shape``."""
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        complete = (
            isinstance(mapped, np.memmap)
            and mapped.dtype == np.uint8
            and mapped.shape == shape
            and mapped.flags.c_contiguous
            and mapped.offset + mapped.nbytes == path.stat().st_size
        )
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a complete crop store of shape {shape} ({error})") from None
    if not complete:
        raise DataError(f"{path}: not a complete crop store of shape {shape}")
    return mapped.view(np.ndarray)


def write_store(
    path: str | os.PathLike,
    shape: tuple[int, int, int, int],
    jpeg: Callable[[int], bytes],
    threads: int | None = None,
    progress: bool = False,
) -> None:
    """Decode the JPEG crop of every record into a new store at ``path`` (replaced when complete).

    Args:
        path: the store file.
        shape: ``(N, side, side, 3)``: N records, each a side x side RGB crop.
        jpeg: the JPEG bytes of record ``i`` (0 <= i < N); called from ``threads`` threads at once.
        threads: decoding threads (default: the available cores).
        progress: show a progress bar.

    Raises:
        DataError: a record that does not decode to a (side, side, 3) crop.
        OutputError: the file cannot be written (the message names it).
    """
    count = shape[0]
    threads = threads or available_cores()
    chunks = [range(first, min(first + _CHUNK_RECORDS, count)) for first in range(0, count, _CHUNK_RECORDS)]
    with atomic_path(path) as temporary:
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
        bar = tqdm(total=count, desc=f"decoding {Path(path).stem} crops", unit="crop", disable=not progress)
        with contextlib.closing(bar), ThreadPoolExecutor(threads) as pool:
            for done in pool.map(functools.partial(_decode_into, array, jpeg, path), chunks):
                bar.update(done)
        array.flush()
        del array
        # On disk before it takes the store's name: a crash after the rename leaves a whole store.
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())


def _decode_into(array: np.ndarray, jpeg: Callable[[int], bytes], path: Path, records: range) -> int:
    """Decode ``records`` into their rows of ``array`` (N, side, side, 3); returns how many."""
    for record in records:
        crop = decode_jpeg(jpeg(record))
        if crop.shape != array.shape[1:]:
            raise DataError(
                f"{path}: record {record} decodes to a {crop.shape} crop, the split's are {array.shape[1:]}"
            )
        array[record] = crop
    return len(records)


def open_or_write_store(
    directory: str | os.PathLike,
    split: str,
    shape: tuple[int, int, int, int],
    jpeg: Callable[[int], bytes],
    max_bytes: int,
    threads: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> CropStore | None:
    """The store of ``split`` in the curated dataset ``directory``, written first if needed; None where
    pairs are to decode the JPEG crops. Logs what it chose, in one line (with the writing time).

    A split larger than ``max_bytes`` gets no store (a store written earlier under a larger budget
    stays on disk, unused), nor does one that does not fit in the free disk space less
    :data:`DISK_RESERVE_BYTES`. A store that is incomplete, of another shape, or whose first, middle
    and last rows are not what those records decode to is written anew.

    Args:
        directory: the curated dataset's directory (``builder.data_dir``).
        split: the split's name.
        shape: ``(N, side, side, 3)`` of the split's crops.
        jpeg: the JPEG bytes of record ``i``.
        max_bytes: the largest store to use (0: none).
        threads, progress: see :func:`write_store`.
        log: receives the line saying what was chosen.

    Raises:
        DataError: a record that does not decode to a crop of ``shape``.
        OutputError: the store cannot be written (other than for want of space, which means no store).
    """
    path = store_path(directory, split)
    nbytes = int(np.prod(shape))
    size = f"{shape[0]:,} crops, {nbytes / 1e9:.1f} GB"
    if nbytes > max_bytes:
        if max_bytes <= 0:
            log("decoded crops: off (budget 0); pairs decode the JPEG crops")
        else:
            log(
                f"decoded crops: {split} ({size}) exceeds the budget of {max_bytes / 1e9:.1f} GB; "
                "pairs decode the JPEG crops"
            )
        return None
    with exclusive_lock(path.with_name(f".{split}.lock")):
        _remove_abandoned_temporaries(path)
        problem = _check_store(path, shape, jpeg)
        if problem is None:
            log(f"decoded crops: {path} ({size}), written before")
            return CropStore(path, shape)
        if problem != "missing":
            log(f"decoded crops: {path} is {problem}; writing it anew")
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(path.parent).free
        if nbytes + DISK_RESERVE_BYTES > free:
            log(
                f"decoded crops: {split} ({size}) does not fit in the {free / 1e9:.1f} GB free on "
                f"{path.parent} (keeping {DISK_RESERVE_BYTES / 1e9:.1f} GB free); pairs decode the JPEG crops"
            )
            return None
        threads = threads or available_cores()
        start = time.perf_counter()
        write_store(path, shape, jpeg, threads, progress)
        seconds = time.perf_counter() - start
        log(f"decoded crops: wrote {path} ({size}) in {seconds:.1f} s with {threads} threads")
    return CropStore(path, shape)


def _remove_abandoned_temporaries(path: Path) -> None:
    """Delete temporaries of ``path`` left by writers that were killed (:func:`atomic_path`'s names).
    Only called under the store's lock, which every writer holds while it writes."""
    for leftover in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def _check_store(path: Path, shape: tuple[int, ...], jpeg: Callable[[int], bytes]) -> str | None:
    """What is wrong with the store at ``path`` (``"missing"``, ``"incomplete ..."``, ...), or None
    when it is whole and its first, middle and last rows are what those records decode to."""
    if not path.is_file():
        return "missing"
    try:
        array = _map(path, shape)
    except DataError as error:
        return str(error).removeprefix(f"{path}: ")
    for record in sorted({0, shape[0] // 2, shape[0] - 1}):
        if not np.array_equal(array[record], decode_jpeg(jpeg(record))):
            return f"not what record {record} decodes to"
    return None

