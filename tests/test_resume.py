"""``track.py --seq ROOT --resume``: an interrupted folder run continues where it stopped.

In-process with the still stand-in tracker of tests/test_track_cli.py (no compilation): the
sequences finished earlier are not tracked again, the rest are, and the summary equals a full
run's; a run of other settings is refused naming what differs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamfc_jax.apps import track
from siamfc_jax.config import TrackerConfig
from siamfc_jax.evaluation import tracking
from siamfc_jax.weights import DEFAULT_WEIGHTS
from tests.test_track_cli import StillTracker, still_track_jobs, use_still_trackers

NAMES = ("alpha", "beta", "gamma")


def _write_folder(root: Path) -> Path:
    """Three 4-frame sequences whose ground truth drifts away from the still box at three speeds."""
    for step, name in enumerate(NAMES, start=1):
        images = root / name / "img"
        images.mkdir(parents=True)
        for index in range(4):
            image = np.full((48, 64, 3), 30 * index, np.uint8)
            assert cv2.imwrite(str(images / f"{index + 1:04d}.jpg"), image)
        truth = [f"{10 + step * index},{10 + index},20,20\n" for index in range(4)]
        (root / name / "groundtruth_rect.txt").write_text("".join(truth))
    return root


class SettingsStill(StillTracker):
    """The still stand-in, keeping the tracker settings it is given (they are recorded)."""

    def __init__(self, weights: object, config: TrackerConfig, plan: object = None) -> None:
        super().__init__(weights, config, plan)
        self.config = config


@pytest.fixture
def run(tmp_path, monkeypatch):
    """``run(*arguments)`` -> (exit status, names of the sequences tracked) of ``track.main``."""
    folder = _write_folder(tmp_path / "sequences")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax_cache"))
    use_still_trackers(monkeypatch, SettingsStill)
    tracked: list[str] = []

    def recording_track_jobs(variables, spec, jobs, **options):
        tracked.extend(job.label(0).rsplit("'", 2)[1] for job in jobs)
        yield from still_track_jobs(variables, spec, jobs, **options)

    monkeypatch.setattr(tracking, "track_jobs", recording_track_jobs)

    def run_track(*arguments: object) -> tuple[int, list[str]]:
        tracked.clear()
        status = track.main(["--seq", str(folder), *(str(argument) for argument in arguments)])
        return status, sorted(tracked)

    return run_track


def _summary(out: Path) -> dict:
    """summary.json without what differs between two runs of the same settings (speed, paths)."""
    summary = json.loads((out / "summary.json").read_text())
    summary["overall"].pop("fps")
    for entry in summary["sequences"].values():
        entry.pop("fps")
    return {key: summary[key] for key in ("overall", "interrupted", "total_sequences", "sequences", "config")}


@pytest.mark.parametrize("batch", [[], ["--batch", "2"]], ids=["one-by-one", "batch"])
def test_resume_tracks_only_what_is_missing_and_summarizes_all(run, tmp_path, capfd, batch):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    assert run("--out", full, *batch) == (0, list(NAMES))
    assert run("--out", resumed, *batch) == (0, list(NAMES))
    kept = (resumed / "alpha.txt").read_bytes(), (resumed / "alpha.json").read_bytes()
    # As an interruption leaves it: beta's files gone, gamma marked interrupted, no summary.
    for name in ("beta.txt", "beta.json", "summary.json", "summary.md"):
        (resumed / name).unlink()
    record = json.loads((resumed / "gamma.json").read_text())
    (resumed / "gamma.json").write_text(json.dumps({**record, "interrupted": True}))
    capfd.readouterr()

    status, _ = run("--out", resumed, *batch)
    assert status == 1
    assert "pass --resume to continue that run, --overwrite to replace them" in capfd.readouterr().err

    assert run("--out", resumed, "--resume", *batch) == (0, ["beta", "gamma"])
    assert ((resumed / "alpha.txt").read_bytes(), (resumed / "alpha.json").read_bytes()) == kept
    assert json.loads((resumed / "gamma.json").read_text())["interrupted"] is False
    assert _summary(resumed) == _summary(full)
    assert (resumed / "summary_success.png").exists()
    # A finished run resumed tracks nothing and writes the same summary.
    assert run("--out", resumed, "--resume", *batch) == (0, [])
    assert _summary(resumed) == _summary(full)


@pytest.mark.parametrize(
    "changed, named",
    [
        (["--window-influence", "0.3"], "config.window_influence 0.176, now 0.3"),
        (["--max-frames", "2"], "frames 4 (--max-frames), now 2"),
        (["--weights", "other.msgpack"], "weights "),
    ],
)
def test_resume_refuses_a_run_of_other_settings_naming_them(run, tmp_path, capfd, changed, named):
    out = tmp_path / "out"
    assert run("--out", out) == (0, list(NAMES))
    (out / "beta.json").unlink()
    if changed[0] == "--weights":  # the same network under another file name
        changed = ["--weights", str(shutil.copy(DEFAULT_WEIGHTS, tmp_path / changed[1]))]
    before = sorted(path.name for path in out.iterdir())
    capfd.readouterr()
    status, tracked = run("--out", out, "--resume", *changed)
    lines = capfd.readouterr().err.splitlines()
    assert (status, tracked) == (1, [])
    assert len(lines) == 1
    assert lines[0].startswith(f"error: argument --resume: {out / 'alpha.json'} comes from a run with")
    assert named in lines[0], lines[0]
    assert sorted(path.name for path in out.iterdir()) == before


def test_resume_needs_a_folder_of_sequences_and_no_overwrite(run, tmp_path, capfd):
    assert run("--out", tmp_path / "out", "--resume", "--overwrite")[0] == 2
    assert capfd.readouterr().err.splitlines() == [
        "error: argument --resume: needs --seq with a folder of sequences, no --overwrite or --distributed"
    ]
