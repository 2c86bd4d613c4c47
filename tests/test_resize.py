"""Bicubic response upsampling against ``cv2.resize(..., INTER_CUBIC)`` on float32."""

from __future__ import annotations

import cv2
import jax.numpy as jnp
import numpy as np
import pytest

from siamfc_jax.ops import cubic_resize_matrix, upsample


@pytest.mark.parametrize(
    ("height", "width", "out_size"),
    [(17, 17, 272), (17, 17, 255), (33, 33, 272), (5, 9, 40), (40, 40, 17), (17, 17, 17), (1, 1, 8)],
)
def test_upsample_matches_opencv(height: int, width: int, out_size: int) -> None:
    rng = np.random.default_rng(height * 100 + width)
    responses = rng.normal(size=(3, height, width)).astype(np.float32)
    expected = np.stack(
        [cv2.resize(r, (out_size, out_size), interpolation=cv2.INTER_CUBIC) for r in responses]
    )
    got = np.asarray(upsample(jnp.asarray(responses), out_size, precision="highest"))
    assert got.shape == (3, out_size, out_size)
    # 1e-5 relative to the map's magnitude: float32 sums in another order than OpenCV's.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_upsample_peak_location_matches_opencv() -> None:
    # The tracker only uses the peak: a sharp 17x17 response must peak at the same upsampled pixel.
    rng = np.random.default_rng(0)
    response = rng.normal(scale=0.1, size=(17, 17)).astype(np.float32)
    response[6, 11] = 3.0
    response[7, 11] = 2.7
    expected = cv2.resize(response, (272, 272), interpolation=cv2.INTER_CUBIC)
    got = np.asarray(upsample(jnp.asarray(response[None]), 272, precision="highest"))[0]
    assert np.argmax(got) == np.argmax(expected)


def test_cubic_matrix_by_hand() -> None:
    # 2 -> 4: positions -0.25, 0.25, 0.75, 1.25. For position 0.25 (floor 0, t = 0.25) the A = -0.75
    # kernel weights taps -1, 0, 1, 2 with
    #   w(1.25) = A(1.25^3 - 5*1.25^2 + 8*1.25 - 4) = -0.75 * 0.140625 = -0.10546875
    #   w(0.25) = (A+2)0.25^3 - (A+3)0.25^2 + 1 = 0.01953125 - 0.140625 + 1 = 0.87890625
    #   w(0.75) = (A+2)0.75^3 - (A+3)0.75^2 + 1 = 0.52734375 - 1.265625 + 1 = 0.26171875
    #   w(1.75) = A(1.75^3 - 5*1.75^2 + 8*1.75 - 4) = -0.75 * 0.046875 = -0.03515625
    # Tap -1 replicates pixel 0 and tap 2 pixel 1.
    matrix = cubic_resize_matrix(2, 4)
    np.testing.assert_allclose(
        matrix[1], [-0.10546875 + 0.87890625, 0.26171875 - 0.03515625], rtol=0, atol=1e-7
    )
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)


def test_cubic_matrix_rejects_empty_sizes() -> None:
    with pytest.raises(ValueError, match="positive"):
        cubic_resize_matrix(0, 4)
