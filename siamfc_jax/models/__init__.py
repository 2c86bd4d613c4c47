"""Flax modules of SiamFC: AlexNet backbones, the correlation head and the full network.

Device code that knows no files. ``backbones`` (AlexNetV1/V2/V3, their stride, feature sizes and
receptive field), ``heads`` (cross-correlation), ``layers`` (convolution, BatchNorm, pooling),
``siamfc`` (the network, :func:`init_variables` and :func:`response_size`, the response geometry
that the tracker and the training step both derive from the backbone).
"""

from siamfc_jax.models.backbones import AlexNetV1, AlexNetV2, AlexNetV3, backbone_class
from siamfc_jax.models.heads import cross_correlate
from siamfc_jax.models.siamfc import SiamFC, init_variables, response_size

__all__ = [
    "AlexNetV1",
    "AlexNetV2",
    "AlexNetV3",
    "SiamFC",
    "backbone_class",
    "cross_correlate",
    "init_variables",
    "response_size",
]
