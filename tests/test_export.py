"""Export: ONNX networks against onnxruntime, StableHLO steps in a fresh process, the CLI.

Reference for both formats is our own tracker on the shared real weights and the first 40 frames
of the OTB sequence Crossing (360x240; all 120 give the same figures, 3x slower): onnxruntime must
reproduce our responses within 1e-4 relative and the deployed trackers (``docs/examples/``, which import
neither siamfc_jax nor, for ONNX, JAX) must give ``Tracker``'s boxes (mean IoU >= 0.9999). Each
format is exported once per module.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.evaluation.metrics import iou
from siamfc_jax.export import command as export_cli
from siamfc_jax.export import export_onnx
from siamfc_jax.export.stablehlo import STATE_FIELDS, export_plan, frame_fill
from siamfc_jax.models import SiamFC, cross_correlate, init_variables
from siamfc_jax.ops.plan import ConvPlan, default_plan
from siamfc_jax.pipeline.crops import crop_and_resize
from siamfc_jax.sequences.frames import average_color
from siamfc_jax.sequences.readers import open_sequence
from siamfc_jax.tracker import Tracker, fit_config
from siamfc_jax.weights import load_variables
from tests.conftest import REPO_ROOT, in_ci, shared_path

WEIGHTS = "siamfc/weights/siamfc_original_v1.pth"
CROSSING = "siamfc/data/sequences/Crossing"
ONNX_RELATIVE_TOLERANCE = 1e-4  # onnxruntime's responses against ours; measured 2e-6
MIN_MEAN_IOU = 0.9999
FRAMES = 40  # tracked prefix of Crossing


def require(module: str):
    """Import an optional package; skip without it (fail in CI, which installs it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"optional package {module} is not installed (requirements-export.txt)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def run_isolated(script: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter whose path cannot reach siamfc_jax (``path``: the
    only ``PYTHONPATH``); fail on error."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JAX_PLATFORMS")}
    env.update({} if path is None else {"PYTHONPATH": path})
    code = (
        "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
        "assert 'siamfc_jax' not in sys.modules, 'the example imported siamfc_jax'"
    )
    process = subprocess.run(
        [sys.executable, "-c", code, str(script), *args],
        cwd=script.parent,  # not the repository root, from where siamfc_jax would import
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return process


@pytest.fixture(scope="module")
def weights():
    return load_variables(shared_path(WEIGHTS))


@pytest.fixture(scope="module")
def crossing():
    sequence = open_sequence(shared_path(CROSSING))
    return sequence, list(itertools.islice(sequence.iter_frames(), FRAMES))


@pytest.fixture(scope="module")
def frame_glob(tmp_path_factory, crossing) -> str:
    """A glob of the tracked prefix: links to the first frame files in a folder of their own."""
    folder = tmp_path_factory.mktemp("crossing_prefix")
    for path in crossing[0].frames[:FRAMES]:
        (folder / Path(path).name).symlink_to(Path(path).resolve())
    return str(folder / "*.jpg")


@pytest.fixture(scope="module")
def tracker_boxes(weights, crossing):
    sequence, frames = crossing
    boxes, _ = Tracker(weights).track(frames, sequence.init_box)
    return boxes


def initial_box_argument(crossing) -> str:
    return ",".join(f"{value:g}" for value in crossing[0].init_box)


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory, weights):
    require("jax2onnx")
    out = tmp_path_factory.mktemp("onnx")
    assert export_cli.main([str(shared_path(WEIGHTS)), str(out), "--format", "onnx"]) == 0
    return out


@pytest.fixture(scope="module")
def stablehlo_dir(tmp_path_factory, weights):
    out = tmp_path_factory.mktemp("stablehlo")
    # One platform, the CPU CI runs on: its default plan, fast there (several would share lax).
    arguments = [str(shared_path(WEIGHTS)), str(out), "--format", "stablehlo", "--platforms", "cpu"]
    assert export_cli.main(arguments) == 0
    return out


def ours_and_onnxruntime(variables, model_config, onnx_dir, exemplar, searches, ort):
    """(S, r, r) responses of ``exemplar`` over ``searches``: ours (the platform's default plan, at
    highest precision) and onnxruntime's on the exported ``embed`` and ``head``."""
    model = SiamFC(model_config, precision="highest")
    ours = np.asarray(
        cross_correlate(
            model.apply(variables, exemplar, method=SiamFC.embed),
            model.apply(variables, searches, method=SiamFC.embed),
            model_config.out_scale,
            "highest",
        )[..., 0]
    )
    embed = ort.InferenceSession(onnx_dir / "embed.onnx", providers=["CPUExecutionProvider"])
    head = ort.InferenceSession(onnx_dir / "head.onnx", providers=["CPUExecutionProvider"])
    features = {
        "exemplar_features": embed.run(None, {"images": exemplar})[0],
        "search_features": embed.run(None, {"images": searches})[0],
    }
    return ours, head.run(None, features)[0]


def test_onnx_files_pass_the_checker_and_have_dynamic_batch(onnx_dir):
    onnx = require("onnx")
    for name in ("embed.onnx", "head.onnx"):
        model = onnx.load(onnx_dir / name)
        onnx.checker.check_model(model, full_check=True)
        batch = model.graph.input[-1].type.tensor_type.shape.dim[0]
        assert batch.dim_param == "N", name
    manifest = json.loads((onnx_dir / "siamfc_onnx.json").read_text())
    assert manifest["tracker"]["response_sz"] == 17 and manifest["model"]["out_scale"] == 0.001


def test_onnxruntime_gives_our_responses_on_real_frames(onnx_dir, weights, crossing):
    ort = require("onnxruntime")
    variables, model_config = weights
    sequence, frames = crossing
    config = fit_config(TrackerConfig(), model_config)
    x, y, w, h = sequence.init_box
    center = np.array([y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2])
    exemplar_side = np.sqrt(np.prod(np.array([h, w]) + config.context * (w + h)))
    fill = np.rint(average_color(frames[0]))
    exemplar = crop_and_resize(frames[0], center, exemplar_side, config.exemplar_sz, fill)[None]
    factors = config.scale_step ** np.array([-1.0, 0.0, 1.0])
    search_side = exemplar_side * config.instance_sz / config.exemplar_sz
    searches = np.stack(
        [crop_and_resize(frames[1], center, search_side * f, config.instance_sz, fill) for f in factors]
    ).astype(np.float32)
    exemplar = exemplar.astype(np.float32)

    ours, theirs = ours_and_onnxruntime(variables, model_config, onnx_dir, exemplar, searches, ort)
    assert theirs.shape == ours.shape == (3, 17, 17)
    error = np.abs(theirs - ours).max() / np.abs(ours).max()
    print(f"onnxruntime vs ours, max relative error {error:.2e}")
    assert error <= ONNX_RELATIVE_TOLERANCE


@pytest.mark.slow
def test_onnx_example_tracks_like_tracker(onnx_dir, crossing, frame_glob, tracker_boxes):
    require("onnxruntime")
    script = REPO_ROOT / "docs" / "examples" / "track_onnx.py"
    process = run_isolated(script, str(onnx_dir), frame_glob, initial_box_argument(crossing))
    boxes = np.loadtxt(process.stdout.splitlines(), delimiter=",")
    mean_iou = iou(boxes, tracker_boxes).mean()
    print(f"ONNX example vs Tracker on Crossing: mean IoU {mean_iou:.6f}")
    assert boxes.shape == tracker_boxes.shape and mean_iou >= MIN_MEAN_IOU


@pytest.mark.slow
def test_stablehlo_steps_track_like_tracker_in_a_fresh_process(
    stablehlo_dir, crossing, frame_glob, tracker_boxes
):
    script = REPO_ROOT / "docs" / "examples" / "track_stablehlo.py"
    process = run_isolated(script, str(stablehlo_dir), frame_glob, initial_box_argument(crossing))
    boxes = np.loadtxt(process.stdout.splitlines(), delimiter=",")
    mean_iou = iou(boxes, tracker_boxes).mean()
    print(f"StableHLO steps vs Tracker on Crossing: mean IoU {mean_iou:.6f}")
    assert boxes.shape == tracker_boxes.shape and mean_iou >= MIN_MEAN_IOU


# A GPU plugin as JAX's CUDA plugin behaves on a machine without a GPU: its backend fails to start.
_FAILING_PLUGIN = """
from jax._src import xla_bridge


def initialize():
    def no_gpu():
        raise RuntimeError("the stand-in GPU plugin found no GPU")

    xla_bridge.register_backend_factory("standin_gpu", no_gpu, priority=600, fail_quietly=False)
"""


def test_stablehlo_example_takes_the_cpu_where_a_gpu_plugin_finds_no_gpu(
    stablehlo_dir, crossing, frame_glob, tmp_path
):
    # It printed the CUDA plugin's traceback on the default install without a GPU.
    if any(Path(marker).exists() for marker in ("/proc/driver/nvidia/version", "/dev/nvidiactl")):
        pytest.skip("an NVIDIA driver is present: the example leaves the choice to JAX")
    plugin = tmp_path / "jax_plugins" / "standin_gpu"
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text(_FAILING_PLUGIN)
    script = REPO_ROOT / "docs" / "examples" / "track_stablehlo.py"
    frames = frame_glob.replace("*.jpg", "000[12].jpg")
    box = initial_box_argument(crossing)
    process = run_isolated(script, str(stablehlo_dir), frames, box, path=str(tmp_path))
    assert len(process.stdout.splitlines()) == 2
    assert process.stderr == ""


def test_stablehlo_manifest_documents_the_signature(stablehlo_dir):
    manifest = json.loads((stablehlo_dir / "siamfc_stablehlo.json").read_text())
    update = manifest["files"]["update.jax_exported"]
    assert list(update["inputs"]) == [*STATE_FIELDS, "frame"]
    assert list(update["outputs"]) == [*STATE_FIELDS, "box"]
    assert update["inputs"]["frame"] == {"shape": ["H", "W", 3], "dtype": "uint8"}
    assert update["inputs"]["exemplar_features"]["shape"] == [1, 6, 6, 256]
    assert manifest["platforms"] == ["cpu"]
    assert ConvPlan.from_dict(manifest["conv_plan"]) == default_plan("cpu")
    assert export_plan(["cuda"]) == default_plan("gpu")
    assert export_plan(["cpu", "cuda"]) == ConvPlan.uniform("lax")


@pytest.mark.parametrize(
    "pixels",
    [
        [[0, 1]],  # mean 0.5: rounds to the even 0
        [[1, 2]],  # 1.5 -> 2
        [[254, 255]],  # 254.5 -> 254
        [[0, 0, 1]],  # 1/3 -> 0
        [[255, 255, 254]],
    ],
)
def test_device_fill_rounds_the_mean_half_to_even_like_numpy(pixels):
    frame = np.repeat(np.array(pixels, np.uint8)[..., None], 3, axis=2)
    expected = np.rint(frame.reshape(-1, 3).astype(np.float64).mean(axis=0))
    np.testing.assert_array_equal(np.asarray(frame_fill(frame)), expected)


def test_device_fill_of_a_real_frame_is_the_trackers(crossing):
    frame = crossing[1][0]
    np.testing.assert_array_equal(np.asarray(frame_fill(frame)), np.rint(average_color(frame)))


def test_cli_refuses_to_overwrite_and_names_bad_arguments(stablehlo_dir, capsys):
    weights = str(shared_path(WEIGHTS))
    assert export_cli.main([weights, str(stablehlo_dir), "--format", "stablehlo"]) == 1
    assert "--force" in capsys.readouterr().err
    assert export_cli.main([weights, str(stablehlo_dir), "--format", "tflite"]) == 2
    assert export_cli.main([weights, str(stablehlo_dir), "--format", "stablehlo", "--platforms", "gpu"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 2 and error.startswith("error:")
    assert export_cli.main([str(stablehlo_dir / "missing.pth"), str(stablehlo_dir), "--format", "onnx"]) == 1
    assert "missing.pth" in capsys.readouterr().err


def test_missing_converter_is_one_line(tmp_path, monkeypatch, capsys, weights):
    monkeypatch.setitem(sys.modules, "jax2onnx", None)  # makes ``import jax2onnx`` fail
    assert export_cli.main([str(shared_path(WEIGHTS)), str(tmp_path), "--format", "onnx"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "jax2onnx" in error and "requirements-export.txt" in error


@pytest.mark.slow
# v2 (stride-1 pooling, 33x33 responses); v3 has only layer kinds v1 already exercises.
@pytest.mark.parametrize("backbone", ["v2"])
def test_onnx_export_of_other_backbones(tmp_path, backbone):
    ort = require("onnxruntime")
    require("jax2onnx")
    model_config = ModelConfig(backbone=backbone)
    variables = init_variables(model_config, jax.random.key(0))
    export_onnx(variables, model_config, tmp_path)
    rng = np.random.default_rng(0)
    exemplar = rng.uniform(0, 255, (1, 127, 127, 3)).astype(np.float32)
    searches = rng.uniform(0, 255, (3, 255, 255, 3)).astype(np.float32)
    ours, theirs = ours_and_onnxruntime(variables, model_config, tmp_path, exemplar, searches, ort)
    assert theirs.shape == ours.shape
    assert np.abs(theirs - ours).max() / np.abs(ours).max() <= ONNX_RELATIVE_TOLERANCE
