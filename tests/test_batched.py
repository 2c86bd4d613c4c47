"""Batched benchmark runs: boxes equal one-at-a-time tracking, masks, slot reuse, outputs, CLI."""

from __future__ import annotations

import json
import logging

import jax
import numpy as np
import pytest

from siamfc_jax.apps import track
from siamfc_jax.evaluation.metrics import iou
from siamfc_jax.evaluation.tracking import SequenceJob, track_sequences
from siamfc_jax.sequences.datasets import SequenceFolder
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker
from siamfc_jax.tracker.device import hyper_params
from siamfc_jax.weights import load_variables
from tests.conftest import shared_path
from tests.synthetic_folder import SEQUENCES, SLOTS, write_folder

MIN_MEAN_IOU = 0.9999  # per sequence, batched against one-at-a-time (the parity bar)


@pytest.fixture(scope="module")
def weights() -> tuple:
    return load_variables(shared_path("siamfc/weights/siamfc_original_v1.pth"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("batched") / "sequences")


def _sequential(tracker: Tracker, sequence, frames: int | None = None) -> np.ndarray:
    paths = sequence.frames[:frames] if frames else sequence.frames
    boxes, _ = tracker.track(paths, sequence.init_box)
    return np.round(boxes, 4)


def _batched(tracker: Tracker, sequences, slots: int, max_frames=None) -> dict:
    jobs = [SequenceJob(sequence, hyper_params(tracker.config)) for sequence in sequences]
    results = track_sequences(tracker.variables, tracker.spec, jobs, slots=slots, max_frames=max_frames)
    return {sequences[done.index].name: done for done in results}


@pytest.mark.slow
def test_mixed_sizes_and_lengths_equal_sequential_tracking(weights, folder, caplog):
    sequences = list(SequenceFolder(folder))
    assert sorted({sequence.frame_size for sequence in sequences}) == sorted(
        size for size, _ in SEQUENCES.values()
    )
    tracker = Tracker(weights)
    # 3 sequences in 2 slots: the third starts in the slot the shortest one frees.
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        batched = _batched(tracker, sequences, slots=SLOTS)
    compiled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling jit(")]
    assert sum("jit(step)" in line for line in compiled) == 1, compiled
    for sequence in sequences:
        done = batched[sequence.name]
        expected = _sequential(tracker, sequence)
        assert done.result.boxes.shape == expected.shape == (len(sequence), 4)
        agreement = float(np.mean(iou(done.result.boxes, expected)))
        print(f"{sequence.name} {sequence.frame_size}: mean IoU batched vs sequential {agreement:.7f}")
        assert agreement >= MIN_MEAN_IOU
        assert np.isnan(done.confidence[0]).all() and np.isfinite(done.confidence[1:]).all()
        assert (done.confidence[1:, 1] > 0).all()


@pytest.mark.slow
def test_real_sequences_of_two_sizes_equal_sequential_tracking(weights):
    sequences = [
        open_sequence(shared_path("siamfc/data/sequences/Crossing")),
        open_sequence(shared_path("siamfc/data/sequences/bag")),
    ]
    tracker = Tracker(weights)
    results = _batched(tracker, sequences, slots=2, max_frames=12)
    for sequence in sequences:
        expected = _sequential(tracker, sequence, 12)
        agreement = float(np.mean(iou(results[sequence.name].result.boxes, expected)))
        print(f"{sequence.name}: mean IoU batched vs sequential {agreement:.7f}")
        assert agreement >= MIN_MEAN_IOU


@pytest.mark.slow
def test_track_cli_batch_writes_scores_confidence_and_got10k_layout(folder, tmp_path, capsys):
    out = tmp_path / "out"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"window_influence": 0.2}))
    status = track.main(
        ["--seq", str(folder), "--out", str(out), "--batch", str(SLOTS), "--save-scores",
         "--protocol", "got10k", "--config", str(config), "--no-progress"]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "got10k protocol: AO" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"]["protocol"] == "got10k" and summary["batch"] == SLOTS
    assert summary["config"]["window_influence"] == 0.2
    for name, (_, frames) in SEQUENCES.items():
        record = json.loads((out / f"{name}.json").read_text())
        assert len(record["confidence"]["response_peak"]) == frames
        assert record["confidence"]["windowed_peak"][0] is None
        boxes = np.loadtxt(out / "got10k" / name / f"{name}_001.txt", delimiter=",")
        np.testing.assert_array_equal(boxes, np.loadtxt(out / f"{name}.txt", delimiter=","))
        assert len(np.loadtxt(out / "got10k" / name / f"{name}_time.txt")) == frames
        assert (out / f"{name}_scores.png").is_file()
        lines = (out / f"{name}_scores.txt").read_text().splitlines()
        assert len(lines) == frames + 1 and lines[1] == "1,,"


def test_track_cli_rejects_batch_with_video_and_bad_config(tmp_path, capsys):
    assert track.main(["--seq", str(tmp_path), "--batch", "2", "--save-video"]) == 2
    assert "need --seq, no video or strip" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"window_size": 3}))
    assert track.main(["--seq", str(tmp_path), "--config", str(bad)]) == 2
    assert "unknown tracker setting 'window_size'" in capsys.readouterr().err
