"""The rich synthetic world, long schedule: the recipe of the packaged weights.

6 epochs over 1,200 sequences of the ``rich`` world (small targets down to 6 px, real photographs
as textures and backgrounds, camera shake with matching blur, look-alikes crossing the target, full
occlusion, targets leaving the view, more fast motion, zoom and rotation;
:data:`siamfc_jax.synthetic.config.WORLDS`), 2 pairs per sequence per epoch (300 steps of 8
pairs, 14,400 pairs in all), frames with boxes down to 6 px trained on; otherwise
siamfc-pytorch's recipe (:mod:`siamfc_jax.configs.default`). Validated on 3 held-out synthetic
sequences of the same world. Its final weights, stored as float16, are
``siamfc_jax/assets/siamfc_alexnet_v1_synthetic.msgpack``::

    python train.py --config synthetic_rich

Add ``--val-data folder:../shared/siamfc/data/validation --val-sequences 12`` to see the AUC on
real video after every epoch (about 10 min per validation on 2 CPU cores). Judge the result with
``python -m benchmarks.weights_accuracy runs/v1-synthetic-rich/final.msgpack original``.

Wall time: 1 h 22 min from nothing on a 2-core AMD EPYC VM (curating 1,230
sequences: 3 min; 1,800 steps at 4.0-4.7 pairs/s end to end alone, 2.1-2.3 while other jobs
shared the cores; 7 validations). Expected: validation AUC on the 3 held-out rich-world sequences
0.082 untrained, 0.279 after epoch 1, 0.255 after epoch 6 (3 sequences: a noisy figure; the rich
world is much harder than the basic one); training loss 0.542 in epoch 1, 0.466 in epoch 6. On
real video, mean success AUC 0.358 on the 12 validation sequences (README, "The packaged
weights"). The run is deterministic on one machine: the convolution plan measured for it
(stored per machine, siamfc_jax.plans) is part of the arithmetic.
"""

from __future__ import annotations

from siamfc_jax.config import TrainConfig, replace
from siamfc_jax.configs import default


def get_config() -> TrainConfig:
    """:mod:`siamfc_jax.configs.default` on the rich synthetic world for 6 epochs of 2,400 pairs."""
    config = default.get_config()
    return replace(
        config,
        data="synthetic",
        synthetic_world="rich",
        synthetic_sequences=1200,
        optim=replace(config.optim, epochs=6),
        pairs=replace(config.pairs, pairs_per_seq=2, min_target_side=6.0),
        workdir="runs/{backbone}-synthetic-rich",
    )
