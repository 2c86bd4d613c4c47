"""Sequence and folder evaluation with a scripted tracker and host loop (no network): boxes and
files written, speed after the first frame, scores recomputed independently with NumPy."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.evaluation import tracking
from siamfc_jax.evaluation.reports import format_boxes, format_result, run_info, strip_indices
from siamfc_jax.evaluation.tracking import run_folder, run_sequence, track_sequence
from siamfc_jax.evaluation.validation import is_sequence_root
from siamfc_jax.sequences.datasets import SequenceFolder
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker.loop import FrameResult, Job, JobResult

WIDTH, HEIGHT = 64, 48
INIT_SECONDS, UPDATE_SECONDS = 5.0, 0.25


class ScriptedTracker:
    """Stands in for a tracker and its host loop: scripted boxes and times, no network.

    Frames are flat images whose red value is ``10 * index``, so each call records the frame index
    it was given. Starting a job takes ``INIT_SECONDS``, each later frame ``UPDATE_SECONDS``. Its
    ``variables`` are itself, so that :func:`scripted_track_jobs` (which the ``scripted`` fixture
    puts in place of the host loop) finds the script.
    """

    model_config = ModelConfig()
    config = TrackerConfig()
    spec = None

    def __init__(self, boxes: np.ndarray, interrupt_after: int | None = None) -> None:
        self.boxes = np.asarray(boxes, np.float64)
        self.interrupt_after = interrupt_after
        self.calls: list[tuple[str, int]] = []
        self.variables = self

    def answer(self, index: int, frame: np.ndarray, job: Job) -> tuple[np.ndarray, float]:
        """The (1, 4) box and the seconds of frame ``index``."""
        self.calls.append(("start" if index == 0 else "step", int(frame[0, 0, 0]) // 10))
        if self.interrupt_after is not None and len(self.calls) > self.interrupt_after:
            raise KeyboardInterrupt
        if index == 0:
            return job.boxes, INIT_SECONDS
        return self.boxes[index][None], UPDATE_SECONDS


def scripted_track_jobs(variables: ScriptedTracker, spec, jobs: list[Job], **options):
    """The host loop's contract (:func:`siamfc_jax.tracker.loop.track_jobs`) with scripted answers."""
    for job_index, job in enumerate(jobs):
        boxes, times, interrupted = [], [], False
        source = job.frames()
        try:
            for index, frame in enumerate(itertools.islice(source, job.num_frames)):
                box, seconds = variables.answer(index, frame, job)
                result = FrameResult(index, frame, np.round(box, 4), seconds, np.full((1, 2), np.nan))
                boxes.append(result.boxes)
                times.append(seconds)
                job.on_frame(result)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            source.close()
        confidence = np.full((len(boxes), 1, 2), np.nan)
        yield JobResult(job_index, np.array(boxes), np.array(times), confidence, interrupted)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking, "track_jobs", scripted_track_jobs)


def write_sequence(directory: Path, truth: np.ndarray, absent: list[int] = ()) -> Path:
    """A GOT-10k sequence folder: flat PNG frames (red = 10 * index), ground truth, absence labels."""
    directory.mkdir(parents=True)
    for index in range(len(truth)):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        frame[..., 0] = 10 * index
        assert cv2.imwrite(str(directory / f"{index + 1:08d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    lines = ["NaN,NaN,NaN,NaN" if np.isnan(box).any() else ",".join(f"{v:g}" for v in box) for box in truth]
    (directory / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    (directory / "absence.label").write_text("".join(f"{int(i in absent)}\n" for i in range(len(truth))))
    return directory


# Ground truth of 6 frames: frame 3 is absent (flag), frame 4 has no box (NaN).
TRUTH = np.array(
    [
        [10, 10, 20, 16],
        [12, 11, 20, 16],
        [14, 12, 22, 16],
        [16, 13, 22, 18],
        [np.nan] * 4,
        [20, 15, 24, 18],
    ]
)
# The tracker's answers for frames 1..5 (row 0 unused: frame 0 is the initial box).
SCRIPT = np.array(
    [
        [0, 0, 0, 0],
        [12.123456, 11.000049, 20.5, 16.25],
        [30.0, 30.0, 22.0, 16.0],  # far off: IoU 0, centre error > 20 px
        [16.0, 13.0, 22.0, 18.0],
        [18.0, 14.0, 24.0, 18.0],
        [21.0, 15.5, 24.0, 18.0],
    ]
)


def reference_scores(boxes: np.ndarray, truth: np.ndarray, evaluated: list[int]) -> dict:
    """OTB one-pass scores, written independently of siamfc_jax.evaluation.metrics."""
    ious, errors = [], []
    for index in evaluated:
        (ax, ay, aw, ah), (bx, by, bw, bh) = boxes[index], truth[index]
        overlap_w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
        overlap_h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
        inter = overlap_w * overlap_h
        ious.append(inter / (aw * ah + bw * bh - inter))
        errors.append(np.hypot(ax + aw / 2 - bx - bw / 2, ay + ah / 2 - by - bh / 2))
    ious, errors = np.array(ious), np.array(errors)
    thresholds = np.arange(21) / 20
    return {
        "auc": float(np.mean([np.mean(ious > t) for t in thresholds])),
        "precision": float(np.mean(errors <= 20)),
        "mean_iou": float(np.mean(ious)),
        "evaluated_frames": len(evaluated),
        "ious": ious,
        "errors": errors,
    }


def test_track_sequence_warm_up_boxes_speed_and_scores(tmp_path, scripted):
    sequence = open_sequence(write_sequence(tmp_path / "seq", TRUTH, absent=[3]))
    tracker = ScriptedTracker(SCRIPT, scripted)
    result = track_sequence(tracker, sequence)

    # Frame 0 starts the job; then one step per frame.
    assert tracker.calls == [("start", 0)] + [("step", i) for i in range(1, 6)]
    expected = np.vstack([TRUTH[0], np.round(SCRIPT[1:], 4)])
    np.testing.assert_array_equal(result.boxes, expected)
    assert result.boxes[1, 0] == 12.1235 and result.boxes[1, 1] == 11.0

    # The first frame's time is the start's; the speed counts frames 1..5 only.
    np.testing.assert_allclose(result.times, [INIT_SECONDS] + [UPDATE_SECONDS] * 5)
    assert result.fps == pytest.approx(1 / UPDATE_SECONDS)

    reference = reference_scores(expected, TRUTH, evaluated=[0, 1, 2, 5])
    assert reference["ious"][2] == 0 and reference["errors"][2] > 20
    for key in ("auc", "precision", "mean_iou", "evaluated_frames"):
        assert result.scores[key] == pytest.approx(reference[key], rel=0, abs=1e-12), key
    np.testing.assert_allclose(result.ious, reference["ious"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.center_errors, reference["errors"], rtol=0, atol=1e-12)
    curve = [np.mean(reference["ious"] > t) for t in np.arange(21) / 20]
    np.testing.assert_allclose(result.success_curve, curve, rtol=0, atol=1e-12)


def test_max_frames_limits_tracking_and_scoring(tmp_path, scripted):
    sequence = open_sequence(write_sequence(tmp_path / "seq", TRUTH))
    tracker = ScriptedTracker(SCRIPT, scripted)
    result = track_sequence(tracker, sequence, max_frames=3)
    assert [index for _, index in tracker.calls] == [0, 1, 2]
    assert result.num_frames == 3 and result.frames_tracked == 3
    reference = reference_scores(result.boxes, TRUTH, evaluated=[0, 1, 2])
    assert result.scores["auc"] == pytest.approx(reference["auc"], abs=1e-12)
    assert result.scores["evaluated_frames"] == 3
    # More frames than the sequence has: all of them.
    assert track_sequence(ScriptedTracker(SCRIPT, scripted), sequence, max_frames=50).num_frames == 6
    with pytest.raises(ValueError, match="max_frames"):
        track_sequence(tracker, sequence, max_frames=0)


def test_run_sequence_files(tmp_path, scripted):
    sequence = open_sequence(write_sequence(tmp_path / "seq", TRUTH, absent=[3]))
    tracker = ScriptedTracker(SCRIPT, scripted)
    info = run_info(tracker, "weights.msgpack", "device: test")
    out = tmp_path / "out"
    result = run_sequence(
        tracker, sequence, out, info=info, max_frames=4, save_video=True, save_strip=True
    )
    assert sorted(path.name for path in out.iterdir()) == [
        "seq.json",
        "seq.mp4",
        "seq.txt",
        "seq_strip.png",
        "seq_success.png",
    ]
    # Hand-written expectation: the initial box, then the scripted boxes to 4 decimals.
    assert (out / "seq.txt").read_text() == (
        "10.0000,10.0000,20.0000,16.0000\n"
        "12.1235,11.0000,20.5000,16.2500\n"
        "30.0000,30.0000,22.0000,16.0000\n"
        "16.0000,13.0000,22.0000,18.0000\n"
    )
    record = json.loads((out / "seq.json").read_text())
    written = np.loadtxt(out / "seq.txt", delimiter=",")
    reference = reference_scores(written, TRUTH, evaluated=[0, 1, 2])  # frame 3 is absent
    assert record["frames"] == 4 and record["sequence_frames"] == 6 and record["frames_tracked"] == 4
    assert record["interrupted"] is False
    assert record["init_box"] == [10, 10, 20, 16]
    for key in ("auc", "precision", "mean_iou", "evaluated_frames"):
        assert record[key] == pytest.approx(reference[key], abs=1e-12), key
    assert record["fps"] == pytest.approx(1 / UPDATE_SECONDS) and record["fps_frames"] == 3
    assert record["first_frame_seconds"] == pytest.approx(INIT_SECONDS)
    assert record["precision_threshold_px"] == 20
    assert record["success_curve"]["thresholds"] == pytest.approx(np.arange(21) / 20)
    assert record["device"] == "test" and record["weights"] == "weights.msgpack"
    assert record["config"]["scale_step"] == 1.0375 and record["backbone"] == "v1"
    assert record["outputs"] == {k: p.name for k, p in result.outputs.items()}

    capture = cv2.VideoCapture(str(out / "seq.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 4
    capture.release()
    # The strip shows frames 1, 2, 3 and 4 (0-based 0..3) side by side at 240 px height.
    strip = cv2.imread(str(out / "seq_strip.png"))
    assert strip.shape == (240, 4 * 320 + 3 * 4, 3)


def test_interrupt_keeps_what_was_tracked(tmp_path, scripted):
    sequence = open_sequence(write_sequence(tmp_path / "seq", TRUTH))
    # Calls: start, step 1, step 2, then Ctrl-C in step 3.
    tracker = ScriptedTracker(SCRIPT, interrupt_after=3)
    out = tmp_path / "out"
    result = run_sequence(tracker, sequence, out, info={}, save_video=True)
    assert result.interrupted and result.frames_tracked == 3 and result.scores is None
    assert len((out / "seq.txt").read_text().splitlines()) == 3
    record = json.loads((out / "seq.json").read_text())
    assert record["interrupted"] is True and "auc" not in record
    assert not (out / "seq_success.png").exists()
    capture = cv2.VideoCapture(str(out / "seq.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3


def test_no_ground_truth_no_scores(tmp_path, scripted):
    folder = write_sequence(tmp_path / "frames", TRUTH)
    (folder / "groundtruth.txt").unlink()
    (folder / "absence.label").unlink()
    sequence = open_sequence(folder, box=[5, 6, 7, 8])
    result = run_sequence(ScriptedTracker(SCRIPT, scripted), sequence, tmp_path / "out", info={})
    assert result.scores is None and "success_plot" not in result.outputs
    assert (tmp_path / "out" / "frames.txt").read_text().startswith("5.0000,6.0000,7.0000,8.0000\n")
    assert format_result(result).endswith("(no ground truth)")


def test_run_folder_summary_is_the_mean_over_sequences(tmp_path, scripted):
    root = tmp_path / "val"
    write_sequence(root / "a", TRUTH, absent=[3])
    shifted = TRUTH + np.array([3.0, 1.0, 0.0, 0.0])
    write_sequence(root / "b", shifted[:5])
    (root / "list.txt").write_text("a\nb\n")
    assert is_sequence_root(root) and not is_sequence_root(root / "a")
    out = tmp_path / "out"
    logged: list[str] = []
    result = run_folder(
        ScriptedTracker(SCRIPT, scripted), SequenceFolder(root), out, info={}, log=logged.append
    )
    assert [line.split(":")[0] for line in logged] == ["a", "b"]

    per_sequence = {name: json.loads((out / f"{name}.json").read_text()) for name in ("a", "b")}
    references = [
        reference_scores(np.loadtxt(out / "a.txt", delimiter=","), TRUTH, [0, 1, 2, 5]),
        reference_scores(np.loadtxt(out / "b.txt", delimiter=","), shifted, [0, 1, 2, 3]),
    ]
    summary = json.loads((out / "summary.json").read_text())
    overall = summary["overall"]
    assert not result.interrupted and overall["auc"] == result.overall["auc"]
    for key in ("auc", "precision", "mean_iou"):
        expected = np.mean([reference[key] for reference in references])
        assert overall[key] == pytest.approx(expected, abs=1e-12), key
        assert overall[key] == pytest.approx(np.mean([r[key] for r in per_sequence.values()]), abs=1e-12)
        assert summary["sequences"]["a"][key] == per_sequence["a"][key]
    ious = np.concatenate([reference["ious"] for reference in references])
    errors = np.concatenate([reference["errors"] for reference in references])
    pooled = overall["pooled"]
    assert pooled["evaluated_frames"] == 8
    assert pooled["auc"] == pytest.approx(np.mean([np.mean(ious > t) for t in np.arange(21) / 20]), abs=1e-12)
    assert pooled["precision"] == pytest.approx(np.mean(errors <= 20), abs=1e-12)
    assert pooled["mean_iou"] == pytest.approx(ious.mean(), abs=1e-12)
    assert overall["sequences"] == 2 and overall["frames"] == 11
    assert overall["fps"] == pytest.approx(1 / UPDATE_SECONDS)

    table = (out / "summary.md").read_text().splitlines()
    assert table[2].startswith(f"| a | 6 | {per_sequence['a']['auc']:.3f} | ")
    assert table[3].startswith(f"| b | 5 | {per_sequence['b']['auc']:.3f} | ")
    assert table[4].startswith(f"| **mean over 2 sequences** | 11 | {overall['auc']:.3f} | ")
    assert (out / "summary_success.png").is_file()


def test_run_folder_rejects_a_sequence_named_summary(tmp_path, scripted):
    write_sequence(tmp_path / "root" / "summary", TRUTH)
    with pytest.raises(DataError, match="overwrite the summary"):
        run_folder(ScriptedTracker(SCRIPT, scripted), SequenceFolder(tmp_path / "root"), tmp_path, info={})


def test_format_boxes_and_strip_indices():
    assert format_boxes(np.array([[1, 2.5, 3.25, 4.00006]])) == "1.0000,2.5000,3.2500,4.0001\n"
    assert strip_indices(1) == [0]
    assert strip_indices(3) == [0, 1, 2]
    # linspace(0, 149, 5) = 0, 37.25, 74.5, 111.75, 149
    assert strip_indices(150) == [0, 37, 74, 112, 149]
