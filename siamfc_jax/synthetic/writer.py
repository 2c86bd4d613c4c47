"""Writing synthetic sequences to disk in GOT-10k layout, in parallel, resumably and atomically.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import secrets
import shutil
import socket
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from siamfc_jax.files import exclusive_lock, write_text_atomic
from siamfc_jax.runtime import available_cores
from siamfc_jax.synthetic.config import (
    ANNOTATION_FILES,
    FINGERPRINT_FILE,
    GENERATOR_VERSION,
    TEMP_MARKER,
    SyntheticConfig,
    SyntheticDataError,
    config_fingerprint,
    sequence_name,
)
from siamfc_jax.synthetic.render import RenderedSequence, render

# ---------------------------------------------------------------------------------------------------
# GOT-10k layout on disk.


def _frame_names(count: int) -> list[str]:
    return [f"{t + 1:08d}.jpg" for t in range(count)]


def _meta_info(config: SyntheticConfig, index: int, rendered: RenderedSequence, fingerprint: str) -> str:
    sizes = rendered.boxes[:, 2:]
    relative_speed = rendered.mean_speed / max(float(np.sqrt(sizes.prod(axis=1)).mean()), 1.0)
    # Line order matters: some GOT-10k readers take object_class .. motion_adverb from lines 6-10.
    lines = [
        "[METAINFO]",
        f"url: synthetic://siamfc_jax/seed={config.seed}/index={index}",
        "begin: 00:00:00",
        f"end: {len(rendered.frames)} frames",
        "anno_fps: 10Hz",
        f"object_class: {rendered.object_class}",
        f"motion_class: {rendered.motion_class}",
        "major_class: synthetic object",
        "root_class: synthetic",
        f"motion_adverb: {'quickly' if relative_speed > 0.1 else 'slowly'}",
        f"resolution: ({config.frame_size[0]}, {config.frame_size[1]})",
        f"generator: siamfc_jax.synthetic v{GENERATOR_VERSION}",
        f"fingerprint: {fingerprint}",
    ]
    return "\n".join(lines) + "\n"


def _labels_text(values: np.ndarray) -> str:
    return "".join(f"{int(v)}\n" for v in values)


def sequence_complete(sequence_dir: Path, frame_count: int, fingerprint: str) -> bool:
    """Whether a sequence folder holds every file of a finished sequence of this config."""
    try:
        present = set(os.listdir(sequence_dir))
        meta = (sequence_dir / "meta_info.ini").read_text()
    except OSError:
        return False
    expected = set(_frame_names(frame_count)) | set(ANNOTATION_FILES)
    return expected <= present and f"\nfingerprint: {fingerprint}\n" in meta


def _unique_suffix() -> str:
    """A temporary-name suffix no other writer uses: host, process and a random token (process ids
    repeat across hosts sharing a filesystem)."""
    return f"{TEMP_MARKER}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def write_sequence_dir(
    parent: Path, name: str, config: SyntheticConfig, index: int, fingerprint: str
) -> None:
    """Render sequence ``index`` into ``parent/name`` atomically: a temporary folder renamed at the end."""
    rendered = render(config, index)
    final = parent / name
    temporary = parent / f".{name}{_unique_suffix()}"
    temporary.mkdir()
    for frame_name, frame, quality in zip(
        _frame_names(len(rendered.frames)), rendered.frames, rendered.jpeg_quality, strict=True
    ):
        path = temporary / frame_name
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
            raise OSError(f"{path}: OpenCV could not write this JPEG file")
    boxes_text = "".join(f"{x:.4f},{y:.4f},{w:.4f},{h:.4f}\n" for x, y, w, h in rendered.boxes)
    (temporary / "groundtruth.txt").write_text(boxes_text)
    (temporary / "absence.label").write_text(_labels_text(rendered.absence))
    (temporary / "cover.label").write_text(_labels_text(rendered.cover))
    (temporary / "cut_by_image.label").write_text(_labels_text(rendered.cut_by_image))
    (temporary / "meta_info.ini").write_text(_meta_info(config, index, rendered, fingerprint))
    if final.exists():  # an incomplete or outdated folder: replace it
        stale = parent / f".{name}.stale{_unique_suffix()}"
        os.rename(final, stale)
        shutil.rmtree(stale)
    os.rename(temporary, final)


def _write_sequence(subset_dir: str, config: SyntheticConfig, index: int, fingerprint: str) -> int:
    write_sequence_dir(Path(subset_dir), sequence_name(index), config, index, fingerprint)
    return index


def _init_worker() -> None:
    # One process per core already; OpenCV's own threads would only oversubscribe the cores.
    cv2.setNumThreads(1)


def _claim_subset_dir(subset_dir: Path, config: SyntheticConfig, fingerprint: str) -> None:
    """Create ``subset_dir`` or check that it holds synthetic data of this very config."""
    fingerprint_path = subset_dir / FINGERPRINT_FILE
    if fingerprint_path.is_file():
        try:
            recorded = json.loads(fingerprint_path.read_text()).get("fingerprint")
        except (OSError, ValueError, AttributeError) as error:
            raise SyntheticDataError(f"{fingerprint_path}: unreadable ({error})") from error
        if recorded != fingerprint:
            raise SyntheticDataError(
                f"{subset_dir} holds synthetic data of a different configuration (see "
                f"{fingerprint_path}); write to another directory or delete this one"
            )
        return
    if (subset_dir / "list.txt").exists():
        raise SyntheticDataError(
            f"{subset_dir} holds a dataset that this generator did not write (list.txt without "
            f"{FINGERPRINT_FILE}); refusing to write into it"
        )
    for sibling in subset_dir.parent.glob(f"*/{FINGERPRINT_FILE}"):
        try:
            sibling_seed = json.loads(sibling.read_text())["config"]["seed"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if sibling_seed == config.seed:
            raise SyntheticDataError(
                f"{sibling.parent} already holds synthetic sequences of seed {config.seed}; "
                f"use another seed for subset {subset_dir.name!r} so that the subsets do not overlap"
            )
    subset_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "generator": "siamfc_jax.synthetic",
        "version": GENERATOR_VERSION,
        "fingerprint": fingerprint,
        "config": dataclasses.asdict(config),
    }
    write_text_atomic(fingerprint_path, json.dumps(record, indent=2) + "\n")


def remove_temporaries(parent: Path, name: str = "") -> None:
    """Delete what interrupted runs left in ``parent``: hidden files and folders with the temporary
    marker in their name (only those of entry ``name`` when given)."""
    for path in parent.glob(f".{name}*{TEMP_MARKER}*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_got10k(
    root: str | os.PathLike,
    config: SyntheticConfig,
    subset: str = "train",
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write ``config.num_sequences`` synthetic sequences in GOT-10k layout under ``root/subset``.

    Resumable and idempotent: sequences already complete are kept untouched, missing or incomplete
    ones are (re)generated, identically since a sequence depends only on ``(config, index)``; raising
    ``num_sequences`` later adds sequences. Each sequence is written to a temporary folder that is
    renamed into place when complete, and ``list.txt`` is written last, atomically, so a dataset with a
    ``list.txt`` is complete. A fingerprint of the config (``synthetic_config.json``) guards the folder:
    writing a different config (other than ``num_sequences``) into it raises
    :class:`SyntheticDataError` rather than mixing data, as does writing a subset with a seed that a
    sibling subset of ``root`` already uses (the subsets would share sequences). Writers of the same
    subset at once (processes of a multi-host run sharing a filesystem) take turns on a lock file,
    ``root/.<subset>.lock``: the first writes, the next finds the sequences complete.

    Args:
        root: dataset root (created if needed).
        config: what to generate.
        subset: sub-folder name, ``"train"``, ``"val"`` or ``"test"`` for GOT-10k readers.
        workers: processes generating sequences in parallel (default: the usable CPU cores).
        progress: show a tqdm progress bar on stderr.

    Returns:
        The subset folder ``root/subset``.
    """
    if not subset or subset in (".", "..") or "/" in subset or os.sep in subset:
        raise SyntheticDataError(f"subset must be a plain folder name, got {subset!r}")
    if workers is not None and workers < 1:
        raise SyntheticDataError(f"workers must be >= 1, got {workers}")
    subset_dir = Path(root) / subset
    with exclusive_lock(Path(root) / f".{subset}.lock"):
        _write_subset(subset_dir, config, workers, progress)
    return subset_dir


def _write_subset(subset_dir: Path, config: SyntheticConfig, workers: int | None, progress: bool) -> None:
    """:func:`write_got10k`'s work, done while holding the subset's lock."""
    subset = subset_dir.name
    fingerprint = config_fingerprint(config)
    _claim_subset_dir(subset_dir, config, fingerprint)
    remove_temporaries(subset_dir)  # left by interrupted writers: no other writer holds the lock

    count = config.num_sequences
    pending = [
        index
        for index in range(count)
        if not sequence_complete(subset_dir / sequence_name(index), config.frames_per_sequence, fingerprint)
    ]
    workers = min(workers or available_cores(), max(len(pending), 1))
    with tqdm(
        total=count,
        initial=count - len(pending),
        desc=f"synthetic {subset}",
        unit="seq",
        disable=not progress,
    ) as bar:
        if workers == 1:
            for index in pending:
                _write_sequence(str(subset_dir), config, index, fingerprint)
                bar.update()
        else:
            # spawn, not fork: the caller may be a multi-threaded JAX process, which fork would copy
            # in an inconsistent state.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
                futures = [
                    pool.submit(_write_sequence, str(subset_dir), config, index, fingerprint)
                    for index in pending
                ]
                for future in as_completed(futures):
                    future.result()
                    bar.update()
    write_text_atomic(subset_dir / "list.txt", "".join(f"{sequence_name(i)}\n" for i in range(count)))
