"""The host loop (siamfc_jax.tracker.loop): boxes equal to the synchronous tracker's, results in
order with steps in flight, frames of several sizes in one padded buffer, and restarts."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from siamfc_jax.sequences.frames import read_image
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker
from siamfc_jax.tracker.device import hyper_params
from siamfc_jax.tracker.loop import FrameResult, Job, Restart, padded_size, track_jobs
from siamfc_jax.weights import load_variables
from tests.conftest import shared_path

FRAMES = 5


@pytest.fixture(scope="module")
def tracker() -> Tracker:
    return Tracker(load_variables(shared_path("siamfc/weights/siamfc_original_v1.pth")))


@pytest.fixture(scope="module")
def crossing() -> tuple[list[np.ndarray], np.ndarray]:
    sequence = open_sequence(shared_path("siamfc/data/sequences/Crossing"))
    return [read_image(path) for path in sequence.frames[:FRAMES]], sequence.init_box


def _job(tracker: Tracker, frames: list[np.ndarray], box: np.ndarray, on_frame=None) -> Job:
    return Job(
        frames=lambda: iter(frames),
        boxes=np.asarray(box, np.float64)[None],
        hyper=hyper_params(tracker.config),
        frame_size=(frames[0].shape[1], frames[0].shape[0]),
        num_frames=len(frames),
        on_frame=on_frame,
    )


def test_padded_size_is_one_bucket_in_multiples_of_64():
    assert padded_size([(64, 64), (96, 64), (72, 96)]) == (128, 128)
    assert padded_size([(360, 240), (480, 360)]) == (384, 512)


@pytest.mark.parametrize("depth", [0, 2])
def test_one_job_gives_the_trackers_boxes_in_order(tracker, crossing, depth):
    frames, box = crossing
    expected = np.round(tracker.track(frames, box)[0], 4)
    seen: list[FrameResult] = []
    # Under a "disallow" guard any implicit upload raises: the loop uploads explicitly.
    with jax.transfer_guard("disallow"):
        (result,) = track_jobs(
            tracker.variables, tracker.spec, [_job(tracker, frames, box, seen.append)], depth=depth
        )
    assert [frame.index for frame in seen] == list(range(FRAMES))
    np.testing.assert_array_equal(result.boxes[:, 0], expected)
    np.testing.assert_array_equal(np.stack([frame.boxes[0] for frame in seen]), expected)
    assert np.isnan(result.confidence[0]).all() and np.isfinite(result.confidence[1:]).all()
    assert result.times.shape == (FRAMES,) and (result.times > 0).all()


def test_frames_of_two_sizes_in_one_padded_buffer(tracker, crossing):
    frames, box = crossing
    cropped = [frame[:200, :300].copy() for frame in frames]  # a smaller video, the target inside
    expected = [np.round(tracker.track(video, box)[0], 4) for video in (frames, cropped)]
    jobs = [_job(tracker, video, box) for video in (frames, cropped)]
    results = {done.index: done for done in track_jobs(tracker.variables, tracker.spec, jobs, slots=2)}
    for index, boxes in enumerate(expected):
        np.testing.assert_allclose(results[index].boxes[:, 0], boxes, rtol=0, atol=1e-3)


def test_a_forced_restart_starts_again_at_the_frame_asked(tracker, crossing):
    frames, box = crossing
    moved = np.array([150.0, 100.0, 40.0, 60.0])

    def restart_after_frame_1(result: FrameResult) -> Restart | None:
        return Restart(frame=3, boxes=moved[None]) if result.index == 1 else None

    (result,) = track_jobs(
        tracker.variables, tracker.spec, [_job(tracker, frames, box, restart_after_frame_1)], depth=1
    )
    # Frame 2 was asked to be skipped; frame 3 holds the new box; frame 4 tracks from it, as a
    # tracker started on frame 3 does.
    assert np.isnan(result.boxes[2]).all() and result.times[2] == 0
    np.testing.assert_array_equal(result.boxes[3, 0], moved)
    again = np.round(tracker.track(frames[3:], moved)[0], 4)
    np.testing.assert_array_equal(result.boxes[4, 0], again[1])
    np.testing.assert_array_equal(result.boxes[:2, 0], np.round(tracker.track(frames[:2], box)[0], 4))


def test_a_restart_on_a_dispatched_frame_is_refused(tracker, crossing):
    frames, box = crossing
    job = _job(tracker, frames, box, lambda result: Restart(result.index + 1, np.ones((1, 4))))
    with pytest.raises(ValueError, match="restart at frame 1 asked on frame 0"):
        list(track_jobs(tracker.variables, tracker.spec, [job], depth=1))
