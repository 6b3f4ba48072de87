"""Task heads and their losses; a model is a backbone plus one head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ClassifierHead(nn.Module):
    task = "genre"

    def __init__(self, in_features: int, n_outputs: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, n_outputs))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, y)


class RegressorHead(ClassifierHead):
    """One target in [0, 1]; output shape (B,) so it lines up with a (B,) target."""

    task = "regression"

    def __init__(self, in_features: int, n_outputs: int = 1, dropout: float = 0.0):
        super().__init__(in_features, 1, dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h).squeeze(-1)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out, y)


class MultitaskHead(ClassifierHead):
    """Several targets; loss is the weighted sum of the per-target MSEs."""

    task = "multitask"

    def __init__(self, in_features: int, n_outputs: int = 3, dropout: float = 0.0):
        super().__init__(in_features, n_outputs, dropout)
        self.register_buffer("weights", torch.ones(n_outputs))

    def per_target_mse(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((out - y) ** 2).mean(dim=0)

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.weights * self.per_target_mse(out, y)).sum()


HEADS: dict[str, type[ClassifierHead]] = {
    "classifier": ClassifierHead,
    "regressor": RegressorHead,
    "multitask": MultitaskHead,
}


class MusicModel(nn.Module):
    """Backbone (B, T, F) + lengths -> features -> head outputs.

    `window` (frames, 0 = whole clips) is the crop the model was trained on: it then scores a
    clip on its consecutive windows, averaged (`training.scoring.predict`). A checkpoint keeps it.
    """

    window: int = 0

    def __init__(self, backbone: nn.Module, head: ClassifierHead):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x, lengths))

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head.loss(out, y)
