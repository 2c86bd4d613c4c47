"""Deployable artifacts of a SiamFC model: ONNX networks and StableHLO tracker steps.

- :mod:`siamfc_jax.export.onnx`: the backbone (any batch and image size) and the correlation head as
  ONNX files, through the optional ``jax2onnx`` converter, for runtimes such as onnxruntime. The
  tracking logic around them (crops, upsampling, peak) stays with the deploying program.
- :mod:`siamfc_jax.export.stablehlo`: the whole tracker, its init step and its per-frame step, as
  serialised ``jax.export`` modules with the state as explicit inputs and outputs, loadable by any
  JAX program (or an XLA/IREE runtime) without siamfc_jax.

``python -m siamfc_jax.export WEIGHTS OUT --format onnx|stablehlo`` writes either into the folder OUT.
"""

from siamfc_jax.export.onnx import MissingDependencyError, export_onnx
from siamfc_jax.export.stablehlo import STATE_FIELDS, export_stablehlo

__all__ = ["STATE_FIELDS", "MissingDependencyError", "export_onnx", "export_stablehlo"]
