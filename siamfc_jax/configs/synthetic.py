"""The basic synthetic world, short schedule: the default run of ``python train.py``.

6 epochs over 300 generated sequences of the ``basic`` world (37 steps of 8 pairs each), validated
on 3 held-out synthetic sequences; otherwise siamfc-pytorch's recipe
(:mod:`siamfc_jax.configs.default`). The quick first run (9 minutes on 2 CPU cores); the packaged
weights come from :mod:`siamfc_jax.configs.synthetic_rich`::

    python train.py --backbone v1        # the same as: python train.py --config synthetic

Wall time: 9 min 15 s with an empty cache folder on an otherwise idle 2-core AMD EPYC VM
(generate and curate 330 sequences: about 44 s; 222 steps at about 8 pairs/s; 7 validations;
export; the first epoch also measures the layers' formulations). The run is deterministic on one
machine: a rerun under heavy load gave bit-identical weights.

Expected: success AUC on the 3 held-out synthetic sequences 0.317 untrained, 0.683 after training
(0.663–0.693 after epochs 1–5); training loss 0.619 in epoch 1, 0.507 in epoch 6.
"""

from __future__ import annotations

from siamfc_jax.config import TrainConfig, replace
from siamfc_jax.configs import default


def get_config() -> TrainConfig:
    """:mod:`siamfc_jax.configs.default` on the synthetic world for 6 epochs."""
    config = default.get_config()
    return replace(config, data="synthetic", optim=replace(config.optim, epochs=6))

