"""This machine's convolution plan: measured once per workload, kept on disk (host code).

:func:`measure_plan` compiles every candidate formulation (:data:`siamfc_jax.ops.conv.FORMULATIONS`)
of each role of each backbone layer for the shapes of a :class:`Workload`, times them in alternating
rounds on random inputs (so that load from other processes falls on all of them alike) and returns
the :class:`~siamfc_jax.ops.plan.ConvPlan` of the fastest. :func:`machine_plan` keeps that plan in
``cache_dir()/"plans"/<machine>.json``, keyed by backbone and workload; the file name is a digest
of what makes timings differ between machines (:func:`machine_key`: the CPU model and its
instruction-set flags, the usable cores, the JAX and jaxlib versions, the backend, ``XLA_FLAGS``
and :data:`FORMAT_VERSION`). Later runs on the same machine read the plan back
(:func:`stored_plan`), so a given input runs the same programs, and gives the same numbers, every
time. Tracing a network never measures: a plan is an argument.

Measuring is bounded: after the first round, candidates more than :data:`DROP_RATIO` times slower
than the best are dropped, and after :data:`MIN_ROUNDS` rounds no new round starts once
:data:`TIMING_BUDGET_S` seconds have been spent timing one layer's role (compilation excluded).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.files import write_text_atomic
from siamfc_jax.models import backbone_class
from siamfc_jax.ops.conv import FORMULATIONS, ROLES, Formulations, conv2d, conv_macs
from siamfc_jax.ops.plan import LAYERS, ConvPlan, default_plan
from siamfc_jax.runtime import available_cores, cache_dir

Log = Callable[[str], None]

# Timed rounds at most; rounds timed even past the budget (with one round, a core taken by another
# process during it could make the choice a 2x slower formulation); and the seconds of timing of
# one layer's role after which no new round starts.
MAX_ROUNDS = 5
MIN_ROUNDS = 3
TIMING_BUDGET_S = 1.5
# Candidates this many times slower than the best after the first round are not timed again.
DROP_RATIO = 1.5
# Part of the machine key, so raising it starts a new file: raise it whenever the formulations a
# stored plan chose between change, or what they cost, so that they are measured again.
FORMAT_VERSION = 1
# What machine_plan announces: measure_plan took about SECONDS_PER_ROLE + SECONDS_PER_PIXEL x (the
# workload's pixels) per layer and role, most of it compiling the candidates (2-core Xeon shared
# with other jobs, AlexNetV1: tracking, 211 k pixels, 84 s for 5 roles; a train step of 8 pairs of
# 127/239, 586 k pixels, 453 s for 14).
SECONDS_PER_ROLE = 8.0
SECONDS_PER_PIXEL = 4e-5


@dataclass(frozen=True)
class Workload:
    """What a plan is measured for: the image batches the backbone embeds, and whether it is
    differentiated.

    Attributes:
      inputs: ``(batch, side)`` of each batch of ``side``×``side`` RGB images, e.g. the search crops
        and the exemplar.
      train: True times all three roles of each layer (a train step), False the forward pass alone.
    """

    inputs: tuple[tuple[int, int], ...]
    train: bool

    @classmethod
    def tracking(cls, config: TrackerConfig) -> Workload:
        """One tracking frame: ``scale_num`` search crops of ``instance_sz``, plus one exemplar of
        ``exemplar_sz`` (embedded once per target)."""
        return cls(((config.scale_num, config.instance_sz), (1, config.exemplar_sz)), train=False)

    @classmethod
    def training(cls, batch: int = 8, exemplar_sz: int = 127, search_sz: int = 239) -> Workload:
        """One train step of one device: ``batch`` exemplars and ``batch`` search images, forward
        and both gradients."""
        return cls(((batch, exemplar_sz), (batch, search_sz)), train=True)

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles timed: all of :data:`~siamfc_jax.ops.conv.ROLES`, or ``forward`` alone."""
        return ROLES if self.train else ROLES[:1]

    def key(self, model_config: ModelConfig) -> str:
        """What a stored plan is filed under, e.g. ``v1 forward 3x255 1x127``."""
        mode = "train" if self.train else "forward"
        return " ".join([model_config.backbone, mode, *(f"{n}x{side}" for n, side in self.inputs)])


def _cpu_description() -> str:
    """CPU model name and flags from /proc/cpuinfo (the platform's processor name elsewhere)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or platform.machine()
    flags = " ".join(sorted((fields.get("flags") or fields.get("Features") or "").split()))
    return f"{model} | {flags}"


# XLA flags that set how many devices the CPU shows and how long their collectives wait, not how
# fast one device computes: left out of the machine key, so that a run on several host devices or
# processes finds the plan one measured (a workload's batch is already per device).
_UNTIMED_XLA_FLAGS = ("--xla_force_host_platform_device_count", "--xla_cpu_collective_timeout_seconds")


def _timed_xla_flags() -> str:
    flags = os.environ.get("XLA_FLAGS", "").split()
    return " ".join(flag for flag in flags if not flag.startswith(_UNTIMED_XLA_FLAGS))


def machine_key() -> str:
    """Digest (16 hex digits) of what makes timings differ between machines (see the module doc)."""
    parts = [
        f"format {FORMAT_VERSION}",
        _cpu_description(),
        f"cores {available_cores()}",
        f"jax {jax.__version__} jaxlib {jaxlib.__version__}",
        f"backend {jax.default_backend()} {sorted({d.device_kind for d in jax.devices()})}",
        f"XLA_FLAGS {_timed_xla_flags()}",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def plans_path() -> Path:
    """The file holding this machine's measured plans."""
    return cache_dir() / "plans" / f"{machine_key()}.json"


def _read(path: Path) -> dict:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _random_inputs(shapes: Sequence[jax.ShapeDtypeStruct]) -> list[jax.Array]:
    rng = np.random.default_rng(0)
    return [jax.device_put(rng.uniform(-1, 1, shape.shape).astype(shape.dtype)) for shape in shapes]


def measure(candidates: Mapping[str, Callable], shapes: Sequence[jax.ShapeDtypeStruct]) -> dict[str, float]:
    """Best seconds per call of each candidate on random inputs of ``shapes`` (for a dropped one,
    its first round's); bounded as the module docstring says."""
    inputs = _random_inputs(shapes)
    compiled = {name: jax.jit(fn).lower(*shapes).compile() for name, fn in candidates.items()}
    for program in compiled.values():  # warm-up: first-call allocations
        jax.block_until_ready(program(*inputs))
    best = dict.fromkeys(compiled, float("inf"))
    timing = 0.0
    for round_index in range(MAX_ROUNDS):
        if round_index >= MIN_ROUNDS and timing > TIMING_BUDGET_S:
            break
        for name, program in compiled.items():
            if round_index and best[name] > DROP_RATIO * min(best.values()):
                continue
            start = time.perf_counter()
            jax.block_until_ready(program(*inputs))
            elapsed = time.perf_counter() - start
            timing += elapsed
            best[name] = min(best[name], elapsed)
    return best


def candidates_for(groups: int) -> tuple[str, ...]:
    """The formulations measured for a layer of ``groups`` channel groups: all of them, but
    ``"lax_per_group"`` only for a grouped layer (ungrouped, it is ``"lax"`` again)."""
    return tuple(name for name in FORMULATIONS if groups > 1 or name != "lax_per_group")


def _role_program(
    formulation: str, role: str, layer_shapes: Sequence[tuple[tuple[int, ...], tuple[int, ...]]], stride: int,
    groups: int,
) -> tuple[Callable, list[jax.ShapeDtypeStruct]]:
    """One program running ``role`` of one layer by ``formulation`` on every input of a workload,
    and its argument shapes."""

    def convolve(x, kernel):
        return conv2d(x, kernel, stride, groups, None, formulation)

    def activation(x, scale, offset):
        # In the network a convolution reads the output of elementwise work (BatchNorm and ReLU;
        # conv1: the crop or the image's conversion to float), which XLA:CPU fuses into each slice
        # a formulation takes of its input, and so repeats once per slice. Timed without it, the
        # formulations with the most slices (im2col: k²) would look cheaper than they run.
        return jnp.maximum(x * scale + offset, 0)

    def one(x_shape, args):
        if role == "forward":
            x, kernel, scale, offset = args
            return convolve(activation(x, scale, offset), kernel)
        if role == "input_gradient":  # the transpose in the input reads the kernel and the gradient
            kernel, output_gradient = args
            zeros = jnp.zeros(x_shape, jnp.float32)
            return jax.vjp(lambda x: convolve(x, kernel), zeros)[1](output_gradient)[0]
        x, kernel, output_gradient, scale, offset = args
        inputs = activation(x, scale, offset)
        return jax.vjp(lambda kernel: convolve(inputs, kernel), kernel)[1](output_gradient)[0]

    shapes, counts = [], []
    for x_shape, kernel_shape in layer_shapes:
        k = kernel_shape[0]
        out = (x_shape[0], (x_shape[1] - k) // stride + 1, (x_shape[2] - k) // stride + 1, kernel_shape[-1])
        role_shapes = {
            "forward": (x_shape, kernel_shape, x_shape[-1:], x_shape[-1:]),
            "input_gradient": (kernel_shape, out),
            "kernel_gradient": (x_shape, kernel_shape, out, x_shape[-1:], x_shape[-1:]),
        }[role]
        shapes += [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in role_shapes]
        counts.append(len(role_shapes))

    def program(*args):
        results, start = [], 0
        for (x_shape, _), count in zip(layer_shapes, counts, strict=True):
            results.append(one(x_shape, args[start : start + count]))
            start += count
        return results

    return program, shapes


def measure_plan(model_config: ModelConfig, workload: Workload, log: Log | None = None) -> ConvPlan:
    """The plan of the formulations fastest on this machine for ``workload`` (compiles and times
    every candidate of each layer and role; see the module docstring; nothing is stored).

    ``log`` (when given) gets one line per layer and role: each candidate's milliseconds (the sum
    over the workload's inputs) and the choice. A first layer's input gradient is never computed
    (its input is the images), so it takes the forward's formulation untimed. The correlation is
    by products and pools separable, as on every CPU plan.
    """
    backbone = backbone_class(model_config.backbone)
    per_input = [backbone.conv_shapes(batch, side) for batch, side in workload.inputs]
    layers = []
    for index, (name, block) in enumerate(zip(LAYERS, backbone.blocks, strict=True)):
        layer_shapes = [shapes[index] for shapes in per_input]
        chosen: dict[str, str] = {}
        for role in workload.roles:
            if role == "input_gradient" and index == 0:
                chosen[role] = chosen["forward"]
                continue
            programs = {
                formulation: _role_program(formulation, role, layer_shapes, block.stride, block.groups)
                for formulation in candidates_for(block.groups)
            }
            shapes = next(iter(programs.values()))[1]
            seconds = measure({f: program for f, (program, _) in programs.items()}, shapes)
            chosen[role] = min(seconds, key=seconds.get)
            if log is not None:
                macs = sum(conv_macs(x, k, block.stride) for x, k in layer_shapes)
                ranked = sorted(seconds.items(), key=lambda item: item[1])
                timings = ", ".join(f"{f} {1e3 * s:.1f}" for f, s in ranked)
                rate = 2 * macs / 1e9 / seconds[chosen[role]]
                log(f"{name} {role}: {timings} ms -> {chosen[role]} ({rate:.0f} GFLOP/s)")
        forward = chosen["forward"]
        layers.append(Formulations(*(chosen.get(role, forward) for role in ROLES)))
    return ConvPlan(tuple(layers), correlation="products", separable_pool=True)


def stored_plan(model_config: ModelConfig, workload: Workload) -> ConvPlan | None:
    """The plan :func:`machine_plan` stored for ``workload`` on this machine, or None (none
    stored, or the file unreadable)."""
    entry = _read(plans_path()).get(workload.key(model_config))
    if not isinstance(entry, dict):
        return None
    try:
        return ConvPlan.from_dict(entry["plan"])
    except (KeyError, TypeError, ValueError):
        return None


def machine_plan(model_config: ModelConfig, workload: Workload, log: Log = print) -> ConvPlan:
    """This machine's plan for ``workload``: the stored one, or measured now and stored.

    On GPUs and TPUs, :func:`~siamfc_jax.ops.plan.default_plan` (nothing measured). On the CPU,
    before measuring, ``log`` gets one line saying so and about how long it takes; the plan is
    then written atomically to :func:`plans_path` (where the folder cannot be written, it holds for
    this call only).
    """
    platform_name = jax.default_backend()
    if platform_name != "cpu":
        return default_plan(platform_name)
    plan = stored_plan(model_config, workload)
    if plan is not None:
        return plan
    roles = len(LAYERS) * len(workload.roles) - (1 if workload.train else 0)
    pixels = sum(batch * side**2 for batch, side in workload.inputs)
    seconds = roles * (SECONDS_PER_ROLE + SECONDS_PER_PIXEL * pixels)
    log(
        "measuring the fastest convolution formulations for this machine, once "
        f"(about {seconds:.0f} s; {workload.key(model_config)})"
    )
    start = time.perf_counter()
    plan = measure_plan(model_config, workload)
    path = plans_path()
    entries = _read(path)  # read again: another process may have stored other workloads meanwhile
    entries[workload.key(model_config)] = {
        "plan": plan.to_dict(),
        "measured_s": round(time.perf_counter() - start, 1),
    }
    # The plan only saves time: without a writable cache it is measured again next run.
    with contextlib.suppress(OSError):
        write_text_atomic(path, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return plan


# What a --conv-impl option takes: "auto", this machine's plan, or one formulation everywhere.
CONV_IMPL_CHOICES = ("auto", *FORMULATIONS)


def named_plan(name: str, model_config: ModelConfig, workload: Workload, log: Log = print) -> ConvPlan:
    """The plan of a ``--conv-impl`` value: ``"auto"``, :func:`machine_plan` of ``workload``
    (measured once, saying so on ``log``); a formulation, :meth:`ConvPlan.uniform` of it.

    Raises:
      ValueError: ``name`` is not one of :data:`CONV_IMPL_CHOICES`.
    """
    if name == "auto":
        return machine_plan(model_config, workload, log)
    return ConvPlan.uniform(name)
