"""siamfc-pytorch's recipe on ImageNet VID 2015 (the data of the original SiamFC paper).

ILSVRC2015 VID (image-net.org, registration; ``ILSVRC2015_VID.tar.gz`` extracted) at
``/data/ILSVRC2015``, holding ``Data/VID/train`` and ``Annotations/VID/train`` (and optionally the
``val`` folders, used for the validation AUC); ``--data vid:DIR`` names another root (and selects
this config by itself). One track per object id; frames where the object is absent are dropped::

    python train.py --config vid --data vid:/data/ILSVRC2015 --workdir runs/vid

Wall time: not measured; curation is decode-bound like GOT-10k's, and training runs at the rates
given in :mod:`siamfc_jax.configs.got10k`.

Expected AUC: not measured.
"""

from __future__ import annotations

from siamfc_jax.config import TrainConfig, replace
from siamfc_jax.configs import default


def get_config() -> TrainConfig:
    """:mod:`siamfc_jax.configs.default` on ImageNet VID at ``/data/ILSVRC2015``."""
    return replace(default.get_config(), data="vid:/data/ILSVRC2015")
