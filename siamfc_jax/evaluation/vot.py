"""VOT short-term supervised (reset-based) experiment and its measures, as vot-toolkit 0.8.1 defines them.

Host code, NumPy only (matplotlib only to draw the expected-overlap curve).

Regions are in VOT's coordinates: a pixel's coordinates are its 0-based column and row, and a
rectangle ``[x, y, w, h]`` covers columns ``x .. x + w - 1`` once rounded (the toolkit rasterises on
the pixel grid ``0 .. W - 1``). siamfc_jax boxes are 1-indexed, so a tracker's box becomes the VOT
rectangle ``[x - 1, y - 1, w, h]`` and a ground-truth region becomes the initial box
``[left + 1, top + 1, right - left, bottom - top]`` of its bounding rectangle
(:func:`box_to_vot`, :func:`init_box`).

A region is a float ndarray: ``(4,)`` rectangle, ``(2K,)`` polygon (K >= 3), or ``(0,)`` unknown
(a NaN line); a trajectory entry may also be an ``int`` code: 1 initialisation, 2 failure, 0 skipped.

Overlap (``vot/region/raster.py: calculate_overlap``): coordinates go to float32 and are rounded half
to even; both regions are rasterised on the union of their integer bounds clipped to the image
(``0 .. W - 1``, ``0 .. H - 1``), polygons by the toolkit's scan-line rule (nodes truncated towards
zero), and the overlap is the pixel IoU. A union of bounds at most one pixel wide or high gives 1
(two empty regions are identical); a clipped raster that thin gives 0. Codes and unknown regions are
empty, with bounds ``(0, 0, 0, 0)``.

Experiment (``vot/experiment/multirun.py: SupervisedExperiment.execute``): initialise at frame 0;
on a frame whose overlap with the ground truth is at most ``failure_overlap`` (0) record 2 and
re-initialise ``skip_initialize`` (5) frames later, where 1 is recorded; frames never visited stay 0.
The toolkit applies the failure test to frames whose ground truth is empty too (a box fails there);
:class:`SupervisedRun` by default skips them instead (its ``ignore_empty_truth``).

Measures (``vot/analysis/supervised.py``): accuracy is the mean overlap over the frames that are no
code and not within ``burnin`` (10) frames of an initialisation (frames with an empty ground truth
count, with overlap 0); robustness is the failure count;
over sequences both are averaged weighted by sequence length, and the AR point's reliability is
``exp(-30 * R / mean length)``. EAO: each run is cut into segments from an initialisation up to
(excluding) its failure, or to the sequence end; the curve at length ``j`` is the mean over segments
of the average overlap on frames ``1 .. j`` (a failed segment counts zeros beyond its end, one that
reached the end is left out beyond it); the EAO is the curve's mean over ``[low, high]``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
from numpy.typing import ArrayLike

from siamfc_jax.files import write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SKIPPED, INITIALIZATION, FAILURE = 0, 1, 2
SKIP_INITIALIZE = 5
BURNIN = 10
SENSITIVITY = 30.0
EAO_INTERVALS = {"vot2016": (108, 371), "vot2017": (100, 356), "vot2018": (100, 356)}

Entry = int | np.ndarray
Bounds = tuple[int, int, int, int]


# --------------------------------------------------------------------------------------- regions


def parse_region(line: str) -> Entry:
    """A line of a VOT region file: one number is a code (int), 4 a rectangle, 2K (K >= 3) a
    polygon; any NaN gives the unknown region ``(0,)``.

    Raises:
        ValueError: another count of numbers.
    """
    values = [float(token) for token in line.replace("\t", ",").replace(" ", ",").split(",") if token]
    if len(values) == 1:
        return int(values[0])
    if len(values) != 4 and (len(values) < 6 or len(values) % 2):
        raise ValueError(f"a VOT region has 1, 4 or an even count >= 6 of numbers, got {line!r}")
    if any(math.isnan(value) for value in values):
        return np.zeros(0)
    return np.array(values, dtype=np.float64)


def read_regions(path: str | os.PathLike) -> list[Entry]:
    """The regions of a VOT ``groundtruth.txt`` or result file, one per non-blank line."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [parse_region(line) for line in lines if line.strip()]


def format_region(entry: Entry) -> str:
    """One line of a VOT result file: the code, or the numbers as the toolkit writes them (float32
    values in Python's shortest repr, comma-separated)."""
    if isinstance(entry, int | np.integer):
        return str(int(entry))
    return ",".join(repr(float(value)) for value in np.asarray(entry, np.float32))


def _float32(entry: Entry) -> np.ndarray | None:
    """The region's float32 values, as the toolkit stores them; None for codes and unknown."""
    if isinstance(entry, int | np.integer):
        return None
    values = np.asarray(entry, dtype=np.float32)
    return values if values.size else None


def is_empty(entry: Entry) -> bool:
    """The toolkit's ``is_empty``: codes and unknown; a rectangle without positive width and height;
    a polygon whose points span no width or no height."""
    values = _float32(entry)
    if values is None:
        return True
    if values.size == 4:
        return not (values[2] > 0 and values[3] > 0)
    return bool(np.ptp(values[0::2]) == 0 or np.ptp(values[1::2]) == 0)


def box_to_vot(boxes: ArrayLike) -> np.ndarray:
    """(..., 4) 1-indexed siamfc_jax ``[x, y, w, h]`` → VOT rectangles (0-based corner)."""
    vot = np.array(boxes, dtype=np.float64)
    vot[..., :2] -= 1.0
    return vot


def init_box(region: Entry) -> np.ndarray:
    """(4,) 1-indexed siamfc_jax box of the bounding rectangle of a VOT region (the rectangle the
    toolkit gives a rectangle tracker); NaN for codes and unknown regions."""
    values = _float32(region)
    if values is None:
        return np.full(4, np.nan)
    values = values.astype(np.float64)
    if values.size == 4:
        return values + np.array([1.0, 1.0, 0.0, 0.0])
    left, top = values[0::2].min(), values[1::2].min()
    return np.array([left + 1.0, top + 1.0, values[0::2].max() - left, values[1::2].max() - top])


def _rounded(entry: Entry) -> np.ndarray | None:
    values = _float32(entry)
    # float32 first, then numpy's half-to-even rounding: how the toolkit snaps regions to pixels.
    return None if values is None else np.round(values).astype(np.float64)


def _bounds(points: np.ndarray | None) -> Bounds:
    """Integer (left, top, right, bottom) of a rounded region; (0, 0, 0, 0) for an empty one."""
    if points is None:
        return (0, 0, 0, 0)
    if points.size == 4:
        x, y, w, h = points
        return (int(x), int(y), int(x + w - 1), int(y + h - 1))
    xs, ys = points[0::2], points[1::2]
    return (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))


def _raster_rectangle(rect: np.ndarray, bounds: Bounds) -> np.ndarray:
    left_b, top_b, right_b, bottom_b = bounds
    mask = np.zeros((bottom_b - top_b + 1, right_b - left_b + 1), dtype=bool)
    x, y, w, h = (int(value) for value in rect)
    if x > right_b or x + w - 1 < left_b or y > bottom_b or y + h - 1 < top_b:
        return mask
    # The far edges are capped at the absolute right/bottom bound, as the toolkit caps them.
    right, bottom = min(right_b, x + w - 1 - left_b), min(bottom_b, y + h - 1 - top_b)
    mask[max(0, y - top_b) : bottom + 1, max(0, x - left_b) : right + 1] = True
    return mask


def _polygon_nodes(xs: np.ndarray, ys: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, K) sorted x of the K edges crossing each of the R ``rows`` (closed in y; a horizontal edge
    on the row gives its first point), truncated towards zero as the toolkit's integer nodes are,
    +inf after the last; and the (R,) count of nodes per row."""
    xs_prev, ys_prev = np.roll(xs, 1), np.roll(ys, 1)
    low, high = np.minimum(ys, ys_prev), np.maximum(ys, ys_prev)
    row = rows[:, None].astype(np.float64)
    crossing = ((low <= row) & (row <= high) & (low < high)) | ((ys == ys_prev) & (ys == row))
    rise, run = ys_prev - ys, xs_prev - xs
    with np.errstate(divide="ignore", invalid="ignore"):
        # Same operation order as the toolkit, so the truncation sees the same float64 values.
        nodes = np.where(rise != 0, xs + (row - ys) / rise * run, xs)
    nodes = np.sort(np.where(crossing, np.trunc(nodes), np.inf), axis=1)
    return nodes, crossing.sum(axis=1)


def _fill_row(mask_row: np.ndarray, nodes: list[int]) -> None:
    """The toolkit's span filling of one row from its sorted nodes."""
    width, i = len(mask_row), 0
    while i < len(nodes) - 1 and nodes[i] < width:
        # A vertex on the row gives two equal nodes: drop one unless they are the last pair.
        if nodes[i] == nodes[i + 1] and i < len(nodes) - 2:
            i += 1
            continue
        if nodes[i + 1] >= 0:
            mask_row[max(nodes[i], 0) : min(nodes[i + 1], width - 1) + 1] = True
        i += 2


def _raster_polygon(points: np.ndarray, bounds: Bounds) -> np.ndarray:
    width, height = bounds[2] - bounds[0] + 1, bounds[3] - bounds[1] + 1
    mask = np.zeros((height, width), dtype=bool)
    xs, ys = points[0::2] - bounds[0], points[1::2] - bounds[1]
    rows = np.arange(max(0, int(ys.min())), min(height, int(ys.max()) + 1))
    nodes, counts = _polygon_nodes(xs, ys, rows)
    # Rows crossed twice (nearly all) fill one span, vectorised; the others go span by span.
    pairs = counts == 2
    low, high = nodes[pairs, 0], nodes[pairs, 1]
    filled = (high >= 0) & (low < width)
    columns = np.arange(width)
    mask[rows[pairs][filled]] = (columns >= np.maximum(low[filled], 0)[:, None]) & (
        columns <= np.minimum(high[filled], width - 1)[:, None]
    )
    for index in np.flatnonzero(~pairs & (counts > 2)):
        _fill_row(mask[rows[index]], nodes[index, : counts[index]].astype(np.int64).tolist())
    return mask


def _raster(points: np.ndarray | None, bounds: Bounds) -> np.ndarray:
    if points is None:
        return np.zeros((bounds[3] - bounds[1] + 1, bounds[2] - bounds[0] + 1), dtype=bool)
    if points.size == 4:
        return _raster_rectangle(points, bounds)
    return _raster_polygon(points, bounds)


def region_overlap(a: Entry, b: Entry, frame_size: tuple[int, int] | None = None) -> float:
    """Overlap (pixel IoU in [0, 1]) of two VOT regions as the toolkit computes it (module docstring).

    Args:
        a, b: regions (rectangle, polygon, unknown) or codes, VOT coordinates.
        frame_size: ``(width, height)`` in pixels to clip to, or None for no clipping.
    """
    points_a, points_b = _rounded(a), _rounded(b)
    bounds_a, bounds_b = _bounds(points_a), _bounds(points_b)
    union = (
        min(bounds_a[0], bounds_b[0]),
        min(bounds_a[1], bounds_b[1]),
        max(bounds_a[2], bounds_b[2]),
        max(bounds_a[3], bounds_b[3]),
    )
    if union[0] >= union[2] or union[1] >= union[3]:
        return 1.0
    raster = union
    if frame_size is not None:
        width, height = frame_size
        raster = (max(0, union[0]), max(0, union[1]), min(width - 1, union[2]), min(height - 1, union[3]))
    if raster[0] >= raster[2] or raster[1] >= raster[3]:
        return 0.0
    mask_a, mask_b = _raster(points_a, raster), _raster(points_b, raster)
    union_pixels = int(np.count_nonzero(mask_a | mask_b))
    return int(np.count_nonzero(mask_a & mask_b)) / union_pixels if union_pixels else 0.0


def region_overlaps(
    trajectory: Sequence[Entry], groundtruth: Sequence[Entry], frame_size: tuple[int, int] | None = None
) -> np.ndarray:
    """(N,) float64 :func:`region_overlap` of each frame's trajectory entry with its ground truth."""
    if len(trajectory) != len(groundtruth):
        raise ValueError(f"trajectory has {len(trajectory)} frames, ground truth {len(groundtruth)}")
    return np.array([region_overlap(a, b, frame_size) for a, b in zip(trajectory, groundtruth, strict=True)])


# ------------------------------------------------------------------------------------ experiment


class Step(NamedTuple):
    """What the tracking loop does next for one sequence.

    Attributes:
        frame: 0-based frame index.
        init_box: (4,) 1-indexed ``[x, y, w, h]`` to (re)initialise the tracker with on ``frame``, or
            None: update the tracker on ``frame`` and report its box.
    """

    frame: int
    init_box: np.ndarray | None


@dataclass(eq=False)
class SupervisedRun:
    """One sequence's reset-based run, driven frame by frame (host policy, mutable).

    ``step`` says what to do; :meth:`report` records it and moves on, until ``step`` is None. With
    ``ignore_empty_truth`` (the default) frames whose ground truth is empty never fail and
    (re)initialisation waits for the first frame with a non-empty ground truth; without it the rule is
    the toolkit's exactly: such a frame fails unless the tracker's region is empty too, and
    initialisation may fall on it (``init_box`` is then NaN). Both agree when no frame is empty.

    Attributes:
        groundtruth: N VOT regions (:func:`read_regions`).
        frame_size: ``(width, height)`` in pixels.
        trajectory: N entries, filled as the run goes: codes 1 / 2 / 0 or (4,) VOT rectangles.
    """

    groundtruth: Sequence[Entry]
    frame_size: tuple[int, int]
    skip_initialize: int = SKIP_INITIALIZE
    failure_overlap: float = 0.0
    ignore_empty_truth: bool = True

    def __post_init__(self) -> None:
        if self.skip_initialize < 1:
            raise ValueError(f"skip_initialize must be at least 1, got {self.skip_initialize}")
        self.trajectory: list[Entry] = [SKIPPED] * len(self.groundtruth)
        self.step: Step | None = self._initialisation(0)

    def _initialisation(self, frame: int) -> Step | None:
        if self.ignore_empty_truth:
            while frame < len(self.groundtruth) and is_empty(self.groundtruth[frame]):
                frame += 1
        if frame >= len(self.groundtruth):
            return None
        return Step(frame, init_box(self.groundtruth[frame]))

    def report(self, box: ArrayLike | None = None) -> Step | None:
        """Record the current step and return the next one (None when the sequence is done).

        Args:
            box: after an update step, the tracker's (4,) 1-indexed ``[x, y, w, h]``; ignored after an
                initialisation step.
        """
        if self.step is None:
            raise RuntimeError("the run is over")
        frame = self.step.frame
        if self.step.init_box is not None:
            self.trajectory[frame] = INITIALIZATION
        else:
            region = box_to_vot(np.asarray(box, dtype=np.float64).reshape(4))
            truth = self.groundtruth[frame]
            failed = region_overlap(region, truth, self.frame_size) <= self.failure_overlap
            if failed and not (self.ignore_empty_truth and is_empty(truth)):
                self.trajectory[frame] = FAILURE
                self.step = self._initialisation(frame + self.skip_initialize)
                return self.step
            self.trajectory[frame] = region
        self.step = Step(frame + 1, None) if frame + 1 < len(self.groundtruth) else None
        return self.step


class BoxTracker(Protocol):
    """A tracker the driver runs: 1-indexed ``[x, y, w, h]`` boxes, images as the caller reads them."""

    def init(self, image: np.ndarray, box: np.ndarray) -> None: ...

    def update(self, image: np.ndarray) -> ArrayLike: ...


def run_supervised(
    tracker: BoxTracker,
    images: Sequence[np.ndarray] | Callable[[int], np.ndarray],
    groundtruth: Sequence[Entry],
    frame_size: tuple[int, int],
    **options: object,
) -> list[Entry]:
    """Run ``tracker`` through one sequence under the supervised experiment; returns the trajectory.

    Args:
        images: frame ``i``'s image as ``images[i]`` or ``images(i)``.
        groundtruth, frame_size, options: as for :class:`SupervisedRun`.

    Raises:
        ValueError: an initialisation falls on an empty ground truth (only without
            ``ignore_empty_truth``).
    """
    read = images if callable(images) else images.__getitem__
    run = SupervisedRun(groundtruth, frame_size, **options)  # type: ignore[arg-type]
    step = run.step
    while step is not None:
        if step.init_box is None:
            step = run.report(tracker.update(read(step.frame)))
            continue
        if not np.all(np.isfinite(step.init_box)):
            raise ValueError(f"frame {step.frame}: cannot initialise on an empty ground truth")
        tracker.init(read(step.frame), step.init_box)
        step = run.report()
    return run.trajectory


# -------------------------------------------------------------------------------------- measures


def _code(entry: Entry) -> int | None:
    return int(entry) if isinstance(entry, int | np.integer) else None


def sequence_accuracy(
    trajectory: Sequence[Entry],
    groundtruth: Sequence[Entry],
    frame_size: tuple[int, int] | None,
    burnin: int = BURNIN,
) -> tuple[float, int]:
    """Accuracy of one run (``compute_accuracy``): the mean overlap over the frames that are no code
    and not within ``burnin`` frames from an initialisation (the initialisation's frame included);
    frames with an empty ground truth count (their overlap is 0). Returns (accuracy, frames used);
    (0, 0) when no frame is left."""
    return _accuracy(region_overlaps(trajectory, groundtruth, frame_size), trajectory, burnin)


def _accuracy(overlaps: np.ndarray, trajectory: Sequence[Entry], burnin: int) -> tuple[float, int]:
    used = np.ones(len(overlaps), dtype=bool)
    for index, entry in enumerate(trajectory):
        code = _code(entry)
        if code == INITIALIZATION:
            used[index : index + burnin] = False
        elif code is not None:
            used[index] = False
    if not used.any():
        return 0.0, 0
    return float(np.mean(overlaps[used])), int(used.sum())


def count_failures(trajectory: Sequence[Entry]) -> int:
    """Number of frames coded 2 (failure)."""
    return sum(_code(entry) == FAILURE for entry in trajectory)


def eao_segments(overlaps: np.ndarray, trajectory: Sequence[Entry]) -> list[tuple[np.ndarray, bool]]:
    """The runs the EAO curve averages (``EAOCurve.subcompute``): ``overlaps[init_k:fail_k]`` for the
    k-th initialisation and failure (not reached the end), then ``overlaps[last init:]`` (reached the
    end) if an initialisation follows the last failure; a run without failure is one whole segment.
    ``overlaps`` are of every frame, codes included (a code's overlap is 0 on a non-empty truth)."""
    codes = [_code(entry) for entry in trajectory]
    failures = [i for i, code in enumerate(codes) if code == FAILURE]
    inits = [i for i, code in enumerate(codes) if code == INITIALIZATION]
    if not failures:
        return [(overlaps, True)]
    segments = [(overlaps[inits[k] : failures[k]], False) for k in range(len(failures))]
    if len(inits) > len(failures):
        segments.append((overlaps[inits[-1] :], True))
    return segments


def eao_curve(segments: Sequence[tuple[np.ndarray, bool]]) -> np.ndarray:
    """(L,) expected overlap by sequence length (``compute_eao_curve``), L the longest segment.

    Entry ``j >= 1`` is the mean over segments of the average overlap on the segment's frames
    ``1 .. j`` (frame 0 is the initialisation; a failed segment is padded with zeros, one that reached
    the sequence's end is left out beyond its length); entry 0 is the mean of the frames 0.
    """
    length = max(len(overlaps) for overlaps, _ in segments)
    values = np.zeros((len(segments), length))
    counted = np.zeros((len(segments), length))
    for row, (overlaps, reached_end) in enumerate(segments):
        # The toolkit holds overlaps in float32.
        values[row, : len(overlaps)] = np.asarray(overlaps, dtype=np.float32)
        counted[row, : len(overlaps) if reached_end else length] = 1.0
    averages = values.copy()
    averages[:, 1:] = np.cumsum(values[:, 1:], axis=1) / np.arange(1, length)
    return np.sum(averages * counted, axis=0) / np.sum(counted, axis=0)


def eao_score(curve: np.ndarray, interval: tuple[int, int]) -> float:
    """Mean of ``curve[low : high + 1]`` (``EAOScore``; NaN if the curve is shorter than ``low``)."""
    low, high = interval
    window = curve[low : high + 1]
    return float(np.mean(window)) if window.size else math.nan


@dataclass(frozen=True)
class VotRun:
    """One sequence's supervised run: its N-entry ``trajectory``, N ``groundtruth`` regions and
    ``frame_size`` ``(width, height)`` in pixels."""

    name: str
    trajectory: Sequence[Entry]
    groundtruth: Sequence[Entry]
    frame_size: tuple[int, int]


def evaluate_supervised(
    runs: Sequence[VotRun], interval: tuple[int, int] = EAO_INTERVALS["vot2018"], burnin: int = BURNIN
) -> tuple[list[dict[str, float | int | str]], dict[str, float | int], np.ndarray]:
    """The baseline experiment's figures (``AverageAccuracyRobustness``, ``CumulativeFailureCount``,
    ``EAOScore`` over ``interval``) of one run per sequence.

    Returns:
        Per-sequence rows (``sequence``, ``frames``, ``accuracy``, ``failures``); the summary:
        ``accuracy`` and ``robustness`` (the toolkit's A and R: per-sequence accuracy and failure
        count averaged weighted by length), ``failures`` (total), ``reliability``
        (``exp(-30 R / mean length)``, the AR plot's axis), ``eao``, ``sequences``, ``frames``; and
        the (L,) expected-overlap curve.
    """
    if not runs:
        raise ValueError("no run to evaluate")
    rows: list[dict[str, float | int | str]] = []
    segments: list[tuple[np.ndarray, bool]] = []
    for run in runs:
        overlaps = region_overlaps(run.trajectory, run.groundtruth, run.frame_size)
        segments.extend(eao_segments(overlaps, run.trajectory))
        accuracy, _ = _accuracy(overlaps, run.trajectory, burnin)
        failures = count_failures(run.trajectory)
        frames = len(run.trajectory)
        rows.append({"sequence": run.name, "frames": frames, "accuracy": accuracy, "failures": failures})
    lengths = np.array([row["frames"] for row in rows], dtype=np.float64)
    accuracy = float(np.sum([row["accuracy"] for row in rows] * lengths) / lengths.sum())
    robustness = float(np.sum([row["failures"] for row in rows] * lengths) / lengths.sum())
    curve = eao_curve(segments)
    summary: dict[str, float | int] = {
        "accuracy": accuracy,
        "robustness": robustness,
        "failures": int(sum(int(row["failures"]) for row in rows)),
        "reliability": math.exp(-SENSITIVITY * robustness / float(lengths.mean())),
        "eao": eao_score(curve, interval),
        "sequences": len(rows),
        "frames": int(lengths.sum()),
    }
    return rows, summary, curve


def sequence_table(rows: Sequence[dict[str, float | int | str]]) -> str:
    """Markdown table of :func:`evaluate_supervised`'s rows: sequence, frames, accuracy, failures."""
    lines = ["| sequence | frames | accuracy | failures |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['sequence']} | {r['frames']} | {r['accuracy']:.4f} | {r['failures']} |" for r in rows]
    return "\n".join(lines) + "\n"


def result_path(root: str | os.PathLike, tracker: str, sequence: str, repetition: int = 1) -> Path:
    """``root/<tracker>/baseline/<sequence>/<sequence>_001.txt``: where vot-toolkit's workspace keeps a
    supervised run (``<workspace>/results/``)."""
    return Path(root) / tracker / "baseline" / sequence / f"{sequence}_{repetition:03d}.txt"


def write_trajectory(
    root: str | os.PathLike, tracker: str, sequence: str, trajectory: Sequence[Entry], repetition: int = 1
) -> Path:
    """Write a trajectory as vot-toolkit does (one :func:`format_region` line per frame) at
    :func:`result_path`; returns the path."""
    path = result_path(root, tracker, sequence, repetition)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "".join(format_region(entry) + "\n" for entry in trajectory))
    return path


def eao_figure(curve: np.ndarray, interval: tuple[int, int], label: str = "SiamFC") -> Figure:
    """Expected-overlap curve over sequence length, the EAO interval shaded and its mean drawn."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.0), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(np.arange(len(curve)), curve, label=label)
    low, high = interval
    eao = eao_score(curve, interval)
    axes.axvspan(low, high, color="0.9", label=f"interval {low}-{high}")
    if math.isfinite(eao):
        axes.hlines(eao, low, high, colors="C1", label=f"EAO {eao:.3f}")
    axes.set(xlabel="sequence length (frames)", ylabel="expected overlap", ylim=(0.0, 1.0))
    axes.legend()
    return figure
