"""VOT supervised experiment (siamfc_jax.evaluation.vot) against vot-toolkit 0.8.1 itself, in-process.

The toolkit (``vot-toolkit==0.8.1`` with ``attributee==0.1.8``, requirements-dev.txt) is imported only
here; outside CI a missing toolkit skips the comparisons, in CI it fails. Compared:

- overlaps: ``vot.region.calculate_overlap`` on hand-made and random regions (rectangles, polygons
  partly outside the image, degenerate ones, unknown regions and codes);
- the experiment: ``SupervisedExperiment.execute`` with a scripted tracker runtime, against
  :class:`SupervisedRun` fed the same boxes;
- the measures: our result files read back by the toolkit's workspace storage, then its analyses'
  per-sequence and aggregation methods (``AccuracyRobustness.subcompute``,
  ``AverageAccuracyRobustness.aggregate``, ``FailureCount.subcompute``,
  ``CumulativeFailureCount.aggregate``, ``EAOCurve.subcompute``; ``EAOScore.compute`` is its
  curve's mean over the interval, taken by hand since it needs the processor's result grid).

Figures must agree to 1e-6 (overlaps are pixel counts, so they agree exactly; the toolkit builds the
EAO curve in float32).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamfc_jax.evaluation import vot as V
from tests.conftest import in_ci, shared_path

TOLERANCE = 1e-6
BAG_SIZE = (480, 360)


def _toolkit():
    try:
        import vot.region
        from vot.experiment.multirun import SupervisedExperiment  # noqa: F401
    except ImportError:
        if in_ci():
            pytest.fail("vot-toolkit is missing (requirements-dev.txt)")
        pytest.skip("vot-toolkit is not installed")
    import vot

    return vot


def _to_toolkit(entry: V.Entry):
    from vot.region import Polygon, Rectangle, Special

    if isinstance(entry, int):
        return Special(entry)
    if entry.size == 0:
        return Special(0)
    if entry.size == 4:
        return Rectangle(*entry)
    return Polygon(list(zip(entry[0::2], entry[1::2], strict=True)))


# ------------------------------------------------------------------------------------ sequences


def _synthetic(seed: int, frames: int, size: tuple[int, int]) -> list[V.Entry]:
    """A VOT-style ground truth: rotated rectangles drifting out of the image and back, some frames
    unknown (NaN) or empty (``0,0,0,0``)."""
    rng = np.random.default_rng(seed)
    width, height = size
    regions: list[V.Entry] = []
    for index in range(frames):
        phase = index / frames * 2 * math.pi
        centre = np.array([width * (0.5 + 0.7 * math.sin(phase)), height * (0.5 + 0.3 * math.cos(phase))])
        half = np.array([rng.uniform(8, 30), rng.uniform(6, 20)])
        angle = rng.uniform(0, math.pi)
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        corners = (np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half) @ rotation.T + centre
        regions.append(np.round(corners.ravel(), 2))
    for index in rng.choice(np.arange(3, frames), 4, replace=False):
        regions[index] = np.zeros(0) if index % 2 else np.zeros(4)
    regions[frames // 2] = np.array([-20.0, 10.0, 40.0, 25.0])
    return regions


def _write_sequence(root: Path, name: str, regions: list[V.Entry], size: tuple[int, int]) -> Path:
    """A VOT legacy sequence folder (``%08d.jpg`` + ``groundtruth.txt``) the toolkit can read."""
    folder = root / name
    folder.mkdir(parents=True)
    image = np.zeros((size[1], size[0], 3), np.uint8)
    for index in range(len(regions)):
        cv2.imwrite(str(folder / f"{index + 1:08d}.jpg"), image)
    unknown = "nan,nan,nan,nan"
    lines = [unknown if isinstance(r, np.ndarray) and r.size == 0 else V.format_region(r) for r in regions]
    (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    return folder


def _script(groundtruth: list[V.Entry], seed: int, failures: tuple[int, ...]):
    """Boxes a scripted tracker reports: the ground truth's rectangle perturbed, far off on
    ``failures`` frames (and on frames with empty ground truth: where the previous box was)."""
    rng = np.random.default_rng(seed)
    boxes = []
    previous = V.init_box(groundtruth[0])
    for index, region in enumerate(groundtruth):
        box = V.init_box(region)
        box = previous if not np.all(np.isfinite(box)) or V.is_empty(region) else box
        box = box + rng.normal(0, 2.5, 4) * np.array([1, 1, 0.5, 0.5])
        box[2:] = np.maximum(box[2:], 2.0)
        if index in failures:
            box[:2] = -500.0
        boxes.append(box)
        previous = box
    return boxes


def _cases(tmp_path: Path):
    """(name, folder, ground truth, frame size, scripted boxes) of bag and two synthetic sequences."""
    bag = shared_path("siamfc/data/sequences/bag")
    bag_truth = V.read_regions(bag / "groundtruth.txt")
    cases = [("bag", bag, bag_truth, BAG_SIZE, _script(bag_truth, 0, (20, 23, 24, 150, 193)))]
    synthetic = ((1, 150, (160, 120), (12, 40, 41, 100)), (2, 120, (96, 128), (5, 30, 60)))
    for seed, frames, size, fails in synthetic:
        truth = _synthetic(seed, frames, size)
        name = f"synthetic{seed}"
        cases.append((name, _write_sequence(tmp_path / "sequences", name, truth, size), truth, size,
                      _script(truth, seed, fails)))
    return cases


def _drive(run: V.SupervisedRun, boxes: list[np.ndarray]) -> list[V.Entry]:
    step = run.step
    while step is not None:
        step = run.report(None if step.init_box is not None else boxes[step.frame])
    return run.trajectory


# ------------------------------------------------------------------------------------ overlaps


def _hand_made() -> list[tuple[V.Entry, V.Entry, tuple[int, int] | None]]:
    rect = np.array([10.0, 20.0, 30.0, 15.0])
    rotated = np.array([334.02, 128.36, 438.19, 188.78, 396.39, 260.83, 292.23, 200.41])
    outside = rotated + np.tile([150.0, 130.0], 4)
    return [
        (rect, rect, (100, 100)),
        (rect, rect + np.array([5.5, -3.5, 0, 2]), (100, 100)),
        (rect, rect + 0.5, (100, 100)),
        (np.array([-15.0, -8.0, 40.0, 30.0]), np.array([-5.2, -3.7, 25.0, 20.0]), (60, 50)),
        (np.array([-15.0, -8.0, 40.0, 30.0]), np.array([-5.2, -3.7, 25.0, 20.0]), None),
        (rotated, np.array([300.0, 120.0, 140.0, 130.0]), BAG_SIZE),
        (outside, np.array([420.0, 250.0, 100.0, 100.0]), BAG_SIZE),
        (outside, outside, BAG_SIZE),
        (np.array([-30.0, 5, -1.6, 40, 12, -9, 4.4, 70]), np.array([-2.0, -2.0, 8.0, 50.0]), (40, 40)),
        (np.array([5.0, 5, 5, 5, 5, 5, 5, 5]), rect, (100, 100)),
        (np.array([5.0, 5, 25, 5, 40, 5]), rect, (100, 100)),
        (np.zeros(4), rect, (100, 100)),
        (np.zeros(4), np.zeros(0), (100, 100)),
        (np.array([50.0, 50.0, 0.0, 10.0]), np.array([50.0, 50.0, 1.0, 10.0]), (100, 100)),
        (np.array([50.0, 50.0, -4.0, 10.0]), rect, (100, 100)),
        (np.zeros(0), np.zeros(0), (100, 100)),
        (np.zeros(0), rect, (100, 100)),
        (V.INITIALIZATION, rect, (100, 100)),
        (V.FAILURE, np.zeros(0), (100, 100)),
        (np.array([150.0, 150.0, 20.0, 20.0]), np.array([155.0, 152.0, 20.0, 20.0]), (100, 100)),
        (np.array([99.0, 10.0, 20.0, 20.0]), np.array([98.0, 12.0, 20.0, 20.0]), (100, 100)),
        (np.array([10.5, 20.5, 30.5, 15.5]), np.array([11.5, 21.5, 29.5, 14.5]), (100, 100)),
        (np.array([0.49999999, 1.5, 2.5, 3.5]), rect, (100, 100)),
    ]


def _random_region(rng: np.random.Generator) -> V.Entry:
    kind = rng.integers(0, 8)
    if kind == 0:
        return int(rng.integers(0, 3)) if rng.random() < 0.5 else np.zeros(0)
    scale = rng.choice([3.0, 20.0, 80.0])
    if kind < 4:
        rect = np.array([rng.uniform(-40, 100), rng.uniform(-40, 80), *rng.uniform(-2, scale, 2)])
        return np.round(rect * 2) / 2 if rng.random() < 0.3 else rect
    points = rng.uniform(-30, 110, 2) + rng.uniform(-scale, scale, (rng.integers(3, 7), 2))
    return (np.round(points * 2) / 2 if rng.random() < 0.3 else points).ravel()


def test_overlap_matches_the_toolkit():
    vot = _toolkit()
    rng = np.random.default_rng(7)
    pairs = _hand_made()
    for _ in range(2000):
        size = None if rng.random() < 0.15 else (int(rng.integers(2, 120)), int(rng.integers(2, 90)))
        pairs.append((_random_region(rng), _random_region(rng), size))
    worst = 0.0
    for a, b, size in pairs:
        expected = vot.region.calculate_overlap(_to_toolkit(a), _to_toolkit(b), size)
        for first, second in ((a, b), (b, a)):
            worst = max(worst, abs(V.region_overlap(first, second, size) - expected))
    assert worst <= TOLERANCE, worst


def test_region_lines_match_the_toolkit():
    vot = _toolkit()
    import io

    from vot.region.io import parse_region, write_trajectory

    lines = ["1", "2", "0", "10.5,20.25,30,40", "nan,nan,nan,nan", "1,2,3,4,5,6,7,8", "NaN,1,2,3,4,5,6,7"]
    for line in lines:
        ours, theirs = V.parse_region(line), parse_region(line)
        if isinstance(ours, int):
            assert isinstance(theirs, vot.region.Special) and theirs.code == ours
        elif ours.size == 0:
            assert isinstance(theirs, vot.region.Special) and theirs.code == 0
        else:
            assert V.format_region(ours) == str(theirs)
    trajectory = [V.INITIALIZATION, np.array([10.1, -3.3333, 45.7, 20.05]), V.FAILURE, V.SKIPPED]
    buffer = io.StringIO()
    write_trajectory(buffer, [_to_toolkit(entry) for entry in trajectory])
    assert "".join(V.format_region(entry) + "\n" for entry in trajectory) == buffer.getvalue()


# ---------------------------------------------------------------------------------- experiment


def _toolkit_trajectory(folder: Path, boxes: list[np.ndarray], workspace: Path):
    """The trajectory vot-toolkit's SupervisedExperiment records with a runtime that reports the
    scripted boxes."""
    from vot.dataset.common import read_sequence_legacy
    from vot.experiment.multirun import SupervisedExperiment
    from vot.region import Rectangle
    from vot.tracker import ObjectStatus, OnlineTrackerRuntime, Tracker
    from vot.workspace.storage import LocalStorage

    statuses = [ObjectStatus(Rectangle(*V.box_to_vot(box)), {}) for box in boxes]

    class Runtime(OnlineTrackerRuntime):
        def stop(self):
            return None

        def restart(self):
            return None

        def initialize(self, frame, new=None):
            return None, 0.0

        def update(self, frame, new=None):
            return statuses[frame.index], 0.0

    class Scripted(Tracker):
        def runtime(self, log=False):
            return Runtime(self)

    tracker = Scripted("scripted", None, None)
    sequence = read_sequence_legacy(str(folder))
    storage = LocalStorage(str(workspace))
    experiment = SupervisedExperiment("baseline", storage, repetitions=1, skip_initialize=5)
    experiment.execute(tracker, sequence)
    return experiment.gather(tracker, sequence)[0].regions(), sequence


def _same_entries(ours: list[V.Entry], theirs: list) -> None:
    from vot.region import Special

    assert len(ours) == len(theirs)
    for index, (entry, region) in enumerate(zip(ours, theirs, strict=True)):
        if isinstance(entry, int):
            assert isinstance(region, Special) and region.code == entry, index
        else:
            assert V.format_region(entry) == str(region), index


def test_supervised_run_matches_the_toolkit(tmp_path):
    _toolkit()
    for name, folder, truth, size, boxes in _cases(tmp_path):
        theirs, sequence = _toolkit_trajectory(folder, boxes, tmp_path / "workspace" / name)
        assert sequence.size == size
        exact = _drive(V.SupervisedRun(truth, size, ignore_empty_truth=False), boxes)
        _same_entries(exact, theirs)
        assert V.count_failures(exact) >= 3
        if name == "bag":
            _same_entries(_drive(V.SupervisedRun(truth, size), boxes), theirs)


def test_empty_ground_truth_neither_fails_nor_initialises():
    rect = np.array([10.0, 10.0, 20.0, 20.0])
    truth: list[V.Entry] = [rect] * 12
    truth[3], truth[8], truth[9] = np.zeros(0), np.zeros(4), np.zeros(0)
    boxes = [V.init_box(rect)] * 12
    boxes[3] = boxes[5] = np.array([200.0, 200.0, 5.0, 5.0])
    ours = _drive(V.SupervisedRun(truth, (64, 64)), boxes)
    codes = [entry if isinstance(entry, int) else "r" for entry in ours]
    # Frame 3 is empty (no failure); frame 5 fails; 5 + 5 = 10 is usable.
    assert codes == [1, "r", "r", "r", "r", 2, 0, 0, 0, 0, 1, "r"]
    truth[10] = np.zeros(0)
    later = _drive(V.SupervisedRun(truth, (64, 64)), boxes)
    codes = [entry if isinstance(entry, int) else "r" for entry in later]
    assert codes[10:] == [0, 1]
    exact = _drive(V.SupervisedRun(truth, (64, 64), ignore_empty_truth=False), boxes)
    assert [entry if isinstance(entry, int) else "r" for entry in exact][:6] == [1, "r", "r", 2, 0, 0]


def test_run_supervised_drives_a_box_tracker():
    rect = np.array([10.0, 10.0, 20.0, 20.0])
    truth = [rect + np.array([index, 0, 0, 0]) for index in range(20)]

    class Tracker:
        def __init__(self):
            self.calls: list[tuple[str, int]] = []

        def init(self, image, box):
            self.calls.append(("init", int(image)))
            np.testing.assert_allclose(box, V.init_box(truth[int(image)]))

        def update(self, image):
            self.calls.append(("update", int(image)))
            far = int(image) == 4
            return V.init_box(truth[int(image)]) + ([100, 100, 0, 0] if far else 0)

    tracker = Tracker()
    trajectory = V.run_supervised(tracker, lambda index: np.int64(index), truth, (200, 100))
    assert trajectory[:10] == [1, *trajectory[1:4], 2, 0, 0, 0, 0, 1]
    assert ("init", 9) in tracker.calls and ("update", 5) not in tracker.calls
    np.testing.assert_allclose(trajectory[1], rect + np.array([1, 0, 0, 0]))
    np.testing.assert_allclose(V.init_box(rect), [11.0, 11.0, 20.0, 20.0])
    np.testing.assert_allclose(V.box_to_vot(V.init_box(rect)), rect)


# ------------------------------------------------------------------------------------- measures


def test_measures_match_the_toolkit(tmp_path):
    _toolkit()
    from vot.analysis.failures import CumulativeFailureCount, FailureCount
    from vot.analysis.supervised import AccuracyRobustness, AverageAccuracyRobustness, EAOCurve
    from vot.dataset.common import read_sequence_legacy
    from vot.experiment.multirun import SupervisedExperiment
    from vot.tracker import Tracker
    from vot.workspace.storage import LocalStorage

    workspace = tmp_path / "workspace"
    runs, sequences = [], []
    for name, folder, truth, size, boxes in _cases(tmp_path):
        trajectory = _drive(V.SupervisedRun(truth, size, ignore_empty_truth=name != "synthetic2"), boxes)
        V.write_trajectory(workspace / "results", "siamfc", name, trajectory)
        runs.append(V.VotRun(name, trajectory, truth, size))
        sequences.append(read_sequence_legacy(str(folder)))
    tracker = Tracker("siamfc", None, None)
    storage = LocalStorage(str(workspace))
    experiment = SupervisedExperiment("baseline", storage, repetitions=15, skip_initialize=5)
    analysis = AccuracyRobustness(sensitivity=30, burnin=10)
    per_sequence = [analysis.subcompute(experiment, tracker, sequence, []) for sequence in sequences]
    accuracy, robustness, (reliability, _), _ = AverageAccuracyRobustness(analysis=analysis).aggregate(
        tracker, sequences, per_sequence
    )
    failures = [FailureCount().subcompute(experiment, tracker, sequence, []) for sequence in sequences]
    (total,) = CumulativeFailureCount().aggregate(tracker, sequences, failures)
    (curve,) = EAOCurve(burnin=10).subcompute(experiment, tracker, sequences, [])

    for interval in ((100, 356), (108, 371), (10, 60)):
        rows, summary, ours = V.evaluate_supervised(runs, interval)
        expected = float(np.mean(curve[interval[0] : interval[1] + 1]))
        assert math.isfinite(expected) and abs(summary["eao"] - expected) <= TOLERANCE
    assert len(ours) == len(curve) and np.max(np.abs(ours - curve)) <= TOLERANCE
    for row, (seq_accuracy, seq_failures, _, frames) in zip(rows, per_sequence, strict=True):
        assert abs(row["accuracy"] - seq_accuracy) <= TOLERANCE and row["failures"] == seq_failures
        assert row["frames"] == frames
    assert abs(summary["accuracy"] - accuracy) <= TOLERANCE
    assert abs(summary["robustness"] - robustness) <= TOLERANCE
    assert abs(summary["reliability"] - reliability) <= TOLERANCE
    assert summary["failures"] == total and total >= 10


def test_eao_curve_by_hand():
    # One run that failed after 3 frames (zeros beyond), one that reached the end after 2.
    curve = V.eao_curve([(np.array([0.0, 0.5, 1.0]), False), (np.array([0.0, 0.25]), True)])
    np.testing.assert_allclose(curve, [0.0, (0.5 + 0.25) / 2, 0.75])
    assert V.eao_score(curve, (1, 2)) == pytest.approx((0.375 + 0.75) / 2)
    assert math.isnan(V.eao_score(curve, (5, 9)))


def test_reports(tmp_path):
    rect = np.array([10.0, 10.0, 20.0, 20.0])
    runs = [
        V.VotRun("a", [1, rect, rect, 2, 0], [rect] * 5, (64, 64)),
        V.VotRun("b", [1, rect], [rect] * 2, (64, 64)),
    ]
    rows, summary, curve = V.evaluate_supervised(runs, (1, 3))
    assert summary["failures"] == 1 and summary["frames"] == 7
    assert summary["robustness"] == pytest.approx(5 / 7)
    table = V.sequence_table(rows)
    assert table.count("\n") == 4 and "| a | 5 |" in table
    figure = V.eao_figure(curve, (1, 3))
    assert len(figure.axes) == 1 and figure.axes[0].get_xlabel().startswith("sequence length")
    path = V.write_trajectory(tmp_path, "siamfc", "a", runs[0].trajectory)
    assert path == tmp_path / "siamfc" / "baseline" / "a" / "a_001.txt"
    assert path.read_text().splitlines() == ["1", "10.0,10.0,20.0,20.0", "10.0,10.0,20.0,20.0", "2", "0"]
    assert V.read_regions(path)[0] == 1 and np.array_equal(V.read_regions(path)[1], rect)
