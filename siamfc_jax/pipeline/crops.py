"""Square crops around a target, resized (host, NumPy/OpenCV): siamfc-pytorch's ``crop_and_resize``.

This is the reference that the device crop (:mod:`siamfc_jax.ops.crop`) is tested against, and the
crop used when curating training pairs. The fill colour of pixels outside the frame is
:func:`siamfc_jax.sequences.frames.average_color`. Coordinates are 0-indexed pixels, centres as ``[y, x]``.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import ArrayLike


def crop_window(center_yx: ArrayLike, size: float) -> tuple[int, int, int]:
    """The frame pixels that :func:`crop_and_resize` takes: ``(top, left, side)``.

    Rows ``top .. top + side - 1`` and columns ``left .. left + side - 1`` (0-indexed, possibly
    outside the frame): ``side = round(size)`` (half to even, at least 1) and
    ``top, left = round(center_yx - (side - 1) / 2)``.
    """
    side = max(int(np.round(size)), 1)
    top, left = np.round(np.asarray(center_yx, np.float64) - (side - 1) / 2).astype(np.int64)
    return int(top), int(left), side


def crop_and_resize(
    image: np.ndarray,
    center_yx: ArrayLike,
    size: float,
    out_size: int,
    border_value: ArrayLike,
    interpolation: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """Cut the square of side ``size`` centred on ``center_yx`` from ``image`` and resize it.

    Args:
      image: (H, W, 3) uint8 frame.
      center_yx: centre ``[y, x]`` in 0-indexed pixels.
      size: side of the square in pixels; rounded half to even (NumPy's ``round``), at least 1.
      out_size: side of the returned patch in pixels.
      border_value: colour (3,) or scalar of the pixels outside the frame, rounded half to even to
        uint8 as OpenCV does when padding a uint8 image with a float colour.
      interpolation: OpenCV interpolation flag of the resize.

    Returns:
      (out_size, out_size, 3) uint8 patch.

    The square is :func:`crop_window`'s. siamfc-pytorch pads the whole frame before slicing;
    building the square from the part inside the frame and the border colour gives the same pixels.
    """
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, C) uint8, got {image.dtype} {image.shape}")
    y0, x0, side = crop_window(center_yx, size)
    border = np.broadcast_to(np.asarray(border_value, np.float64), image.shape[2:])
    fill = np.clip(np.rint(border), 0, 255).astype(np.uint8)
    patch = np.full((side, side, image.shape[2]), fill, np.uint8)

    height, width = image.shape[:2]
    rows = slice(max(y0, 0), min(y0 + side, height))
    cols = slice(max(x0, 0), min(x0 + side, width))
    if rows.start < rows.stop and cols.start < cols.stop:
        patch[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0] = image[rows, cols]
    return cv2.resize(patch, (out_size, out_size), interpolation=interpolation)
