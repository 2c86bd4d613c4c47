"""siamfc_jax: the SiamFC object tracker in JAX/Flax, faithful to siamfc-pytorch."""

from siamfc_jax.runtime import select_platform

select_platform()

__version__ = "0.1.0"
