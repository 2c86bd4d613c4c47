"""A tiny synthetic run for tests: it exercises every stage of a real run in about a minute on a CPU.

12 generated sequences of the synthetic world, 103/175 crops (159×159 search images, 8×8
responses) instead of 127/255, 2 epochs of batch 4, 2 validation sequences; otherwise
:mod:`configs.synthetic`. Its figures say that the stages run, not that the tracker learns::

    python train.py --config ci --workdir runs/ci --data-dir runs/ci/tfds

Wall time: MEASURE. Expected AUC: MEASURE.
"""

from __future__ import annotations

from configs import synthetic
from siamfc_jax.config import TrainConfig, replace


def get_config() -> TrainConfig:
    """:mod:`configs.synthetic` shrunk to a smoke test."""
    config = synthetic.get_config()
    return replace(
        config,
        optim=replace(config.optim, epochs=2, batch_size=4),
        pairs=replace(config.pairs, exemplar_sz=103, instance_sz=175, pairs_per_seq=2),
        synthetic_sequences=12,
        val_sequences=2,
        log_every_steps=2,
    )
