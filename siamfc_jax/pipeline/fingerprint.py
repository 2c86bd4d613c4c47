"""Cheap fingerprints of source datasets on disk: what a derived dataset was made from.

A fingerprint covers the names, sizes and modification times of every file under the given
folders (frames and annotation files alike), read from the directory listings without opening a
file: adding, removing, renaming, rewriting or touching any of them changes it, and so does
moving the dataset elsewhere (the resolved path is part of it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from siamfc_jax.sequences.frames import DataError


def listing_fingerprint(directories: Iterable[Path]) -> str:
    """Hex digest of the file listings under ``directories`` (missing ones count as missing).

    Raises:
        DataError: a folder cannot be listed (the message names it).
    """
    digest = hashlib.sha256()
    for directory in directories:
        resolved = Path(directory).expanduser().resolve()
        digest.update(f"root {resolved} {resolved.is_dir()}\n".encode())
        if resolved.is_dir():
            _hash_tree(resolved, digest)
    return digest.hexdigest()


def _hash_tree(root: Path, digest: hashlib._Hash) -> None:
    """Add ``(relative path, size, mtime)`` of every file under ``root`` to ``digest``, in name order.

    Symbolic links are followed (datasets are often assembled from links); a folder reached twice
    through links is listed once, so a link cycle ends.
    """
    seen: set[tuple[int, int]] = set()
    prefix = len(os.fspath(root)) + 1
    pending = [root]
    while pending:
        directory = pending.pop()
        status = directory.stat()
        if (status.st_dev, status.st_ino) in seen:
            continue
        seen.add((status.st_dev, status.st_ino))
        try:
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            raise DataError(f"{directory}: cannot be listed ({error.strerror or error})") from None
        folders, lines = [], []
        for entry in entries:
            relative = entry.path[prefix:]
            try:
                if entry.is_dir():
                    folders.append(Path(entry.path))
                    continue
                stat = entry.stat()
                lines.append(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n")
            except OSError:  # a dangling link: its presence still counts
                lines.append(f"{relative}\0unreadable\n")
        digest.update("".join(lines).encode())
        # Reversed onto a stack, so folders are walked in name order.
        pending.extend(reversed(folders))
