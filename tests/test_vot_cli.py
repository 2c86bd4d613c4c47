"""``track.py --protocol vot``: VOT's supervised experiment through the command line and the loop.

The CLI runs with the shared weights on a folder holding the shared *bag* sequence (a symlink) and
*bagfail*, bag's first 24 frames with the ground truth of frame 8 moved into the image's corner, so
the tracker fails there and the loop restarts it on frame 13; ``--batch 2`` moves both together,
``--max-frames 24`` keeps the run short. Its outputs are handed to vot-toolkit 0.8.1 unchanged: the
toolkit's reader must read our trajectories back as written, and on bagfail (whose folder has as
many frames as its trajectory) its analyses must agree with ours. The restart through the loop must
give what :func:`~siamfc_jax.evaluation.vot.run_supervised` gives with the stateful
:class:`~siamfc_jax.tracker.Tracker` on the same frames.

Tracking costs 0.1-0.3 s per frame on a CPU plus a compilation per frame size (two here: the
batched loop's and the stateful tracker's).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from siamfc_jax import cli
from siamfc_jax.apps import track
from siamfc_jax.evaluation import vot as V
from siamfc_jax.evaluation.vot_runs import (
    SupervisedDriver,
    claim_vot_outputs,
    vot_groundtruth,
    vot_output_paths,
    vot_summary,
)
from siamfc_jax.files import OutputError
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker
from siamfc_jax.tracker.loop import FrameResult, Restart
from tests.conftest import shared_path
from tests.test_vot import TOLERANCE, _toolkit

BAG_SIZE = (480, 360)
FRAMES, FAIL_AT = 24, 8
# Far from bag's target (around x 290-440, y 120-260): no overlap with the tracker's box.
CORNER = "5,5,20,20"


def the_error(capfd: pytest.CaptureFixture) -> str:
    """The one line on stderr, which must be an ``error:`` line (and so no traceback)."""
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def _bagfail(root: Path) -> Path:
    """A VOT sequence folder: bag's first frames (symlinks), frame ``FAIL_AT``'s region moved."""
    bag = shared_path("siamfc/data/sequences/bag")
    folder = root / "bagfail"
    folder.mkdir(parents=True)
    for index in range(1, FRAMES + 1):
        (folder / f"{index:08d}.jpg").symlink_to(bag / f"{index:08d}.jpg")
    lines = (bag / "groundtruth.txt").read_text().splitlines()[:FRAMES]
    lines[FAIL_AT] = CORNER
    (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def vot_run(tmp_path_factory):
    """The CLI on bag + bagfail, two sequences together: (exit status, output folder, root, stdout)."""
    weights = shared_path("siamfc/weights/siamfc_original_v1.pth")
    root = tmp_path_factory.mktemp("vot") / "sequences"
    root.mkdir()
    (root / "bag").symlink_to(shared_path("siamfc/data/sequences/bag"), target_is_directory=True)
    _bagfail(root)
    out = root.parent / "out"
    arguments = ["--seq", str(root), "--protocol", "vot", "--batch", "2", "--max-frames", str(FRAMES)]
    with pytest.MonkeyPatch.context() as patch:
        # Not the user's compilation cache.
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(root.parent / "cache"))
        status = track.main([*arguments, "--weights", str(weights), "--out", str(out), "--no-progress"])
    return status, out, root


def _codes(trajectory: list[V.Entry]) -> list[int | str]:
    return [entry if isinstance(entry, int) else "r" for entry in trajectory]


def _read_back(out: Path, root: Path, name: str) -> V.VotRun:
    """Our trajectory of ``name`` as written, checked against vot-toolkit's own reader."""
    from vot.region import Special
    from vot.region.io import read_trajectory

    path = V.result_path(out / "vot", "siamfc_jax", name)
    ours, theirs = V.read_regions(path), read_trajectory(str(path))
    assert len(theirs) == len(ours) == FRAMES
    for entry, region in zip(ours, theirs, strict=True):
        if isinstance(entry, int):
            assert isinstance(region, Special) and region.code == entry
        else:
            assert V.format_region(entry) == str(region)
    truth = V.read_regions(root / name / "groundtruth.txt")[:FRAMES]
    return V.VotRun(name, ours, truth, BAG_SIZE)


@pytest.mark.slow
def test_vot_cli_writes_what_the_toolkit_reads(vot_run, tmp_path):
    _toolkit()
    from vot.analysis.failures import FailureCount
    from vot.analysis.supervised import AccuracyRobustness
    from vot.dataset.common import read_sequence_legacy
    from vot.experiment.multirun import SupervisedExperiment
    from vot.tracker import Tracker as ToolkitTracker
    from vot.workspace.storage import LocalStorage

    status, out, root = vot_run
    assert status == cli.EXIT_OK
    names = ["bag", "bagfail"]
    assert all(path.is_file() for path in vot_output_paths(out, names))
    summary = json.loads((out / "vot_summary.json").read_text())
    runs = [_read_back(out, root, name) for name in names]
    expected_rows, expected, _ = V.evaluate_supervised(runs, tuple(summary["interval"]))
    assert summary["per_sequence"] == expected_rows
    assert summary["accuracy"] == expected["accuracy"] and summary["failures"] == expected["failures"]
    assert summary["eao"] is None and "100" in summary["eao_note"]
    assert _codes(runs[1].trajectory)[FAIL_AT - 1 : FAIL_AT + 7] == ["r", 2, 0, 0, 0, 0, 1, "r"]
    # The results folder, as it is, is a toolkit workspace's results/.
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "results").symlink_to(out / "vot", target_is_directory=True)
    experiment = SupervisedExperiment("baseline", LocalStorage(str(workspace)), repetitions=1)
    toolkit_tracker = ToolkitTracker("siamfc_jax", None, None)
    sequence = read_sequence_legacy(str(root / "bagfail"))
    accuracy, failures, _, frames = AccuracyRobustness(sensitivity=30, burnin=10).subcompute(
        experiment, toolkit_tracker, sequence, []
    )
    counted, _ = FailureCount().subcompute(experiment, toolkit_tracker, sequence, [])
    row = expected_rows[1]
    assert abs(row["accuracy"] - accuracy) <= TOLERANCE
    assert row["failures"] == failures == counted == 1 and row["frames"] == frames == FRAMES
    assert "| bagfail | 24 |" in (out / "vot_summary.md").read_text()


@pytest.mark.slow
def test_vot_cli_refuses_its_own_earlier_results(vot_run, capfd):
    _, out, root = vot_run
    capfd.readouterr()
    arguments = ["--seq", str(root), "--protocol", "vot", "--out", str(out), "--no-progress"]
    assert track.main(arguments) == cli.EXIT_INPUT
    assert "already holds VOT results" in the_error(capfd)


@pytest.mark.slow
def test_restart_through_the_loop_matches_a_stateful_tracker(vot_run):
    _, out, root = vot_run
    ours = _read_back(out, root, "bagfail")
    sequence = open_sequence(root / "bagfail")
    frames = list(sequence.iter_frames())
    tracker = Tracker(str(shared_path("siamfc/weights/siamfc_original_v1.pth")))
    expected = V.run_supervised(tracker, frames, vot_groundtruth(sequence), BAG_SIZE)
    assert _codes(ours.trajectory) == _codes(expected) and V.count_failures(expected) == 1
    for entry, region in zip(ours.trajectory, expected, strict=True):
        if not isinstance(entry, int):
            # The loop rounds boxes to 4 decimals; the batched program may differ in the last bits.
            np.testing.assert_allclose(entry, region, atol=2e-3)


# --------------------------------------------------------------------------- without tracking


def test_driver_restarts_after_a_failure():
    rect = np.array([10.0, 10.0, 20.0, 20.0])
    truth: list[V.Entry] = [rect + np.array([index, 0, 0, 0]) for index in range(12)]
    driver = SupervisedDriver(V.SupervisedRun(truth, (100, 100)))
    frame = np.zeros((100, 100, 3), np.uint8)
    nan = np.full((1, 2), np.nan)

    def deliver(index: int, box: np.ndarray) -> Restart | None:
        return driver(FrameResult(index, frame, np.asarray(box, np.float64)[None], 0.0, nan))

    assert deliver(0, V.init_box(truth[0])) is None
    assert deliver(1, V.init_box(truth[1])) is None
    restart = deliver(2, [80.0, 80.0, 5.0, 5.0])
    assert restart is not None and restart.frame == 7
    np.testing.assert_allclose(restart.boxes, V.init_box(truth[7])[None])
    for index in range(3, 7):  # skipped frames: NaN boxes, ignored
        assert deliver(index, np.full(4, np.nan)) is None
    assert deliver(7, restart.boxes[0]) is None and deliver(8, V.init_box(truth[8])) is None
    assert _codes(driver.run.trajectory)[:9] == [1, "r", 2, 0, 0, 0, 0, 1, "r"]


def test_summary_leaves_out_an_eao_no_run_reaches():
    rect = np.array([10.0, 10.0, 20.0, 20.0])
    short = V.VotRun("a", [1, rect, rect, 2, 0], [rect] * 5, (64, 64))
    summary = vot_summary([short], "vot2016")
    assert summary["eao"] is None and "108" in summary["eao_note"]
    assert summary["failures"] == 1 and summary["interval"] == [108, 371]
    long = V.VotRun("b", [1] + [rect] * 149, [rect] * 150, (64, 64))
    summary = vot_summary([long], "vot2017")
    assert summary["eao"] is not None and math.isfinite(summary["eao"]) and "inside" in summary["eao_note"]


def test_vot_outputs_are_claimed_before_any_work(tmp_path):
    out = tmp_path / "out"
    taken = V.result_path(out / "vot", "siamfc_jax", "bag")
    taken.parent.mkdir(parents=True)
    taken.write_text("1\n")
    with pytest.raises(OutputError, match="already holds VOT results"):
        claim_vot_outputs(out, ["bag"])
    claim_vot_outputs(out, ["other"])
    assert taken.exists()
    claim_vot_outputs(out, ["bag"], overwrite=True)
    assert not taken.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vot-stack", "vot2016"], "error: argument --vot-stack: only with --protocol vot"),
        (["--protocol", "vot", "--box", "1,1,5,5"], "error: argument --box: not with --protocol vot"),
    ],
)
def test_vot_arguments_name_the_flag(extra, message, tmp_path, capfd):
    assert track.main(["--seq", str(tmp_path), *extra, "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    assert the_error(capfd).startswith(message)


def test_vot_protocol_refuses_other_layouts(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "cache"))
    crossing = shared_path("siamfc/data/sequences/Crossing")
    out = tmp_path / "out"
    assert track.main(["--seq", str(crossing), "--protocol", "vot", "--out", str(out)]) == cli.EXIT_INPUT
    assert the_error(capfd).endswith("--protocol vot needs VOT sequences (frames and a groundtruth.txt of "
                                     "rectangles or polygons)")
    assert not out.exists()


# ------------------------------------------------------------------------------------- tuning


@pytest.mark.slow
def test_tune_ranks_by_the_vot_objective(vot_run, tmp_path, capsys):
    from siamfc_jax.tune.command import main as tune_main

    _, out, root = vot_run
    summary = json.loads((out / "vot_summary.json").read_text())
    runs = {row["sequence"]: row for row in summary["per_sequence"]}
    search = tmp_path / "search"
    weights = shared_path("siamfc/weights/siamfc_original_v1.pth")
    arguments = ["--seq", str(root / "bagfail"), "--out", str(search), "--protocol", "vot", "--batch", "2"]
    grid = ["--grid", "window_influence=0.176,0.6", "--max-frames", str(FRAMES), "--weights", str(weights)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "cache"))
        assert tune_main([*arguments, *grid]) == cli.EXIT_OK
    stored = json.loads((search / "tune.json").read_text())
    assert stored["settings"]["protocol"] == "vot"
    scores = {entry["values"]["window_influence"]: entry["sequences"]["bagfail"]
              for entry in stored["candidates"].values()}
    # The default candidate's run is the CLI's run of bagfail.
    assert scores[0.176]["accuracy"] == pytest.approx(runs["bagfail"]["accuracy"], abs=1e-6)
    assert scores[0.176]["failures"] == runs["bagfail"]["failures"] == 1
    ranked = sorted(scores, key=lambda value: (-scores[value]["accuracy"], scores[value]["failures"]))
    first = next(line for line in (search / "tune.md").read_text().splitlines() if line.startswith("| 1 |"))
    assert first.startswith(f"| 1 | {ranked[0]} | – | {scores[ranked[0]]['accuracy']:.4f} |")
    assert json.loads((search / "best_config.json").read_text())["window_influence"] == ranked[0]
    assert "EAO –" in capsys.readouterr().out


def test_vot_objective_uses_eao_only_where_a_sequence_reaches_its_interval():
    from siamfc_jax.tune.vot_objective import summarize_vot, vot_rank_key, vot_scores

    rect = np.array([10.0, 10.0, 20.0, 20.0])
    off = rect + np.array([0.0, 0.0, -10.0, 0.0])  # overlap 0.5
    short = {
        "good": vot_scores(V.VotRun("s", [1] + [rect] * 29, [rect] * 30, (64, 64))),
        "half": vot_scores(V.VotRun("s", [1] + [off] * 29, [rect] * 30, (64, 64))),
    }
    summaries = {name: summarize_vot({"s": scores}) for name, scores in short.items()}
    assert all(summary["eao"] is None for summary in summaries.values())
    assert sorted(summaries, key=lambda name: vot_rank_key(summaries[name])) == ["good", "half"]
    tie = [{"eao": None, "accuracy": 0.5, "failures": 3}, {"eao": None, "accuracy": 0.5, "failures": 1}]
    assert min(tie, key=vot_rank_key)["failures"] == 1
    long = vot_scores(V.VotRun("l", [1] + [off] * 149, [rect] * 150, (64, 64)))
    summary = summarize_vot({"l": long, "s": short["good"]})
    assert summary["eao"] == pytest.approx(0.5, abs=1e-6)
    # Per-sequence accuracy, averaged weighted by the sequences' lengths (the toolkit's A).
    assert summary["accuracy"] == pytest.approx((0.5 * 150 + 1.0 * 30) / 180)
    failing = vot_scores(V.VotRun("f", [1, rect, 2, 0, 0, 0, 0, 1, 2] + [0] * 141, [rect] * 150, (64, 64)))
    assert summarize_vot({"f": failing})["eao"] == 0.0


def test_tune_vot_refuses_other_layouts_before_writing(tmp_path, capfd):
    from siamfc_jax.tune.command import main as tune_main

    crossing = shared_path("siamfc/data/sequences/Crossing")
    out = tmp_path / "search"
    arguments = ["--seq", str(crossing), "--out", str(out), "--protocol", "vot", "--grid", "scale_lr=0.5"]
    assert tune_main(arguments) == cli.EXIT_INPUT
    assert the_error(capfd).endswith("--protocol vot needs VOT sequences (frames and a groundtruth.txt of "
                                     "rectangles or polygons)")
    assert not out.exists()
