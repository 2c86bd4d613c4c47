"""Moving weights between siamfc-pytorch (PyTorch) and siamfc_jax (Flax)."""

from siamfc_jax.interop.torch_weights import (
    WeightsError,
    flax_to_torch,
    infer_backbone,
    normalize_state_dict,
    torch_to_flax,
)

__all__ = ["WeightsError", "flax_to_torch", "infer_backbone", "normalize_state_dict", "torch_to_flax"]
