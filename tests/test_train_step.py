"""The training step against a PyTorch reference step, and 2 devices against 1.

Float32 training steps are ill-conditioned at initialisation: gradients of the early layers and of
the BatchNorm shifts are small differences of large sums, so two float32 implementations that only
sum in different orders drift apart (PyTorch float32 itself drifts from PyTorch float64 by ~1e-3 on
the BatchNorm shifts after three steps). The exact semantics — forward in train mode, balanced loss,
coupled weight decay, momentum, global-batch BatchNorm — are therefore pinned in float64, where
every difference must vanish, and float32 is checked for one step at the issue's tolerances, but
for the BatchNorm shifts (see :data:`BN_SHIFT_FLOAT32_TOL`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from siamfc_jax.config import LossConfig, ModelConfig, OptimConfig
from siamfc_jax.interop.torch_weights import flax_to_torch, torch_to_flax
from siamfc_jax.pipeline.crops import crop_and_resize
from siamfc_jax.sequences.frames import average_color
from siamfc_jax.synthetic.config import SyntheticConfig
from siamfc_jax.synthetic.render import render_sequence
from siamfc_jax.training.state import lr_schedule, make_optimizer, state_from_variables
from siamfc_jax.training.step import data_mesh, make_train_step, shard_batch
from tests.torch_reference import TorchNet, balanced_loss, labels

REPO_ROOT = Path(__file__).resolve().parents[1]


def pair_batch(n: int, exemplar_sz: int, search_sz: int) -> dict[str, np.ndarray]:
    """Exemplar and search crops of ``n`` synthetic targets (frames 0 and 3), SiamFC context.

    The step's semantics do not depend on the image sizes, so the float64 checks use small crops
    (float64 convolutions are slow on the CPU).
    """
    config = SyntheticConfig(num_sequences=n, frames_per_sequence=4)
    exemplars, searches = [], []
    for index in range(n):
        frames, boxes, _, _ = render_sequence(config, index)
        for frame_index, out_size, crops in ((0, exemplar_sz, exemplars), (3, search_sz, searches)):
            x, y, w, h = boxes[frame_index]
            centre = np.array([y - 1 + (h - 1) / 2, x - 1 + (w - 1) / 2])
            context = 0.5 * (w + h)
            size = np.sqrt((w + context) * (h + context)) * out_size / exemplar_sz
            frame = frames[frame_index]
            crops.append(crop_and_resize(frame, centre, size, out_size, average_color(frame)))
    return {"exemplar": np.stack(exemplars), "search": np.stack(searches)}


def xavier_torch_net(dtype: torch.dtype) -> TorchNet:
    """siamfc-pytorch's initialisation: Xavier-uniform conv weights, zero biases, identity BN."""
    torch.manual_seed(0)
    net = TorchNet("v1")
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.xavier_uniform_(module.weight)
            torch.nn.init.zeros_(module.bias)
    return net.to(dtype).train()


def nchw(images: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(dtype)


def run_both(steps: int, dtype: str, batch: dict[str, np.ndarray]):
    """Losses and final state_dicts of ``steps`` training steps in PyTorch and in JAX."""
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    net = xavier_torch_net(torch_dtype)
    variables, config = torch_to_flax(net.state_dict())
    optim = OptimConfig()
    optimizer = make_optimizer(optim, steps_per_epoch=100)
    torch_optimizer = torch.optim.SGD(
        net.parameters(), lr=optim.initial_lr, momentum=optim.momentum, weight_decay=optim.weight_decay
    )
    exemplar, search = nchw(batch["exemplar"], torch_dtype), nchw(batch["search"], torch_dtype)

    mesh = data_mesh(jax.devices()[:1])
    jax_dtype = jnp.dtype(dtype)
    exemplar_sz, search_sz = batch["exemplar"].shape[1], batch["search"].shape[1]
    step = make_train_step(config, LossConfig(), optimizer, mesh, exemplar_sz, search_sz, jax_dtype)
    variables = jax.tree.map(
        lambda a: a.astype(jax_dtype) if np.issubdtype(a.dtype, np.floating) else a, variables
    )
    state = jax.device_put(state_from_variables(variables, optimizer), NamedSharding(mesh, P()))

    torch_losses, jax_losses = [], []
    for _ in range(steps):
        responses = net(exemplar, search)
        target = labels(len(exemplar), *responses.shape[2:]).to(torch_dtype)
        loss = balanced_loss(responses, target)
        torch_optimizer.zero_grad()
        loss.backward()
        torch_optimizer.step()
        torch_losses.append(loss.item())
        state, metrics = step(state, shard_batch(batch, mesh))
        jax_losses.append(float(metrics["loss"]))
    ours = flax_to_torch({"params": state.params, "batch_stats": state.batch_stats})
    ref = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    return torch_losses, jax_losses, ours, ref


def state_errors(ours: dict, ref: dict) -> tuple[float, float, float]:
    """(max relative error over parameters and running statistics but the BatchNorm shifts, that of
    the BatchNorm shifts, max absolute error of the convolution biases that feed a BatchNorm, whose
    exact value stays 0); a relative error is the largest difference over the largest value."""
    relative, bn_shift, pre_bn_bias = 0.0, 0.0, 0.0
    for key, value in ref.items():
        if key.endswith("num_batches_tracked"):
            assert int(ours[key]) == int(value), key
            continue
        diff = float(np.max(np.abs(np.asarray(ours[key], np.float64) - value)))
        if key.endswith(".0.bias") and not key.startswith("backbone.conv5"):
            pre_bn_bias = max(pre_bn_bias, diff)
        elif key.endswith(".1.bias"):
            bn_shift = max(bn_shift, diff / float(np.max(np.abs(value))))
        else:
            relative = max(relative, diff / float(np.max(np.abs(value))))
    return relative, bn_shift, pre_bn_bias


# After one step from identity BatchNorms, a BatchNorm shift is the sum of its output's gradient
# over the batch, a sum that nearly cancels, and it changes by a whole term when float32 rounding
# turns one ReLU decision (an activation within rounding of 0) the other way. On a 2-core Xeon
# (AVX-512) the step below turns one of conv3's 1.8 million ReLUs the other way from PyTorch's
# float32 step and from float64: that moves one shift of conv3 by 5.8e-4 of the largest (the
# others of conv3 stay within 6e-6; conv1's shifts reach 1.2e-4), while all other state stays
# within 7e-6. The code as landed on 2026-12-05 gives the same figures there; the 1e-4 once
# required of the shifts too held on the AMD EPYC machines (3.9e-5 there on 2026-12-04).
BN_SHIFT_FLOAT32_TOL = 1e-3


def test_one_float32_step_matches_torch():
    torch_losses, jax_losses, ours, ref = run_both(1, "float32", pair_batch(8, 127, 239))
    loss_error = abs(jax_losses[0] - torch_losses[0]) / torch_losses[0]
    relative, bn_shift, pre_bn_bias = state_errors(ours, ref)
    print(
        f"float32 1 step: loss rel {loss_error:.1e}, state rel {relative:.1e}, BN shifts rel "
        f"{bn_shift:.1e}, bias abs {pre_bn_bias:.1e}"
    )
    assert loss_error <= 1e-5
    assert relative <= 1e-4
    assert bn_shift <= BN_SHIFT_FLOAT32_TOL
    assert pre_bn_bias <= 1e-8


def test_three_float64_steps_match_torch():
    with jax.enable_x64(True):
        torch_losses, jax_losses, ours, ref = run_both(3, "float64", pair_batch(4, 95, 127))
    loss_error = max(abs(a - b) / b for a, b in zip(jax_losses, torch_losses, strict=True))
    relative, bn_shift, pre_bn_bias = state_errors(ours, ref)
    print(f"float64 3 steps: loss rel {loss_error:.1e}, state rel {max(relative, bn_shift):.1e}, "
          f"bias abs {pre_bn_bias:.1e}")
    assert torch_losses[2] < torch_losses[0]  # the reference itself learns on this batch
    assert loss_error <= 1e-10
    assert max(relative, bn_shift) <= 1e-9
    assert pre_bn_bias <= 1e-15


def test_learning_rate_schedule_matches_torch_exponential_lr():
    optim = OptimConfig()
    schedule = lr_schedule(optim, steps_per_epoch=7)
    param = torch.nn.Parameter(torch.zeros(1))
    torch_optimizer = torch.optim.SGD([param], lr=optim.initial_lr)
    gamma = (optim.ultimate_lr / optim.initial_lr) ** (1 / optim.epochs)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(torch_optimizer, gamma)
    for epoch in range(optim.epochs):
        for step in range(epoch * 7, epoch * 7 + 7):
            assert float(schedule(step)) == pytest.approx(torch_optimizer.param_groups[0]["lr"], rel=1e-6)
        torch_optimizer.step()
        scheduler.step()
    assert float(schedule(49 * 7)) == pytest.approx(1e-2 * gamma**49, rel=1e-6)


def test_two_devices_equal_one_device():
    """Run in a fresh process: the host must be split into 2 devices before JAX starts."""
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=str(REPO_ROOT),
    )
    result = subprocess.run(
        [sys.executable, __file__],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print("1 vs 2 devices:", report)
    assert report["devices"] == 2
    assert report["float64_params"] <= 1e-12
    assert report["float64_stats"] <= 1e-12
    assert report["float32_loss"] <= 1e-5


def _data_parallel_report() -> dict:
    """Two SGD steps on one global batch with 1 and with 2 devices; their largest differences."""
    batch = pair_batch(4, 95, 127)
    config = ModelConfig("v1")
    optimizer = make_optimizer(OptimConfig(), steps_per_epoch=10)
    report = {"devices": len(jax.devices())}
    for dtype in ("float32", "float64"):
        with jax.enable_x64(dtype == "float64"):
            results = []
            for count in (1, 2):
                mesh = data_mesh(jax.devices()[:count])
                step = make_train_step(
                    config, LossConfig(), optimizer, mesh, 95, 127, dtype=jnp.dtype(dtype)
                )
                net = xavier_torch_net(torch.float64)
                variables, _ = torch_to_flax(net.state_dict())
                variables = jax.tree.map(
                    lambda a, d=dtype: a.astype(d) if np.issubdtype(a.dtype, np.floating) else a,
                    variables,
                )
                state = jax.device_put(state_from_variables(variables, optimizer), NamedSharding(mesh, P()))
                losses = []
                for _ in range(2):
                    state, metrics = step(state, shard_batch(batch, mesh))
                    losses.append(float(metrics["loss"]))
                results.append((losses, jax.device_get(state)))
            (loss_1, state_1), (loss_2, state_2) = results
            report[f"{dtype}_loss"] = max(abs(a - b) / a for a, b in zip(loss_1, loss_2, strict=True))
            for name, tree_1, tree_2 in (
                ("params", state_1.params, state_2.params),
                ("stats", state_1.batch_stats, state_2.batch_stats),
            ):
                errors = [
                    float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))
                    for a, b in zip(jax.tree.leaves(tree_1), jax.tree.leaves(tree_2), strict=True)
                    if np.issubdtype(a.dtype, np.floating) and np.max(np.abs(a)) > 1e-6
                ]
                report[f"{dtype}_{name}"] = max(errors)
    return report


if __name__ == "__main__":
    print(json.dumps(_data_parallel_report()))
