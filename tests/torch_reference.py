"""A PyTorch SiamFC written from the published architecture, the reference for parity tests.

It reproduces siamfc-pytorch's module tree (``backbone.convN.{0,1}`` keys), its BatchNorm settings
(eps 1e-6, momentum 0.05), the grouped-convolution head with ``out_scale`` and the balanced loss, so
that a ``state_dict`` from siamfc-pytorch loads here with ``strict=True``. Test-only code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# (out_channels, kernel, stride, groups, batchnorm, relu, pool_stride) per block
_SPECS = {
    "v1": [
        (96, 11, 2, 1, True, True, 2),
        (256, 5, 1, 2, True, True, 2),
        (384, 3, 1, 1, True, True, None),
        (384, 3, 1, 2, True, True, None),
        (256, 3, 1, 2, False, False, None),
    ],
    "v2": [
        (96, 11, 2, 1, True, True, 2),
        (256, 5, 1, 2, True, True, 1),
        (384, 3, 1, 1, True, True, None),
        (384, 3, 1, 2, True, True, None),
        (32, 3, 1, 2, False, False, None),
    ],
    "v3": [
        (192, 11, 2, 1, True, True, 2),
        (512, 5, 1, 1, True, True, 2),
        (768, 3, 1, 1, True, True, None),
        (768, 3, 1, 1, True, True, None),
        (512, 3, 1, 1, True, False, None),
    ],
}


class TorchBackbone(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        in_channels = 3
        for index, (out, k, stride, groups, bn, relu, pool) in enumerate(_SPECS[name], start=1):
            layers: list[nn.Module] = [nn.Conv2d(in_channels, out, k, stride, groups=groups)]
            if bn:
                layers.append(nn.BatchNorm2d(out, eps=1e-6, momentum=0.05))
            if relu:
                layers.append(nn.ReLU(inplace=True))
            if pool is not None:
                layers.append(nn.MaxPool2d(3, pool))
            setattr(self, f"conv{index}", nn.Sequential(*layers))
            in_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index in range(1, 6):
            x = getattr(self, f"conv{index}")(x)
        return x


class TorchHead(nn.Module):
    def __init__(self, out_scale: float = 0.001):
        super().__init__()
        self.out_scale = out_scale

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        nz = z.size(0)
        nx, c, h, w = x.size()
        stacked = x.view(-1, nz * c, h, w)
        out = F.conv2d(stacked, z, groups=nz)
        return out.view(nx, -1, out.size(-2), out.size(-1)) * self.out_scale


class TorchNet(nn.Module):
    def __init__(self, name: str, out_scale: float = 0.001):
        super().__init__()
        self.backbone = TorchBackbone(name)
        self.head = TorchHead(out_scale)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(z), self.backbone(x))


def randomize(net: nn.Module, seed: int) -> None:
    """Random conv weights and non-trivial BatchNorm parameters and running statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, (2.0 / fan_in) ** 0.5, generator=generator)
                module.bias.uniform_(-0.1, 0.1, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)
                module.running_mean.normal_(0, 50, generator=generator)
                module.running_var.uniform_(100, 5000, generator=generator)
                module.num_batches_tracked.fill_(int(torch.randint(0, 1000, (1,), generator=generator)))


def balanced_loss(logits: torch.Tensor, target: torch.Tensor, neg_weight: float = 1.0) -> torch.Tensor:
    pos = target == 1
    neg = target == 0
    weight = torch.zeros_like(target)
    # siamfc-pytorch divides by float32 counts; the target's own dtype keeps float64 runs exact.
    weight[pos] = 1 / pos.sum().to(target.dtype)
    weight[neg] = neg_weight / neg.sum().to(target.dtype)
    weight /= weight.sum()
    return F.binary_cross_entropy_with_logits(logits, target, weight, reduction="sum")


def labels(n: int, h: int, w: int, r_pos: float = 16, r_neg: float = 0, stride: int = 8) -> torch.Tensor:
    x = np.arange(w) - (w - 1) / 2
    y = np.arange(h) - (h - 1) / 2
    xx, yy = np.meshgrid(x, y)
    dist = np.abs(xx) + np.abs(yy)
    lab = np.where(dist <= r_pos / stride, 1.0, np.where(dist < r_neg / stride, 0.5, 0.0))
    return torch.from_numpy(np.tile(lab.reshape(1, 1, h, w), (n, 1, 1, 1))).float()
