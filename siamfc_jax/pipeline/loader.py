"""Batches of training pairs, made in parallel and prefetched (host code, Grain).

:class:`PairLoader` is what the training loop iterates::

    source = load_curated(prepare("got10k", manual_dir="/data/GOT-10k"))  # or FrameCrops(...)
    loader = PairLoader(source, batch_size=8, seed=0, workers=8)
    for epoch in range(50):
        for batch in loader.epoch(epoch):  # loader.steps_per_epoch batches
            batch["exemplar"]  # (8, 127, 127, 3) uint8
            batch["search"]    # (8, 239, 239, 3) uint8

A split kept decoded on disk loads about twice as fast per worker core, with the same batches:
``with_crop_store(load_curated(builder), builder, max_bytes)`` writes the split's crops decoded once
into one file (:mod:`siamfc_jax.pipeline.crop_store`; 195 kB a crop) that every worker process maps,
so a pair costs no JPEG decode; ``train.py`` does so for splits within ``--decoded-crops-gb``.

Batch ``step`` of ``epoch`` holds pairs ``step * batch_size .. (step + 1) * batch_size - 1`` of that
epoch (:class:`~siamfc_jax.pipeline.pairs.PairSampler`); the last, incomplete batch is dropped, like
siamfc-pytorch's ``drop_last=True``, so every batch can be split evenly over devices when
``batch_size`` is a multiple of their count. Batches are therefore the same for a given
``(seed, epoch)`` whatever ``workers`` and ``threads`` are: Grain gives worker ``w`` of ``W`` the
batches ``w, w + W, ...`` and hands them back in order.

Workers are processes (Grain's ``mp_prefetch``), each computing whole batches with ``threads``
threads; ``workers=0`` computes them in the calling process with ``threads`` threads (OpenCV and the
JPEG decoder release the GIL, Python code does not). Worker processes start with every call of
:meth:`PairLoader.epoch`, which takes seconds (each is a fresh Python process): next to a GOT-10k
epoch (9335 pairs, a few seconds at thousands of pairs per second) that matters, and
:meth:`PairLoader.batches` keeps one set of workers over many epochs::

    for step, batch in enumerate(loader.batches(first_epoch=0, num_epochs=50)):
        epoch = step // loader.steps_per_epoch
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import cv2
import grain
import numpy as np
from absl import flags

from siamfc_jax.config import PairConfig
from siamfc_jax.pipeline.pairs import CropSource, PairSampler
from siamfc_jax.runtime import available_cores


def _init_worker(worker_index: int, worker_count: int) -> None:
    del worker_index, worker_count
    # One process (or thread) per core already: OpenCV's own thread pool would oversubscribe them.
    cv2.setNumThreads(1)
    # Ctrl-C reaches the whole process group; the parent decides what stops, and stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _allow_unparsed_flags() -> None:
    """Let Grain read its absl flags in programs that never parse flags.

    Grain 0.2.18 reads an absl flag when it starts worker processes with JAX installed and fails
    with ``UnparsedFlagAccessError`` unless flags were parsed (google/grain#1355); marking them as
    parsed keeps every flag at its default, which is what such a program gets anyway.
    """
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class _Batches:
    """Random access to the batches of consecutive epochs: element ``k`` is step ``k % steps`` of
    epoch ``first_epoch + k // steps``; of each global batch this process makes its own slice."""

    def __init__(
        self,
        sampler: PairSampler,
        batch_size: int,
        first_epoch: int,
        num_epochs: int,
        process_index: int,
        process_count: int,
    ):
        self._sampler = sampler
        self._batch_size = batch_size
        self._local_size = batch_size // process_count
        self._offset = process_index * self._local_size
        self._steps = len(sampler) // batch_size
        self._first_epoch = first_epoch
        self._num_epochs = num_epochs

    def __len__(self) -> int:
        return self._steps * self._num_epochs

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        epoch = self._first_epoch + index // self._steps
        first_pair = (index % self._steps) * self._batch_size + self._offset
        # Pairs are written straight into their rows of the batch: one copy of each image.
        shapes = self._sampler.shapes.items()
        batch = {key: np.empty((self._local_size, *shape), np.uint8) for key, shape in shapes}
        for offset in range(self._local_size):
            self._sampler.pair_into(
                epoch, first_pair + offset, batch["exemplar"][offset], batch["search"][offset]
            )
        return batch


class PairLoader:
    """Global batches of augmented training pairs from a :class:`~siamfc_jax.pipeline.pairs.CropSource`.

    Args:
        source: curated crops (:class:`~siamfc_jax.pipeline.pairs.CuratedCrops`) or on-the-fly frame
            crops (:class:`~siamfc_jax.pipeline.pairs.FrameCrops`).
        batch_size: pairs per batch (the global batch: the training loop shards it over devices).
        seed: base seed (>= 0); batches depend only on ``(seed, epoch)``, the source and ``config``.
        workers: worker processes; 0 makes batches in this process.
        config: pair sampling and augmentation.
        threads: threads per worker process (or in this process when ``workers=0``); default 1 with
            workers, else the available cores.
        prefetch: batches each worker (or this process) computes ahead.
        process_index, process_count: in multi-host training (``jax.distributed``) each process
            makes only its slice ``process_index`` of ``process_count`` equal slices of every global
            batch (the default is one process making whole batches).

    Raises:
        ValueError: a non-positive batch size or prefetch, negative workers or seed, an epoch with
            fewer pairs than one batch, or a batch that does not split evenly over processes.
    """

    def __init__(
        self,
        source: CropSource,
        batch_size: int,
        seed: int = 0,
        workers: int = 0,
        config: PairConfig = PairConfig(),
        threads: int | None = None,
        prefetch: int = 2,
        process_index: int = 0,
        process_count: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if process_count < 1 or not 0 <= process_index < process_count or batch_size % process_count:
            raise ValueError(
                f"batch_size {batch_size} must split evenly over {process_count} processes "
                f"(process_index {process_index})"
            )
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        if prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.sampler = PairSampler(source, config, seed)
        self.batch_size = batch_size
        self.workers = workers
        self.threads = threads if threads is not None else (1 if workers else available_cores())
        self.prefetch = prefetch
        self.process_index = process_index
        self.process_count = process_count
        self.steps_per_epoch = len(self.sampler) // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"an epoch has {len(self.sampler)} pairs, fewer than one batch of {batch_size}"
            )

    def epoch(self, epoch: int) -> Iterator[dict[str, np.ndarray]]:
        """The ``steps_per_epoch`` batches of ``epoch`` (>= 0), in order.

        Each batch is ``{"exemplar": (B, exemplar_sz, exemplar_sz, 3), "search": (B, search_sz,
        search_sz, 3)}`` RGB uint8 (B = batch_size / process_count).
        """
        return self.batches(epoch, 1)

    def batches(
        self, first_epoch: int = 0, num_epochs: int = 1, first_step: int = 0
    ) -> Iterator[dict[str, np.ndarray]]:
        """Batches of epochs ``first_epoch .. first_epoch + num_epochs - 1`` in order, with one set of
        workers; starts at step ``first_step`` of the first epoch (to resume a run)."""
        if first_epoch < 0 or num_epochs < 1:
            raise ValueError(f"need first_epoch >= 0 and num_epochs >= 1, got {first_epoch}, {num_epochs}")
        if not 0 <= first_step < self.steps_per_epoch:
            raise ValueError(f"first_step must be in [0, {self.steps_per_epoch}), got {first_step}")
        batches = grain.MapDataset.source(
            _Batches(
                self.sampler,
                self.batch_size,
                first_epoch,
                num_epochs,
                self.process_index,
                self.process_count,
            )
        )[first_step:]
        # A worker process computing with one thread makes its batches in its own main thread (0
        # threads): the process is already read ahead by mp_prefetch, and a reading thread would only
        # hand every batch from one thread to the other.
        threads = 0 if self.workers and self.threads == 1 else self.threads
        stream = batches.to_iter_dataset(
            grain.ReadOptions(num_threads=threads, prefetch_buffer_size=self.prefetch * self.threads)
        )
        if self.workers:
            _allow_unparsed_flags()
            stream = stream.mp_prefetch(
                grain.MultiprocessingOptions(num_workers=self.workers, per_worker_buffer_size=self.prefetch),
                worker_init_fn=_init_worker,
            )
        return _iterate(stream, copy=self.workers > 0)


def _iterate(stream: grain.IterDataset, copy: bool) -> Iterator[dict[str, np.ndarray]]:
    iterator = iter(stream)
    try:
        for batch in iterator:
            # Worker batches arrive in shared memory; plain copies (~2 MB per 8 pairs) free it at once,
            # whereas a batch the caller still holds at exit would leave a leaked segment behind.
            yield {key: np.array(value) for key, value in batch.items()} if copy else batch
    finally:
        # Stops the worker processes now rather than whenever the iterator is garbage-collected.
        iterator.close()
