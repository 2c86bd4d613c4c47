"""track.py end to end: parity with siamfc-pytorch through the command line, the output files
(scores recomputed with NumPy), the demo (no --seq, first frames only), folder evaluation, and bad input.

Tracking costs about 0.2-0.6 s per frame on a CPU, and compiling the tracker for a frame size
another 10-25 s, so the runs track short prefixes (``--max-frames``) and share JAX's persistent
compilation cache per frame size: one compilation for bag (480x360), one for the synthetic
sequences (384x288).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import jax
import numpy as np
import pytest

from siamfc_jax import cli
from siamfc_jax.apps import track
from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.evaluation import tracking
from siamfc_jax.files import OutputError, write_text_atomic
from siamfc_jax.synthetic.config import SyntheticConfig
from siamfc_jax.synthetic.writer import write_got10k
from siamfc_jax.tracker import Tracker
from siamfc_jax.tracker.loop import FrameResult, JobResult, check_frame
from siamfc_jax.weights import default_weights_path, load_variables
from tests.conftest import REPO_ROOT, SHARED_ROOT, shared_path

TRACK = REPO_ROOT / "track.py"
# Test material in ../shared/siamfc
BAG = "data/sequences/bag"
BAG_VIDEO = "data/videos/bag.avi"
WEIGHTS = "weights/siamfc_original_v1.pth"
REFERENCE = "reference/siamfc_pytorch/bag.txt"
BAG_FRAMES = 10  # prefix of bag tracked by the CLI (of 196 frames)
DEMO_FRAMES = 6


def _environment(changes: dict[str, str]) -> dict[str, str]:
    """A copy of the environment without cache settings, with ``changes``."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(changes)
    return env


def run_track(args: list[str], cwd: Path, env_changes: dict[str, str]) -> subprocess.CompletedProcess:
    """``python track.py ARGS`` in ``cwd``, with ``env_changes`` over a clean copy of the environment."""
    return subprocess.run(
        [sys.executable, str(TRACK), *args],
        cwd=cwd,
        env=_environment(env_changes),
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_concurrently(runs: dict[str, tuple[list[str], Path, dict[str, str]]], logs: Path) -> dict:
    """Start ``python track.py`` for every ``name: (args, cwd, env_changes)`` at once; wait for all.

    Returns name -> ``CompletedProcess`` (stdout and stderr as text).
    """
    started = {}
    for name, (args, cwd, env_changes) in runs.items():
        stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
        with open(stdout, "w") as out, open(stderr, "w") as err:
            command = [sys.executable, str(TRACK), *args]
            env = _environment(env_changes)
            process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        started[name] = (process, args, stdout, stderr)
    finished = {}
    for name, (process, args, stdout, stderr) in started.items():
        status = process.wait(timeout=600)
        finished[name] = subprocess.CompletedProcess(args, status, stdout.read_text(), stderr.read_text())
    return finished


def check_succeeded(process: subprocess.CompletedProcess) -> None:
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    assert process.stdout.startswith("device: "), process.stdout  # names the JAX device first


def read_txt(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) ``[x, y, w, h]`` boxes via corner coordinates (independent of siamfc_jax)."""
    a_right, b_right = a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:]
    overlap = np.clip(np.minimum(a_right, b_right) - np.maximum(a[:, :2], b[:, :2]), 0, None)
    inter = overlap.prod(axis=1)
    return inter / (a[:, 2:].prod(axis=1) + b[:, 2:].prod(axis=1) - inter)


def otb_scores(boxes: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Success AUC over 21 thresholds (IoU > t), precision at 20 px, mean IoU; all frames given."""
    overlaps = iou(boxes, truth)
    errors = np.linalg.norm(boxes[:, :2] + boxes[:, 2:] / 2 - truth[:, :2] - truth[:, 2:] / 2, axis=1)
    thresholds = np.linspace(0, 1, 21)
    return {
        "auc": float((overlaps[:, None] > thresholds[None, :]).mean()),
        "precision": float((errors <= 20).mean()),
        "mean_iou": float(overlaps.mean()),
    }


def count_video_frames(path: Path) -> tuple[int, int, int]:
    """(frames decoded, width, height) of a video read with OpenCV."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    size = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count, *size


def printed_auc(stdout: str) -> str:
    match = re.search(r"AUC (\d\.\d{3})", stdout)
    assert match, stdout
    return match.group(1)


# ---------------------------------------------------------------------------------------------
# The tracking runs: two waves of concurrent processes


def _synthetic_root(root: Path) -> Path:
    """A GOT-10k val split of 2 synthetic sequences of 4 frames at the demo's frame size."""
    config = SyntheticConfig(num_sequences=2, frames_per_sequence=4, frame_size=(384, 288), seed=11)
    return write_got10k(root, config, subset="val", workers=1, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> SimpleNamespace:
    """Every tracking run of this module, and the folders they used.

    Wave 1 compiles the tracker once per frame size into JAX's persistent cache, both sizes at
    once: the bag JPEGs (480x360, trained weights) and the demo (384x288, default weights, in a
    fresh HOME, cache folder and working folder). Wave 2 reuses those caches: bag.avi and a folder
    of two synthetic sequences.
    """
    tmp = tmp_path_factory.mktemp("runs")
    paths = SimpleNamespace(
        **{name: tmp / name for name in ("logs", "home", "xdg", "cwd", "bag_cache", "bag", "video")},
        folder_out=tmp / "folder_out",
    )
    for folder in (paths.logs, paths.home, paths.xdg, paths.cwd, paths.bag_cache):
        folder.mkdir()
    paths.demo_cache = paths.xdg / "siamfc_jax" / "jax"
    paths.folder_root = _synthetic_root(tmp / "folder_data")

    bag_env = {"JAX_COMPILATION_CACHE_DIR": str(paths.bag_cache)}
    synthetic_env = {"JAX_COMPILATION_CACHE_DIR": str(paths.demo_cache)}
    shared = SHARED_ROOT / "siamfc"
    has_bag = all((shared / rel).exists() for rel in (BAG, BAG_VIDEO, WEIGHTS, REFERENCE))
    weights = ["--weights", str(shared / WEIGHTS)]
    frames = ["--max-frames", str(BAG_FRAMES)]

    first = {
        "demo": (
            ["--max-frames", str(DEMO_FRAMES)],
            paths.cwd,
            {"HOME": str(paths.home), "XDG_CACHE_HOME": str(paths.xdg)},
        )
    }
    if has_bag:
        bag_args = ["--seq", str(shared / BAG), *weights, *frames, "--save-video", "--out", str(paths.bag)]
        first["bag"] = (bag_args, REPO_ROOT, bag_env)
    processes = run_concurrently(first, paths.logs)

    second = {
        "folder": (
            ["--seq", str(paths.folder_root), "--out", str(paths.folder_out), "--progress"],
            tmp,
            synthetic_env,
        ),
    }
    # Two targets of one synthetic sequence through BatchTracker: the first from its ground truth.
    first_box = (paths.folder_root / "SYN_000001" / "groundtruth.txt").read_text().splitlines()[0]
    paths.targets = tmp / "targets"
    boxes = ["--box", first_box, "--box", "40,30,60,50", "--max-frames", "3"]
    second["targets"] = (
        ["--seq", str(paths.folder_root / "SYN_000001"), *boxes, "--out", str(paths.targets)],
        tmp,
        synthetic_env,
    )
    if has_bag:
        box = (shared / REFERENCE).read_text().splitlines()[0]
        video_args = ["--seq", str(shared / BAG_VIDEO), "--box", box, *weights, *frames]
        video_args += ["--out", str(paths.video)]
        second["video"] = (video_args, REPO_ROOT, bag_env)
    processes.update(run_concurrently(second, paths.logs))
    return SimpleNamespace(processes=processes, paths=paths)


def reference_boxes() -> np.ndarray:
    return read_txt(shared_path(f"siamfc/{REFERENCE}"))


# ---------------------------------------------------------------------------------------------
# bag: parity with siamfc-pytorch and the output files


@pytest.mark.slow
def test_parity_bag_sequence_through_cli(runs):
    # The reference tracked the bag JPEGs (cv2.imread, BGR -> RGB) from the rectangle spanning the
    # first polygon; tracking is causal, so its first frames are the reference for our prefix.
    reference_lines = shared_path(f"siamfc/{REFERENCE}").read_text().splitlines()
    check_succeeded(runs.processes["bag"])
    out = runs.paths.bag
    ours = read_txt(out / "bag.txt")
    assert ours.shape == (BAG_FRAMES, 4)
    assert (out / "bag.txt").read_text().splitlines()[0] == reference_lines[0]
    agreement = iou(ours, reference_boxes()[:BAG_FRAMES])
    print(f"bag JPEGs, {BAG_FRAMES} frames: mean IoU with siamfc-pytorch {agreement.mean():.6f}")
    assert agreement.mean() >= 0.99


@pytest.mark.slow
def test_parity_bag_video_through_cli(runs):
    # The command on the shared video, from the reference's initial box. The video is an
    # XVID re-encoding of the JPEGs the reference tracked (about 2.4 grey levels apart), which
    # moves some peaks by one upsampled response cell: measured mean IoU 0.9936 over the first 10
    # frames, 0.946 over all 196 (1.0000 on the JPEGs themselves).
    reference = reference_boxes()
    process = runs.processes["video"]
    check_succeeded(process)
    out = runs.paths.video
    ours = read_txt(out / "bag.txt")
    assert ours.shape == (BAG_FRAMES, 4)
    np.testing.assert_array_equal(ours[0], reference[0])
    agreement = iou(ours, reference[:BAG_FRAMES])
    print(f"bag.avi, {BAG_FRAMES} frames: mean IoU with siamfc-pytorch {agreement.mean():.6f}")
    assert agreement.mean() >= 0.99
    record = json.loads((out / "bag.json").read_text())
    assert record["frames"] == BAG_FRAMES and record["sequence_frames"] == 196
    assert "auc" not in record  # a video has no ground truth
    assert sorted(path.name for path in out.iterdir()) == ["bag.json", "bag.txt"]
    assert "(no ground truth)" in process.stdout
    assert record["warnings"] == [] and "mpeg4" not in process.stderr  # a healthy video: no word


@pytest.mark.slow
def test_output_files(runs):
    polygons = np.loadtxt(shared_path(f"siamfc/{BAG}/groundtruth.txt"), delimiter=",")
    process = runs.processes["bag"]
    check_succeeded(process)
    out = runs.paths.bag
    lines = (out / "bag.txt").read_text().splitlines()
    assert len(lines) == BAG_FRAMES
    assert all(re.fullmatch(r"-?\d+\.\d{4}(,-?\d+\.\d{4}){3}", line) for line in lines), lines[:3]

    # Ground truth: the rectangles spanning the VOT polygons, computed here with NumPy.
    xs, ys = polygons[:BAG_FRAMES, 0::2], polygons[:BAG_FRAMES, 1::2]
    truth = np.stack([xs.min(1), ys.min(1), xs.max(1) - xs.min(1), ys.max(1) - ys.min(1)], axis=1)
    boxes = read_txt(out / "bag.txt")
    np.testing.assert_allclose(boxes[0], truth[0], rtol=0, atol=5e-5)  # line 1: the initial box

    record = json.loads((out / "bag.json").read_text())
    expected = otb_scores(boxes, truth)
    for key, value in expected.items():
        assert record[key] == pytest.approx(value, rel=0, abs=1e-12), key
    assert record["evaluated_frames"] == BAG_FRAMES
    assert record["frames"] == record["frames_tracked"] == BAG_FRAMES
    assert record["sequence_frames"] == 196 and record["interrupted"] is False
    # fps: the frames after the first over their time.
    assert record["fps_frames"] == BAG_FRAMES - 1
    timed = record["tracking_seconds"] - record["first_frame_seconds"]
    assert record["fps"] == pytest.approx(record["fps_frames"] / timed, rel=1e-9)
    assert record["success_curve"]["success"] == pytest.approx(
        [float(np.mean(iou(boxes, truth) > t)) for t in np.linspace(0, 1, 21)], abs=1e-12
    )
    assert record["weights"].endswith("siamfc_original_v1.pth") and record["config"]["response_sz"] == 17
    # The device as printed, without repeating the "device:" label.
    assert f"device: {record['device']}" == process.stdout.splitlines()[0]
    assert not record["device"].startswith("device") and record["warnings"] == []
    assert printed_auc(process.stdout) == f"{record['auc']:.3f}"
    assert f"{record['fps']:.2f} fps" in process.stdout

    assert cv2.imread(str(out / "bag_success.png")).shape == (450, 600, 3)
    assert count_video_frames(out / "bag.mp4") == (BAG_FRAMES, 480, 360)
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")]  # no temporaries


# ---------------------------------------------------------------------------------------------
# The demo and folders of synthetic sequences


@pytest.mark.slow
def test_demo_without_sequence(runs):
    process, paths = runs.processes["demo"], runs.paths
    check_succeeded(process)
    out = paths.cwd / "outputs"
    assert f"outputs in {out}" in process.stdout
    assert sorted(path.name for path in out.iterdir()) == [
        "SYN_DEMO.json",
        "SYN_DEMO.mp4",
        "SYN_DEMO.txt",
        "SYN_DEMO_strip.png",
        "SYN_DEMO_success.png",
    ]
    assert count_video_frames(out / "SYN_DEMO.mp4") == (DEMO_FRAMES, 384, 288)
    assert cv2.imread(str(out / "SYN_DEMO_success.png")).shape == (450, 600, 3)
    strip = cv2.imread(str(out / "SYN_DEMO_strip.png"))
    assert strip.shape[0] == 240 and strip.shape[1] > 4 * 320

    record = json.loads((out / "SYN_DEMO.json").read_text())
    assert printed_auc(process.stdout) == f"{record['auc']:.3f}"
    # stderr is no terminal: a plain progress line at least every 10 s (the first frame compiles).
    if record["first_frame_seconds"] > 11:
        assert re.search(r"^\.\.\. SYN_DEMO: compiling the tracker", process.stdout, re.MULTILINE)
    assert f"{record['fps']:.2f} fps" in process.stdout
    assert record["weights"] == str(default_weights_path())

    # Generated into the cache folder (nothing downloaded), with the compiled tracker beside it;
    # XDG_CACHE_HOME wins over HOME.
    sequence = paths.xdg / "siamfc_jax" / "demo" / "SYN_DEMO"
    assert len(list(sequence.glob("*.jpg"))) == 150
    assert any(paths.demo_cache.iterdir())
    assert not (paths.home / ".cache").exists()

    # Scores against the demo's GOT-10k ground truth, absent frames left out.
    truth = read_txt(sequence / "groundtruth.txt")[:DEMO_FRAMES]
    present = np.loadtxt(sequence / "absence.label")[:DEMO_FRAMES] == 0
    boxes = read_txt(out / "SYN_DEMO.txt")
    np.testing.assert_allclose(boxes[0], truth[0], atol=5e-5)
    expected = otb_scores(boxes[present], truth[present])
    for key, value in expected.items():
        assert record[key] == pytest.approx(value, rel=0, abs=1e-12), key


@pytest.mark.slow
def test_folder_of_sequences(runs):
    process, root, out = runs.processes["folder"], runs.paths.folder_root, runs.paths.folder_out
    check_succeeded(process)
    assert "sequences: 100%" in process.stderr and "2/2" in process.stderr  # the tqdm bar

    names = ["SYN_000001", "SYN_000002"]
    records = [json.loads((out / f"{name}.json").read_text()) for name in names]
    summary = json.loads((out / "summary.json").read_text())
    overall = summary["overall"]
    assert overall["sequences"] == overall["scored_sequences"] == 2 and overall["frames"] == 8
    for key in ("auc", "precision", "mean_iou"):
        assert overall[key] == pytest.approx(np.mean([r[key] for r in records]), rel=0, abs=1e-12), key
    # Overall speed: all timed frames over all their time.
    seconds = sum(r["tracking_seconds"] - r["first_frame_seconds"] for r in records)
    assert overall["fps"] == pytest.approx(sum(r["fps_frames"] for r in records) / seconds, rel=1e-9)

    # Per-sequence and pooled scores from the written boxes and the ground truth, with NumPy.
    all_boxes, all_truth = [], []
    for name, record in zip(names, records, strict=True):
        boxes = read_txt(out / f"{name}.txt")
        truth = read_txt(root / name / "groundtruth.txt")
        present = np.loadtxt(root / name / "absence.label", ndmin=1) == 0
        for key, value in otb_scores(boxes[present], truth[present]).items():
            assert record[key] == pytest.approx(value, rel=0, abs=1e-12), (name, key)
        all_boxes.append(boxes[present])
        all_truth.append(truth[present])
    pooled = otb_scores(np.concatenate(all_boxes), np.concatenate(all_truth))
    for key, value in pooled.items():
        assert overall["pooled"][key] == pytest.approx(value, rel=0, abs=1e-12), key

    table = (out / "summary.md").read_text()
    for name, record in zip(names, records, strict=True):
        row = f"| {name} | 4 | {record['auc']:.3f} | {record['precision']:.3f} | {record['mean_iou']:.3f} |"
        assert row in table and row in process.stdout
    assert f"| **mean over 2 sequences** | 8 | {overall['auc']:.3f} |" in table
    assert f"mean AUC {overall['auc']:.3f}" in process.stdout
    assert (out / "summary_success.png").is_file()


@pytest.mark.slow
def test_several_targets_through_batch_tracker(runs):
    # Target 1 starts from the ground truth, so its boxes are the single-target run's (the folder
    # run above), within BatchTracker's tolerance in tests/test_tracker.py (1e-3 px) plus the
    # files' rounding.
    process, out = runs.processes["targets"], runs.paths.targets
    check_succeeded(process)
    assert sorted(path.name for path in out.iterdir()) == [
        f"SYN_000001_target{k}.{suffix}" for k in (1, 2) for suffix in ("json", "txt")
    ]
    single = read_txt(runs.paths.folder_out / "SYN_000001.txt")[:3]
    np.testing.assert_allclose(read_txt(out / "SYN_000001_target1.txt"), single, rtol=0, atol=2e-3)
    second = read_txt(out / "SYN_000001_target2.txt")
    assert second.shape == (3, 4)
    np.testing.assert_array_equal(second[0], [40, 30, 60, 50])
    record = json.loads((out / "SYN_000001_target2.json").read_text())
    assert record["target"] == 2 and record["frames_tracked"] == 3 and "auc" not in record


# ---------------------------------------------------------------------------------------------
# Default weights


def test_tracker_without_weights_uses_the_packaged_weights():
    packaged, packaged_config = load_variables(default_weights_path())
    tracker = Tracker()
    assert tracker.model_config == packaged_config
    assert jax.tree.structure(tracker.variables) == jax.tree.structure(packaged)
    for got, want in zip(jax.tree.leaves(tracker.variables), jax.tree.leaves(packaged), strict=True):
        np.testing.assert_array_equal(np.asarray(got), want)


# ---------------------------------------------------------------------------------------------
# Bad input: one line on stderr naming the file or argument, non-zero exit, no traceback


def _write_jpegs(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = np.full((48, 64, 3), 40 * index, np.uint8)
        assert cv2.imwrite(str(directory / f"{index + 1:04d}.jpg"), image)


@pytest.fixture
def bad_inputs(tmp_path) -> SimpleNamespace:
    """Small folders and files, each wrong in one way."""
    paths = SimpleNamespace(root=tmp_path)
    paths.otb = tmp_path / "otb"
    _write_jpegs(paths.otb / "img", 3)
    (paths.otb / "groundtruth_rect.txt").write_text("10\t10\t20\t20\n11,11,20,20\n12 12 20 20\n")
    paths.short_truth = tmp_path / "short"
    _write_jpegs(paths.short_truth / "img", 3)
    (paths.short_truth / "groundtruth_rect.txt").write_text("10,10,20,20\n11,11,20,20\n")
    paths.broken_first = tmp_path / "broken"
    _write_jpegs(paths.broken_first / "img", 2)
    (paths.broken_first / "img" / "0001.jpg").write_bytes(b"")
    (paths.broken_first / "groundtruth_rect.txt").write_text("10,10,20,20\n11,11,20,20\n")
    paths.bad_line = tmp_path / "badline"
    _write_jpegs(paths.bad_line / "img", 2)
    (paths.bad_line / "groundtruth_rect.txt").write_text("10,10,20,20\n11,11,20\n")
    paths.frames = tmp_path / "frames"
    _write_jpegs(paths.frames, 3)
    paths.empty = tmp_path / "empty"
    paths.empty.mkdir()
    paths.garbage_weights = tmp_path / "garbage.msgpack"
    paths.garbage_weights.write_bytes(b"\x93 this is not msgpack weights")
    paths.broken_pth = tmp_path / "broken.pth"
    paths.broken_pth.write_bytes(b"PK\x03\x04 truncated zip")
    paths.file = tmp_path / "a_file"
    paths.file.write_text("x")
    paths.bad_boxes = tmp_path / "boxes.txt"
    paths.bad_boxes.write_text("# x,y,w,h\n5,5,10,10\n5,5,10\n")
    # A folder of sequences, one of them with too few ground-truth lines.
    paths.folder = tmp_path / "folder"
    _write_jpegs(paths.folder / "good" / "img", 2)
    (paths.folder / "good" / "groundtruth_rect.txt").write_text("10,10,20,20\n11,11,20,20\n")
    _write_jpegs(paths.folder / "bad" / "img", 3)
    (paths.folder / "bad" / "groundtruth_rect.txt").write_text("10,10,20,20\n")
    return paths


BAD_CASES = {
    # name: (arguments, exit status, text the message must contain); {x} are fixture paths.
    "missing folder": (["--seq", "{root}/nowhere"], 1, "{root}/nowhere: no such file or directory"),
    "folder without frames": (["--seq", "{empty}"], 1, "{empty}: not a sequence folder"),
    "unreadable first frame": (["--seq", "{broken_first}"], 1, "{broken_first}/img/0001.jpg"),
    "short ground truth": (
        ["--seq", "{short_truth}"],
        1,
        "{short_truth}/groundtruth_rect.txt: 2 ground-truth boxes for 3 frames",
    ),
    "malformed ground truth": (["--seq", "{bad_line}"], 1, "{bad_line}/groundtruth_rect.txt:2"),
    "folder with short ground truth": (["--seq", "{folder}"], 1, "{folder}/bad/groundtruth_rect.txt"),
    "no box without ground truth": (["--seq", "{frames}"], 1, "{frames}: no initial box"),
    "empty box": (["--seq", "{frames}", "--box", "5,5,0,10"], 2, "argument --box: width and height"),
    "box of three numbers": (["--seq", "{frames}", "--box", "5,5,10"], 2, "argument --box: expected 4"),
    "box outside the image": (["--seq", "{frames}", "--box", "70,10,5,5"], 1, "outside the 64x48"),
    "not finite box": (["--seq", "{frames}", "--box", "nan,1,2,3"], 2, "argument --box"),
    "glob without files": (["--seq", "{root}/none/*.jpg"], 1, "{root}/none/*.jpg: the pattern"),
    "weights not found": (["--seq", "{otb}", "--weights", "{root}/no.pth"], 1, "{root}/no.pth: weights"),
    "garbage weights": (["--seq", "{otb}", "--weights", "{garbage_weights}"], 1, "{garbage_weights}: not"),
    "broken pth": (["--seq", "{otb}", "--weights", "{broken_pth}"], 1, "{broken_pth}: not a readable"),
    "even scale number": (["--seq", "{otb}", "--scale-num", "2"], 2, "argument --scale-num"),
    "response size of another net": (["--seq", "{otb}", "--response-sz", "9"], 2, "argument --response-sz"),
    "infinite scale step": (["--seq", "{otb}", "--scale-step", "inf"], 2, "argument --scale-step"),
    "zero frames": (["--seq", "{otb}", "--max-frames", "0"], 2, "argument --max-frames"),
    "output is a file": (
        ["--seq", "{otb}", "--out", "{file}"],
        1,
        "argument --out: {file} exists and is not a folder",
    ),
    "output below a file": (["--seq", "{otb}", "--out", "{file}/out"], 1, "argument --out: {file}/out:"),
    "implausible box": (
        ["--seq", "{frames}", "--box", "1,1,100000,100000"],
        1,
        "initial box [1, 1, 100000, 100000] is implausible for the 64x48 first frame",
    ),
    "implausible second box": (
        ["--seq", "{frames}", "--box", "1,1,5,5", "--box", "1,1,500,5"],
        1,
        "initial box 2 of 2 [1, 1, 500, 5] is implausible",
    ),
    "boxes file with a bad line": (["--seq", "{frames}", "--boxes", "{bad_boxes}"], 1, "{bad_boxes}:3:"),
    "missing boxes file": (["--seq", "{frames}", "--boxes", "{root}/no.txt"], 1, "{root}/no.txt: cannot"),
    "box for the demo": (["--box", "1,2,3,4"], 2, "argument --box: needs --seq"),
    "boxes for the demo": (["--boxes", "{bad_boxes}"], 2, "argument --boxes: needs --seq"),
    "demo folder with a sequence": (["--seq", "{otb}", "--demo-dir", "{root}"], 2, "argument --demo-dir"),
    "box for a folder of sequences": (["--seq", "{folder}", "--box", "1,1,5,5"], 2, "argument --box"),
    "unknown option": (["--frobnicate"], 2, "unrecognized arguments: --frobnicate"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_one_line(case, bad_inputs, capfd, monkeypatch):
    arguments, status, message = BAD_CASES[case]
    paths = {name: str(value) for name, value in vars(bad_inputs).items()}
    monkeypatch.chdir(bad_inputs.root)
    # JAX in this process is already configured: keep track.py from pointing it at another cache.
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(bad_inputs.root / "jax_cache"))
    assert track.main([argument.format(**paths) for argument in arguments]) == status
    captured = capfd.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and message.format(**paths) in lines[0], lines[0]
    assert not (bad_inputs.root / "outputs").exists()  # nothing tracked, nothing written


class StillTracker:
    """Stands in for the SiamFC tracker in-process (no compilation): the box never moves. Its
    ``variables`` are itself, so that :func:`still_track_jobs` (put in place of the host loop by
    :func:`use_still_trackers`) can ask it whether tracking may start."""

    model_config = ModelConfig()
    config = TrackerConfig()
    spec = None

    def __init__(self, weights: object, config: TrackerConfig, plan: object = None) -> None:
        self.variables = self

    def starting(self) -> None:
        """Called when tracking starts."""


def still_track_jobs(variables: StillTracker, spec, jobs: list, **options):
    """The host loop's contract (:func:`siamfc_jax.tracker.loop.track_jobs`) with boxes that stay
    where they started, 10 ms per frame after the first."""
    variables.starting()
    for job_index, job in enumerate(jobs):
        boxes, times = [], []
        source = job.frames()
        try:
            first = None
            for index, frame in enumerate(itertools.islice(source, job.num_frames)):
                first = frame.shape if first is None else first
                check_frame(job, index, frame, first)
                seconds = 0.01 if index else 0.5
                confidence = np.full((len(job.boxes), 2), np.nan)
                result = FrameResult(index, frame, np.round(job.boxes, 4), seconds, confidence)
                boxes.append(result.boxes)
                times.append(seconds)
                job.on_frame(result)
        finally:
            source.close()
        confidence = np.full((len(boxes), len(job.boxes), 2), np.nan)
        yield JobResult(job_index, np.array(boxes), np.array(times), confidence)


def use_still_trackers(monkeypatch: pytest.MonkeyPatch, tracker: type = StillTracker) -> None:
    """``track.main`` with ``tracker`` for one target and several, and the still host loop."""
    monkeypatch.setattr(track, "Tracker", tracker)
    monkeypatch.setattr(track, "BatchTracker", tracker)
    monkeypatch.setattr(tracking, "track_jobs", still_track_jobs)


def test_unreadable_frame_mid_sequence(bad_inputs, capfd, monkeypatch):
    broken = bad_inputs.otb / "img" / "0003.jpg"
    broken.write_bytes(b"not a jpeg")
    out = bad_inputs.root / "out"
    use_still_trackers(monkeypatch)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(bad_inputs.root / "jax_cache"))
    status = track.main(["--seq", str(bad_inputs.otb), "--out", str(out), "--save-video"])
    assert status == 1
    assert capfd.readouterr().err.splitlines() == [
        f"error: {broken} (frame 3 of 3 of sequence 'otb'): cannot be decoded as an image"
    ]
    assert list(out.iterdir()) == []  # frames 0 and 1 were tracked; the partial video is removed


def test_real_process_fails_in_one_line(bad_inputs):
    # The OTB ground truth above mixes tabs, commas and spaces; a weights file that is no weights
    # file makes the real process fail after reading it: exit 1 and exactly one line on stderr.
    process = run_track(
        ["--seq", str(bad_inputs.otb), "--weights", str(bad_inputs.garbage_weights)],
        bad_inputs.root,
        {"JAX_COMPILATION_CACHE_DIR": str(bad_inputs.root / "jax_cache")},
    )
    assert process.returncode == 1
    lines = process.stderr.splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith(f"error: {bad_inputs.garbage_weights}: not a siamfc_jax weights file")
    assert process.stdout.startswith("device: ")
    assert not (bad_inputs.root / "outputs").exists()


# ---------------------------------------------------------------------------------------------
# No lost or silently wrong results (in-process, with stand-in trackers)


class UnusedTracker(StillTracker):
    """Fails the test if tracking starts."""

    def starting(self) -> None:
        raise AssertionError("tracking started although the output was refused")


@pytest.fixture
def still(bad_inputs, monkeypatch):
    """``track.main`` with trackers that never move (no compilation)."""
    use_still_trackers(monkeypatch)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(bad_inputs.root / "jax_cache"))
    return lambda *arguments: track.main([str(argument) for argument in arguments])


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_out_with_an_earlier_run_is_refused_and_overwrite_replaces_it_whole(
    bad_inputs, still, capfd, monkeypatch
):
    # A second run into the same --out must not overwrite the first, nor leave its longer video
    # beside the new boxes.
    out = bad_inputs.root / "out"
    assert still("--seq", bad_inputs.otb, "--out", out, "--save-video") == 0
    first = _files(out)
    assert sorted(first) == ["otb.json", "otb.mp4", "otb.txt", "otb_success.png"]
    capfd.readouterr()
    use_still_trackers(monkeypatch, UnusedTracker)  # refused before tracking
    assert still("--seq", bad_inputs.otb, "--out", out, "--max-frames", "2") == 1
    lines = capfd.readouterr().err.splitlines()
    assert lines == [
        f"error: argument --out: {out} already holds results of this run's sequences (otb.json, "
        "otb.mp4, otb.txt, …); pass --overwrite to replace them, or choose another --out"
    ]
    assert _files(out) == first
    use_still_trackers(monkeypatch)
    assert still("--seq", bad_inputs.otb, "--out", out, "--max-frames", "2", "--overwrite") == 0
    assert sorted(_files(out)) == ["otb.json", "otb.txt", "otb_success.png"]  # no stale video
    assert len((out / "otb.txt").read_text().splitlines()) == 2
    assert json.loads((out / "otb.json").read_text())["frames"] == 2


@pytest.fixture
def locked_dir(tmp_path):
    """A folder nobody can create files in (immutable as root, read-only otherwise)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    elif os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    else:
        pytest.skip("no way to make a folder unwritable here (root without chattr)")


def test_unwritable_out_is_refused_before_tracking_naming_it(
    bad_inputs, locked_dir, still, capfd, monkeypatch
):
    # The error comes before anything is tracked and names the folder, not a hidden temporary.
    use_still_trackers(monkeypatch, UnusedTracker)
    assert still("--seq", bad_inputs.otb, "--out", locked_dir) == 1
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: argument --out: {locked_dir}: cannot write into this folder ("
    ), lines
    # Atomic writes name the output, not their temporary.
    with pytest.raises(OutputError) as error:
        write_text_atomic(locked_dir / "cross.txt", "1,2,3,4\n")
    assert str(error.value).startswith(f"{locked_dir / 'cross.txt'}: cannot write (") and ".tmp" not in str(
        error.value
    )


def test_truncated_jpeg_mid_sequence_is_a_warning_naming_the_frame(bad_inputs, still, capfd):
    # libjpeg's own "Premature end of JPEG file" names no file: the warning must.
    noisy = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    damaged = bad_inputs.otb / "img" / "0002.jpg"
    assert cv2.imwrite(str(damaged), noisy)
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    out = bad_inputs.root / "out"
    assert still("--seq", bad_inputs.otb, "--out", out) == 0
    warning = (
        f"{damaged} (frame 2 of 3 of sequence 'otb'): decoded with errors: Premature end of JPEG file"
    )
    assert capfd.readouterr().err.splitlines() == [f"warning: {warning}"]  # libjpeg's own line is gone
    assert json.loads((out / "otb.json").read_text())["warnings"] == [warning]


def test_frames_changing_size_fail_naming_the_frame(bad_inputs, still, capfd):
    resized = bad_inputs.otb / "img" / "0003.jpg"
    assert cv2.imwrite(str(resized), np.zeros((40, 50, 3), np.uint8))
    out = bad_inputs.root / "out"
    assert still("--seq", bad_inputs.otb, "--out", out) == 1
    assert capfd.readouterr().err.splitlines() == [
        f"error: {resized} (frame 3 of 3 of sequence 'otb'): the frame is 50x40, frame 1 is 64x48; "
        "a sequence must keep one frame size"
    ]
    assert list(out.iterdir()) == []


def test_truncated_video_is_a_warning_and_ffmpeg_stays_quiet(bad_inputs, still, capfd):
    video = bad_inputs.root / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(1)
    for _ in range(30):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 6 // 10])
    out = bad_inputs.root / "out"
    assert still("--seq", video, "--box", "5,5,20,20", "--out", out) == 0
    lines = capfd.readouterr().err.splitlines()
    record = json.loads((out / "clip.json").read_text())
    decoded = record["frames"]
    assert 0 < decoded < 30
    first = (
        f"{video}: the container announces 30 frames but only the first {decoded} can be decoded "
        "(a truncated or damaged file?); the sequence ends there"
    )
    assert record["warnings"][0] == first and lines[0] == f"warning: {first}"
    # FFmpeg's own complaints ("[mjpeg @ 0x…] overread 8") only inside our warning lines
    assert all(line.startswith(f"warning: {video}") for line in lines), lines
    assert len(lines) == len(record["warnings"])


def test_short_ground_truth_is_tracked_with_max_frames_or_a_box(bad_inputs, still, capfd):
    # 3 frames, 2 ground-truth boxes: enough for --max-frames 2; with --box all 3 frames are
    # tracked and the 2 with ground truth scored, with a warning.
    out = bad_inputs.root / "out"
    assert still("--seq", bad_inputs.short_truth, "--max-frames", "2", "--out", out) == 0
    record = json.loads((out / "short.json").read_text())
    assert record["evaluated_frames"] == 2 and record["warnings"] == []
    assert still("--seq", bad_inputs.short_truth, "--box", "10,10,21,20", "--out", out, "--overwrite") == 0
    record = json.loads((out / "short.json").read_text())
    assert record["frames"] == 3 and record["evaluated_frames"] == 2
    annotation = bad_inputs.short_truth / "groundtruth_rect.txt"
    assert record["warnings"] == [
        f"{annotation}: 2 ground-truth boxes for 3 frames in {bad_inputs.short_truth}: frames 3-3 are "
        "tracked but not scored"
    ]
    assert capfd.readouterr().err.splitlines() == ["warning: " + record["warnings"][0]]


def test_several_boxes_write_one_file_per_target(bad_inputs, still, capfd):
    boxes = bad_inputs.root / "targets.txt"
    boxes.write_text("# third target\n30 20 9 9\n")
    out = bad_inputs.root / "out"
    arguments = ["--seq", bad_inputs.frames, "--box", "5,5,10,10", "--box", "20,10,8,8"]
    assert still(*arguments, "--boxes", boxes, "--out", out, "--save-video") == 0
    expected = [[5, 5, 10, 10], [20, 10, 8, 8], [30, 20, 9, 9]]
    names = [f"frames_target{k}" for k in (1, 2, 3)]
    assert sorted(path.name for path in out.iterdir()) == sorted(
        ["frames.mp4"] + [f"{name}{suffix}" for name in names for suffix in (".json", ".txt")]
    )
    for target, (name, box) in enumerate(zip(names, expected, strict=True), start=1):
        np.testing.assert_array_equal(read_txt(out / f"{name}.txt"), [box] * 3)
        record = json.loads((out / f"{name}.json").read_text())
        assert record["target"] == target and record["init_box"] == box
        assert record["sequence_name"] == "frames"
    assert count_video_frames(out / "frames.mp4") == (3, 64, 48)
    # The same run again is refused: target files count as results.
    assert still(*arguments, "--out", out) == 1
    assert "already holds results" in capfd.readouterr().err


def test_heartbeat_prints_a_plain_line_at_least_every_interval():
    stream = io.StringIO()
    with cli.Heartbeat(enabled=True, interval=0.05, stream=stream) as beat:
        beat.say("device: cpu")
        beat.status = "bag: compiling the tracker"
        time.sleep(0.6)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "device: cpu" and len(lines) >= 4, lines
    assert all(re.fullmatch(r"\.\.\. bag: compiling the tracker \(\d+ s\)", line) for line in lines[1:])
    quiet = io.StringIO()
    with cli.Heartbeat(enabled=False, interval=0.05, stream=quiet) as beat:
        beat.say("only this")
        time.sleep(0.2)
    assert quiet.getvalue() == "only this\n"
