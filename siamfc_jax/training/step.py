"""The data-parallel training step and the validation step.

Both are ``jax.shard_map`` over a 1-D ``data`` mesh with pmap semantics: parameters, BatchNorm
statistics and optimiser state are replicated, the global batch is split along its first axis, every
device runs the same program on its shard, gradients and the loss are averaged with ``pmean``, and
BatchNorm normalises with the statistics of the global batch (``axis_name="data"``), so a step gives
the same result on any number of devices.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from siamfc_jax.config import LossConfig, ModelConfig
from siamfc_jax.losses import balanced_logistic_loss, logistic_labels
from siamfc_jax.models import SiamFC, backbone_class, response_size
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.plans import Log, Workload, machine_plan
from siamfc_jax.training.distributed import wait_for_all_processes
from siamfc_jax.training.state import TrainState

DATA_AXIS = "data"
Batch = dict[str, jax.Array]


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over ``devices`` (all devices of all hosts by default)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def training_labels(
    model_config: ModelConfig, loss_config: LossConfig, exemplar_sz: int, search_sz: int
) -> np.ndarray:
    """Label map (1, h, w, 1) for training responses.

    The radius is converted to response cells with the backbone's own output stride (8 for V1/V3,
    4 for V2); siamfc-pytorch uses its fixed ``total_stride`` of 8, which is the same for V1.
    """
    stride = backbone_class(model_config.backbone).output_stride
    size = response_size(model_config, exemplar_sz, search_sz)
    return logistic_labels(size, size, stride, loss_config)[None, :, :, None]


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """How a global batch lies on the mesh: split along the batch axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> Batch:
    """Place this process's part of the global batch on its devices.

    On one host ``batch`` is the whole global batch; with several hosts (``jax.distributed``) each
    process passes its own equal slice and the result is the global array.
    """
    sharding = batch_sharding(mesh)
    return {
        name: jax.make_array_from_process_local_data(sharding, np.asarray(value))
        for name, value in batch.items()
    }


# Bytes of the buffer a plan's JSON travels in between processes (a plan takes about 700).
PLAN_BYTES = 4096


def shared_machine_plan(model_config: ModelConfig, workload: Workload, log: Log) -> ConvPlan:
    """:func:`~siamfc_jax.plans.machine_plan` of process 0, the same on every process of a
    multi-process run, so that all of them run one program; with one process, ``machine_plan``
    itself. Every process must call it: the others wait at a barrier of the coordination service
    (not a device collective, whose timeout is short) while process 0 measures."""
    if jax.process_count() == 1:
        return machine_plan(model_config, workload, log)
    buffer = np.zeros(PLAN_BYTES, np.uint8)
    if jax.process_index() == 0:
        encoded = json.dumps(machine_plan(model_config, workload, log).to_dict()).encode()
        buffer[: len(encoded)] = np.frombuffer(encoded, np.uint8)
    wait_for_all_processes("siamfc_jax/conv_plan_ready")
    received = np.asarray(multihost_utils.broadcast_one_to_all(buffer))
    return ConvPlan.from_dict(json.loads(received.tobytes().rstrip(b"\0")))


@dataclasses.dataclass(frozen=True)
class _StepSpec:
    """Everything static about a train step (hashable: equal specs share one compiled step)."""

    model_config: ModelConfig
    loss_config: LossConfig
    optimizer: optax.GradientTransformation
    mesh: Mesh
    exemplar_sz: int
    search_sz: int
    dtype: Any
    plan: ConvPlan | None


def make_train_step(
    model_config: ModelConfig,
    loss_config: LossConfig,
    optimizer: optax.GradientTransformation,
    mesh: Mesh,
    exemplar_sz: int = 127,
    search_sz: int = 239,
    dtype: Any = jnp.float32,
    plan: ConvPlan | None = None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """Compile-ready ``step(state, batch) -> (state, metrics)``; ``state`` is donated.

    ``batch`` holds ``exemplar`` (B, 127, 127, 3) and ``search`` (B, 239, 239, 3) uint8 images, B a
    multiple of the number of devices. ``metrics`` has the global-batch ``loss``. ``dtype`` is the
    compute type of the network (parameters keep the state's type), ``plan`` how it computes its
    convolutions (:class:`~siamfc_jax.ops.plan.ConvPlan`; :func:`siamfc_jax.plans.machine_plan` of
    the training workload is this machine's fastest; None: the platform's
    :func:`~siamfc_jax.ops.plan.default_plan`). Steps made with equal arguments
    (the same optimizer object: :func:`~siamfc_jax.training.state.make_optimizer` returns one per
    config) share their compilation.
    """
    spec = _StepSpec(
        model_config, loss_config, optimizer, mesh, exemplar_sz, search_sz, jnp.dtype(dtype), plan
    )
    return functools.partial(_train_step, spec=spec)


@functools.partial(jax.jit, static_argnames="spec", donate_argnums=0)
def _train_step(state: TrainState, batch: Batch, spec: _StepSpec):
    model = SiamFC(spec.model_config, axis_name=DATA_AXIS, dtype=spec.dtype, plan=spec.plan)
    labels = jnp.asarray(
        training_labels(spec.model_config, spec.loss_config, spec.exemplar_sz, spec.search_sz)
    )
    neg_weight = spec.loss_config.neg_weight

    def per_device(state: TrainState, exemplar: jax.Array, search: jax.Array):
        def loss_fn(params):
            responses, updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                exemplar,
                search,
                train=True,
                mutable=["batch_stats"],
            )
            return balanced_logistic_loss(responses, labels, neg_weight), updates

        # Each device differentiates its own replica of the parameters (marked as varying over the
        # mesh: pmap semantics), so its gradient is that of its shard's loss alone, including how its
        # samples moved the global BatchNorm statistics. With equal shards and one label map for all
        # samples, the mean of the shard losses is the global-batch loss, and so for the gradients.
        replica = jax.lax.pcast(state.params, DATA_AXIS, to="varying")
        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(replica)
        grads = jax.lax.pmean(grads, DATA_AXIS)
        loss = jax.lax.pmean(loss, DATA_AXIS)
        param_updates, opt_state = spec.optimizer.update(grads, state.opt_state, state.params)
        new_state = state.replace(
            params=optax.apply_updates(state.params, param_updates),
            batch_stats=updates["batch_stats"],
            opt_state=opt_state,
        )
        return new_state, {"loss": loss}

    sharded = jax.shard_map(
        per_device,
        mesh=spec.mesh,
        in_specs=(P(), P(DATA_AXIS), P(DATA_AXIS)),
        out_specs=(P(), P()),
        check_vma=True,
    )
    return sharded(state, batch["exemplar"], batch["search"])


def make_peak_error_step(model_config: ModelConfig, mesh: Mesh) -> Callable[[dict, Batch], jax.Array]:
    """``errors(variables, batch) -> (B,)``: distance in response cells from the response peak to the
    map centre (where the target is in a training pair), in evaluation mode.
    """
    return functools.partial(_peak_errors, model_config=model_config, mesh=mesh)


@functools.partial(jax.jit, static_argnames=("model_config", "mesh"))
def _peak_errors(variables: dict, batch: Batch, model_config: ModelConfig, mesh: Mesh) -> jax.Array:
    model = SiamFC(model_config)

    def per_device(variables, exemplar, search):
        responses = model.apply(variables, exemplar, search)[..., 0]
        n, h, w = responses.shape
        peak = jnp.argmax(responses.reshape(n, -1), axis=1)
        rows, cols = peak // w, peak % w
        return jnp.hypot(rows - (h - 1) / 2, cols - (w - 1) / 2)

    sharded = jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(P(), P(DATA_AXIS), P(DATA_AXIS)),
        out_specs=P(DATA_AXIS),
    )
    return sharded(variables, batch["exemplar"], batch["search"])
