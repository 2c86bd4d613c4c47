"""``python -m siamfc_jax.tune``: the process set up first (on mimalloc, before JAX is imported),
then :func:`siamfc_jax.tune.command.main`."""

import sys

from siamfc_jax.runtime import setup_process

if __name__ == "__main__":
    setup_process()
    from siamfc_jax.tune.command import main

    sys.exit(main())
