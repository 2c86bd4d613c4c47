"""Real photographs as textures: the public-domain and CC0 sample images that scikit-image ships.

Host code (NumPy/OpenCV). The synthetic world's procedural textures have statistics no camera
produces; crops of real photographs (fur, porcelain, wood, brick, gravel, grass, a space suit, a
rocket on its pad) give targets and backgrounds natural edges, noise and colour. The images are read
from scikit-image's installed ``skimage/data`` folder (they ship in its wheel: nothing is
downloaded), decoded by OpenCV into RGB, and never modified on disk.

Licences, as scikit-image's ``skimage.data`` documents them: astronaut, hubble_deep_field (NASA) and
rocket (SpaceX) are in the public domain; brick, camera, chelsea, coffee, grass and gravel are CC0.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np

from siamfc_jax.synthetic.config import SyntheticDataError

# File names in ``skimage/data``: colour photographs first, then greyscale ones (tinted when used).
PHOTO_FILES = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "rocket.jpg",
    "brick.png",
    "camera.png",
    "grass.png",
    "gravel.png",
)
COLOUR_PHOTOS = 5  # PHOTO_FILES[:COLOUR_PHOTOS] are in colour


def photo_folder() -> Path:
    """scikit-image's ``skimage/data`` folder, found without importing scikit-image.

    Raises:
      SyntheticDataError: scikit-image is not installed.
    """
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SyntheticDataError(
            "photo textures need scikit-image's sample images: pip install scikit-image==0.26.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.cache
def load_photos() -> tuple[np.ndarray, ...]:
    """The photographs of :data:`PHOTO_FILES` as (H, W, 3) float32 RGB arrays in 0..255.

    Read once per process (decoding them takes about 0.3 s; every sequence uses them).

    Raises:
      SyntheticDataError: scikit-image is missing or one of its images cannot be read.
    """
    folder = photo_folder()
    photos = []
    for name in PHOTO_FILES:
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is None:
            raise SyntheticDataError(f"{folder / name}: cannot read scikit-image's sample image")
        photos.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32))
    return tuple(photos)


def photo_crop(
    photo: np.ndarray,
    height: int,
    width: int,
    anchor: tuple[float, float],
    scale: float,
    angle: float,
) -> np.ndarray:
    """(height, width, 3) float32 window of ``photo``, rotated and resampled.

    Args:
      photo: (H, W, 3) float32 RGB image.
      height, width: output size in pixels.
      anchor: ``(x, y)`` centre of the window as fractions of the photo's width and height.
      scale: photo pixels per output pixel (below 1 magnifies).
      angle: rotation of the window in radians.

    Parts of the window beyond the photo's edges are mirrored back into it.
    """
    photo_h, photo_w = photo.shape[:2]
    cos_a, sin_a = math.cos(angle) * scale, math.sin(angle) * scale
    centre_x, centre_y = anchor[0] * (photo_w - 1), anchor[1] * (photo_h - 1)
    # Output pixel (u, v) samples photo pixel centre + R(angle) * scale * ((u, v) - output centre).
    half_u, half_v = (width - 1) / 2.0, (height - 1) / 2.0
    matrix = np.array(
        [
            [cos_a, -sin_a, centre_x - cos_a * half_u + sin_a * half_v],
            [sin_a, cos_a, centre_y - sin_a * half_u - cos_a * half_v],
        ]
    )
    # Shrinking a photo by more than 2x aliases under bilinear sampling; pre-filter it first.
    source = photo
    if scale > 2.0:
        sigma = 0.5 * (scale - 1.0)
        source = cv2.GaussianBlur(photo, (0, 0), sigma)
    return cv2.warpAffine(
        source,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
