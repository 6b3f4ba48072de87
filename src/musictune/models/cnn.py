"""The course's 2D CNN: conv blocks of 32/64/128/256 filters, kernels 5,5,3,3."""

from __future__ import annotations

import torch
from torch import nn

from musictune.models.registry import Knob, register_model

FILTERS = (32, 64, 128, 256)
KERNELS = (5, 5, 3, 3)


def conv_block(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        # ceil_mode keeps 12 chroma bins or a short beat-synced clip from pooling to zero.
        nn.MaxPool2d(2, ceil_mode=True),
    )


class CNNBackbone(nn.Module):
    """Treats (T, F) as a one-channel image; a global average pool makes any length work."""

    def __init__(self, n_features: int, conv_blocks: int = 4, dropout: float = 0.0):
        super().__init__()
        if not 1 <= conv_blocks <= len(FILTERS):
            raise TypeError(f"conv_blocks must be 1..{len(FILTERS)}, got {conv_blocks}")
        channels = (1, *FILTERS[:conv_blocks])
        self.blocks = nn.Sequential(
            *(conv_block(channels[i], channels[i + 1], KERNELS[i]) for i in range(conv_blocks))
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.out_features = channels[-1]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x.unsqueeze(1))  # (B, C, T', F')
        return self.dropout(self.pool(h).flatten(1))


@register_model(
    Knob("conv_blocks", "--conv-blocks", "CNN conv blocks (1-4)", sweep=(2, 3, 4)),
    layers="conv_blocks",
)
def cnn(n_features: int, conv_blocks: int = 4, dropout: float = 0.0) -> CNNBackbone:
    """The course's 2D CNN (32/64/128/256 filters, BatchNorm, ReLU, 2x2 max-pool)."""
    return CNNBackbone(n_features, conv_blocks, dropout)
