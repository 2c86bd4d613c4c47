"""Live input (siamfc_jax.live, track.py --seq URL): a video file opened through the stream path.

No camera in CI, so the shared ``bag.avi`` is opened as ``file://…`` through the same
``cv2.VideoCapture`` path as a camera or an RTSP stream. Without dropping, every frame is tracked and
the boxes equal the file path's (``track.py --seq bag.avi``) exactly. With dropping, which frames are
tracked depends on timing, so the test checks what holds whatever the timing: the tracked frames are
increasing source indices, every frame read is either tracked or counted as dropped, and the boxes
are ``Tracker``'s on exactly those frames.
"""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest

from siamfc_jax.apps import track
from siamfc_jax.evaluation.reports import format_boxes
from siamfc_jax.evaluation.tracking import track_sequence
from siamfc_jax.live import FrameReader, is_live_source, run_live, source_name
from siamfc_jax.sequences.annotations import read_boxes
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker
from siamfc_jax.tracker.loop import BOX_DECIMALS
from tests.conftest import shared_path

VIDEO = "siamfc/data/videos/bag.avi"
WEIGHTS = "siamfc/weights/siamfc_original_v1.pth"
REFERENCE = "siamfc/reference/siamfc_pytorch/bag.txt"
VIDEO_FRAMES = 196
FRAMES = 12  # tracked prefix without dropping


@pytest.fixture(scope="module")
def tracker():
    return Tracker(shared_path(WEIGHTS))


@pytest.fixture(scope="module")
def video_url() -> str:
    return shared_path(VIDEO).resolve().as_uri()


@pytest.fixture(scope="module")
def initial_box() -> np.ndarray:
    return read_boxes(shared_path(REFERENCE))[0]


@pytest.fixture(scope="module")
def all_frames() -> list[np.ndarray]:
    return list(open_sequence(shared_path(VIDEO), box=[1, 1, 1, 1]).iter_frames())


@pytest.fixture
def no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_sources_are_recognised(tmp_path, monkeypatch):
    assert is_live_source("0") and is_live_source("rtsp://camera/stream") and is_live_source("http://x/y")
    assert not is_live_source("clip.mp4") and not is_live_source("frames/*.jpg")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "3").mkdir()
    assert not is_live_source("3")  # a folder named 3 is a sequence, not camera 3
    assert source_name("0") == "camera0" and source_name("rtsp://h/live/cam 1.sdp") == "cam_1"


@pytest.mark.slow
def test_stream_without_dropping_gives_the_file_paths_boxes(
    tracker, video_url, initial_box, tmp_path, no_display
):
    result = run_live(
        tracker, video_url, tmp_path, box=initial_box, drop_stale=False, max_frames=FRAMES, log=print
    )
    sequence = open_sequence(shared_path(VIDEO), box=initial_box)
    file_path = track_sequence(tracker, sequence, max_frames=FRAMES, progress=False)
    np.testing.assert_array_equal(result.frame_indices, np.arange(FRAMES))
    np.testing.assert_array_equal(result.boxes, file_path.boxes)
    assert result.dropped == 0 and not result.interrupted
    assert (tmp_path / "bag.txt").read_text() == format_boxes(file_path.boxes)
    record = json.loads((tmp_path / "bag.json").read_text())
    assert record["frames_tracked"] == FRAMES and record["frames_dropped"] == 0


def test_stream_with_dropping_tracks_the_newest_frames(
    tracker, video_url, initial_box, all_frames, tmp_path, no_display
):
    result = run_live(tracker, video_url, tmp_path, box=initial_box, drop_stale=True)
    indices = result.frame_indices
    assert result.frames_read == VIDEO_FRAMES
    assert len(indices) + result.dropped == VIDEO_FRAMES  # the source ended: each frame tracked or dropped
    assert np.all(np.diff(indices) > 0)
    print(f"tracked {len(indices)} of {VIDEO_FRAMES} frames, dropped {result.dropped}")
    reference = Tracker((tracker.variables, tracker.model_config), tracker.config)
    expected, _ = reference.track([all_frames[index] for index in indices], initial_box)
    np.testing.assert_array_equal(result.boxes, np.round(expected, BOX_DECIMALS))


def test_interrupted_run_keeps_boxes_and_video(
    tracker, video_url, initial_box, tmp_path, no_display, monkeypatch
):
    # Ctrl-C while the 5th frame is taken from the reader: 4 frames were tracked.
    taken = itertools.count()
    next_frame = FrameReader.next_frame

    def interrupting(reader):
        if next(taken) == 4:
            raise KeyboardInterrupt
        return next_frame(reader)

    monkeypatch.setattr(FrameReader, "next_frame", interrupting)
    result = run_live(tracker, video_url, tmp_path, box=initial_box, save_video=True, drop_stale=False)
    assert result.interrupted and len(result.boxes) == 4
    assert len((tmp_path / "bag.txt").read_text().splitlines()) == 4
    capture = cv2.VideoCapture(str(tmp_path / "bag.mp4"))
    count = sum(1 for _ in itertools.takewhile(lambda ok: ok, (capture.read()[0] for _ in range(10))))
    capture.release()
    assert count == 4
    assert json.loads((tmp_path / "bag.json").read_text())["interrupted"] is True


def test_cli_tracks_a_stream(video_url, initial_box, tmp_path, no_display, capsys):
    box = ",".join(f"{value:g}" for value in initial_box)
    status = track.main(
        ["--seq", video_url, "--box", box, "--weights", str(shared_path(WEIGHTS)), "--out", str(tmp_path)]
    )
    assert status == 0
    record = json.loads((tmp_path / "bag.json").read_text())
    lines = (tmp_path / "bag.txt").read_text().splitlines()
    assert len(lines) == record["frames_tracked"]
    assert record["frames_tracked"] + record["frames_dropped"] == record["frames_read"] == VIDEO_FRAMES
    assert "dropped as stale" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [
        (["--show", "--box", "292,128,146,132"], "--show"),
        ([], "--box"),  # no box: the mouse selection needs a display
    ],
)
def test_cli_without_display_is_one_line(video_url, tmp_path, no_display, capsys, arguments, flag):
    assert track.main(["--seq", video_url, "--out", str(tmp_path), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"error: argument {flag}: no display")


def test_show_is_only_for_live_input(tmp_path, capsys):
    video = str(shared_path(VIDEO))
    assert track.main(["--seq", video, "--box", "292,128,146,132", "--show", "--out", str(tmp_path)]) == 2
    assert "only for live input" in capsys.readouterr().err
