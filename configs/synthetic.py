"""The basic synthetic world, short schedule: the default run of ``python train.py``.

6 epochs over 300 generated sequences of the ``basic`` world (37 steps of 8 pairs each), validated
on 3 held-out synthetic sequences; otherwise siamfc-pytorch's recipe (:mod:`configs.default`). It
trained the packaged weights until they were replaced by :mod:`configs.synthetic_rich`'s; it stays
the quick first run (9 minutes on 2 CPU cores)::

    python train.py --backbone v1        # the same as: python train.py --config synthetic

Wall time: 9 min 15 s with an empty cache folder on an otherwise idle 2-core AMD EPYC VM,
2026-12-04 (generate and curate 330 sequences: about 44 s; 222 steps at about 8 pairs/s; 7
validations; export; the first epoch also measures the layers' formulations). 13 min 3 s on
2026-11-24, before XLA's own convolution kernels ran the train step. The run is deterministic on
one machine: a rerun under heavy load gave bit-identical weights in 34 min (2026-11-24).

Expected (2026-12-04): success AUC on the 3 held-out synthetic sequences 0.317 untrained, 0.683
after training (0.663–0.693 after epochs 1–5); training loss 0.619 in epoch 1, 0.507 in epoch 6.
On 2026-11-24, with other formulations: 0.684 (0.683–0.696), losses 0.618 and 0.507.
"""

from __future__ import annotations

from configs import default
from siamfc_jax.config import TrainConfig, replace


def get_config() -> TrainConfig:
    """:mod:`configs.default` on the synthetic world for 6 epochs."""
    config = default.get_config()
    return replace(config, data="synthetic", optim=replace(config.optim, epochs=6))

