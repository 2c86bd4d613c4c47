"""Pair sampling and augmentation: siamfc-pytorch's rules, the target stays centred, determinism."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from siamfc_jax.config import PairConfig
from siamfc_jax.pipeline.curate import curate_frame
from siamfc_jax.pipeline.pairs import (
    CropSource,
    FrameCrops,
    PairSampler,
    SequenceCrops,
    epoch_order,
    sample_frame_pair,
)
from siamfc_jax.pipeline.tfds_builder import load_curated, prepare
from siamfc_jax.pipeline.transforms import (
    INTERPOLATIONS,
    PCA_EIGENVALUES,
    PCA_EIGENVECTORS,
    augment_pair,
    center_crop,
    pca_lighting,
    random_crop,
    random_stretch,
    stretched_window,
    to_grayscale,
)
from siamfc_jax.sequences.datasets import GOT10k
from siamfc_jax.sequences.frames import read_image

# ------------------------------------------------------------------------------------------ frames


def test_sample_frame_pair_small_sequences():
    rng = np.random.default_rng(0)
    assert sample_frame_pair(np.array([7]), rng) == (7, 7)
    assert sample_frame_pair(np.array([3, 9]), rng) == (3, 9)
    with pytest.raises(ValueError, match="no valid frame"):
        sample_frame_pair(np.array([], dtype=int), rng)


def test_sample_frame_pair_gap_and_order():
    rng = np.random.default_rng(1)
    frames = np.arange(0, 1000, 3)
    draws = np.array([sample_frame_pair(frames, rng) for _ in range(300)])
    gaps = draws[:, 1] - draws[:, 0]
    assert np.all(gaps > 0) and np.all(gaps < 100)
    assert np.all(np.isin(draws, frames))
    # Frames at least 100 apart everywhere: every try fails, the fallback repeats one frame.
    sparse = np.array([0, 150, 300, 450])
    for _ in range(20):
        exemplar, search = sample_frame_pair(sparse, rng)
        assert exemplar == search and exemplar in sparse


def test_epoch_order_visits_every_sequence_pairs_per_seq_times():
    order = epoch_order(7, 3, seed=5, epoch=2)
    np.testing.assert_array_equal(np.bincount(order, minlength=7), [3] * 7)
    np.testing.assert_array_equal(order, epoch_order(7, 3, seed=5, epoch=2))
    assert not np.array_equal(order, epoch_order(7, 3, seed=5, epoch=3))
    assert not np.array_equal(order, epoch_order(7, 3, seed=6, epoch=2))


class _FakeSequence(SequenceCrops):
    def __init__(self, index: int, valid: list[int]):
        self.index = index
        self.valid_frames = np.array(valid, dtype=np.int64)

    def crop(self, frame, rng):
        return np.full((255, 255, 3), 10 * self.index + frame, np.uint8)


class _FakeSource(CropSource):
    VALID = ([5], [0, 1, 2], [], [3, 4])

    @property
    def num_sequences(self):
        return len(self.VALID)

    def sequence(self, index):
        return _FakeSequence(index, list(self.VALID[index]))


def test_sequences_without_two_valid_frames_are_redrawn():
    sampler = PairSampler(_FakeSource(), PairConfig(pairs_per_seq=5), seed=3)
    used = set()
    for epoch in range(3):
        order = sampler.order(epoch)
        for index in range(len(sampler)):
            sequence, exemplar, search = sampler.frames(epoch, index)
            used.add(sequence)
            assert exemplar < search and exemplar in _FakeSource.VALID[sequence]
            if order[index] in (1, 3):  # usable sequences are never replaced
                assert sequence == order[index]
    assert used == {1, 3}


def test_pairs_are_reproducible_per_seed_epoch_index():
    sampler = PairSampler(_FakeSource(), PairConfig(pairs_per_seq=4), seed=0)
    first = sampler.pair(0, 3)
    assert first["exemplar"].shape == (127, 127, 3) and first["search"].shape == (239, 239, 3)
    assert first["exemplar"].dtype == np.uint8 and first["search"].dtype == np.uint8
    again = PairSampler(_FakeSource(), PairConfig(pairs_per_seq=4), seed=0).pair(0, 3)
    np.testing.assert_array_equal(first["search"], again["search"])
    draws = {sampler.frames(epoch, index) for epoch in range(3) for index in range(len(sampler))}
    assert len(draws) > 3  # different epochs and indices give different pairs
    with pytest.raises(IndexError):
        sampler.pair(0, len(sampler))


# ---------------------------------------------------------------------------------- augmentations


def test_center_crop_hand_cases():
    image = np.arange(36, dtype=np.uint8).reshape(6, 6, 1).repeat(3, axis=2)
    # top = left = round(2 / 2) = 1
    np.testing.assert_array_equal(center_crop(image, 4)[:, :, 0], image[1:5, 1:5, 0])
    odd = np.arange(25, dtype=np.uint8).reshape(5, 5, 1).repeat(3, axis=2)
    # top = left = round(3 / 2) = 2 (half to even)
    np.testing.assert_array_equal(center_crop(odd, 2)[:, :, 0], odd[2:4, 2:4, 0])
    small = np.zeros((3, 3, 3), np.uint8)
    small[1, 1] = 90  # mean 10
    padded = center_crop(small, 5)  # top = round(-1) = -1: one pixel of mean colour all round
    expected = np.full((5, 5, 3), 10, np.uint8)
    expected[1:4, 1:4] = small
    np.testing.assert_array_equal(padded, expected)


def test_random_crop_covers_every_offset():
    rows, cols = np.meshgrid(np.arange(247), np.arange(247), indexing="ij")
    image = np.stack([rows, cols, np.zeros_like(rows)], axis=2).astype(np.uint8)
    rng = np.random.default_rng(0)
    offsets = np.array([random_crop(image, 239, rng)[0, 0, :2] for _ in range(400)])
    assert offsets.min() == 0 and offsets.max() == 8
    assert len({tuple(offset) for offset in offsets}) > 60  # of the 81 (top, left) pairs


def test_random_stretch_sizes():
    rng = np.random.default_rng(0)
    image = np.zeros((255, 255, 3), np.uint8)
    sides = {random_stretch(image, rng, 0.05).shape[0] for _ in range(300)}
    # round(255 * [0.95, 1.05]) = [242, 268]
    assert min(sides) >= 242 and max(sides) <= 268 and len(sides) > 15
    assert random_stretch(image, rng, 0.0).shape == (255, 255, 3)


def test_pca_lighting_offsets_follow_the_principal_components():
    rng = np.random.default_rng(0)
    image = np.full((4, 4, 3), 128, np.uint8)
    offsets = []
    for _ in range(3000):
        shifted = pca_lighting(image, rng).astype(np.float64) - 128
        assert np.all(shifted == shifted[0, 0])  # one offset for the whole image
        offsets.append(shifted[0, 0])
    offsets = np.array(offsets)
    expected = (255 * 0.1) ** 2 * PCA_EIGENVECTORS @ np.diag(PCA_EIGENVALUES**2) @ PCA_EIGENVECTORS.T
    # Sample covariance of 3000 draws: within 10 % of the largest entry (plus rounding to integers).
    np.testing.assert_allclose(np.cov(offsets.T), expected, atol=0.1 * np.abs(expected).max() + 0.2)
    np.testing.assert_allclose(offsets.mean(axis=0), 0, atol=0.5)


def test_grayscale_option():
    rng = np.random.default_rng(0)
    crop = np.random.default_rng(1).integers(0, 256, (255, 255, 3), dtype=np.uint8)
    grey = to_grayscale(crop[:2, :2])
    luma = crop[:2, :2].astype(np.float64) @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(grey[:, :, 0], luma, atol=1)
    assert np.all(grey == grey[:, :, :1])
    exemplar, search = augment_pair(crop, crop, rng, PairConfig(grayscale_prob=1.0))
    assert np.all(exemplar == exemplar[:, :, :1]) and np.all(search == search[:, :, :1])
    exemplar, search = augment_pair(crop, crop, rng, PairConfig())
    assert not np.all(search == search[:, :, :1])


def _reference_shift_crops(crop: np.ndarray, rng: np.random.Generator, stretch: float) -> np.ndarray:
    """siamfc-pytorch's RandomStretch, CenterCrop(instance_sz - 8), RandomCrop(instance_sz - 16),
    written out step by step with full copies (the same draws, in the same order)."""
    interpolation = [cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST,
                     cv2.INTER_LANCZOS4][int(rng.integers(5))]
    scale = 1.0 + rng.uniform(-stretch, stretch)
    side = round(255 * scale)
    stretched = cv2.resize(crop.copy(), (side, side), interpolation=interpolation)
    corner = round((side - 247) / 2)
    if corner < 0:
        mean = tuple(float(v) for v in stretched.reshape(-1, 3).mean(axis=0))
        stretched = cv2.copyMakeBorder(stretched, -corner, -corner, -corner, -corner,
                                       cv2.BORDER_CONSTANT, value=mean)
        corner = 0
    centred = stretched[corner : corner + 247, corner : corner + 247].copy()
    # Side 242 pads by 2 only (round(-2.5) = -2), leaving a 246-pixel square: 0..7 offsets.
    top = int(rng.integers(0, centred.shape[0] - 239 + 1))
    left = int(rng.integers(0, centred.shape[1] - 239 + 1))
    return centred[top : top + 239, left : left + 239].copy()


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_stretched_window_is_the_window_of_the_whole_resize(interpolation):
    """Every stretched size of the default 5 % (242..268) and every 5th up to 50 %, every window
    the exemplar can take (random crop offsets 0..8 on each axis), on noise: pixel for pixel."""
    image = np.random.default_rng(3).integers(0, 256, (255, 255, 3), dtype=np.uint8)
    for side in [*range(242, 269), *range(128, 384, 5)]:
        whole = cv2.resize(image, (side, side), interpolation=interpolation)
        corner = round((side - 247) / 2) + 56
        for down, right in [(d, r) for d in range(9) for r in (0, 8)] + [(0, 4), (8, 3)]:
            top, left = corner + down, corner + right
            if min(top, left) < 0 or max(top, left) + 127 > side:
                continue  # in the centre crop's padding: _exemplar resizes the whole image
            window = stretched_window(image, (side, side), interpolation, top, left, 127)
            expected = whole[top : top + 127, left : left + 127]
            np.testing.assert_array_equal(window, expected, err_msg=f"side {side}")


@pytest.mark.parametrize("stretch", [0.05, 0.2, 0.5])
def test_augment_pair_equals_the_step_by_step_reference(stretch):
    """Pixel for pixel over 300 pairs of textured crops (every interpolation, stretch and offset;
    at 50 % the exemplar reaches the centre crop's padding)."""
    config = PairConfig(max_stretch=stretch)
    textures = np.random.default_rng(5).integers(0, 256, (6, 255, 255, 3), dtype=np.uint8)
    textures[:3] = cv2.GaussianBlur(textures[:3].reshape(3 * 255, 255, 3), (7, 7), 0).reshape(3, 255, 255, 3)
    for index in range(300):
        exemplar_crop, search_crop = textures[index % 6], textures[(index + 1) % 6]
        exemplar, search = augment_pair(exemplar_crop, search_crop, np.random.default_rng(index), config)
        rng = np.random.default_rng(index)
        expected_exemplar = _reference_shift_crops(exemplar_crop, rng, stretch)[56:183, 56:183]
        expected_search = _reference_shift_crops(search_crop, rng, stretch)
        np.testing.assert_array_equal(exemplar, expected_exemplar, err_msg=f"pair {index}")
        np.testing.assert_array_equal(search, expected_search, err_msg=f"pair {index}")


def test_pair_into_writes_the_pair():
    sampler = PairSampler(_FakeSource(), PairConfig(pairs_per_seq=4), seed=2)
    batch = {key: np.zeros((3, *shape), np.uint8) for key, shape in sampler.shapes.items()}
    sampler.pair_into(1, 5, batch["exemplar"][1], batch["search"][1])
    pair = sampler.pair(1, 5)
    np.testing.assert_array_equal(batch["exemplar"][1], pair["exemplar"])
    np.testing.assert_array_equal(batch["search"][1], pair["search"])
    assert not batch["search"][0].any() and not batch["search"][2].any()
    assert pair["search"].flags.c_contiguous and pair["exemplar"].flags.c_contiguous


# ------------------------------------------------------------------- the target stays centred

RECTANGLES = [  # per sequence, per frame: [x, y, w, h] of a bright rectangle on a dark frame
    ["41,31,30,30", "45,33,60,24", "120,90,24,60", "200,100,80,40", "5,5,40,40", "250,180,60,50"],
    ["150,100,20,20", "148,98,26,24", "140,95,40,36", "130,90,60,54", "100,80,90,80", "60,60,70,40",
     "300,200,15,15"],
]
FOREGROUND, BACKGROUND = 230, 30


@pytest.fixture(scope="module")
def rectangle_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rectangles")
    for number, boxes in enumerate(RECTANGLES):
        directory = root / "train" / f"RECT_{number:03d}"
        directory.mkdir(parents=True)
        for index, box in enumerate(boxes):
            x, y, w, h = (int(v) for v in box.split(","))
            frame = np.full((240, 320, 3), BACKGROUND, np.uint8)
            frame[y - 1 : y - 1 + h, x - 1 : x - 1 + w] = FOREGROUND
            cv2.imwrite(str(directory / f"{index + 1:08d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 98])
        (directory / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
        (directory / "absence.label").write_text("0\n" * len(boxes))
    return root


@pytest.fixture(scope="module")
def rectangle_sources(rectangle_root, tmp_path_factory) -> dict[str, object]:
    data_dir = tmp_path_factory.mktemp("tfds")
    builder = prepare("got10k", data_dir, manual_dir=rectangle_root, workers=1, progress=False)
    return {"curated": load_curated(builder), "on_the_fly": FrameCrops(GOT10k(rectangle_root))}


def test_sources_agree_on_valid_frames(rectangle_sources):
    curated, on_the_fly = rectangle_sources["curated"], rectangle_sources["on_the_fly"]
    assert curated.num_sequences == on_the_fly.num_sequences == len(RECTANGLES)
    for index in range(len(RECTANGLES)):
        expected = curated.sequence(index).valid_frames
        np.testing.assert_array_equal(on_the_fly.sequence(index).valid_frames, expected)
    # Every rectangle passes the filter (20 x 20 is the smallest size allowed, 24 x 60 has aspect 0.4)
    # except the last, 15 x 15.
    np.testing.assert_array_equal(curated.sequence(0).valid_frames, np.arange(6))
    np.testing.assert_array_equal(curated.sequence(1).valid_frames, np.arange(6))


def _blob(image: np.ndarray) -> tuple[float, float, int, int]:
    """Centroid (x, y) and extent (w, h) of the bright pixels (0-indexed pixels)."""
    rows, cols = np.nonzero(image[:, :, 0] > (FOREGROUND + BACKGROUND) / 2)
    return cols.mean(), rows.mean(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1


# Where the target centre lands (derivation in the test's docstring), and the tolerances.
SHIFT_BOUND = 4.5
MAX_SCALE = 268 / 255
MEASUREMENT = 0.75


@pytest.mark.parametrize("source_kind", ["curated", "on_the_fly"])
def test_target_stays_centred(source_kind, rectangle_sources, rectangle_root):
    """The target centre moves from the image centre by the random crop's shift alone.

    In the 255 crop the recorded box has centre ``127 + e`` (``e``: rounding of the crop window).
    The stretch to side ``S = round(255 s)`` (s in [0.95, 1.05]) maps it to ``S / 2 + e S / 255 -
    0.5``; the centre crop to 247 subtracts ``round((S - 247) / 2)``, i.e. ``S / 2 - 123.5 ± 0.5``;
    the random crop subtracts ``r`` in 0..8. The search image centre is 119, so the target centre is
    off by ``4 - r + e S / 255 ± 0.5``: at most ``4.5 + 1.051 |e|`` pixels each way, the same for the
    exemplar (centre 63). The blob's centroid is measured to within 0.75 pixel. Widths change by the
    stretch only: within 5 % (± 2 pixels of measurement).
    """
    source = rectangle_sources[source_kind]
    sequences = GOT10k(rectangle_root)
    sampler = PairSampler(source, PairConfig(pairs_per_seq=20), seed=7)
    deviations = []
    for index in range(len(sampler)):
        sequence_index, exemplar_frame, search_frame = sampler.frames(0, index)
        pair = sampler.pair(0, index)
        sequence = sequences[sequence_index]
        views = ((pair["exemplar"], exemplar_frame, 63), (pair["search"], search_frame, 119))
        for image, frame, centre in views:
            box = curate_frame(read_image(sequence.frames[frame]), sequence.boxes[frame]).box
            error = np.array([box[0] - 1 + (box[2] - 1) / 2, box[1] - 1 + (box[3] - 1) / 2]) - 127
            x, y, width, height = _blob(image)
            bound = SHIFT_BOUND + MAX_SCALE * np.abs(error) + MEASUREMENT
            assert abs(x - centre) <= bound[0] and abs(y - centre) <= bound[1], (index, x, y, bound)
            deviations.append((x - centre, y - centre))
            if frame == search_frame:
                assert 0.95 * box[2] - 2 <= width <= 1.05 * box[2] + 2
                assert 0.95 * box[3] - 2 <= height <= 1.05 * box[3] + 2
    deviations = np.array(deviations)
    # The random crop does shift: both ways, by several pixels.
    assert deviations.min() < -2.5 and deviations.max() > 2.5
