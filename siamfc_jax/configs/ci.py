"""A tiny synthetic run for tests and smoke checks: every stage of a real run, at a small scale.

12 generated sequences of the synthetic world (plus its 30 validation sequences), 103/175 crops
(159×159 search images, 8×8 responses) instead of 127/255, 2 epochs of 6 steps of batch 4, 2
validation sequences; otherwise :mod:`siamfc_jax.configs.synthetic`. Its figures say that the
stages run, not that the tracker learns (2 short sequences make a noisy AUC)::

    python train.py --config ci --data-dir runs/ci-v1/tfds     # writes runs/ci-v1

Wall time: 19 min 48 s from nothing on a 2-core AMD EPYC VM shared with other jobs (load average
about 12), so an idle machine takes a fraction of that (not measured). The run is deterministic.

Expected: success AUC on the 2 validation sequences 0.440 untrained, 0.457 after epoch 1, 0.786
after epoch 2; training loss 0.688 in epoch 1, 0.678 in epoch 2.
"""

from __future__ import annotations

from siamfc_jax.config import TrainConfig, replace
from siamfc_jax.configs import synthetic


def get_config() -> TrainConfig:
    """:mod:`siamfc_jax.configs.synthetic` shrunk to a smoke test."""
    config = synthetic.get_config()
    return replace(
        config,
        optim=replace(config.optim, epochs=2, batch_size=4),
        pairs=replace(config.pairs, exemplar_sz=103, instance_sz=175, pairs_per_seq=2),
        synthetic_sequences=12,
        val_sequences=2,
        log_every_steps=2,
        workdir="runs/ci-{backbone}",
    )
