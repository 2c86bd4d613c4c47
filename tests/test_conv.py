"""Convolution formulations against PyTorch in float64; plans, and measuring and storing them."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siamfc_jax import plans
from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.ops import conv, winograd
from siamfc_jax.ops.plan import ConvPlan, default_plan

# max |ours - torch| / max |torch|: float32 against float64, sums of up to 363 products.
REL_TOL = 1e-5

# (input NHWC, kernel HWIO, stride, groups): SiamFC's kinds of layer on small inputs, and odd cases
# (stride 3, sides that leave a remainder, a kernel wider than the stride's blocks, a grouped 3×3
# whose Winograd tiles overhang the output).
CASES = [
    ((2, 31, 29, 3), (11, 11, 3, 8), 2, 1),
    ((1, 30, 31, 3), (5, 5, 3, 6), 3, 1),
    ((2, 13, 12, 8), (5, 5, 4, 6), 1, 2),
    ((1, 9, 10, 6), (3, 3, 6, 5), 1, 1),
    ((1, 12, 12, 4), (3, 3, 2, 4), 2, 2),
    ((2, 11, 12, 8), (3, 3, 4, 6), 1, 2),
]


def torch_conv(x: np.ndarray, kernel: np.ndarray, stride: int, groups: int) -> torch.Tensor:
    """PyTorch's Conv2d in float64, NCHW / OIHW, from NHWC / HWIO arrays."""
    x_t = torch.from_numpy(x.astype(np.float64).transpose(0, 3, 1, 2)).requires_grad_()
    k_t = torch.from_numpy(kernel.astype(np.float64).transpose(3, 2, 0, 1)).requires_grad_()
    return x_t, k_t, F.conv2d(x_t, k_t, stride=stride, groups=groups)


def rel_error(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def assert_matches_torch(convolve, x_shape, kernel_shape, stride, groups) -> None:
    """``convolve(x, kernel)`` and its gradients in both arguments equal PyTorch's in float64."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    kernel = rng.standard_normal(kernel_shape).astype(np.float32)
    x_t, k_t, ref = torch_conv(x, kernel, stride, groups)
    cotangent = rng.standard_normal(tuple(ref.shape)).astype(np.float32)  # NCHW
    ref.backward(torch.from_numpy(cotangent.astype(np.float64)))
    ours, pullback = jax.vjp(convolve, x, kernel)
    grad_x, grad_k = pullback(jnp.asarray(cotangent.transpose(0, 2, 3, 1)))
    assert ours.shape == tuple(ref.permute(0, 2, 3, 1).shape)
    assert rel_error(ours, ref.detach().permute(0, 2, 3, 1).numpy()) <= REL_TOL
    assert rel_error(grad_x, x_t.grad.permute(0, 2, 3, 1).numpy()) <= REL_TOL
    assert rel_error(grad_k, k_t.grad.permute(2, 3, 1, 0).numpy()) <= REL_TOL


@pytest.mark.parametrize("impl", conv.FORMULATIONS)
@pytest.mark.parametrize(("x_shape", "kernel_shape", "stride", "groups"), CASES)
def test_formulation_matches_torch_forward_and_gradients(impl, x_shape, kernel_shape, stride, groups):
    def forward(x, kernel):
        return conv.conv2d(x, kernel, stride, groups, "highest", impl)

    assert_matches_torch(forward, x_shape, kernel_shape, stride, groups)


# Each role by another formulation, so that a mix-up of the roles or of a transpose shows.
ROLE_MIXES = [
    conv.Formulations("winograd", "shift", "rows"),
    conv.Formulations("rows", "winograd", "matmul"),
    conv.Formulations("shift", "matmul", "winograd"),
]


@pytest.mark.parametrize("formulations", ROLE_MIXES, ids=lambda f: "-".join(f))
@pytest.mark.parametrize(("x_shape", "kernel_shape", "stride", "groups"), CASES)
def test_roles_by_different_formulations_match_torch(formulations, x_shape, kernel_shape, stride, groups):
    """conv2d_with: forward by one formulation, each gradient by the transpose of another."""

    def forward(x, kernel):
        return conv.conv2d_with(x, kernel, stride, groups, "highest", formulations)

    assert_matches_torch(jax.jit(forward), x_shape, kernel_shape, stride, groups)


@pytest.mark.parametrize(("x_shape", "kernel_shape", "stride", "groups"), [CASES[0], CASES[2], CASES[3]])
def test_winograd_in_blocks_matches_torch(monkeypatch, x_shape, kernel_shape, stride, groups):
    """The blocked path (taken by large images) gives PyTorch's values and gradients too."""
    monkeypatch.setattr(winograd, "UNBLOCKED_IMAGE_BYTES", 0)
    monkeypatch.setattr(winograd, "BLOCK_BYTES", 1)  # one tile row a block, the most seams
    test_formulation_matches_torch_forward_and_gradients("winograd", x_shape, kernel_shape, stride, groups)


@pytest.mark.parametrize(("x_shape", "kernel_shape", "stride", "groups"), CASES[:4])
def test_prepared_winograd_kernel_matches_torch(x_shape, kernel_shape, stride, groups):
    """conv2d_prepared from prepare_kernel: PyTorch's values, and the unprepared formulation's."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(np.float32)
    kernel = rng.standard_normal(kernel_shape).astype(np.float32)
    prepared = conv.prepare_kernel("winograd", jnp.asarray(kernel), stride, groups)
    ours = jax.jit(
        lambda x, prepared: conv.conv2d_prepared(
            "winograd", x, prepared, kernel_shape[0], stride, groups, "highest"
        )
    )(x, prepared)
    _, _, ref = torch_conv(x, kernel, stride, groups)
    assert rel_error(ours, ref.detach().permute(0, 2, 3, 1).numpy()) <= REL_TOL
    unprepared = conv.conv2d(x, kernel, stride, groups, "highest", "winograd")
    np.testing.assert_allclose(ours, unprepared, rtol=0, atol=1e-6 * float(np.max(np.abs(unprepared))))


def test_only_winograd_prepares_a_kernel():
    kernel = jnp.ones((3, 3, 2, 4))
    for formulation in conv.FORMULATIONS:
        prepared = conv.prepare_kernel(formulation, kernel, 1, 1)
        assert (prepared is None) == (formulation != "winograd")
    # A grouped strided layer runs "winograd" by im2col: nothing to prepare.
    assert conv.prepare_kernel("winograd", kernel, 2, 2) is None
    with pytest.raises(ValueError, match="no prepared kernel"):
        conv.conv2d_prepared("shift", jnp.ones((1, 5, 5, 2)), kernel, 3, 1, 1)


@pytest.mark.parametrize("tile_outputs", [2, 3])
def test_winograd_transforms_compute_the_correlation(tile_outputs):
    """Aᵀ((G g) ⊙ (Bᵀ d)) is numpy's correlation of one tile, in float64 (only rounding apart)."""
    input_transform, kernel_transform, output_transform = winograd.transforms(tile_outputs, 3)
    rng = np.random.default_rng(1)
    for _ in range(10):
        d, g = rng.standard_normal(tile_outputs + 2), rng.standard_normal(3)
        ours = output_transform @ ((kernel_transform @ g) * (input_transform @ d))
        np.testing.assert_allclose(ours, np.correlate(d, g, "valid"), rtol=0, atol=1e-12)
    # The input transform is scaled to integers (its entries are exact in float32).
    np.testing.assert_array_equal(input_transform, np.round(input_transform))


def test_space_to_depth_layout_by_hand():
    """x'[a, b, (p, q, c)] = x[2a + p, 2b + q, c]; the 3x3 kernel padded to 4x4 splits into 2x2 blocks."""
    x = np.arange(5 * 5 * 1, dtype=np.float32).reshape(1, 5, 5, 1)
    kernel = np.arange(9, dtype=np.float32).reshape(3, 3, 1, 1)
    x_blocks, kernel_blocks = conv.space_to_depth(jnp.asarray(x), jnp.asarray(kernel), 2)
    # 3x3 / 2 over 5x5 gives 2x2 outputs, reading blocks 0..2 (the last one half padding).
    assert x_blocks.shape == (1, 3, 3, 4) and kernel_blocks.shape == (2, 2, 4, 1)
    pixels = x[0, :, :, 0]
    np.testing.assert_array_equal(x_blocks[0, 1, 0], [pixels[2, 0], pixels[2, 1], pixels[3, 0], pixels[3, 1]])
    np.testing.assert_array_equal(x_blocks[0, 2, 2], [pixels[4, 4], 0, 0, 0])
    np.testing.assert_array_equal(kernel_blocks[1, 1, :, 0], [8, 0, 0, 0])
    np.testing.assert_array_equal(kernel_blocks[0, 1, :, 0], [2, 0, 5, 0])


@pytest.fixture
def plan_cache(tmp_path, monkeypatch):
    """A fresh, empty cache folder (XDG_CACHE_HOME) for the plans measured in a test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def fake_measure(fastest: dict[str, str]):
    """A stand-in for plans.measure that makes ``fastest[role]`` the fastest of every layer's role
    (the role read from the program's argument count: forward 4, input gradient 2, kernel
    gradient 5 per input), and records the roles measured."""
    roles_by_arguments = {4: "forward", 2: "input_gradient", 5: "kernel_gradient"}
    measured = []

    def measure(candidates, shapes):
        role = roles_by_arguments[len(shapes) // 2]  # two inputs in every workload here
        measured.append(role)
        return {name: 1e-3 if name == fastest[role] else 1.0 for name in candidates}

    return measure, measured


TRAIN_CHOICES = {"forward": "winograd", "input_gradient": "matmul", "kernel_gradient": "lax"}


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="plans are measured on the CPU only")
def test_machine_plan_measures_once_logs_one_line_and_stores(plan_cache, monkeypatch):
    monkeypatch.setattr(plans, "measure", fake_measure(TRAIN_CHOICES)[0])
    workload = plans.Workload.training(2, 127, 239)
    lines = []
    plan = plans.machine_plan(ModelConfig(), workload, lines.append)
    assert len(lines) == 1 and lines[0].startswith("measuring the fastest convolution formulations")
    # Each role by its measured choice; conv1's input gradient (of the images) is never computed
    # and takes the forward's formulation.
    assert plan.layers[0] == conv.Formulations("winograd", "winograd", "lax")
    assert plan.layers[1:] == (conv.Formulations("winograd", "matmul", "lax"),) * 4
    assert plan.correlation == "products" and plan.separable_pool
    stored = json.loads(plans.plans_path().read_text())
    assert plans.plans_path().parent == plan_cache / "siamfc_jax" / "plans"
    assert ConvPlan.from_dict(stored["v1 train 2x127 2x239"]["plan"]) == plan
    # Read back: nothing measured, nothing logged.
    monkeypatch.setattr(plans, "measure", lambda *a: pytest.fail("measured a stored plan"))
    assert plans.stored_plan(ModelConfig(), workload) == plan
    assert plans.machine_plan(ModelConfig(), workload, lines.append) == plan and len(lines) == 1
    # Another workload is another entry.
    assert plans.stored_plan(ModelConfig(), plans.Workload.training(4, 127, 239)) is None


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="plans are measured on the CPU only")
def test_measure_plan_times_only_the_forward_pass_for_tracking(monkeypatch):
    measure, measured = fake_measure({"forward": "shift"})
    monkeypatch.setattr(plans, "measure", measure)
    workload = plans.Workload.tracking(TrackerConfig())
    assert workload.inputs == ((3, 255), (1, 127))
    plan = plans.measure_plan(ModelConfig(), workload)
    assert measured == ["forward"] * 5 and plan == ConvPlan(plan.layers) and len(set(plan.layers)) == 1
    assert plan.layers[0] == conv.Formulations("shift", "shift", "shift")


def test_measure_times_every_candidate_and_finds_the_fastest():
    """The real timing: a loop of 50 matrix products against one tanh."""
    shapes = (jax.ShapeDtypeStruct((256, 256), jnp.float32),)
    candidates = {
        "slow": lambda a: jax.lax.fori_loop(0, 50, lambda i, m: jnp.tanh(m @ a), a),
        "fast": lambda a: jnp.tanh(a),
    }
    seconds = plans.measure(candidates, shapes)
    assert set(seconds) == {"slow", "fast"} and min(seconds, key=seconds.get) == "fast"


def test_another_machine_key_starts_a_new_file(plan_cache, monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    plain = plans.plans_path()
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_onednn=true")
    assert plans.plans_path() != plain and plans.plans_path().parent == plain.parent
    # How many host devices the CPU shows, and how long collectives wait, time nothing: one file
    # serves a multi-process run and one process with several devices.
    flags = "--xla_force_host_platform_device_count=2 --xla_cpu_collective_timeout_seconds=120"
    monkeypatch.setenv("XLA_FLAGS", flags)
    assert plans.plans_path() == plain


def test_plans_round_trip_through_json_and_refuse_unknown_values():
    plan = ConvPlan(
        (conv.Formulations("rows", "rows", "rows"), *[conv.Formulations("winograd", "matmul", "shift")] * 4),
        correlation="lax",
        separable_pool=False,
    )
    assert ConvPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert hash(ConvPlan.from_dict(plan.to_dict())) == hash(plan)
    assert plan.describe().startswith("conv1 rows, conv2 winograd/matmul/shift")
    with pytest.raises(ValueError, match="unknown formulation 'cudnn'"):
        ConvPlan.uniform("cudnn")
    with pytest.raises(ValueError, match="not a convolution plan"):
        ConvPlan.from_dict({"conv1": {"forward": "lax"}})
    lax_plan = ConvPlan.uniform("lax")
    assert (lax_plan.correlation, lax_plan.separable_pool) == ("lax", False)
    assert (ConvPlan.uniform("matmul").correlation, ConvPlan.uniform("matmul").separable_pool) == (
        "products",
        True,
    )


def test_default_plans_by_platform():
    # GPUs: the per-group network measured faster there (RESULTS.md "GPU"); TPUs and others: lax;
    # the CPU: a fixed per-layer plan.
    assert default_plan("gpu") == ConvPlan.uniform("lax_per_group")
    assert default_plan("tpu") == ConvPlan.uniform("lax")
    assert default_plan("cpu").correlation == "products" and default_plan("cpu").separable_pool


def test_candidates_skip_lax_per_group_for_ungrouped_layers():
    # Ungrouped, lax_per_group would be lax again: it is not measured twice.
    assert "lax_per_group" not in plans.candidates_for(1)
    assert "lax_per_group" in plans.candidates_for(2)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="machine_plan measures only on the CPU")
def test_machine_plan_off_the_cpu_is_the_default(monkeypatch, plan_cache):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(plans, "measure", lambda *a: pytest.fail("measured on a GPU"))
    assert plans.machine_plan(ModelConfig(), plans.Workload.training(), print) == default_plan("gpu")
    assert list(plan_cache.rglob("*")) == []
