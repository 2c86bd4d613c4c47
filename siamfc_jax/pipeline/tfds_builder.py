"""``siamfc_crops``: a TFDS dataset of curated SiamFC training crops (array_record, no TensorFlow).

Every annotated frame of a tracking dataset is cropped once around its target
(:mod:`siamfc_jax.pipeline.curate`) and stored as one record:

- ``crop``: JPEG bytes (OpenCV, quality ``jpeg_quality``) of the (instance_sz, instance_sz, 3) RGB crop,
  decoded with :func:`siamfc_jax.pipeline.curate.decode_jpeg`; stored as a bytes tensor so neither
  writing nor reading needs TensorFlow;
- ``box``: float32 ``[x, y, w, h]``, the target in 1-indexed crop pixels;
- ``frame_box``: float64 ``[x, y, w, h]``, the target as annotated in the frame (1-indexed pixels);
- ``sequence`` (index in the split), ``name`` (sequence name), ``frame`` (0-based frame index);
- ``valid``: whether the frame passes siamfc-pytorch's frame filter.

Frames without a target box (absent, NaN) have no record. Records are stored in (sequence, frame)
order, whole sequences per shard, and the dataset's metadata (``metadata.json``) lists per sequence
its stored frames and its valid frames, so the pair sampler knows every sequence without reading
records.

The builder is a ``tfds.core.ShardBasedBuilder`` rather than a ``GeneratorBasedBuilder``: the latter
sorts or shuffles every split through TFDS's ``Shuffler``, which holds up to 1 GB in memory and
beyond that writes temporary buckets with ``tf.io.gfile``, i.e. needs TensorFlow for any real
dataset (GOT-10k's crops are ~35 GB). Shard-based generation writes the records in the order they
are generated, without TensorFlow and without a second copy on disk.

Configs (``siamfc_crops/<name>``): ``got10k`` (GOT-10k train, + validation from val), ``vid``
(ImageNet VID 2015 train, + validation from val), ``folder`` (any folder of annotated sequence
folders, train only): all three read ``manual_dir`` (see MANUAL_DOWNLOAD_INSTRUCTIONS); ``synthetic``
generates :mod:`siamfc_jax.synthetic`'s default set (300 sequences of 60 frames, 320 x 240) into
the download directory and curates it, + a 30-sequence validation split (seed + 1). Other settings are
new :class:`SiamfcCropsConfig` objects. :func:`prepare` stores a config as ``<name>_<digest>``
(:func:`keyed_config`): the digest covers the source (its resolved path and file listing), the
curation settings and the format versions, so no dataset is ever read for another source.

Beside the records, a split may be kept decoded, one raw array of every crop in
``<data_dir>/siamfc_crops/<config>/<version>/decoded/<split>.npy`` (:func:`with_crop_store`,
:mod:`siamfc_jax.pipeline.crop_store`), for pairs that cost no JPEG decode.

Preparation curates sequences in parallel processes (``workers``, one pool per split) with a progress
bar. It is idempotent, not resumable: TFDS skips a config/version whose directory is complete and
starts over after an interruption (the synthetic frames themselves are resumable, see
``write_got10k``).

Command line::

    python -m siamfc_jax.pipeline.tfds_builder --config got10k --manual-dir /data/GOT-10k \\
        [--data-dir DIR] [--workers N]

``--data-dir`` defaults to :func:`default_data_dir` (``$XDG_CACHE_HOME/siamfc_jax/tfds``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds

from siamfc_jax import cli
from siamfc_jax.config import PairConfig
from siamfc_jax.files import exclusive_lock
from siamfc_jax.pipeline.crop_store import open_or_write_store
from siamfc_jax.pipeline.curate import CURATION_INTERPOLATION, CuratedSequence, curate_dataset, runs
from siamfc_jax.pipeline.fingerprint import listing_fingerprint
from siamfc_jax.pipeline.pairs import CURATION_FORMAT, CuratedCrops
from siamfc_jax.runtime import cache_dir
from siamfc_jax.sequences.datasets import GOT10k, ImageNetVID, SequenceDataset, SequenceFolder
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.synthetic.config import SyntheticConfig, config_fingerprint
from siamfc_jax.synthetic.writer import write_got10k

KINDS = ("got10k", "vid", "folder", "synthetic")
# Record keys: sequence index in the high bits, frame index in the low ones (unique, ordered).
_FRAME_BITS = 32
_INTERPOLATION_NAMES = {CURATION_INTERPOLATION: "INTER_LINEAR"}
DESCRIPTION = (
    "SiamFC training crops: every annotated frame cropped once around its target (255 x 255 JPEG), "
    "with the target box in crop pixels and siamfc-pytorch's frame-filter verdict."
)


@dataclasses.dataclass(eq=False)
class SiamfcCropsConfig(tfds.core.BuilderConfig):
    """What a ``siamfc_crops`` config curates.

    Attributes:
        kind: ``got10k``, ``vid``, ``folder`` (sequences from ``manual_dir``) or ``synthetic``.
        synthetic: the generated training set (kind ``synthetic``).
        validation_sequences: sequences of the synthetic validation split (seed ``synthetic.seed +
            1``); 0 for none.
        jpeg_quality: JPEG quality of the stored crops.
        sequences_per_shard: sequences per array_record file (TFDS holds one shard's records in
            memory while writing it: 64 GOT-10k sequences are ~250 MB).
        pair: crop geometry (``context``, ``exemplar_sz``, ``instance_sz``); the loader's PairConfig
            must agree.
        source: digest of what the dataset is made from (set by :func:`keyed_config`, which also
            puts it in the name): the source's resolved path and file listing, or the synthetic
            world's settings, the curation settings and the format versions.
    """

    kind: str = "synthetic"
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)
    validation_sequences: int = 30
    jpeg_quality: int = 95
    sequences_per_shard: int = 64
    pair: PairConfig = PairConfig()
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.sequences_per_shard < 1:
            raise ValueError(f"sequences_per_shard must be >= 1, got {self.sequences_per_shard}")
        if self.validation_sequences < 0:
            raise ValueError(f"validation_sequences must be >= 0, got {self.validation_sequences}")


MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Pass the dataset root as manual_dir (DownloadConfig(manual_dir=...) or --manual-dir):

- got10k: the GOT-10k root holding train/ (and optionally val/): train/list.txt (optional) and one
  folder per sequence with 00000001.jpg ..., groundtruth.txt, absence.label, cover.label,
  meta_info.ini. Download from http://got-10k.aitestunion.com/ (registration required).
- vid: the ILSVRC2015 folder holding Data/VID/train/ILSVRC2015_VID_train_000X/<snippet>/*.JPEG and
  Annotations/VID/train/.../*.xml (and optionally Data/VID/val, Annotations/VID/val). Download
  ILSVRC2015_VID.tar.gz from https://image-net.org/ (registration required) and extract it.
- folder: a folder whose subfolders are annotated sequences (OTB, LaSOT, GOT-10k or VOT layout) with
  one ground-truth box per frame.
- synthetic: needs nothing; the frames are generated.
"""


class SiamfcCrops(tfds.core.ShardBasedBuilder):
    """Curated SiamFC training crops (see the module docstring).

    Args:
        workers: curation processes (default: the available cores).
        progress: show a progress bar over sequences.
        file_format: TFDS file format; ``array_record`` gives the random access the loader needs.
        **kwargs: ``data_dir``, ``config``, ``version`` of ``tfds.core.DatasetBuilder``.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "First release: 255x255 JPEG crops, boxes in crop pixels, frame-filter verdicts."
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS: ClassVar[list[SiamfcCropsConfig]] = [
        SiamfcCropsConfig(name="got10k", kind="got10k", description="GOT-10k train (+ val)."),
        SiamfcCropsConfig(name="vid", kind="vid", description="ImageNet VID 2015 train (+ val)."),
        SiamfcCropsConfig(name="folder", kind="folder", description="A folder of sequences."),
        SiamfcCropsConfig(
            name="synthetic", kind="synthetic", description="siamfc_jax's synthetic tracking world."
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "synthetic"
    # TFDS 4.9.10 derives this from the package, which needs the importlib_resources backport (not a
    # dependency) for any builder outside tensorflow_datasets; it only locates checksums.tsv, which
    # this dataset (nothing to download) does not have.
    code_path = Path(__file__)

    def __init__(
        self,
        *,
        workers: int | None = None,
        progress: bool = True,
        file_format: str = "array_record",
        **kwargs: Any,
    ) -> None:
        self._workers = workers
        self._progress = progress
        super().__init__(file_format=file_format, **kwargs)

    # TFDS announces "Downloading and preparing dataset Unknown size ..." and "Dataset ...
    # downloaded and prepared": nothing is downloaded here, so say what happens instead.
    def _log_download_bytes(self) -> None:
        print(f"curating {self.builder_config.name} training crops into {self.data_dir} (once)", flush=True)

    def _log_download_done(self) -> None:
        print(f"curated crops ready in {self.data_dir}", flush=True)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "crop": tfds.features.Tensor(shape=(), dtype=np.object_),
                    "box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
                    "frame_box": tfds.features.Tensor(shape=(4,), dtype=np.float64),
                    "sequence": tfds.features.Scalar(dtype=np.int64),
                    "name": tfds.features.Text(),
                    "frame": tfds.features.Scalar(dtype=np.int64),
                    "valid": tfds.features.Scalar(dtype=np.bool_),
                }
            ),
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
        )

    @property
    def download_dir(self) -> Path:
        """Where :func:`prepare` keeps what curation reads besides ``manual_dir``: the generated
        synthetic frames and ImageNet VID's parsed annotation index."""
        return Path(self.data_dir_root) / "downloads"

    def source_datasets(self, manual_dir: str | os.PathLike | None = None) -> dict[str, SequenceDataset]:
        """The sequence datasets the splits are curated from, by split (``train``, ``validation``).

        ``manual_dir`` is the source root of ``got10k``, ``vid`` and ``folder``; ``synthetic`` reads
        the frames that preparation generated into :attr:`download_dir`.
        """
        config = self.builder_config
        if config.kind == "synthetic":
            root = self._synthetic_root()
            datasets: dict[str, SequenceDataset] = {"train": GOT10k(root, "train")}
            if config.validation_sequences:
                datasets["validation"] = GOT10k(root, "val")
            return datasets
        if manual_dir is None:
            raise DataError(f"siamfc_crops/{config.name}: the source dataset's root (manual_dir) is needed")
        root = Path(manual_dir)
        if config.kind == "got10k":
            datasets = {"train": GOT10k(root, "train")}
            if (root / "val").is_dir():
                datasets["validation"] = GOT10k(root, "val")
            return datasets
        if config.kind == "vid":
            # The parsed index is kept per source fingerprint: a changed annotation is parsed again.
            index = self.download_dir / f"imagenet_vid_{config.source[:16] or 'unkeyed'}"
            datasets = {"train": ImageNetVID(root, "train", cache_dir=index)}
            if (root / "Data" / "VID" / "val").is_dir():
                datasets["validation"] = ImageNetVID(root, "val", cache_dir=index)
            return datasets
        return {"train": SequenceFolder(root)}

    def _synthetic_root(self) -> Path:
        return self.download_dir / f"siamfc_synthetic_{config_fingerprint(self.builder_config.synthetic)}"

    def _sequence_datasets(self, dl_manager: tfds.download.DownloadManager) -> dict[str, SequenceDataset]:
        config = self.builder_config
        if config.kind == "synthetic":
            root = self._synthetic_root()
            write_got10k(root, config.synthetic, "train", workers=self._workers, progress=self._progress)
            if config.validation_sequences:
                validation = dataclasses.replace(
                    config.synthetic,
                    num_sequences=config.validation_sequences,
                    seed=config.synthetic.seed + 1,
                )
                write_got10k(root, validation, "val", workers=self._workers, progress=self._progress)
            return self.source_datasets()
        return self.source_datasets(dl_manager.manual_dir)  # checked by keyed_config

    def _shard_iterators_per_split(
        self, dl_manager: tfds.download.DownloadManager
    ) -> dict[str, list[Callable[[], Iterator[tuple[int, dict]]]]]:
        config = self.builder_config
        self.info.metadata["curation"] = curation_settings(config)
        manual_dir = None if config.kind == "synthetic" else os.fspath(Path(dl_manager.manual_dir).resolve())
        self.info.metadata["source"] = {"fingerprint": config.source, "root": manual_dir}
        splits: dict[str, Any] = {}
        # Written to metadata.json once every split is generated.
        self.info.metadata["splits"] = splits
        return {
            split: _SplitWriter(
                dataset, config, splits, split, workers=self._workers, progress=self._progress
            ).shard_generators()
            for split, dataset in self._sequence_datasets(dl_manager).items()
        }


class _SplitWriter:
    """The examples of one split, shard by shard, from one pool of curation processes.

    TFDS calls the shard generators one after the other, in order; each takes the next
    ``sequences_per_shard`` sequences from a single :func:`curate_dataset` stream, and the last one
    records the split's sequence listing in ``listings[split]``.
    """

    def __init__(
        self,
        dataset: SequenceDataset,
        config: SiamfcCropsConfig,
        listings: dict[str, Any],
        split: str,
        workers: int | None,
        progress: bool,
    ) -> None:
        self._dataset = dataset
        self._config = config
        self._listings = listings
        self._split = split
        self._workers = workers
        self._progress = progress
        self._stream: Iterator[tuple[int, CuratedSequence]] | None = None
        self._next_shard = 0
        self._listing: dict[str, list] = {"names": [], "frames": [], "valid": []}

    def shard_generators(self) -> list[Callable[[], Iterator[tuple[int, dict]]]]:
        count = -(-len(self._dataset) // self._config.sequences_per_shard)
        return [functools.partial(self._shard, shard) for shard in range(count)]

    def _shard(self, shard: int) -> Iterator[tuple[int, dict]]:
        if shard != self._next_shard:
            raise RuntimeError(f"shard {shard} requested before shard {self._next_shard}: "
                               "siamfc_crops writes its shards in order, in one process")
        self._next_shard += 1
        if self._stream is None:
            self._stream = curate_dataset(
                self._dataset,
                self._config.pair,
                self._config.jpeg_quality,
                workers=self._workers,
                progress=self._progress,
            )
        per_shard = self._config.sequences_per_shard
        for index, curated in itertools.islice(self._stream, per_shard):
            self._listing["names"].append(curated.name)
            self._listing["frames"].append(runs(curated.frames))
            self._listing["valid"].append(runs(curated.frames[curated.valid]))
            for position, frame in enumerate(curated.frames):
                yield (index << _FRAME_BITS) | int(frame), {
                    "crop": curated.crops[position],
                    "box": curated.boxes[position],
                    "frame_box": curated.frame_boxes[position],
                    "sequence": index,
                    "name": curated.name,
                    "frame": int(frame),
                    "valid": bool(curated.valid[position]),
                }
        if self._next_shard * per_shard >= len(self._dataset):
            self._listings[self._split] = self._listing


def curation_settings(config: SiamfcCropsConfig) -> dict[str, Any]:
    """What every stored crop depends on besides its frame: the dataset's ``curation`` record."""
    return {
        "format": CURATION_FORMAT,
        "exemplar_sz": config.pair.exemplar_sz,
        "instance_sz": config.pair.instance_sz,
        "context": config.pair.context,
        "min_target_side": config.pair.min_target_side,
        "interpolation": _INTERPOLATION_NAMES[CURATION_INTERPOLATION],
        "jpeg_quality": config.jpeg_quality,
    }


def keyed_config(
    config: str | SiamfcCropsConfig, manual_dir: str | os.PathLike | None = None
) -> SiamfcCropsConfig:
    """``config`` named after what it is made from, so that another source is never read as this one.

    The name gets a digest of the source (``manual_dir``'s resolved path and the names, sizes and
    modification times of its files, see :mod:`siamfc_jax.pipeline.fingerprint`; for ``synthetic``
    the world's settings), the curation settings and the format versions: ``folder_3f2a...``.

    Raises:
        DataError: ``manual_dir`` is needed but not given, missing, empty or cannot be listed.
    """
    if isinstance(config, str):
        registered = {known.name: known for known in SiamfcCrops.BUILDER_CONFIGS}
        if config not in registered:
            raise ValueError(f"siamfc_crops has no config {config!r} (has {sorted(registered)})")
        config = registered[config]
    source: dict[str, Any] = {
        "kind": config.kind,
        "version": str(SiamfcCrops.VERSION),
        "curation": curation_settings(config),
        "sequences_per_shard": config.sequences_per_shard,
    }
    if config.kind == "synthetic":
        source["world"] = config_fingerprint(config.synthetic)
        source["sequences"] = (config.synthetic.num_sequences, config.validation_sequences)
    else:
        root = _source_root(config, manual_dir)
        source["root"] = os.fspath(root)
        source["files"] = listing_fingerprint(_source_folders(config.kind, root))
    digest = hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()
    return dataclasses.replace(config, name=f"{config.name}_{digest[:16]}", source=digest)


def _source_root(config: SiamfcCropsConfig, manual_dir: str | os.PathLike | None) -> Path:
    """The resolved source root, checked to be a folder with something in it."""
    expected = f"expected for {config.kind}: {expected_layout(config.kind)}"
    if manual_dir is None:
        raise DataError(f"siamfc_crops/{config.name}: the source dataset's root (manual_dir) is needed")
    root = Path(manual_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such directory ({expected})")
    if next(root.iterdir(), None) is None:
        raise DataError(f"{root}: an empty folder, no sequences in it ({expected})")
    return root.resolve()


def _source_folders(kind: str, root: Path) -> list[Path]:
    """The folders curation reads from the ``kind`` dataset at ``root`` (its splits, not its test set)."""
    if kind == "got10k":
        return [root / "train", root / "val"]
    if kind == "vid":
        return [root / part / "VID" / split for part in ("Data", "Annotations") for split in ("train", "val")]
    return [root]


def prepare(
    config: str | SiamfcCropsConfig = "synthetic",
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> SiamfcCrops:
    """Prepare a ``siamfc_crops`` config (a no-op when it is already prepared) and return its builder.

    The dataset is the one of :func:`keyed_config`: named after its source, its curation settings
    and the format versions, so a changed or another source gets a dataset of its own.

    Safe for processes that start together on one ``data_dir`` (one host, or hosts sharing a
    filesystem): they take turns on ``<data_dir>/siamfc_crops/<config>/.prepare.lock``, and TFDS
    writes a dataset into a temporary folder renamed when complete, so a half-written dataset is
    never taken for a prepared one.

    Args:
        config: a config name of :attr:`SiamfcCrops.BUILDER_CONFIGS` or a :class:`SiamfcCropsConfig`.
        data_dir: TFDS data directory (default: :func:`default_data_dir`).
        manual_dir: the source dataset's root for ``got10k``, ``vid`` and ``folder``.
        workers: curation processes (default: the available cores).
        progress: show progress bars.

    Raises:
        DataError: the source dataset is missing or malformed (the message names the file).
    """
    keyed = keyed_config(config, manual_dir)
    root = os.fspath(Path(data_dir).expanduser() if data_dir is not None else default_data_dir())
    # TFDS logs every custom config whole as an absl WARNING ("Using custom data configuration").
    quiet = _DropCustomConfigNote()
    logging.getLogger("absl").addFilter(quiet)
    try:
        probe = SiamfcCrops(config=keyed, data_dir=root)
        # Processes starting together (a multi-host run on a shared filesystem) take turns: the
        # first prepares, the others then find the dataset complete. The builder is made under the
        # lock, since it reads what is prepared when it is made.
        with exclusive_lock(Path(probe.data_dir).parent / ".prepare.lock"):
            builder = SiamfcCrops(config=keyed, data_dir=root, workers=workers, progress=progress)
            download_config = tfds.download.DownloadConfig(
                manual_dir=None if manual_dir is None else os.fspath(Path(manual_dir).expanduser())
            )
            builder.download_and_prepare(
                download_dir=os.fspath(builder.download_dir), download_config=download_config
            )
    finally:
        logging.getLogger("absl").removeFilter(quiet)
    made_from = (builder.info.metadata or {}).get("source", {}).get("fingerprint")
    if made_from != keyed.source:
        raise DataError(f"{builder.data_dir}: curated from another source than {manual_dir or 'synthetic'}")
    return builder


def default_data_dir() -> Path:
    """Where curated datasets live unless told otherwise: ``tfds`` in the project's cache folder."""
    return cache_dir() / "tfds"


class _DropCustomConfigNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Using custom data configuration")


def expected_layout(kind: str) -> str:
    """The layout ``kind`` expects under its root, on one line (from MANUAL_DOWNLOAD_INSTRUCTIONS)."""
    for paragraph in re.split(r"\n(?=- )", MANUAL_DOWNLOAD_INSTRUCTIONS):
        if paragraph.startswith(f"- {kind}:"):
            return " ".join(paragraph.removeprefix(f"- {kind}:").split())
    return " ".join(MANUAL_DOWNLOAD_INSTRUCTIONS.split())


def load_curated(
    dataset: str | os.PathLike | tfds.core.DatasetBuilder,
    split: str = "train",
    config: PairConfig = PairConfig(),
) -> CuratedCrops:
    """Open a prepared split for pair sampling.

    Args:
        dataset: a prepared builder, or its directory (``<data_dir>/siamfc_crops/<config>/<version>``).
        split: ``train`` or ``validation``.
        config: pair config; its crop geometry must match the dataset's.

    Raises:
        DataError: the directory holds no prepared dataset, or the dataset does not fit (see
            :class:`~siamfc_jax.pipeline.pairs.CuratedCrops`).
    """
    directory = Path(dataset.data_dir if isinstance(dataset, tfds.core.DatasetBuilder) else dataset)
    directory = directory.expanduser()
    if not (directory / "dataset_info.json").is_file():
        raise DataError(f"{directory}: no prepared TFDS dataset (dataset_info.json is missing)")
    # A read-only builder even when given this module's builder: worker processes unpickle the data
    # source, and with it its builder, which for SiamfcCrops would mean re-running its constructor.
    builder = tfds.builder_from_directory(os.fspath(directory))
    if split not in builder.info.splits:
        raise DataError(f"{builder.data_dir}: no split {split!r} (has {sorted(builder.info.splits)})")
    metadata = builder.info.metadata or {}
    return CuratedCrops(builder.as_data_source(split=split), metadata, split, config)


def with_crop_store(
    crops: CuratedCrops,
    dataset: str | os.PathLike | tfds.core.DatasetBuilder,
    max_bytes: int,
    threads: int | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> CuratedCrops:
    """``crops`` read from their split's decoded crop store (:mod:`siamfc_jax.pipeline.crop_store`,
    ``<dataset directory>/decoded/<split>.npy``), written first if needed, where the split takes at
    most ``max_bytes`` and fits on the disk; else ``crops`` as they are (decoding JPEG per pair).
    The pairs are the same either way. Logs the choice in one line.

    Args:
        crops: a split of the dataset, from :func:`load_curated`.
        dataset: the prepared builder, or its directory.
        max_bytes: the largest store to use, bytes (0: none).
        threads: decoding threads (default: the available cores).
        progress: show a progress bar while decoding.
        log: receives the line saying what was chosen.

    Raises:
        DataError: a record that does not decode to a crop of the split's shape.
        OutputError: the store cannot be written (other than for want of space).
    """
    directory = Path(dataset.data_dir if isinstance(dataset, tfds.core.DatasetBuilder) else dataset)
    store = open_or_write_store(
        directory.expanduser(), crops.split, crops.store_shape, crops.jpeg, max_bytes, threads, progress, log
    )
    return crops.with_store(store)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: prepare a ``siamfc_crops`` config; returns the exit status (:mod:`siamfc_jax.cli`)."""

    def body() -> int:
        parser = cli.ArgumentParser(
            prog="python -m siamfc_jax.pipeline.tfds_builder",
            description="Curate SiamFC training crops into the siamfc_crops TFDS dataset (array_record).",
        )
        names = [config.name for config in SiamfcCrops.BUILDER_CONFIGS]
        parser.add_argument("--config", choices=names, default="synthetic")
        parser.add_argument("--manual-dir", help="source dataset root (got10k, vid, folder)")
        parser.add_argument("--data-dir", help="TFDS data directory (default ~/.cache/siamfc_jax/tfds)")
        parser.add_argument(
            "--workers", type=cli.positive_integer, help="curation processes (default: CPU cores)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")
        args = parser.parse_args(argv)
        if args.config != "synthetic" and args.manual_dir is None:
            raise cli.UsageError(f"argument --manual-dir: --config {args.config} needs it")
        builder = prepare(
            args.config, args.data_dir, args.manual_dir, args.workers, progress=not args.no_progress
        )
        for split, info in builder.info.splits.items():
            print(f"{split}: {info.num_examples} crops")
        print(f"prepared in {builder.data_dir}")
        return cli.EXIT_OK

    return cli.run(body, (ValueError, OSError))


if __name__ == "__main__":
    from siamfc_jax.runtime import setup_process

    # NumPy, OpenCV and TFDS's writers only: nothing runs on JAX or XLA.
    setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)
    sys.exit(main())
