"""Train SiamFC: ``python train.py --help`` (installed: ``siamfc-train``).

The command line lives in :mod:`siamfc_jax.apps.train`.
"""

import sys

from siamfc_jax.apps import train_command

if __name__ == "__main__":
    sys.exit(train_command())
