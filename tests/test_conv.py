"""Convolution formulations against PyTorch in float64, and the autotune's choice and cache."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from siamfc_jax.ops import autotune, conv, winograd

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
def tune_cache(tmp_path, monkeypatch):
    """A fresh autotune cache (XDG_CACHE_HOME), measuring on, conv's per-process choices forgotten."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("SIAMFC_JAX_AUTOTUNE", "1")
    conv._chosen_formulation.cache_clear()
    yield tmp_path
    conv._chosen_formulation.cache_clear()


def test_fastest_measures_once_then_reads_the_cache(tune_cache, monkeypatch, capsys):
    shapes = (jax.ShapeDtypeStruct((256, 256), jnp.float32),)
    candidates = {
        "slow": lambda a: jax.lax.fori_loop(0, 50, lambda i, m: jnp.tanh(m @ a), a),
        "fast": lambda a: jnp.tanh(a),
    }
    assert autotune.fastest("toy problem", candidates, shapes) == "fast"
    printed = capsys.readouterr().err
    assert printed.count("siamfc_jax autotune: toy problem") == 1 and "-> fast" in printed
    entries = json.loads(autotune.cache_path().read_text())
    assert entries["toy problem"]["choice"] == "fast"
    assert set(entries["toy problem"]["ms"]) == {"slow", "fast"}
    assert autotune.cache_path().parent == tune_cache / "siamfc_jax" / "autotune"

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    measure = autotune.measure
    monkeypatch.setattr(autotune, "measure", no_measuring)
    assert autotune.fastest("toy problem", candidates, shapes) == "fast"
    assert capsys.readouterr().err == ""
    # A new candidate makes the entry stale: the problem is measured again, among all three.
    monkeypatch.setattr(autotune, "measure", measure)
    candidates["faster"] = lambda a: a
    autotune.fastest("toy problem", candidates, shapes)
    assert set(json.loads(autotune.cache_path().read_text())["toy problem"]["ms"]) == set(candidates)


def test_machine_key_follows_xla_flags(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    plain = autotune.machine_key()
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_onednn=true")
    assert autotune.machine_key() != plain


def convolution_ops(fn, *args) -> int:
    jaxpr = jax.make_jaxpr(fn)(*args)
    return sum(e.primitive.name == "conv_general_dilated" for e in jaxpr.jaxpr.eqns)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="auto measures only on the CPU")
def test_auto_runs_the_cached_choice_and_skips_small_layers(tune_cache, monkeypatch):
    x = jnp.zeros((3, 28, 28, 256), jnp.float32)
    kernel = jnp.zeros((3, 3, 256, 384), jnp.float32)
    assert conv.conv_macs(x.shape, kernel.shape, 1) >= conv.MIN_TUNED_MACS
    problem = (
        "conv2d forward of scale-offset-relu x=3x28x28x256 k=3x3x256x384 stride=1 groups=1 float32 "
        "precision=highest"
    )
    path = autotune.cache_path()
    path.parent.mkdir(parents=True)
    # Ungrouped, lax_per_group would be lax again: it is not among the candidates.
    assert "lax_per_group" not in conv.tuned_formulations(1)
    assert "lax_per_group" in conv.tuned_formulations(2)
    entry = {"choice": "lax", "ms": dict.fromkeys(conv.tuned_formulations(1), 1.0)}
    path.write_text(json.dumps({problem: entry}))
    monkeypatch.setattr(autotune, "measure", lambda *a, **k: pytest.fail("measured a cached layer"))
    assert convolution_ops(lambda x, k: conv.conv2d(x, k, precision="highest"), x, kernel) == 1
    # The backward direction is another problem; this small one is not measured but takes the
    # static choice (untuned_formulation), not XLA's convolution.
    small_x, small_k = jnp.zeros((1, 9, 9, 8)), jnp.zeros((3, 3, 8, 8))
    assert convolution_ops(lambda x, k: conv.conv2d(x, k, direction="backward"), small_x, small_k) == 0


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="auto measures only on the CPU")
def test_auto_backward_tunes_each_role_and_runs_each_choice(tune_cache, monkeypatch):
    """A differentiated layer measures its forward pass and its two gradients as three problems,
    and runs each role by its own choice (here: XLA's convolution only for the kernel gradient)."""
    x = jnp.zeros((3, 28, 28, 256), jnp.float32)
    kernel = jnp.zeros((3, 3, 256, 384), jnp.float32)
    measured = []
    choices = {"forward": "winograd", "input_gradient": "matmul", "kernel_gradient": "lax"}

    def fake_measure(candidates, shapes):
        role = next(r for r in choices if f"conv2d {r} " in measured_problem[-1])
        measured.append(role)
        return {name: 1e-3 if name == choices[role] else 1.0 for name in candidates}

    measured_problem = []
    real_fastest = autotune.fastest

    def fastest(problem, *args, **kwargs):
        measured_problem.append(problem)
        return real_fastest(problem, *args, **kwargs)

    monkeypatch.setattr(autotune, "measure", fake_measure)
    monkeypatch.setattr(autotune, "fastest", fastest)

    def loss(x, kernel):
        return jnp.sum(conv.conv2d(x, kernel, direction="backward"))

    compiled = jax.jit(jax.grad(loss, (0, 1))).lower(x, kernel).compile().as_text()
    assert sorted(measured) == sorted(choices)
    # Only the kernel gradient, lax's transpose in the kernel, is a convolution (the primal
    # pass inside that transpose is dropped by XLA as unused).
    assert compiled.count(" convolution(") == 1
    # A first layer (kernel_backward) asks for no input gradient (the others are cached now).
    conv._chosen_formulation.cache_clear()
    measured_problem.clear()
    jax.make_jaxpr(jax.grad(lambda k: jnp.sum(conv.conv2d(x, k, direction="kernel_backward"))))(kernel)
    assert [problem.split()[1] for problem in measured_problem] == ["forward", "kernel_gradient"]


def test_auto_without_measuring_takes_the_static_choice(tune_cache, monkeypatch):
    monkeypatch.setenv("SIAMFC_JAX_AUTOTUNE", "0")
    monkeypatch.setattr(autotune, "measure", lambda *a, **k: pytest.fail("measured with tuning off"))
    x = jnp.zeros((3, 28, 28, 256), jnp.float32)
    kernel = jnp.zeros((3, 3, 256, 384), jnp.float32)
    assert conv.untuned_formulation(3, 1) == "shift"
    assert conv.untuned_formulation(11, 2) == conv.untuned_formulation(5, 1) == "rows"
    assert convolution_ops(lambda x, k: conv.conv2d(x, k), x, kernel) == 0
    assert not autotune.cache_path().exists()


@pytest.mark.parametrize(
    ("backend", "network_form"), [("cpu", "auto"), ("gpu", "lax_per_group"), ("tpu", "lax")]
)
def test_auto_resolves_by_backend(monkeypatch, backend, network_form):
    # On the CPU "auto" chooses per layer; on GPUs it is the per-group network measured faster
    # there (RESULTS.md "GPU"); on other accelerators lax. Fixed formulations pass through.
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert conv.resolve_conv_impl("auto") == network_form
    assert conv.resolve_conv_impl("matmul") == "matmul"
    with pytest.raises(ValueError, match="conv_impl must be one of"):
        conv.resolve_conv_impl("cudnn")
