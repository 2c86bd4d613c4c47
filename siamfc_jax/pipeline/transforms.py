"""Training augmentations of a curated crop (siamfc-pytorch's ``SiamFCTransforms``), host NumPy/OpenCV.

Both images of a pair start as an ``instance_sz`` (255) square crop centred on the target
(:mod:`siamfc_jax.pipeline.curate`). The search image is: random stretch (scale ``1 + U(-0.05, 0.05)``,
a random interpolation), centre crop to ``instance_sz - 8`` (247), random crop to ``instance_sz - 16``
(239). The exemplar goes through the same steps, with its own random draws, and then a centre crop to
``exemplar_sz`` (127). The random crop moves the target by up to 4 pixels either way from the image
centre, which teaches the network that the target is not always in the middle.

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


def random_stretch(image: np.ndarray, rng: np.random.Generator, max_stretch: float) -> np.ndarray:
    """Resize by ``1 + U(-max_stretch, max_stretch)`` with an interpolation drawn from INTERPOLATIONS.

    The new size is ``round(side * scale)`` per axis (half to even, Python's ``round``).
    """
    interpolation = INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))]
    scale = 1.0 + rng.uniform(-max_stretch, max_stretch)
    height, width = image.shape[:2]
    size = (round(width * scale), round(height * scale))
    return cv2.resize(image, size, interpolation=interpolation)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The centred ``size`` x ``size`` window of an (H, W, C) image.

    Its top-left corner is ``(round((H - size) / 2), round((W - size) / 2))`` (half to even); an image
    smaller than ``size`` is first padded on every side with its mean colour, as siamfc-pytorch does.
    """
    height, width = image.shape[:2]
    top, left = round((height - size) / 2), round((width - size) / 2)
    pad = max(0, -top, -left)
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
    exemplar = center_crop(_shift_crops(exemplar_crop, rng, config), config.exemplar_sz)
    search = _shift_crops(search_crop, rng, config)
    if config.color_jitter:
        exemplar, search = pca_lighting(exemplar, rng), pca_lighting(search, rng)
    if config.grayscale_prob > 0 and rng.random() < config.grayscale_prob:
        exemplar, search = to_grayscale(exemplar), to_grayscale(search)
    return exemplar, search
