"""Square crops: the host crop against hand-computed patches, the device crop against the host crop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from siamfc_jax.ops import crop as device_crop
from siamfc_jax.pipeline.crops import crop_and_resize, crop_window
from siamfc_jax.sequences.frames import average_color


def _ramp_image(height: int = 4, width: int = 5) -> np.ndarray:
    """(H, W, 3) uint8 whose pixel (y, x) is (10 y + x, 100 + 10 y + x, 200 - 10 y - x)."""
    y, x = np.mgrid[:height, :width]
    return np.stack([10 * y + x, 100 + 10 * y + x, 200 - 10 * y - x], axis=-1).astype(np.uint8)


def test_host_crop_inside_is_a_slice() -> None:
    image = _ramp_image()
    # size 3 around (2, 2): rows and columns 1..3; out_size == size, so no resampling.
    patch = crop_and_resize(image, (2.0, 2.0), 3.0, 3, (0, 0, 0))
    np.testing.assert_array_equal(patch, image[1:4, 1:4])


def test_host_crop_border_and_rounding_by_hand() -> None:
    image = _ramp_image()
    # size 2.5 rounds half to even to 2; top-left = round((0, 4) - 0.5) = round(-0.5, 3.5) = (0, 4)
    # with half to even -> (-0, 4): rows 0..1, columns 4..5, column 5 is outside the 5-wide image.
    patch = crop_and_resize(image, (0.0, 4.0), 2.5, 2, (127.5, 128.5, 3.5))
    fill = [128, 128, 4]  # OpenCV rounds the float border colour half to even
    expected = np.array(
        [[image[0, 4], fill], [image[1, 4], fill]],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(patch, expected)


def test_host_crop_entirely_outside_is_the_fill() -> None:
    patch = crop_and_resize(_ramp_image(), (-50.0, 80.0), 7.0, 9, (1, 2, 3))
    np.testing.assert_array_equal(patch, np.broadcast_to(np.array([1, 2, 3], np.uint8), (9, 9, 3)))


def test_host_crop_bilinear_upscale_by_hand() -> None:
    # A 2x2 patch resized to 4x4 reads source positions (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75,
    # 1.25, clamped to the patch: values a, (3a + b) / 4, (a + 3b) / 4, b along each axis.
    image = np.zeros((2, 2, 3), np.uint8)
    image[:, 1] = 200
    patch = crop_and_resize(image, (0.5, 0.5), 2.0, 4, (0, 0, 0))
    np.testing.assert_array_equal(patch[:, :, 0], np.tile([0, 50, 150, 200], (4, 1)))


def test_average_color_equals_numpy_mean() -> None:
    image = np.random.default_rng(0).integers(0, 256, (361, 479, 3), dtype=np.uint8)
    expected = image.reshape(-1, 3).astype(np.float64).sum(axis=0) / (361 * 479)
    np.testing.assert_array_equal(average_color(image), expected)
    np.testing.assert_array_equal(average_color(image[::2, 1::3]), image[::2, 1::3].mean(axis=(0, 1)))


def test_crop_window_by_hand() -> None:
    # side 4: top-left = round(10.5 - 1.5, 7 - 1.5) = (9, round(5.5) = 6); side 2.5 -> 2 (even).
    assert crop_window((10.5, 7.0), 4.2) == (9, 6, 4)
    assert crop_window((10.0, 7.0), 2.5) == (10, 6, 2)
    assert crop_window((0.0, 0.0), 0.3) == (0, 0, 1)


def test_host_crop_rejects_non_uint8() -> None:
    with pytest.raises(ValueError, match="uint8"):
        crop_and_resize(np.zeros((4, 4, 3), np.float32), (2, 2), 2, 2, 0)


@pytest.fixture(scope="module")
def textured_image() -> np.ndarray:
    """A 120×160 frame with noise on smooth gradients, so that interpolation errors show."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[:120, :160]
    smooth = np.stack([y * 2, x * 1.5, (x + y) % 256], axis=-1)
    return np.clip(smooth + rng.normal(0, 40, smooth.shape), 0, 255).astype(np.uint8)


_device_crop = jax.jit(device_crop.crop_and_resize, static_argnames="out_size")

# (centre [y, x], three sizes, out_size): borders, centres outside the frame, odd and even sizes,
# sizes larger than the frame, up- and down-scaling, exact 2x (OpenCV switches to INTER_AREA),
# tiny sizes (0.4 rounds to 0 and is clamped to 1), half-integer sizes and corners.
CASES = [
    ((60.0, 80.0), (127.0, 128.0, 63.0), 127),
    ((60.3, 79.6), (254.0, 255.0, 256.0), 255),
    ((60.0, 80.0), (510.0, 254.0, 64.0), 127),
    ((2.0, 3.0), (40.0, 41.0, 99.5), 127),
    ((117.5, 158.5), (40.5, 41.5, 13.0), 31),
    ((-30.0, 80.0), (50.0, 70.0, 90.0), 127),
    ((60.0, 200.0), (20.0, 100.0, 300.0), 255),
    ((-100.0, -100.0), (10.0, 20.0, 30.0), 31),
    ((59.5, 79.5), (0.4, 1.0, 2.5), 31),
    ((60.0, 80.0), (3.0, 4.0, 5.0), 255),
    ((33.7, 121.2), (333.3, 200.1, 150.9), 255),
    ((90.1, 10.9), (600.0, 777.7, 1023.0), 127),
]


@pytest.mark.parametrize(("center", "sizes", "out_size"), CASES)
def test_device_crop_matches_host(
    textured_image: np.ndarray, center: tuple, sizes: tuple, out_size: int
) -> None:
    fill = np.array([12.4, 200.5, 77.5], np.float32)
    got = np.asarray(
        _device_crop(
            jnp.asarray(textured_image),
            jnp.asarray(center, jnp.float32),
            jnp.asarray(sizes, jnp.float32),
            out_size=out_size,
            fill=jnp.asarray(fill),
        )
    )
    assert got.shape == (3, out_size, out_size, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.round(got))  # whole grey levels
    for index, size in enumerate(sizes):
        expected = crop_and_resize(textured_image, center, float(size), out_size, fill)
        difference = np.abs(got[index] - expected)
        # Within one grey level everywhere; OpenCV's float32 source positions come from a double
        # computation, ours from float32 arithmetic, and rare near-ties round differently.
        assert difference.max() <= 1, f"size {size}: max difference {difference.max()}"
        assert np.mean(difference > 0) < 1e-3, f"size {size}: {np.mean(difference > 0):.2e} differ"


def test_device_crop_random_cases_match_host(textured_image: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    image = jnp.asarray(textured_image)
    differing = total = 0
    for _ in range(20):
        center = rng.uniform(-60, 220, 2).astype(np.float32)
        sizes = rng.uniform(1, 400, 3).astype(np.float32)
        fill = rng.uniform(0, 255, 3).astype(np.float32)
        got = np.asarray(_device_crop(image, center, sizes, out_size=127, fill=fill))
        for index, size in enumerate(sizes):
            expected = crop_and_resize(textured_image, center, float(size), 127, fill)
            difference = np.abs(got[index] - expected)
            assert difference.max() <= 1
            differing += int(np.sum(difference > 0))
            total += difference.size
    assert differing / total < 1e-3


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the loop runs on the CPU only")
def test_device_crop_per_square_loop_equals_vectorised(monkeypatch) -> None:
    """On the CPU the squares' taps and pixels are computed in a loop; elsewhere vectorised: the
    same values, squares partly outside the frame and one smaller than a pixel included."""
    rng = np.random.default_rng(7)
    image = jnp.asarray(rng.integers(0, 256, (48, 64, 3), np.uint8))
    center = jnp.asarray([33.7, 121.2], jnp.float32)
    sizes = jnp.asarray([333.3, 20.1, 0.4], jnp.float32)
    fill = jnp.asarray([10.0, 200.4, 99.5], jnp.float32)
    looped = device_crop.crop_and_resize(image, center, sizes, 31, fill)
    monkeypatch.setattr(device_crop.jax, "default_backend", lambda: "gpu")
    vectorised = device_crop.crop_and_resize(image, center, sizes, 31, fill)
    np.testing.assert_array_equal(looped, vectorised)
