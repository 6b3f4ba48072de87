"""A toy model family, added from outside the package the way a lab adds its own model.

This one file is all a new family needs: its builder, its knobs (a `musictune train` flag, the
values a sweep draws from, a summary column) and nothing else in musictune changes.
"""

from __future__ import annotations

import torch
from torch import nn

from musictune.models import Knob, register_model


class MeanPool(nn.Module):
    """Averages the valid frames of each clip, then one hidden layer."""

    def __init__(self, n_features: int, width: int, dropout: float):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(n_features, width), nn.ReLU(), nn.Dropout(dropout))
        self.out_features = width

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        mean = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.hidden(mean)


@register_model(Knob("width", "--toy-width", "toy hidden width", sweep=(4, 8)), layers=None)
def toy(n_features: int, width: int = 8, dropout: float = 0.0) -> MeanPool:
    """Mean over time, one hidden layer: a family small enough for a test."""
    return MeanPool(n_features, width, dropout)
