"""Flax modules of SiamFC: AlexNet backbones, the correlation head and the full network."""

from siamfc_jax.models.backbones import AlexNetV1, AlexNetV2, AlexNetV3, backbone_class
from siamfc_jax.models.heads import cross_correlate
from siamfc_jax.models.siamfc import SiamFC, init_variables

__all__ = [
    "AlexNetV1",
    "AlexNetV2",
    "AlexNetV3",
    "SiamFC",
    "backbone_class",
    "cross_correlate",
    "init_variables",
]
