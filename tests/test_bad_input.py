"""User mistakes through the real command lines, in-process: each ends with its documented exit
status and exactly one ``error:`` line on stderr that names the argument or file given, never a
traceback; where an output is concerned, nothing is written and no work is done first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from siamfc_jax import cli, convert
from siamfc_jax.apps import track
from siamfc_jax.apps import train as train_app
from siamfc_jax.config import TrainConfig
from siamfc_jax.export import command as export_cli
from siamfc_jax.files import OutputError, write_bytes_atomic
from siamfc_jax.interop.torch_weights import torch_to_flax
from siamfc_jax.pipeline.sources import prepare_training_data
from siamfc_jax.tune.command import main as tune_main
from siamfc_jax.weights import DEFAULT_WEIGHTS, save_weights
from tests.synthetic_folder import write_folder
from tests.torch_reference import TorchNet, randomize


def the_error(capfd: pytest.CaptureFixture) -> str:
    """The one line on stderr, which must be an ``error:`` line (and so no traceback)."""
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def sequences(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("sequences") / "seqs")


@pytest.fixture(scope="module")
def nan_weights(tmp_path_factory) -> dict[str, Path]:
    """The same network with one NaN, as siamfc-pytorch .pth and as siamfc_jax weights."""
    root = tmp_path_factory.mktemp("nan_weights")
    net = TorchNet("v1")
    randomize(net, seed=1)
    with torch.no_grad():
        net.backbone.conv4[0].weight[0, 0, 0, 0] = float("nan")
    torch.save(net.state_dict(), root / "nan.pth")
    variables, config = torch_to_flax(net.state_dict())
    save_weights(root / "nan.msgpack", variables, config)
    return {"pth": root / "nan.pth", "msgpack": root / "nan.msgpack"}


def test_track_empty_seq_names_the_argument(capfd):
    assert track.main(["--seq", ""]) == cli.EXIT_USAGE
    assert the_error(capfd) == "error: argument --seq: expected a path, got ''"


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [
        (["--exemplar-sz", "1000000000"], "--exemplar-sz: exemplar_sz must be at most instance_sz (255)"),
        (["--instance-sz", "100"], "--instance-sz: instance_sz must be at least exemplar_sz (127)"),
    ],
)
def test_track_crop_size_blames_the_size_given(arguments, flag, capfd):
    assert track.main(arguments) == cli.EXIT_USAGE
    assert the_error(capfd).startswith(f"error: argument {flag}")


def test_train_crop_size_blames_the_size_given(capfd, tmp_path):
    arguments = ["--pairs.exemplar-sz", "300", "--workdir", str(tmp_path / "w"), "--show-config"]
    assert train_app.main(arguments) == cli.EXIT_USAGE
    assert the_error(capfd).startswith("error: argument --pairs.exemplar-sz: exemplar_sz must be at most")


@pytest.mark.parametrize("kind", ["pth", "msgpack"])
def test_track_refuses_nan_weights(kind, nan_weights, sequences, tmp_path, capfd):
    weights = nan_weights[kind]
    out = tmp_path / "out"
    assert track.main(["--seq", str(sequences / "small"), "--weights", str(weights), "--out", str(out)]) == 1
    message = the_error(capfd)
    assert message.startswith(f"error: {weights}: backbone.conv4.0.weight holds NaN or infinite values")
    assert not list(out.glob("*.txt"))


@pytest.mark.parametrize("kind", ["pth", "msgpack"])
def test_convert_refuses_nan_weights(kind, nan_weights, tmp_path, capfd):
    weights = nan_weights[kind]
    target = tmp_path / "out.msgpack"
    assert convert.main([str(weights), str(target)]) == 1
    assert the_error(capfd).startswith(f"error: {weights}: backbone.conv4.0.weight holds NaN")
    assert not target.exists()


def test_convert_refuses_an_existing_target_before_any_work(tmp_path, capfd):
    target = tmp_path / "taken.msgpack"
    target.write_bytes(b"earlier results")
    # Source missing: refusing the target first proves nothing was read.
    assert convert.main([str(tmp_path / "missing.pth"), str(target)]) == 1
    assert the_error(capfd) == f"error: argument target: {target} exists; pass --overwrite to replace it"
    assert target.read_bytes() == b"earlier results"
    assert convert.main([str(DEFAULT_WEIGHTS), str(target), "--overwrite"]) == 0
    assert target.read_bytes() != b"earlier results"


def test_convert_into_a_file_names_the_folder_not_a_temporary(tmp_path, capfd):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert convert.main([str(DEFAULT_WEIGHTS), str(blocker / "a.msgpack")]) == 1
    message = the_error(capfd)
    assert message == f"error: argument target: {blocker} exists and is not a folder"
    assert ".tmp" not in message


def test_an_atomic_write_that_fails_names_the_output_not_its_temporary(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = blocker / "a.msgpack"
    with pytest.raises(OutputError) as error:
        write_bytes_atomic(target, b"weights")
    assert str(error.value).startswith(f"{target}: cannot write (") and ".tmp" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"junk\n", "not a readable PyTorch state_dict or checkpoint"),
        (b"\x80junk", "not a readable PyTorch state_dict or checkpoint"),
        ("tensor", "not a readable PyTorch state_dict or checkpoint (it holds a Tensor, not a dict)"),
        ("missing keys", "state_dict matches none of the SiamFC backbones"),
    ],
)
def test_convert_bad_pth_names_the_file(content, expected, tmp_path, capfd):
    source = tmp_path / "bad.pth"
    if content == "tensor":
        torch.save(torch.zeros(3), source)
    elif content == "missing keys":
        state = TorchNet("v1").state_dict()
        del state["backbone.conv5.0.bias"]
        torch.save(state, source)
    else:
        source.write_bytes(content)
    assert convert.main([str(source), str(tmp_path / "out.msgpack")]) == 1
    assert the_error(capfd).startswith(f"error: {source}: {expected}")


def test_export_into_an_unwritable_folder_fails_before_any_work(capfd):
    unwritable = Path("/sys")  # a folder that even root cannot create files in
    try:
        (unwritable / "siamfc_jax_probe").touch()
    except OSError:
        pass
    else:
        pytest.skip(f"{unwritable} is writable on this machine")
    arguments = [str(DEFAULT_WEIGHTS), str(unwritable), "--format", "stablehlo"]
    assert export_cli.main(arguments) == 1
    assert the_error(capfd).startswith(f"error: {unwritable}: cannot write into this folder")


def test_tune_out_that_is_a_file(sequences, tmp_path, capfd):
    out = tmp_path / "a_file"
    out.write_text("x")
    arguments = ["--seq", str(sequences), "--out", str(out), "--grid", "window_influence=0.1,0.2"]
    assert tune_main(arguments) == 1
    lines = capfd.readouterr().err.splitlines()
    assert lines == [f"error: argument --out: {out} exists and is not a folder"]
    assert out.read_text() == "x"


def test_train_second_folder_gets_its_own_crops(sequences, tmp_path, capfd):
    """After a run on one folder, training on another with the same --data-dir curates the other
    (and so reports its broken ground truth) instead of training on the first one's crops."""
    data_dir = tmp_path / "tfds"
    prepare_training_data(
        TrainConfig(data=f"folder:{sequences}", data_dir=str(data_dir), val_sequences=0), 1, progress=False
    )
    other = write_folder(tmp_path / "other")
    broken = other / "tall" / "groundtruth.txt"
    broken.write_text("not,a,box\n")
    arguments = ["--data", f"folder:{other}", "--data-dir", str(data_dir), "--workdir", str(tmp_path / "w")]
    # One short epoch, so that taking the first folder's crops fails quickly too.
    short = ["--epochs", "1", "--batch-size", "2", "--val-sequences", "0", "--no-progress"]
    assert train_app.main([*arguments, *short]) == 1
    assert str(broken) in the_error(capfd)


def test_train_empty_folder_says_it_has_no_sequences(tmp_path, capfd):
    empty = tmp_path / "empty"
    empty.mkdir()
    arguments = ["--data", f"folder:{empty}", "--data-dir", str(tmp_path / "tfds")]
    assert train_app.main([*arguments, "--workdir", str(tmp_path / "w")]) == 1
    message = the_error(capfd)
    assert message.startswith(f"error: {empty}: an empty folder, no sequences in it")
    assert "Manual directory" not in message

