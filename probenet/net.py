"""ProbeNet: the small "deep normalized" CNN whose brief training measures a dataset."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ProbeNet(nn.Module):
    """Three stages of conv3x3-BN-ReLU (widths ``w, 2w, 4w``), global average pooling
    and a linear head.

    ``width=None`` picks the width from the input so compute per image stays roughly
    constant: 32 when the (stem-pooled) input has at most 64 pixels (8x8, 5x8), else 16.

    It adapts to any input: inputs wider than ``max_side`` are average-pooled by an
    integer factor first (28x28 -> 14x14), and a 2x2 max-pool follows a stage only
    while both spatial sides are at least 4, so tiny inputs (8x8, 5x8) never vanish.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int | None = None,
                 input_hw: tuple[int, int] | None = None, max_side: int = 16) -> None:
        super().__init__()
        h, w = input_hw or (max_side, max_side)
        self.stem_factor = max(1, math.ceil(max(h, w) / max_side))
        h, w = max(1, -(-h // self.stem_factor)), max(1, -(-w // self.stem_factor))
        if width is None:
            width = 32 if h * w <= 64 else 16
        if in_channels < 1 or num_classes < 2 or width < 1:
            raise ValueError("ProbeNet needs in_channels >= 1, num_classes >= 2, width >= 1")
        self.width = width
        layers: list[nn.Module] = []
        c_in = in_channels
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
            if stage < 2 and min(h, w) >= 4:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem_factor > 1:
            x = F.avg_pool2d(x, self.stem_factor, ceil_mode=True)
        x = self.features(x)
        return self.head(x.mean(dim=(2, 3)))
