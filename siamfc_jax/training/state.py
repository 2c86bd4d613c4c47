"""Training state and siamfc-pytorch's optimiser: SGD, momentum 0.9, coupled weight decay, exponential lr."""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from siamfc_jax.config import ModelConfig, OptimConfig
from siamfc_jax.models import init_variables


@flax.struct.dataclass
class TrainState:
    """Everything a training step reads and writes; a pytree, replicated over devices.

    The step count lives on the host (the loop's and the checkpoint's ``Position``) and in the
    optimiser state's own counter, which drives the learning-rate schedule.
    """

    params: Any
    batch_stats: Any
    opt_state: optax.OptState


def epoch_learning_rate(config: OptimConfig, epoch: int | jax.Array) -> float | jax.Array:
    """Learning rate of (0-based) ``epoch``: ``initial_lr · γ^epoch``, γ = (ultimate/initial)^(1/epochs).

    ``config.epochs`` sets the decay's rate; epochs past it (a run extended to more epochs,
    :func:`~siamfc_jax.training.loop.decay_schedule`) decay on by γ per epoch, below ``ultimate_lr``.
    A Python ``int`` gives a Python float computed on the host (the loop logs it without touching a
    device); an array gives an array.
    """
    gamma = (config.ultimate_lr / config.initial_lr) ** (1.0 / config.epochs)
    return config.initial_lr * gamma**epoch


def lr_schedule(config: OptimConfig, steps_per_epoch: int) -> optax.Schedule:
    """Learning rate per step: :func:`epoch_learning_rate` of the step's epoch.

    Constant within an epoch and decaying per epoch, as PyTorch's ``ExponentialLR`` stepped once at
    the start of every epoch: epoch 0 trains at ``initial_lr`` and the last at
    ``initial_lr · γ^(epochs-1)``.
    """

    def schedule(step: jax.Array) -> jax.Array:
        # ``float`` is JAX's default float type: float32, or float64 when x64 is enabled, so that
        # float64 runs reproduce PyTorch's double-precision learning rate exactly.
        epoch = jnp.asarray(step // max(steps_per_epoch, 1), dtype=float)
        return epoch_learning_rate(config, epoch)

    return schedule


@functools.cache
def make_optimizer(config: OptimConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """PyTorch ``SGD(lr, momentum, weight_decay)``: the decay term ``wd·p`` is added to every gradient
    (all parameters, BatchNorm's included) before the momentum buffer, which starts at the first
    gradient (no dampening).

    One object per ``(config, steps_per_epoch)``, so train steps built from equal settings share
    their compilation."""
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay),
        optax.sgd(lr_schedule(config, steps_per_epoch), momentum=config.momentum),
    )


def create_train_state(
    model_config: ModelConfig,
    optimizer: optax.GradientTransformation,
    rng: jax.Array,
    param_dtype: Any = jnp.float32,
) -> TrainState:
    """Freshly initialised state: Xavier-uniform kernels, zero biases, identity BatchNorm."""
    variables = init_variables(model_config, rng, param_dtype)
    return state_from_variables(variables, optimizer)


def state_from_variables(variables: dict, optimizer: optax.GradientTransformation) -> TrainState:
    """A state at step 0 starting from given ``{"params", "batch_stats"}`` (e.g. pretrained weights).

    Host arrays are uploaded explicitly and the optimiser's state is made in one compiled call, so
    that nothing here is an implicit transfer.
    """
    params = jax.device_put(variables["params"])
    return TrainState(
        params=params,
        batch_stats=jax.device_put(variables["batch_stats"]),
        opt_state=jax.jit(optimizer.init)(params),
    )
