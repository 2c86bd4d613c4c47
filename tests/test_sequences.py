"""Single-sequence readers: layouts, annotation parsing, frame decoding, validation messages."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamfc_jax.evaluation.validation import validate_for_tracking
from siamfc_jax.sequences import frames as frames_module
from siamfc_jax.sequences.annotations import polygons_to_rects, read_boxes, read_vot_boxes
from siamfc_jax.sequences.frames import DataError, decode_image, jpeg_damage, read_image
from siamfc_jax.sequences.readers import is_sequence_dir, open_sequence
from siamfc_jax.sequences.sequence import Sequence
from tests.conftest import shared_path

# Small frames: 40 wide, 30 high.
WIDTH, HEIGHT = 40, 30


def frame_rgb(index: int) -> np.ndarray:
    """A flat frame whose RGB colour identifies ``index`` (channels differ, so BGR/RGB swaps show)."""
    return np.broadcast_to(
        np.array([20 + 10 * index, 200 - 10 * index, 90], np.uint8), (HEIGHT, WIDTH, 3)
    ).copy()


def write_frames(directory: Path, count: int, pattern: str = "{:08d}.jpg", start: int = 1) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        path = directory / pattern.format(index + start)
        assert cv2.imwrite(str(path), cv2.cvtColor(frame_rgb(index), cv2.COLOR_RGB2BGR))


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- frame decoding


def test_read_image_returns_rgb_uint8(tmp_path):
    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[:, :3] = (0, 0, 255)  # red in OpenCV's BGR order
    bgr[:, 3:] = (255, 0, 0)  # blue
    path = tmp_path / "two_colours.png"  # lossless, so the comparison is exact
    assert cv2.imwrite(str(path), bgr)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (4, 6, 3)
    np.testing.assert_array_equal(image[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(image[0, 5], [0, 0, 255])
    np.testing.assert_array_equal(image, cv2.imread(str(path))[..., ::-1])


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"missing\.jpg: no such file"):
        read_image(tmp_path / "missing.jpg")
    garbage = write_text(tmp_path / "garbage.jpg", "not an image")
    with pytest.raises(DataError, match=r"garbage\.jpg: cannot be decoded"):
        read_image(garbage)
    empty = write_text(tmp_path / "empty.jpg", "")
    with pytest.raises(DataError, match=r"empty\.jpg: cannot be decoded as an image"):
        read_image(empty)
    with pytest.raises(DataError, match=rf"{tmp_path}: cannot be read \("):
        read_image(tmp_path)


def test_image_frames_random_access_and_broken_frame(tmp_path):
    sequence_dir = tmp_path / "seq"
    write_frames(sequence_dir, 3)
    write_text(sequence_dir / "groundtruth.txt", "1,1,5,5\n2,2,5,5\n3,3,5,5\n")
    sequence = open_sequence(sequence_dir)
    frames = list(sequence.iter_frames())
    assert len(frames) == 3 and sequence.frame_size == (WIDTH, HEIGHT)
    for index, frame in enumerate(frames):
        # JPEG of a flat colour: within a couple of grey levels of the written colour.
        assert np.abs(frame.astype(int) - frame_rgb(index)).max() <= 3
        np.testing.assert_array_equal(sequence.frame(index), frame)
    with pytest.raises(IndexError):
        sequence.frame(3)
    write_text(sequence_dir / "00000002.jpg", "truncated")
    message = r"00000002\.jpg \(frame 2 of 3 of sequence 'seq'\): cannot be decoded"
    with pytest.raises(DataError, match=message):
        list(sequence.iter_frames())


# ----------------------------------------------------------------------------- layouts


def test_otb_accepts_comma_tab_and_space_separators(tmp_path):
    sequence_dir = tmp_path / "Walker"
    write_frames(sequence_dir / "img", 3, "{:04d}.jpg")
    write_text(sequence_dir / "groundtruth_rect.txt", "1,2,3,4\n5\t6\t7\t8\n9  10 11\t12\n\n")
    assert is_sequence_dir(sequence_dir)
    sequence = open_sequence(sequence_dir)
    assert sequence.name == "Walker" and len(sequence) == 3
    assert [Path(p).name for p in sequence.frames] == ["0001.jpg", "0002.jpg", "0003.jpg"]
    np.testing.assert_array_equal(
        sequence.boxes, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    )
    np.testing.assert_array_equal(sequence.init_box, [1, 2, 3, 4])
    assert sequence.boxes.dtype == np.float64 and not sequence.boxes.flags.writeable


def test_otb_annotation_variants(tmp_path):
    sequence_dir = tmp_path / "Jogging"
    write_frames(sequence_dir / "img", 2, "{:04d}.jpg")
    write_text(sequence_dir / "groundtruth_rect.2.txt", "20 20 5 5\n21 21 5 5\n")
    write_text(sequence_dir / "groundtruth_rect.1.txt", "10 10 5 5\n11 11 5 5\n")
    sequence = open_sequence(sequence_dir)
    assert Path(sequence.annotation).name == "groundtruth_rect.1.txt"
    np.testing.assert_array_equal(sequence.init_box, [10, 10, 5, 5])
    write_text(sequence_dir / "groundtruth_rect.txt", "30 30 5 5\n31 31 5 5\n")
    assert Path(open_sequence(sequence_dir).annotation).name == "groundtruth_rect.txt"


def test_vot_polygons_become_spanning_rectangles(tmp_path):
    sequence_dir = tmp_path / "vot_seq"
    write_frames(sequence_dir, 2)
    # A rotated square with corners (20, 10), (30, 20), (20, 30), (10, 20), then a plain rectangle.
    write_text(sequence_dir / "groundtruth.txt", "20,10,30,20,20,30,10,20\n3.5,4.5,10,12\n")
    sequence = open_sequence(sequence_dir)
    np.testing.assert_array_equal(sequence.boxes, [[10, 10, 20, 20], [3.5, 4.5, 10, 12]])
    np.testing.assert_array_equal(
        polygons_to_rects([[1.5, 2, 4, 1, 5, 7, 0.5, 3]]), [[0.5, 1, 4.5, 6]]
    )


def test_vot_color_subfolder_layout(tmp_path):
    sequence_dir = tmp_path / "vot_new"
    write_frames(sequence_dir / "color", 2)
    write_text(sequence_dir / "groundtruth.txt", "1,1,5,5\n2,2,5,5\n")
    sequence = open_sequence(sequence_dir)
    assert len(sequence) == 2 and all("/color/" in p for p in sequence.frames)
    np.testing.assert_array_equal(read_vot_boxes(sequence_dir / "groundtruth.txt"), sequence.boxes)


def test_got10k_sequence_with_labels_and_meta(tmp_path):
    sequence_dir = tmp_path / "GOT-10k_Val_000001"
    write_frames(sequence_dir, 3)
    write_text(sequence_dir / "groundtruth.txt", "1,2,10,10\nNaN,NaN,NaN,NaN\n3,4,10,11\n")
    write_text(sequence_dir / "absence.label", "0\n1\n0\n")
    write_text(sequence_dir / "cover.label", "8\n0\n5\n")
    write_text(
        sequence_dir / "meta_info.ini",
        "[METAINFO]\nurl: https://youtu.be/abc\nobject_class: ant\nresolution: (1280, 720)\n",
    )
    sequence = open_sequence(sequence_dir)
    assert len(sequence) == 3
    assert np.isnan(sequence.boxes[1]).all()
    np.testing.assert_array_equal(sequence.boxes[[0, 2]], [[1, 2, 10, 10], [3, 4, 10, 11]])
    np.testing.assert_array_equal(sequence.absence, [False, True, False])
    np.testing.assert_array_equal(sequence.cover, [8, 0, 5])
    assert dict(sequence.meta) == {
        "url": "https://youtu.be/abc",
        "object_class": "ant",
        "resolution": "(1280, 720)",
    }
    validate_for_tracking(sequence, require_ground_truth=True)


def test_got10k_test_split_has_only_an_initial_box(tmp_path):
    sequence_dir = tmp_path / "GOT-10k_Test_000001"
    write_frames(sequence_dir, 3)
    write_text(sequence_dir / "groundtruth.txt", "4,5,6,7\n")
    sequence = open_sequence(sequence_dir)
    assert sequence.boxes is None and len(sequence) == 3
    np.testing.assert_array_equal(sequence.init_box, [4, 5, 6, 7])
    validate_for_tracking(sequence)
    with pytest.raises(DataError, match="no per-frame ground truth"):
        validate_for_tracking(sequence, require_ground_truth=True)


def test_got10k_label_count_mismatch_names_file(tmp_path):
    sequence_dir = tmp_path / "GOT-10k_Val_000002"
    write_frames(sequence_dir, 2)
    write_text(sequence_dir / "groundtruth.txt", "1,2,10,10\n1,2,10,10\n")
    write_text(sequence_dir / "cover.label", "8\n")
    with pytest.raises(DataError, match=r"cover\.label: 1 labels for 2 ground-truth lines"):
        open_sequence(sequence_dir)
    write_text(sequence_dir / "cover.label", "8\n9\n")
    with pytest.raises(DataError, match=r"cover\.label:2: label '9'"):
        open_sequence(sequence_dir)


def test_lasot_absence_combines_occlusion_and_out_of_view(tmp_path):
    sequence_dir = tmp_path / "airplane-1"
    write_frames(sequence_dir / "img", 3)
    write_text(sequence_dir / "groundtruth.txt", "1,2,10,10\n0,0,0,0\n3,4,10,11\n")
    write_text(sequence_dir / "full_occlusion.txt", "0,1,0")
    write_text(sequence_dir / "out_of_view.txt", "0,0,1\n")
    sequence = open_sequence(sequence_dir)
    assert sequence.name == "airplane-1" and len(sequence) == 3
    np.testing.assert_array_equal(sequence.absence, [False, True, True])
    np.testing.assert_array_equal(sequence.boxes[1], [0, 0, 0, 0])


def test_video_file_frames(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for index in range(5):
        writer.write(cv2.cvtColor(frame_rgb(index), cv2.COLOR_RGB2BGR))
    writer.release()
    sequence = open_sequence(path, box=[2, 3, 10, 12])
    assert sequence.name == "clip" and sequence.boxes is None and len(sequence) == 5
    np.testing.assert_array_equal(sequence.init_box, [2, 3, 10, 12])
    assert sequence.frame_size == (WIDTH, HEIGHT)
    frames = list(sequence.iter_frames())
    assert len(frames) == 5
    for index, frame in enumerate(frames):
        assert frame.dtype == np.uint8 and frame.shape == (HEIGHT, WIDTH, 3)
        # MJPG of a flat colour: within a few grey levels, and RGB (not BGR) order.
        assert np.abs(frame.astype(int) - frame_rgb(index)).max() <= 4
    with pytest.raises(TypeError, match="iter_frames"):
        sequence.frame(0)
    validate_for_tracking(sequence)


def test_truncated_video_counts_decodable_frames(tmp_path):
    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    noise = np.random.default_rng(0).integers(0, 256, (20, 48, 64, 3), dtype=np.uint8)
    for image in noise:
        writer.write(image)
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    capture = cv2.VideoCapture(str(path))
    announced = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    decodable = 0
    while capture.read()[0]:
        decodable += 1
    capture.release()
    assert announced == 20 and 0 < decodable < 20  # the header still announces every frame
    sequence = open_sequence(path)
    assert len(sequence) == decodable
    assert sum(1 for _ in sequence.iter_frames()) == decodable


def test_image_glob_and_folder_use_natural_order(tmp_path):
    directory = tmp_path / "clip"
    write_frames(directory, 3, "frame{}.png", start=9)  # frame9, frame10, frame11
    sequence = open_sequence(str(directory / "frame*.png"))
    assert sequence.name == "clip"
    assert [Path(p).name for p in sequence.frames] == ["frame9.png", "frame10.png", "frame11.png"]
    np.testing.assert_array_equal(sequence.frame(1), frame_rgb(1))  # PNG: exact
    assert not is_sequence_dir(directory)  # no annotation
    assert open_sequence(directory).frames == sequence.frames
    with pytest.raises(DataError, match="matches no file"):
        open_sequence(str(directory / "*.jpg"))


def test_open_sequence_rejects_unknown_paths_and_bad_boxes(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: no such file or directory"):
        open_sequence(tmp_path / "nowhere")
    text_file = write_text(tmp_path / "notes.txt", "hello")
    with pytest.raises(DataError, match=r"notes\.txt: not a video file"):
        open_sequence(text_file)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: not a sequence folder"):
        open_sequence(tmp_path / "empty")
    write_frames(tmp_path / "frames", 1)
    with pytest.raises(DataError, match="box must be 4 numbers"):
        open_sequence(tmp_path / "frames", box=[1, 2, 3])


# ----------------------------------------------------------------------------- malformed annotation


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ("1,2,3", "expected 4 numbers, found 3"),
        ("1,2,3,4,5", "expected 4 numbers, found 5"),
        ("1,2,x,4", "non-numeric value"),
        ("", "empty line"),
        ("1,2,inf,4", "infinite value"),
    ],
)
def test_malformed_box_lines_name_file_and_line(tmp_path, second_line, message):
    path = write_text(tmp_path / "groundtruth_rect.txt", f"1,2,3,4\n{second_line}\n5,6,7,8\n")
    with pytest.raises(DataError, match=rf"groundtruth_rect\.txt:2: {message}"):
        read_boxes(path)


def test_vot_rejects_six_numbers_and_masks(tmp_path):
    path = write_text(tmp_path / "groundtruth.txt", "1,2,3,4\n1,2,3,4,5,6\n")
    with pytest.raises(DataError, match=r"groundtruth\.txt:2: expected 4 or 8 numbers, found 6"):
        read_vot_boxes(path)
    write_text(path, "m10,10,5,5,0011\n")
    with pytest.raises(DataError, match=r"groundtruth\.txt:1: .*masks are not supported"):
        read_vot_boxes(path)


# ----------------------------------------------------------------------------- validation


def annotated(tmp_path: Path, frames: int, lines: str) -> Sequence:
    sequence_dir = tmp_path / "seq"
    write_frames(sequence_dir / "img", frames, "{:04d}.jpg")
    write_text(sequence_dir / "groundtruth_rect.txt", lines)
    return open_sequence(sequence_dir)


@pytest.mark.parametrize(
    ("frames", "lines", "message"),
    [
        (3, "1,1,5,5\n1,1,5,5\n", r"groundtruth_rect\.txt: 2 ground-truth boxes for 3 frames"),
        (1, "1,1,5,5\n1,1,5,5\n", r"groundtruth_rect\.txt: 2 ground-truth boxes for 1 frames"),
        (1, "1,1,0,5\n", r"groundtruth_rect\.txt:1: first box \[1, 1, 0, 5\] has zero"),
        (1, "1,1,5,-2\n", r"first box \[1, 1, 5, -2\] has zero or negative"),
        (1, "NaN,NaN,NaN,NaN\n", r"groundtruth_rect\.txt:1: first box \[nan, .*not finite"),
        (1, "41,1,5,5\n", r"first box \[41, 1, 5, 5\] lies entirely outside the 40x30 first"),
        (1, "-4,1,5,5\n", r"first box \[-4, 1, 5, 5\] lies entirely outside"),
        (1, "1,31,5,5\n", r"lies entirely outside"),
    ],
)
def test_validate_for_tracking_errors(tmp_path, frames, lines, message):
    with pytest.raises(DataError, match=message):
        validate_for_tracking(annotated(tmp_path, frames, lines))


def test_validate_accepts_partly_visible_box_and_absent_later_frames(tmp_path):
    # Column range [-3.5, 1.5) overlaps the image's [1, 41); later NaN rows mark an absent target.
    validate_for_tracking(annotated(tmp_path, 2, "-3.5,1,5,5\nNaN,NaN,NaN,NaN\n"))


def test_validate_needs_frames_and_an_initial_box(tmp_path):
    with pytest.raises(DataError, match=r"nothing: no frames found"):
        validate_for_tracking(Sequence(name="nothing", source=str(tmp_path / "nothing")))
    write_frames(tmp_path / "plain", 2)
    with pytest.raises(DataError, match=r"plain: no initial box"):
        validate_for_tracking(open_sequence(tmp_path / "plain"))
    with pytest.raises(DataError, match=r"plain: initial box \[50, 1, 5, 5\] lies entirely"):
        validate_for_tracking(open_sequence(tmp_path / "plain", box=[50, 1, 5, 5]))


# ----------------------------------------------------------------------------- shared material


def test_shared_crossing():
    sequence = open_sequence(shared_path("siamfc/data/sequences/Crossing"))
    assert len(sequence) == 120 and sequence.boxes.shape == (120, 4)
    np.testing.assert_array_equal(sequence.init_box, [205, 151, 17, 50])
    assert sequence.frame_size == (360, 240)
    validate_for_tracking(sequence, require_ground_truth=True)


def test_shared_bag_first_box_matches_reference():
    sequence = open_sequence(shared_path("siamfc/data/sequences/bag"))
    reference = read_boxes(shared_path("siamfc/reference/siamfc_pytorch/bag.txt"))
    assert len(sequence) == 196 and sequence.boxes.shape == (196, 4)
    # The reference initial box is the rectangle spanning the first polygon, written to 4 decimals.
    np.testing.assert_allclose(sequence.init_box, reference[0], rtol=0, atol=1e-4)
    validate_for_tracking(sequence, require_ground_truth=True)


def test_shared_bag_video_matches_jpegs():
    video = open_sequence(shared_path("siamfc/data/videos/bag.avi"))
    jpegs = open_sequence(shared_path("siamfc/data/sequences/bag"))
    assert len(video) == 196 and video.frame_size == (480, 360)
    frames = video.iter_frames()
    first, second = next(frames), next(frames)
    assert sum(1 for _ in frames) == 194
    # The video is an XVID re-encoding of the JPEGs: measured mean absolute difference 2.35 grey
    # levels for frame 0 (2.46 for frame 1); neighbouring frames differ by about 30, so a bound of 4
    # also checks that frame order and colour order agree.
    def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.abs(a.astype(np.int64) - b)))

    assert mean_abs(first, jpegs.frame(0)) < 4.0
    assert mean_abs(second, jpegs.frame(1)) < 4.0
    assert mean_abs(first, jpegs.frame(1)) > 15.0


# ----------------------------------------------------------------------------- decoder messages


def test_shared_bag_video_frames_are_opencvs_to_the_bit():
    """The faithfulness rule: video frames are decoded as OpenCV decodes them (cv2.VideoCapture,
    BGR to RGB), here by PyAV; every one of bag.avi's 196 frames, bit for bit."""
    path = shared_path("siamfc/data/videos/bag.avi")
    capture = cv2.VideoCapture(str(path))
    expected = []
    while (read := capture.read())[0]:
        expected.append(cv2.cvtColor(read[1], cv2.COLOR_BGR2RGB))
    capture.release()
    frames = list(open_sequence(path).iter_frames())
    assert len(expected) == len(frames) == 196
    for index, (ours, opencvs) in enumerate(zip(frames, expected, strict=True)):
        assert ours.dtype == np.uint8 and np.array_equal(ours, opencvs), f"frame {index + 1}"


def test_a_damaged_video_warns_per_frame_and_ffmpeg_stays_off_the_terminal(tmp_path, capfd):
    """Bytes flipped in the middle of bag.avi (an XVID/MPEG-4 video): FFmpeg's complaints come back
    as warnings naming the frame, none on file descriptor 2."""
    data = bytearray(shared_path("siamfc/data/videos/bag.avi").read_bytes())
    for offset in np.random.default_rng(0).integers(len(data) // 4, len(data) * 3 // 4, 200):
        data[offset] ^= 0x55
    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(bytes(data))
    warnings: list[str] = []
    frames = list(open_sequence(damaged).iter_frames(on_warning=warnings.append))
    assert len(frames) == 196 and warnings
    pattern = rf"{damaged} \(frame \d+ of 196 of sequence 'damaged'\): decoded with errors: mpeg4: "
    assert all(re.match(pattern, line) for line in warnings), warnings[:3]
    assert any("Error at MB" in line for line in warnings)
    assert capfd.readouterr().err == ""


def noisy_jpeg(path: Path, seed: int = 0) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), noise)
    return path.read_bytes()


def test_jpeg_damage_reads_the_markers(tmp_path):
    data = noisy_jpeg(tmp_path / "a.jpg")
    assert jpeg_damage(data) is None
    assert jpeg_damage(data + bytes(7)) is None  # zero padding after the end marker
    truncated = "the file ends before the JPEG end-of-image marker (truncated)"
    assert jpeg_damage(data[: len(data) // 2]) == truncated
    assert jpeg_damage(data + b"\x01trailer") == "8 bytes after the JPEG end-of-image marker"
    assert jpeg_damage(b"\x89PNG\r\n\x1a\n" + bytes(20)) is None  # not a JPEG: not judged


def test_healthy_images_decode_in_parallel_without_the_capture(tmp_path, monkeypatch):
    """Pixels equal cv2.imread's; two threads decode at once while fd 2's capture is held (taken
    by this test), which a decode that needed the capture would wait for; and the capture is never
    entered."""
    paths = []
    for index in range(2):
        noisy_jpeg(tmp_path / f"{index}.jpg", seed=index)
        paths.append(tmp_path / f"{index}.jpg")
    png = tmp_path / "frame.png"
    assert cv2.imwrite(str(png), cv2.cvtColor(frame_rgb(3), cv2.COLOR_RGB2BGR))
    paths.append(png)
    entered = []
    monkeypatch.setattr(frames_module, "native_stderr_captured", lambda: entered.append(1))
    with frames_module._STDERR_LOCK, ThreadPoolExecutor(2) as pool:
        decoded = list(pool.map(decode_image, paths, timeout=60))
    assert entered == []
    for path, (image, messages) in zip(paths, decoded, strict=True):
        assert messages == []
        np.testing.assert_array_equal(image, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
        np.testing.assert_array_equal(read_image(path), image)


def test_a_truncated_jpeg_is_a_warning_naming_the_frame_and_libjpeg_stays_quiet(tmp_path, capfd):
    sequence_dir = tmp_path / "seq"
    write_frames(sequence_dir, 2)
    damaged = sequence_dir / "00000002.jpg"
    data = noisy_jpeg(damaged)
    damaged.write_bytes(data[: len(data) // 2])
    warnings: list[str] = []
    frames = list(open_sequence(sequence_dir, box=[1, 1, 5, 5]).iter_frames(on_warning=warnings.append))
    assert len(frames) == 2 and frames[1].shape == (48, 64, 3)
    # libjpeg's own message, quoted, and only inside the warning.
    label = f"{damaged} (frame 2 of 2 of sequence 'seq')"
    assert warnings == [f"{label}: decoded with errors: Premature end of JPEG file"]
    assert capfd.readouterr().err == ""
    # The pixels are still cv2.imread's (libjpeg fills the missing part; the warning goes to fd 2).
    np.testing.assert_array_equal(frames[1], cv2.cvtColor(cv2.imread(str(damaged)), cv2.COLOR_BGR2RGB))
    capfd.readouterr()


def test_data_after_the_end_marker_is_our_warning(tmp_path):
    path = tmp_path / "long.jpg"
    data = noisy_jpeg(path)
    path.write_bytes(data + b"\x01\x02\x03")
    image, messages = decode_image(path)
    assert messages == ["3 bytes after the JPEG end-of-image marker"]
    healthy = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(image, cv2.cvtColor(healthy, cv2.COLOR_BGR2RGB))


def test_a_verified_container_count_spares_decoding_the_whole_video(monkeypatch):
    """bag.avi announces 196 frames, as many as OpenCV decodes (the test above): the count is
    trusted after decoding only the frames from the last key frame on, one pass of the decoder."""
    path = str(shared_path("siamfc/data/videos/bag.avi"))
    passes: list[int] = []

    def decode(container) -> int:
        passes.append(decodable_frames(container))
        return passes[-1]

    decodable_frames = frames_module._decodable_frames
    monkeypatch.setattr(frames_module, "_decodable_frames", decode)
    assert frames_module.video_frame_counts(path) == (196, 196)
    # One pass, over the last group of pictures only (a pass over the whole file decodes 196).
    assert len(passes) == 1 and 0 < passes[0] < 196, passes
