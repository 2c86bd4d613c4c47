"""Annotation files of the tracking benchmarks: boxes, VOT polygons, GOT-10k labels and meta data.

Malformed files raise :class:`~siamfc_jax.sequences.frames.DataError` naming the file and line.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from siamfc_jax.sequences.frames import DataError

_SEPARATORS = re.compile(r"[,\s]+")
# ----------------------------------------------------------------------------- annotation files


def read_lines(path: Path) -> list[str]:
    """Lines of a text file, trailing blank lines dropped (a final newline is common)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot be read as text ({error})") from None
    return text.rstrip().splitlines()


def _tokens(path: Path, line_number: int, line: str) -> list[str]:
    stripped = line.strip(" \t\r\n,")
    if not stripped:
        raise DataError(f"{path}:{line_number}: empty line")
    return _SEPARATORS.split(stripped)


def _number_rows(path: Path, widths: tuple[int, ...]) -> list[list[float]]:
    """Rows of numbers, one per line; each must have one of ``widths`` values (NaN allowed)."""
    rows = []
    for line_number, line in enumerate(read_lines(path), start=1):
        tokens = _tokens(path, line_number, line)
        try:
            values = [float(token) for token in tokens]
        except ValueError:
            hint = " (VOT segmentation masks are not supported)" if line.startswith("m") else ""
            raise DataError(
                f"{path}:{line_number}: non-numeric value in {line.strip()!r}{hint}"
            ) from None
        if len(values) not in widths:
            expected = " or ".join(str(width) for width in widths)
            raise DataError(
                f"{path}:{line_number}: expected {expected} numbers, found {len(values)} "
                f"in {line.strip()!r}"
            )
        if any(math.isinf(value) for value in values):
            raise DataError(f"{path}:{line_number}: infinite value in {line.strip()!r}")
        rows.append(values)
    return rows


def read_boxes(path: str | os.PathLike) -> np.ndarray:
    """Read a box file: one ``x, y, w, h`` per line separated by commas, tabs or spaces.

    Returns:
        (N, 4) float64 boxes as written (1-indexed pixels for OTB/GOT-10k/LaSOT); NaN stays NaN.

    Raises:
        DataError: missing file, or a line with a count of numbers other than 4 or a non-number;
            the message gives ``file:line``.
    """
    rows = _number_rows(Path(path), (4,))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def polygons_to_rects(polygons: ArrayLike) -> np.ndarray:
    """Axis-aligned rectangles spanning polygons.

    Args:
        polygons: (N, 2K) ``x1, y1, ..., xK, yK`` in pixels.

    Returns:
        (N, 4) float64 ``[min x, min y, max x - min x, max y - min y]``.
    """
    points = np.asarray(polygons, dtype=np.float64)
    xs, ys = points[:, 0::2], points[:, 1::2]
    left, top = xs.min(axis=1), ys.min(axis=1)
    return np.stack([left, top, xs.max(axis=1) - left, ys.max(axis=1) - top], axis=1)


def read_vot_boxes(path: str | os.PathLike) -> np.ndarray:
    """Read a VOT ``groundtruth.txt``: per line a rectangle ``x,y,w,h`` or a polygon ``x1,y1,...,y4``.

    Polygons become the axis-aligned rectangle spanning them (:func:`polygons_to_rects`).

    Returns:
        (N, 4) float64 boxes.
    """
    rows = _number_rows(Path(path), (4, 8))
    boxes = np.empty((len(rows), 4), dtype=np.float64)
    for index, values in enumerate(rows):
        if len(values) == 8:
            boxes[index] = polygons_to_rects(np.array([values]))[0]
        else:
            boxes[index] = values
    return boxes


def read_labels(path: Path, allowed: range) -> np.ndarray:
    """Integer labels, one per line or separated by commas/whitespace on one or more lines."""
    labels = []
    for line_number, line in enumerate(read_lines(path), start=1):
        for token in _tokens(path, line_number, line):
            try:
                label = int(token)
            except ValueError:
                label = None
            if label not in allowed:
                raise DataError(
                    f"{path}:{line_number}: label {token!r} is not an integer in "
                    f"{allowed.start}..{allowed.stop - 1}"
                )
            labels.append(label)
    return np.array(labels, dtype=np.int64)


def read_meta(path: Path) -> dict[str, str]:
    """``key: value`` lines of a GOT-10k ``meta_info.ini`` (section headers and other lines skipped)."""
    meta = {}
    for line in read_lines(path):
        key, colon, value = line.partition(":")
        if colon and key.strip() and not line.lstrip().startswith(("[", "#", ";")):
            meta[key.strip()] = value.strip()
    return meta


def check_length(path: Path, values: np.ndarray, expected: int, of_what: str) -> None:
    if len(values) != expected:
        raise DataError(f"{path}: {len(values)} labels for {expected} {of_what}")
