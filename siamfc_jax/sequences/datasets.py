"""Dataset roots: lists of tracking sequences read lazily by index.

- :class:`GOT10k`: ``root/<subset>/list.txt`` naming GOT-10k sequence folders;
- :class:`ImageNetVID`: ILSVRC2015 VID, one sequence per (snippet, track id);
- :class:`SequenceFolder`: any folder whose subfolders are OTB, LaSOT, GOT-10k or VOT sequences.

:func:`open_dataset` builds one from a ``KIND[/SUBSET]:DIR`` string. Datasets are never written to;
ImageNet VID's parsed annotation index may be cached in a separate ``cache_dir``.
"""

from __future__ import annotations

import abc
import hashlib
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from siamfc_jax.files import atomic_path
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.readers import is_sequence_dir, open_sequence, read_got10k
from siamfc_jax.sequences.sequence import Sequence

# Parsing fewer annotation files than this is quick enough not to need a progress bar.
_PROGRESS_MIN_FILES = 1000
_VID_CACHE_VERSION = 1


class SequenceDataset(abc.ABC):
    """An ordered, indexable collection of :class:`Sequence` objects, each built on access."""

    @property
    @abc.abstractmethod
    def names(self) -> tuple[str, ...]:
        """Sequence names in dataset order."""

    @abc.abstractmethod
    def _read(self, index: int) -> Sequence:
        """Build sequence ``index`` (0 <= index < len(self))."""

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, key: int | str) -> Sequence:
        """Sequence by position (negative counts from the end) or by name.

        Raises:
            IndexError: position out of range.
            KeyError: no sequence has that name.
        """
        if isinstance(key, str):
            try:
                position = self.names.index(key)
            except ValueError:
                raise KeyError(key) from None
            return self._read(position)
        count = len(self)
        if not -count <= key < count:
            raise IndexError(f"sequence index {key} out of range for {count} sequences")
        return self._read(key % count)

    def __iter__(self) -> Iterator[Sequence]:
        for index in range(len(self)):
            yield self._read(index)


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise DataError(f"{path}: no such directory ({what})")


class GOT10k(SequenceDataset):
    """GOT-10k split ``root/<subset>``: the sequences named in its ``list.txt`` (else all subfolders).

    Raises:
        DataError: unknown subset, or the root or split folder is missing.
    """

    SUBSETS = ("train", "val", "test")

    def __init__(self, root: str | os.PathLike, subset: str = "train") -> None:
        if subset not in self.SUBSETS:
            raise DataError(f"GOT-10k subset must be one of {self.SUBSETS}, got {subset!r}")
        self.root = Path(root)
        self.subset = subset
        _require_dir(self.root, "GOT-10k root")
        self.directory = self.root / subset
        _require_dir(self.directory, f"GOT-10k {subset} split")
        list_file = self.directory / "list.txt"
        if list_file.is_file():
            try:
                lines = list_file.read_text(encoding="utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError) as error:
                raise DataError(f"{list_file}: cannot be read ({error})") from None
            names = [line.strip() for line in lines if line.strip()]
        else:
            with os.scandir(self.directory) as entries:
                names = sorted(entry.name for entry in entries if entry.is_dir())
        if not names:
            raise DataError(f"{self.directory}: no GOT-10k sequences listed or found")
        self._names = tuple(names)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def _read(self, index: int) -> Sequence:
        return read_got10k(self.directory / self._names[index])


class SequenceFolder(SequenceDataset):
    """The annotated sequence folders (OTB, LaSOT, GOT-10k, VOT layouts) directly inside ``root``.

    Other entries (files such as GOT-10k's ``list.txt``, unannotated folders) are skipped. Sequences
    are sorted by folder name.

    Raises:
        DataError: ``root`` is missing or holds no sequence folder.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        _require_dir(self.root, "folder of sequences")
        with os.scandir(self.root) as entries:
            names = sorted(
                entry.name for entry in entries if entry.is_dir() and is_sequence_dir(entry.path)
            )
        if not names:
            raise DataError(
                f"{self.root}: no sequence folders (OTB, LaSOT, GOT-10k or VOT layout) inside"
            )
        self._names = tuple(names)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def _read(self, index: int) -> Sequence:
        return open_sequence(self.root / self._names[index])


@dataclass(frozen=True, eq=False)
class _VIDIndex:
    """Parsed ImageNet VID annotations: sequences concatenated into flat arrays.

    Sequence ``i`` has frames ``offsets[i]:offsets[i + 1]`` of ``stems`` (frame file names without
    suffix, inside ``snippets[i]``) and of ``boxes`` ((F, 4) float64, 1-indexed ``[x, y, w, h]``).
    """

    names: np.ndarray
    snippets: np.ndarray
    classes: np.ndarray
    offsets: np.ndarray
    stems: np.ndarray
    boxes: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


def _xml_number(element: ElementTree.Element, tag: str, path: str) -> float:
    text = element.findtext(tag)
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{path}: <{tag}> is missing or not a number ({text!r})") from None


def _parse_vid_annotations(annotation_dir: Path, subset: str) -> _VIDIndex:
    """Parse every ``*.xml`` under ``annotation_dir`` into one sequence per (snippet, track id).

    Boxes follow the GOT-10k toolkit's reading of VID: ``x = xmin, y = ymin, w = xmax - xmin + 1,
    h = ymax - ymin + 1``. Frames where the object is not annotated are left out of its sequence.
    """
    snippets: list[tuple[str, list[str]]] = []
    for dirpath, dirnames, filenames in os.walk(annotation_dir):
        dirnames.sort()
        xml_files = sorted(name for name in filenames if name.endswith(".xml"))
        if xml_files:
            snippets.append((Path(dirpath).relative_to(annotation_dir).as_posix(), xml_files))
    total = sum(len(files) for _, files in snippets)
    names: list[str] = []
    snippet_of: list[str] = []
    classes: list[str] = []
    offsets = [0]
    stems: list[str] = []
    boxes: list[list[float]] = []
    with tqdm(
        total=total,
        desc=f"parsing ImageNet VID {subset} annotations",
        unit="xml",
        disable=total < _PROGRESS_MIN_FILES,
    ) as progress:
        for snippet, xml_files in snippets:
            tracks: dict[int, tuple[list[str], list[list[float]], str]] = {}
            for file_name in xml_files:
                path = str(annotation_dir / snippet / file_name)
                try:
                    root = ElementTree.parse(path).getroot()
                except ElementTree.ParseError as error:
                    raise DataError(f"{path}: malformed XML ({error})") from None
                except OSError as error:
                    raise DataError(f"{path}: cannot be read ({error})") from None
                for element in root.iter("object"):
                    trackid = _xml_number(element, "trackid", path)
                    bndbox = element.find("bndbox")
                    if bndbox is None or not trackid.is_integer():
                        raise DataError(f"{path}: <object> without <bndbox> or integer <trackid>")
                    xmin, ymin, xmax, ymax = (
                        _xml_number(bndbox, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax")
                    )
                    track = tracks.setdefault(int(trackid), ([], [], element.findtext("name", "")))
                    track[0].append(file_name[: -len(".xml")])
                    track[1].append([xmin, ymin, xmax - xmin + 1, ymax - ymin + 1])
                progress.update(1)
            base = snippet.rsplit("/", 1)[-1]
            for trackid in sorted(tracks):
                track_stems, track_boxes, wnid = tracks[trackid]
                names.append(f"{base}.{trackid}")
                snippet_of.append(snippet)
                classes.append(wnid)
                stems.extend(track_stems)
                boxes.extend(track_boxes)
                offsets.append(len(stems))
    return _VIDIndex(
        names=np.array(names, dtype=str),
        snippets=np.array(snippet_of, dtype=str),
        classes=np.array(classes, dtype=str),
        offsets=np.array(offsets, dtype=np.int64),
        stems=np.array(stems, dtype=str),
        boxes=np.array(boxes, dtype=np.float64).reshape(-1, 4),
    )


def _load_vid_cache(cache_file: Path, annotation_dir: Path) -> _VIDIndex | None:
    """The cached index if the file exists and was made from ``annotation_dir`` by this version."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            if (
                int(data["version"]) != _VID_CACHE_VERSION
                or str(data["annotation_dir"]) != str(annotation_dir)
            ):
                return None
            return _VIDIndex(**{item.name: data[item.name] for item in fields(_VIDIndex)})
    except (OSError, KeyError, ValueError):
        # A cache is derived data: an unreadable one is rebuilt from the annotations.
        return None


def _save_vid_cache(cache_file: Path, annotation_dir: Path, index: _VIDIndex) -> None:
    """Write the index atomically (:func:`siamfc_jax.files.atomic_path`)."""
    with atomic_path(cache_file) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(
            handle,
            version=np.array(_VID_CACHE_VERSION),
            annotation_dir=np.array(str(annotation_dir)),
            **index.arrays(),
        )


class ImageNetVID(SequenceDataset):
    """ImageNet VID 2015 (ILSVRC2015 layout): one sequence per (snippet, track id).

    Frames are ``root/Data/VID/<subset>/<snippet>/<frame>.JPEG`` and annotations
    ``root/Annotations/VID/<subset>/<snippet>/<frame>.xml``; train snippets sit one level deeper, in
    ``ILSVRC2015_VID_train_000X/``. A sequence is named ``<snippet>.<trackid>`` and holds only the
    frames in which that object is annotated. ``meta`` has ``snippet``, ``trackid`` and ``class``
    (WordNet id).

    Args:
        root: the ILSVRC2015 folder (containing ``Data`` and ``Annotations``).
        subset: ``"train"`` or ``"val"``.
        cache_dir: folder in which to keep the parsed annotation index (an ``.npz`` named after the
            subset and a hash of the annotation folder), reused by later runs; None parses every time.
            Delete the file after changing the dataset.

    Raises:
        DataError: unknown subset, missing folders, malformed XML (naming the file).
    """

    SUBSETS = ("train", "val")

    def __init__(
        self,
        root: str | os.PathLike,
        subset: str = "train",
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        if subset not in self.SUBSETS:
            raise DataError(f"ImageNet VID subset must be one of {self.SUBSETS}, got {subset!r}")
        self.root = Path(root)
        self.subset = subset
        _require_dir(self.root, "ImageNet VID root")
        self.data_dir = self.root / "Data" / "VID" / subset
        self.annotation_dir = self.root / "Annotations" / "VID" / subset
        _require_dir(self.data_dir, f"ImageNet VID {subset} frames")
        _require_dir(self.annotation_dir, f"ImageNet VID {subset} annotations")
        absolute = self.annotation_dir.resolve()
        index = None
        cache_file = None
        if cache_dir is not None:
            digest = hashlib.sha1(str(absolute).encode()).hexdigest()[:12]
            cache_file = Path(cache_dir) / f"imagenet_vid_{subset}_{digest}.npz"
            index = _load_vid_cache(cache_file, absolute)
        if index is None:
            index = _parse_vid_annotations(self.annotation_dir, subset)
            if cache_file is not None:
                _save_vid_cache(cache_file, absolute, index)
        if len(index.names) == 0:
            raise DataError(f"{self.annotation_dir}: no annotated objects found")
        self._index = index
        self._names = tuple(str(name) for name in index.names)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def _read(self, index: int) -> Sequence:
        vid = self._index
        start, stop = int(vid.offsets[index]), int(vid.offsets[index + 1])
        snippet = str(vid.snippets[index])
        frames_dir = self.data_dir / snippet
        return Sequence(
            name=self._names[index],
            frames=tuple(str(frames_dir / f"{stem}.JPEG") for stem in vid.stems[start:stop]),
            boxes=vid.boxes[start:stop],
            meta={
                "snippet": snippet,
                "trackid": self._names[index].rsplit(".", 1)[1],
                "class": str(vid.classes[index]),
            },
            source=str(frames_dir),
            annotation=str(self.annotation_dir / snippet),
        )


DATASET_KINDS = ("got10k", "vid", "folder")


def open_dataset(spec: str, cache_dir: str | os.PathLike | None = None) -> SequenceDataset:
    """Open a dataset from ``KIND[/SUBSET]:DIR``.

    ``got10k:DIR`` (GOT-10k root; subset train, or ``got10k/val:DIR``, ``got10k/test:DIR``),
    ``vid:DIR`` (ILSVRC2015 root; subset train, or ``vid/val:DIR``), ``folder:DIR`` (a folder of
    sequence folders, no subset). ``cache_dir`` is passed to :class:`ImageNetVID`.

    Raises:
        DataError: malformed spec, unknown kind or subset, or a missing folder.
    """
    kind, subset, directory = parse_dataset_spec(spec)
    if kind == "got10k":
        return GOT10k(directory, subset or "train")
    if kind == "vid":
        return ImageNetVID(directory, subset or "train", cache_dir=cache_dir)
    return SequenceFolder(directory)


def parse_dataset_spec(spec: str) -> tuple[str, str, str]:
    """``KIND[/SUBSET]:DIR`` -> ``(kind, subset, DIR)``; ``subset`` is ``""`` when not given.

    Raises:
        DataError: malformed spec, a kind not in :data:`DATASET_KINDS`, or a subset of a folder.
    """
    head, colon, directory = spec.partition(":")
    kind, _, subset = head.partition("/")
    if not colon or not directory or kind not in DATASET_KINDS:
        raise DataError(
            f"dataset {spec!r}: expected KIND[/SUBSET]:DIR with KIND one of {DATASET_KINDS}, "
            "e.g. got10k:/data/GOT-10k, vid/val:/data/ILSVRC2015, folder:/data/OTB100"
        )
    if kind == "folder" and subset:
        raise DataError(f"dataset {spec!r}: folder datasets have no subset")
    return kind, subset, directory
