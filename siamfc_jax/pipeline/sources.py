"""What a training run reads: curated training crops, validation crops and validation sequences.

``--data`` names the source: ``synthetic`` (the generated world), ``got10k:DIR``, ``vid:DIR`` or
``folder:DIR``. Each is curated once into the ``siamfc_crops`` TFDS dataset under ``data_dir``
(:mod:`siamfc_jax.pipeline.tfds_builder`; default ``cache_dir() / "tfds"``) and read from there. The
curated dataset is named after what it was made from (the source's resolved path and file listing,
the crop settings, the format versions): later runs on the same, unchanged source reuse it, and any
other source, or a changed one, is curated anew. A training split within ``decoded_crops_gb`` is
also kept decoded beside it (:mod:`siamfc_jax.pipeline.crop_store`), written on first use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from siamfc_jax.config import PairConfig, TrainConfig
from siamfc_jax.pipeline.pairs import CuratedCrops
from siamfc_jax.pipeline.tfds_builder import (
    SiamfcCrops,
    SiamfcCropsConfig,
    load_curated,
    prepare,
    with_crop_store,
)
from siamfc_jax.sequences.datasets import DATASET_KINDS, SequenceFolder, parse_dataset_spec
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.sequence import Sequence
from siamfc_jax.synthetic.config import SyntheticConfig, world_config


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """Sources of a run: training pairs (from its decoded crop store or its JPEG crops), validation
    pairs (or None; always from JPEG crops: a batch of them is drawn once) and sequences to track."""

    train: CuratedCrops
    validation: CuratedCrops | None
    sequences: tuple[Sequence, ...]
    description: str


def parse_data_spec(spec: str) -> tuple[str, Path | None]:
    """``"synthetic"`` -> ("synthetic", None); ``"got10k:/data/GOT-10k"`` -> ("got10k", path).

    Datasets are named as :func:`~siamfc_jax.sequences.datasets.open_dataset` names them, without a
    subset: training reads the train split (and val for validation).
    """
    kind, _, path = spec.partition(":")
    if kind == "synthetic":
        if path:
            raise DataError(f"--data {spec!r}: synthetic takes no directory")
        return kind, None
    if kind in DATASET_KINDS and not path:
        raise DataError(f"--data {spec!r}: {kind} needs a directory, e.g. {kind}:/data/{kind}")
    try:
        kind, subset, path = parse_dataset_spec(spec)
    except DataError:
        raise DataError(
            f"--data {spec!r}: expected synthetic, got10k:DIR, vid:DIR or folder:DIR"
        ) from None
    if subset:
        raise DataError(f"--data {spec!r}: training reads the train split; name the root, {kind}:DIR")
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory (from --data {spec})")
    return kind, directory


def crops_config(config: TrainConfig) -> str | SiamfcCropsConfig:
    """The ``siamfc_crops`` TFDS config that ``config.data`` is curated into.

    Default settings use the registered config of that name; other settings (another synthetic
    world size, other crop sizes) get a name that says so. Either is the readable part of the
    dataset's name: :func:`~siamfc_jax.pipeline.tfds_builder.prepare` adds the digest of what it is
    made from (:func:`~siamfc_jax.pipeline.tfds_builder.keyed_config`), so datasets never collide.
    """
    kind, _ = parse_data_spec(config.data)
    geometry = _geometry(config.pairs)
    suffix = ""
    if _crop_sizes(geometry) != _crop_sizes(PairConfig()):
        suffix = f"_e{geometry.exemplar_sz}_i{geometry.instance_sz}_c{round(geometry.context * 100)}"
    if geometry.min_target_side != PairConfig().min_target_side:
        suffix += f"_m{geometry.min_target_side:g}"
    synthetic = world_config(config.synthetic_world, config.synthetic_sequences)
    if kind == "synthetic" and synthetic != SyntheticConfig():
        suffix = f"_n{synthetic.num_sequences}" + suffix
        if config.synthetic_world != "basic":
            suffix = f"_{config.synthetic_world}" + suffix
    if not suffix:
        return kind
    if kind != "synthetic":
        return SiamfcCropsConfig(name=kind + suffix, kind=kind, pair=geometry)
    return SiamfcCropsConfig(name="synthetic" + suffix, kind="synthetic", synthetic=synthetic, pair=geometry)


def _geometry(pairs: PairConfig) -> PairConfig:
    """The part of a PairConfig that curation depends on (crop sizes, context, the frame filter's
    smallest side)."""
    return PairConfig(
        exemplar_sz=pairs.exemplar_sz,
        instance_sz=pairs.instance_sz,
        context=pairs.context,
        min_target_side=pairs.min_target_side,
    )


def _crop_sizes(pairs: PairConfig) -> tuple[int, int, float]:
    return pairs.exemplar_sz, pairs.instance_sz, pairs.context


def prepare_training_data(
    config: TrainConfig, workers: int | None, progress: bool, log: Callable[[str], None] = print
) -> TrainingData:
    """Curate ``config.data`` if needed and open its splits and validation sequences.

    The training split is read from its decoded crop store where it takes at most
    ``config.decoded_crops_gb`` and fits on the disk (written here the first time;
    :func:`~siamfc_jax.pipeline.tfds_builder.with_crop_store`), else from its JPEG crops; ``log``
    gets the line saying which. ``workers`` processes curate and as many threads decode (default:
    the available cores).

    Raises:
      DataError: a malformed ``--data`` or a missing or malformed dataset (the message names it).
      OutputError: the decoded crop store cannot be written.
    """
    kind, directory = parse_data_spec(config.data)
    crops = crops_config(config)
    builder = prepare(crops, config.data_dir, manual_dir=directory, workers=workers, progress=progress)
    train = with_crop_store(
        load_curated(builder, "train", config.pairs),
        builder,
        round(config.decoded_crops_gb * 1e9),
        threads=workers,
        progress=progress,
        log=log,
    )
    validation = (
        load_curated(builder, "validation", config.pairs) if "validation" in builder.info.splits else None
    )
    sequences: tuple[Sequence, ...] = ()
    if config.val_sequences and config.val_data:
        sequences = validation_folder_sequences(config.val_data, directory, config.val_sequences)
    elif config.val_sequences:
        sequences = _validation_sequences(builder, directory, config.val_sequences)
    where = "generated" if kind == "synthetic" else str(directory)
    description = f"{kind} ({where}), curated in {builder.data_dir}"
    return TrainingData(train, validation, sequences, description)


def validation_folder_sequences(spec: str, training_dir: Path | None, count: int) -> tuple[Sequence, ...]:
    """The first ``count`` sequences (by folder name) of the ``folder:DIR`` dataset ``spec``.

    Raises:
      DataError: a malformed spec or folder, or the training data's own folder (validation
        sequences are never trained on).
    """
    kind, _, path = parse_dataset_spec(spec)
    if kind != "folder":
        raise DataError(f"--val-data {spec!r}: expected folder:DIR")
    directory = Path(path).expanduser()
    if training_dir is not None and directory.resolve() == training_dir.resolve():
        raise DataError(f"--val-data {spec!r}: the training data's folder; validate on other sequences")
    dataset = SequenceFolder(directory)
    return tuple(dataset[index] for index in range(min(count, len(dataset))))


def _validation_sequences(builder: SiamfcCrops, directory: Path | None, count: int) -> tuple[Sequence, ...]:
    """The first ``count`` sequences of the dataset the validation split was curated from (none
    without one): the same folders, read with the builder's annotation cache."""
    dataset = builder.source_datasets(directory).get("validation")
    if dataset is None:
        return ()
    return tuple(dataset[index] for index in range(min(count, len(dataset))))
