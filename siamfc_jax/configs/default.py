"""siamfc-pytorch's training recipe, on the data ``--data`` names; the base of every other run.

50 epochs, global batch 8, one pair per sequence per epoch; SGD with momentum 0.9 and weight
decay 5e-4 added to the gradient; learning rate 1e-2 decaying exponentially per epoch to 1e-5;
balanced logistic loss with r_pos 16 px; 127/255 crops with context 0.5. The values are the
dataclass defaults of :mod:`siamfc_jax.config`, which are siamfc-pytorch's.

Command (any folder of OTB/LaSOT/GOT-10k/VOT sequences; ``--data folder:DIR`` selects this config
by itself)::

    python train.py --config default --data folder:/data/sequences

Wall time and AUC: not measured (they depend on the data; see :mod:`siamfc_jax.configs.got10k`).
"""

from __future__ import annotations

from siamfc_jax.config import TrainConfig, replace


def get_config() -> TrainConfig:
    """siamfc-pytorch's recipe (the defaults of :class:`~siamfc_jax.config.TrainConfig`), written to
    ``runs/<backbone>-<data kind>``."""
    return replace(TrainConfig(), workdir="runs/{backbone}-{data}")
