"""Track with the StableHLO steps of ``python -m siamfc_jax.export WEIGHTS OUT --format stablehlo``.

Needs JAX, OpenCV and NumPy only (not siamfc_jax). Prints one 1-indexed ``x,y,w,h`` per frame:

    python docs/examples/track_stablehlo.py OUT 'Crossing/img/*.jpg' 205,151,17,50 > boxes.txt

Without an NVIDIA driver it runs on the CPU (``JAX_PLATFORMS``, when set, chooses instead). The
steps run the convolution formulation chosen at export: ``lax`` (``lax.conv_general_dilated``) by
default, ``matmul`` with ``--conv-impl matmul``, the same one for every layer. On the CPU that is
slower than ``track.py``, which picks the fastest formulation per layer: over Crossing (120 frames,
2 shared CPU cores under load) this example ran at 0.8 fps with ``lax`` and 1.0 fps with ``matmul``,
``python track.py --seq Crossing`` at 3.1 fps (docs/deployment.md).
"""

import glob
import os
import sys
from pathlib import Path

# JAX's CUDA plugin, installed without an NVIDIA driver, fails loudly while looking for a GPU: ask
# for the CPU then, before JAX starts (as siamfc_jax's tools do). JAX_PLATFORMS, if set, decides.
if not os.environ.get("JAX_PLATFORMS") and not any(
    os.path.exists(marker) for marker in ("/proc/driver/nvidia/version", "/dev/nvidiactl")
):
    os.environ["JAX_PLATFORMS"] = "cpu"

import cv2
import jax
import numpy as np
from jax import export

folder, pattern, first_box = sys.argv[1:4]
init = jax.jit(export.deserialize(Path(folder, "init.jax_exported").read_bytes()).call)
update = jax.jit(export.deserialize(Path(folder, "update.jax_exported").read_bytes()).call)
box = np.array(first_box.split(","), np.float32)
for index, path in enumerate(sorted(glob.glob(pattern))):
    frame = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)  # (H, W, 3) uint8 RGB
    if index == 0:
        state = init(frame, box)  # (center, target_size, exemplar_crop, search_crop, fill, features)
    else:
        *state, box = update(*state, frame)
    print(",".join(f"{value:.4f}" for value in np.asarray(box)))
