"""Convolution plans: which formulation computes each role of each backbone layer, as a value.

A :class:`ConvPlan` names, for each of the five backbone layers ``conv1`` … ``conv5``, the
formulation (:data:`siamfc_jax.ops.conv.FORMULATIONS`) of each role of the convolution
(:class:`~siamfc_jax.ops.conv.Formulations`: the forward pass, the input gradient, the kernel
gradient), how the head correlates (:data:`CORRELATIONS`) and whether max pooling is separable
(:func:`siamfc_jax.models.layers.max_pool`). A network is traced with one plan and never measures
anything; measuring the fastest plan of a machine is host work (:mod:`siamfc_jax.plans`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax

from siamfc_jax.ops.conv import FORMULATIONS, ROLES, Formulations

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
# "lax": all exemplar-search pairs as one grouped convolution (what exporters convert);
# "products": one matrix product per exemplar and a sum of shifted columns (ops.conv.correlate).
CORRELATIONS = ("lax", "products")

# The CPU plan for machines that have not measured their own (siamfc_jax.plans.machine_plan), from
# what measure_plan picked for AlexNetV1 on a 2-core Intel Xeon (AVX-512, jax 0.11) shared with
# other jobs, which moved timings by up to 2x. Gradients: a train step of 8 pairs of 127/239 under
# XLA's default libraries, as the library runs without the tools' flags (conv1 rows, conv2
# rows/lax_per_group/rows, conv3 winograd/rows/rows, conv4 rows, conv5 winograd/lax_per_group/rows).
# Forward passes: tracking (3 searches of 255 and one exemplar) picked winograd for conv1, conv3 and
# conv5 with and without the flags, lax_per_group for conv2 and conv4 with them (XLA's own
# convolution kernels), which run far slower without; the plan takes the non-lax formulation that
# came first or second in every measurement of the layer (conv2 winograd, conv4 rows). conv1's
# input gradient (of the images) is never computed.
_CPU_LAYERS = (
    Formulations("winograd", "winograd", "rows"),
    Formulations("winograd", "lax_per_group", "rows"),
    Formulations("winograd", "rows", "rows"),
    Formulations("rows", "rows", "rows"),
    Formulations("winograd", "lax_per_group", "rows"),
)


@dataclass(frozen=True)
class ConvPlan:
    """How a SiamFC network computes its convolutions (frozen, hashable: a static jit argument).

    Attributes:
      layers: one :class:`~siamfc_jax.ops.conv.Formulations` per backbone layer, ``conv1`` first.
      correlation: one of :data:`CORRELATIONS`.
      separable_pool: True pools columns then rows (faster on XLA:CPU); False one 3×3
        ``reduce_window``, which ONNX converters recognise.
    """

    layers: tuple[Formulations, ...]
    correlation: str = "products"
    separable_pool: bool = True

    def __post_init__(self) -> None:
        if len(self.layers) != len(LAYERS):
            raise ValueError(f"a plan names {len(LAYERS)} layers, got {len(self.layers)}")
        object.__setattr__(self, "layers", tuple(Formulations(*layer) for layer in self.layers))
        for layer in self.layers:
            for formulation in layer:
                if formulation not in FORMULATIONS:
                    raise ValueError(f"unknown formulation {formulation!r}; choose one of {FORMULATIONS}")
        if self.correlation not in CORRELATIONS:
            raise ValueError(f"unknown correlation {self.correlation!r}; choose one of {CORRELATIONS}")

    @classmethod
    def uniform(cls, formulation: str) -> ConvPlan:
        """Every layer and role by ``formulation``; ``"lax"`` also correlates by one grouped
        convolution and pools by ``reduce_window`` (the plan exporters need), every other
        formulation by products and separable pools."""
        return cls(
            tuple(Formulations(formulation, formulation, formulation) for _ in LAYERS),
            correlation="lax" if formulation == "lax" else "products",
            separable_pool=formulation != "lax",
        )

    def layer(self, index: int) -> Formulations:
        """The formulations of backbone layer ``conv<index>`` (1-based)."""
        return self.layers[index - 1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able ``{"conv1": {role: formulation}, …, "correlation", "separable_pool"}``."""
        entries: dict[str, Any] = {
            name: layer._asdict() for name, layer in zip(LAYERS, self.layers, strict=True)
        }
        return {**entries, "correlation": self.correlation, "separable_pool": self.separable_pool}

    @classmethod
    def from_dict(cls, entries: Mapping[str, Any]) -> ConvPlan:
        """The plan :meth:`to_dict` wrote.

        Raises:
          ValueError: a layer, role or value is missing or unknown.
        """
        try:
            layers = tuple(Formulations(*(entries[name][role] for role in ROLES)) for name in LAYERS)
            return cls(layers, str(entries["correlation"]), bool(entries["separable_pool"]))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a convolution plan: missing {error}") from None

    def describe(self) -> str:
        """One line: ``conv1 rows/rows/rows, …, correlation products, separable pools`` (roles
        forward/input gradient/kernel gradient; a layer with one formulation for all three names it once)."""
        layers = ", ".join(
            f"{name} {layer.forward if len(set(layer)) == 1 else '/'.join(layer)}"
            for name, layer in zip(LAYERS, self.layers, strict=True)
        )
        pools = "separable pools" if self.separable_pool else "reduce_window pools"
        return f"{layers}, correlation {self.correlation}, {pools}"


def default_plan(platform: str) -> ConvPlan:
    """The plan a network runs on ``platform`` (JAX's backend name) when none is given.

    ``"gpu"``: uniform ``"lax_per_group"`` (grouped layers as one lax convolution per group,
    separable pools, the correlation by products; side by side with ``"lax"`` on an NVIDIA H200,
    jax 0.11.2, float32, benchmarks/RESULTS.md "GPU": a tracking frame 1.29x as fast for one target
    and 1.27x for 64, a train step of 8 pairs 1.37x). ``"cpu"``: a fixed per-layer plan measured on
    one machine (:data:`_CPU_LAYERS`; :func:`siamfc_jax.plans.machine_plan` measures this
    machine's). Anything else (TPUs): uniform ``"lax"``.
    """
    if platform == "gpu":
        return ConvPlan.uniform("lax_per_group")
    if platform == "cpu":
        return ConvPlan(_CPU_LAYERS)
    return ConvPlan.uniform("lax")


def plan_or_default(plan: ConvPlan | None) -> ConvPlan:
    """``plan``, or for None the :func:`default_plan` of JAX's default backend (read at trace time)."""
    return default_plan(jax.default_backend()) if plan is None else plan
