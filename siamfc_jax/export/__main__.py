"""``python -m siamfc_jax.export``: the process set up first (the platform, before JAX is imported),
then :func:`siamfc_jax.export.command.main`."""

import sys

from siamfc_jax.runtime import setup_process

if __name__ == "__main__":
    # Lowering compiles nothing that runs here: no restart on mimalloc, no XLA:CPU flags.
    setup_process(allocator=False, xla_cpu_libraries=False, compilation_cache=False)
    from siamfc_jax.export.command import main

    sys.exit(main())
