"""Track objects with SiamFC: ``python track.py --help`` (installed: ``siamfc-track``).

The command line lives in :mod:`siamfc_jax.apps.track`.
"""

import sys

from siamfc_jax.apps import track_command

if __name__ == "__main__":
    sys.exit(track_command())
