"""siamfc-pytorch's recipe on GOT-10k: the run behind siamfc-pytorch's ``siamfc_alexnet_e50.pth``.

GOT-10k (http://got-10k.aitestunion.com/, registration) at ``/data/GOT-10k``, holding ``train/``
and ``val/`` (used for the validation AUC); ``--data got10k:DIR`` names another root (and selects
this config by itself)::

    python train.py --config got10k --data got10k:/data/GOT-10k --workdir runs/got10k

Wall time: not measured as a whole. Curation decodes each of GOT-10k's 1.4 M mostly 1280×720
frames once: on the order of an hour on 16 cores (estimated). An epoch is 9,335 pairs, 1,167 steps
of 8. On one NVIDIA H200 the train step ran 2,884 pairs/s on the device and about 990 pairs/s fed
by the loader's threads (benchmarks/RESULTS.md, "GPU"), so an epoch takes about 10 s there
(estimated from those rates); a step takes about 1 s on a 2-core CPU, so this run wants a GPU.

Expected AUC: not measured for our own training. siamfc-pytorch's model trained this way scores
0.7710 success AUC on OTB Crossing and 0.6431 on VOT bag, in siamfc-pytorch and in siamfc_jax alike
(README, "Tracking accuracy on the shared real sequences").
"""

from __future__ import annotations

from siamfc_jax.config import TrainConfig, replace
from siamfc_jax.configs import default


def get_config() -> TrainConfig:
    """:mod:`siamfc_jax.configs.default` on GOT-10k at ``/data/GOT-10k``."""
    return replace(default.get_config(), data="got10k:/data/GOT-10k")
