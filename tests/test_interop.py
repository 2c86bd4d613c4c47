"""Weights interop: .pth ⇄ Flax, our weights file, the convert CLI, and the real trained net."""

from __future__ import annotations

import builtins
import sys

import cv2
import numpy as np
import pytest
import torch

from siamfc_jax import convert
from siamfc_jax.config import ModelConfig
from siamfc_jax.interop.torch_weights import WeightsError, torch_to_flax
from siamfc_jax.models import SiamFC
from siamfc_jax.weights import load_variables, save_weights
from tests.conftest import shared_path
from tests.torch_reference import TorchNet, randomize

WEIGHTS = "siamfc/weights/siamfc_original_v1.pth"


@pytest.fixture(params=["v1", "v2", "v3"])
def torch_net(request):
    net = TorchNet(request.param)
    randomize(net, seed=11)
    return request.param, net


def test_pth_round_trip_is_bit_exact(torch_net, tmp_path):
    name, net = torch_net
    source, middle, back = tmp_path / "a.pth", tmp_path / "b.msgpack", tmp_path / "c.pth"
    torch.save(net.state_dict(), source)
    assert convert.main([str(source), str(middle)]) == 0
    assert convert.main([str(middle), str(back)]) == 0
    original, restored = net.state_dict(), torch.load(back, weights_only=True)
    assert list(restored) == list(original)  # same keys in the same order
    for key, value in original.items():
        assert restored[key].dtype == value.dtype, key
        assert torch.equal(restored[key], value), key
    # and siamfc-pytorch's module tree accepts it strictly
    fresh = TorchNet(name)
    fresh.load_state_dict(restored, strict=True)
    assert load_variables(middle)[1] == ModelConfig(name)


def test_prefixed_and_wrapped_state_dicts_load(tmp_path):
    net = TorchNet("v1")
    randomize(net, seed=3)
    plain, _ = torch_to_flax(net.state_dict())
    state = net.state_dict()
    variants = {
        "module": {f"module.{k}": v for k, v in state.items()},
        "net": {f"net.{k}": v for k, v in state.items()},
        "checkpoint": {"epoch": 49, "state_dict": state, "optimizer": {"lr": 0.01}},
        "backbone_only": {k.removeprefix("backbone."): v for k, v in state.items()},
    }
    for label, variant in variants.items():
        path = tmp_path / f"{label}.pth"
        torch.save(variant, path)
        variables, config = load_variables(path)
        assert config.backbone == "v1", label
        np.testing.assert_array_equal(
            variables["params"]["backbone"]["conv3"]["conv"]["kernel"],
            plain["params"]["backbone"]["conv3"]["conv"]["kernel"],
        )


def test_mismatched_keys_are_listed_in_one_error():
    state = TorchNet("v1").state_dict()
    del state["backbone.conv2.1.running_var"]
    state["backbone.conv9.0.weight"] = torch.zeros(3)
    state["backbone.conv3.0.weight"] = torch.zeros(384, 256, 5, 5)
    with pytest.raises(WeightsError) as info:
        torch_to_flax(state, backbone="v1")
    message = str(info.value)
    assert "missing keys: backbone.conv2.1.running_var" in message
    assert "unexpected keys: backbone.conv9.0.weight" in message
    assert "backbone.conv3.0.weight (384, 256, 5, 5) (expected (384, 256, 3, 3))" in message
    with pytest.raises(WeightsError, match="matches none of the SiamFC backbones"):
        torch_to_flax(state)


def test_cli_errors_are_one_line(tmp_path, capsys):
    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(b"not a checkpoint")
    out = tmp_path / "out.msgpack"
    assert convert.main([str(tmp_path / "missing.pth"), str(out)]) == 1
    assert convert.main([str(bogus), str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "missing.pth: weights file not found" in err[0]
    assert "bogus.pth: not a readable PyTorch state_dict or checkpoint" in err[1]
    assert not out.exists()


def test_weights_with_nan_or_inf_are_refused_naming_file_and_key(tmp_path):
    net = TorchNet("v1")
    randomize(net, seed=2)
    with torch.no_grad():
        net.backbone.conv3[0].bias[7] = float("nan")
    pth = tmp_path / "nan.pth"
    torch.save(net.state_dict(), pth)
    with pytest.raises(WeightsError, match=f"^{pth}: backbone.conv3.0.bias holds NaN or infinite values"):
        load_variables(pth)
    variables, config = torch_to_flax(net.state_dict())
    variables["batch_stats"]["backbone"]["conv2"]["bn"]["var"][0] = np.inf
    native = tmp_path / "inf.msgpack"
    save_weights(native, variables, config)
    # The first offending key in PyTorch's order: conv2's running_var comes before conv3's bias.
    with pytest.raises(WeightsError, match=f"^{native}: backbone.conv2.1.running_var holds NaN"):
        load_variables(native)


def test_pth_problems_name_the_file(tmp_path):
    state = TorchNet("v1").state_dict()
    del state["backbone.conv2.1.running_var"]
    missing = tmp_path / "missing_key.pth"
    torch.save(state, missing)
    with pytest.raises(WeightsError, match=f"^{missing}: state_dict .*missing keys: backbone.conv2.1.run"):
        load_variables(missing)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(WeightsError, match=f"^{tensor}: not a readable PyTorch state_dict or checkpoint"):
        load_variables(tensor)


def test_output_suffix_decides_the_format(tmp_path, capsys):
    # "convert a.pth b.pth" must write a .pth that torch.load reads, not msgpack under that name.
    net = TorchNet("v1")
    randomize(net, seed=5)
    source = tmp_path / "a.pth"
    torch.save(net.state_dict(), source)
    assert convert.main([str(source), str(tmp_path / "b.pth")]) == 0
    restored = torch.load(tmp_path / "b.pth", weights_only=True)
    for key, value in net.state_dict().items():
        assert torch.equal(restored[key], value), key
    # ours -> ours at half precision
    assert convert.main([str(source), str(tmp_path / "c.msgpack")]) == 0
    assert convert.main([str(tmp_path / "c.msgpack"), str(tmp_path / "d.msgpack"), "--float16"]) == 0
    kernel = load_variables(tmp_path / "d.msgpack")[0]["params"]["backbone"]["conv1"]["conv"]["kernel"]
    expected = net.state_dict()["backbone.conv1.0.weight"].numpy().transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(kernel, expected.astype(np.float16).astype(np.float32))
    capsys.readouterr()
    # a suffix naming no format, and --float16 for a .pth, are refused before anything is read
    assert convert.main([str(source), str(tmp_path / "e.bin")]) == 2
    assert convert.main([str(tmp_path / "c.msgpack"), str(tmp_path / "f.pth"), "--float16"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: argument target: {tmp_path / 'e.bin'}: the suffix decides")
    assert err[1].startswith("error: argument --float16: applies to .msgpack outputs only")
    assert not (tmp_path / "e.bin").exists() and not (tmp_path / "f.pth").exists()


def test_pth_without_torch_gives_clear_message(tmp_path, monkeypatch):
    path = tmp_path / "w.pth"
    torch.save(TorchNet("v1").state_dict(), path)
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(WeightsError, match=r"\.pth files needs PyTorch"):
        load_variables(path)


def test_float16_storage_halves_size_and_rounds(tmp_path):
    net = TorchNet("v1")
    randomize(net, seed=5)
    variables, config = torch_to_flax(net.state_dict())
    full, half = tmp_path / "full.msgpack", tmp_path / "half.msgpack"
    save_weights(full, variables, config)
    save_weights(half, variables, config, dtype=np.float16)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded, _ = load_variables(half)
    kernel = loaded["params"]["backbone"]["conv1"]["conv"]["kernel"]
    original = variables["params"]["backbone"]["conv1"]["conv"]["kernel"]
    assert kernel.dtype == np.float32
    np.testing.assert_array_equal(kernel, original.astype(np.float16).astype(np.float32))
    counters = loaded["batch_stats"]["backbone"]["conv1"]["bn"]["num_batches_tracked"]
    assert counters.dtype == np.int32


@pytest.fixture(scope="module")
def real_net():
    path = shared_path(WEIGHTS)
    variables, config = load_variables(path)
    net = TorchNet("v1")
    net.load_state_dict(torch.load(path, weights_only=True), strict=True)
    return variables, config, net.eval()


def test_real_weights_match_torch_and_matlab(real_net):
    variables, config, net = real_net
    assert config == ModelConfig("v1")
    image_path = shared_path("siamfc/reference/matlab_conv5/01.jpg")
    matlab = np.load(shared_path("siamfc/reference/matlab_conv5/conv5.npz"))["z_features"]
    image = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)[None].astype(np.float32)
    ours = np.asarray(
        SiamFC(config, precision="highest").apply(variables, image, method=SiamFC.embed)
    )[0]
    with torch.no_grad():
        ref = net.backbone(torch.from_numpy(image.transpose(0, 3, 1, 2).copy()))[0]
    ref = ref.numpy().transpose(1, 2, 0)
    rel = np.max(np.abs(ours - ref)) / np.max(np.abs(ref))
    corr = np.corrcoef(ours.ravel(), matlab.ravel())[0, 1]
    print(f"real weights: torch max rel diff {rel:.2e}, MATLAB correlation {corr:.6f}")
    assert ours.shape == matlab.shape == (35, 50, 256)
    assert rel <= 1e-5
    # The shared weights are int8-dequantised, so MATLAB's float features are matched to ~2 % RMS,
    # not exactly; a wrong colour order or layout drops the correlation far below this bound.
    assert corr >= 0.9995
