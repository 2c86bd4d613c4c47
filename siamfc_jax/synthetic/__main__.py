"""``python -m siamfc_jax.synthetic``: the process set up first, then
:func:`siamfc_jax.synthetic.command.main`."""

import sys

from siamfc_jax.runtime import setup_process

if __name__ == "__main__":
    # NumPy and OpenCV only: nothing runs on JAX or XLA.
    setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)
    from siamfc_jax.synthetic.command import main

    sys.exit(main())
