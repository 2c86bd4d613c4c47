"""siamfc_jax: the SiamFC object tracker in JAX/Flax, faithful to siamfc-pytorch.

Importing the package has no side effects; the command-line tools choose the JAX platform
themselves (:func:`siamfc_jax.runtime.setup_process`).
"""

__version__ = "0.1.0"
