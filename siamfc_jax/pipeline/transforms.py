"""Training augmentations of a curated crop (siamfc-pytorch's ``SiamFCTransforms``), host NumPy/OpenCV.

Both images of a pair start as an ``instance_sz`` (255) square crop centred on the target
(:mod:`siamfc_jax.pipeline.curate`). The search image is: random stretch (scale ``1 + U(-0.05, 0.05)``,
a random interpolation), centre crop to ``instance_sz - 8`` (247), random crop to ``instance_sz - 16``
(239). The exemplar goes through the same steps, with its own random draws, and then a centre crop to
``exemplar_sz`` (127). The random crop moves the target by up to 4 pixels either way from the image
centre, which teaches the network that the target is not always in the middle. The exemplar's
stretch is computed only over the part of the crop its window reads (:func:`stretched_window`), with
the same draws and the same pixels as stretching the whole crop.

Optional, off by default as in siamfc-pytorch (``PairConfig``):

- colour augmentation (``color_jitter``): the original SiamFC training code adds a random colour
  offset along the principal components of the RGB values (AlexNet's "PCA lighting"). Implemented
  here with ImageNet's RGB principal components (AlexNet's) instead of ones computed from the
  training set: each image gets ``255 * eigvec @ (alpha * eigval)``, ``alpha ~ N(0, 0.1)`` per
  component, drawn independently for the exemplar and the search image, added to every pixel and
  clipped to 0..255.
- random grayscale (``grayscale_prob``): with this probability per pair, both images become grey
  (ITU-R 601 luma, OpenCV's ``RGB2GRAY``), repeated in the three channels.

All random draws come from the ``numpy.random.Generator`` passed in, so a pair is reproducible from
its generator's seed.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from siamfc_jax.config import PairConfig

# The interpolations siamfc-pytorch draws from, uniformly, for every crop and stretch.
INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)
# siamfc-pytorch's translation margin: the centre crop removes it once, the random crop once more.
SHIFT_MARGIN = 8
# AlexNet's principal components of ImageNet RGB values (in 0..1 units): eigenvalues and the matching
# eigenvectors (columns), R, G, B rows.
PCA_EIGENVALUES = np.array([0.2175, 0.0188, 0.0045])
PCA_EIGENVECTORS = np.array(
    [
        [-0.5675, 0.7192, 0.4009],
        [-0.5808, -0.0045, -0.8140],
        [-0.5836, -0.6948, 0.4203],
    ]
)
PCA_ALPHA_STD = 0.1


# Source pixels that one output pixel of the stretch reads beyond its sample point, at most, over
# INTERPOLATIONS (Lanczos-4: 4; area when shrinking by up to 1 / 0.5: 2), plus one for rounding.
STRETCH_REACH = 5


def stretch_draw(
    shape: tuple[int, ...], rng: np.random.Generator, max_stretch: float
) -> tuple[int, tuple[int, int]]:
    """The random stretch's draws: ``(interpolation, (width, height))`` for an image of ``shape`` (H, W, ..).

    The interpolation is drawn from INTERPOLATIONS, then the scale ``1 + U(-max_stretch, max_stretch)``;
    the new size is ``round(side * scale)`` per axis (half to even, Python's ``round``).
    """
    interpolation = INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))]
    scale = 1.0 + rng.uniform(-max_stretch, max_stretch)
    height, width = shape[:2]
    return interpolation, (round(width * scale), round(height * scale))


def random_stretch(image: np.ndarray, rng: np.random.Generator, max_stretch: float) -> np.ndarray:
    """Resize to :func:`stretch_draw`'s size with its interpolation."""
    interpolation, size = stretch_draw(image.shape, rng, max_stretch)
    return cv2.resize(image, size, interpolation=interpolation)


def stretched_window(
    image: np.ndarray, size: tuple[int, int], interpolation: int, top: int, left: int, side: int
) -> np.ndarray:
    """``cv2.resize(image, size, interpolation=interpolation)[top:top + side, left:left + side]``, pixel
    for pixel, resizing only the image's first rows and columns that the window reads.

    OpenCV maps output pixel ``d`` to source coordinate ``(d + 0.5) * source / output - 0.5`` and
    interpolates it from its own neighbours, so resizing the first ``k`` rows and columns with the
    same ratios (``fx``, ``fy``) gives the same pixels wherever their neighbours lie within those
    ``k``: :data:`STRETCH_REACH` past the window's last sample point. Shown for nearest, linear,
    area and Lanczos-4 by tests/test_pairs.py; cubic is resized whole (below). Requires a window
    inside the resized image.

    Args:
        image: (H, W, C) uint8.
        size: ``(width, height)`` of the whole resized image, pixels.
        interpolation: OpenCV interpolation flag.
        top, left: the window's corner in resized pixels; side: its side in pixels.

    Returns:
        (side, side, C) uint8 view.
    """
    height, width = image.shape[:2]
    if interpolation == cv2.INTER_CUBIC:
        # OpenCV's cubic resize of a part differs from the whole's in a few pixels (about 1 window
        # in 20 when shrinking by half, none seen at 5 % stretch): cubic is resized whole.
        return cv2.resize(image, size, interpolation=interpolation)[top : top + side, left : left + side]
    rows = min(height, math.ceil((top + side) * height / size[1]) + STRETCH_REACH)
    cols = min(width, math.ceil((left + side) * width / size[0]) + STRETCH_REACH)
    part = cv2.resize(
        image[:rows, :cols], None, fx=size[0] / width, fy=size[1] / height, interpolation=interpolation
    )
    return part[top : top + side, left : left + side]


def _center_corner(height: int, width: int, size: int) -> tuple[int, int, int]:
    """:func:`center_crop`'s ``(top, left)`` in the image's pixels (negative: in the padding), and
    the padding."""
    top, left = round((height - size) / 2), round((width - size) / 2)
    return top, left, max(0, -top, -left)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The centred ``size`` x ``size`` window of an (H, W, C) image.

    Its top-left corner is ``(round((H - size) / 2), round((W - size) / 2))`` (half to even); an image
    smaller than ``size`` is first padded on every side with its mean colour, as siamfc-pytorch does.
    """
    height, width = image.shape[:2]
    top, left, pad = _center_corner(height, width, size)
    if pad > 0:
        color = cv2.mean(image)[: image.shape[2]]
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=color)
        top, left = top + pad, left + pad
    return image[top : top + size, left : left + size]


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` window at a uniformly drawn position inside the image."""
    height, width = image.shape[:2]
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return image[top : top + size, left : left + size]


def pca_lighting(image: np.ndarray, rng: np.random.Generator, std: float = PCA_ALPHA_STD) -> np.ndarray:
    """Add one random colour offset along ImageNet's RGB principal components (module docstring)."""
    alpha = rng.normal(0.0, std, size=3)
    offset = 255.0 * (PCA_EIGENVECTORS @ (alpha * PCA_EIGENVALUES))
    shifted = image.astype(np.float32) + offset.astype(np.float32)
    return np.clip(np.rint(shifted), 0, 255).astype(np.uint8)


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """RGB uint8 -> grey (OpenCV's luma), repeated in three channels."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _shift_crops(crop: np.ndarray, rng: np.random.Generator, config: PairConfig) -> np.ndarray:
    stretched = random_stretch(crop, rng, config.max_stretch)
    centred = center_crop(stretched, config.instance_sz - SHIFT_MARGIN)
    return random_crop(centred, config.instance_sz - 2 * SHIFT_MARGIN, rng)


def _exemplar(crop: np.ndarray, rng: np.random.Generator, config: PairConfig) -> np.ndarray:
    """``center_crop(_shift_crops(crop), exemplar_sz)``, the same draws and pixels, stretching only
    what the exemplar reads (:func:`stretched_window`: about 64 % of the crop).

    The exemplar lies ``(search_sz - exemplar_sz) / 2`` (56) pixels inside the random crop, clear of
    the centre crop's padding (2 pixels at 5 % stretch); where a large stretch reaches it, the whole
    image is stretched and padded.
    """
    interpolation, (width, height) = stretch_draw(crop.shape, rng, config.max_stretch)
    inner, search, side = config.instance_sz - SHIFT_MARGIN, config.search_sz, config.exemplar_sz
    top, left, pad = _center_corner(height, width, inner)
    # The centre crop's rows and columns: short of ``inner`` when the padding does not make it up.
    rows, cols = min(inner, height + pad - top), min(inner, width + pad - left)
    inside = round((search - side) / 2)
    down = int(rng.integers(0, rows - search + 1)) + inside
    right = int(rng.integers(0, cols - search + 1)) + inside
    window_top, window_left = top + down, left + right
    if min(window_top, window_left) >= 0 and max(window_top - height, window_left - width) + side <= 0:
        return stretched_window(crop, (width, height), interpolation, window_top, window_left, side)
    centred = center_crop(cv2.resize(crop, (width, height), interpolation=interpolation), inner)
    return centred[down : down + side, right : right + side]


def augment_pair(
    exemplar_crop: np.ndarray,
    search_crop: np.ndarray,
    rng: np.random.Generator,
    config: PairConfig = PairConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Turn two target-centred crops into a training pair.

    Args:
        exemplar_crop, search_crop: (instance_sz, instance_sz, 3) RGB uint8 crops centred on the target.
        rng: source of every random draw (exemplar's first, then the search image's).
        config: sizes, stretch, colour and grayscale options.

    Returns:
        ``(exemplar, search)``: (exemplar_sz, exemplar_sz, 3) and (search_sz, search_sz, 3) RGB uint8,
        possibly windows of larger intermediate images (not C-contiguous): the caller copies them
        once, to where they are needed (a batch).
    """
    exemplar = _exemplar(exemplar_crop, rng, config)
    search = _shift_crops(search_crop, rng, config)
    if config.color_jitter:
        exemplar, search = pca_lighting(exemplar, rng), pca_lighting(search, rng)
    if config.grayscale_prob > 0 and rng.random() < config.grayscale_prob:
        exemplar, search = to_grayscale(exemplar), to_grayscale(search)
    return exemplar, search
