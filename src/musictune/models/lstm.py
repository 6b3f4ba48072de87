"""LSTM backbone over packed variable-length sequences."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from musictune.models.registry import Knob, register_model


class LSTMBackbone(nn.Module):
    """Summarises a sequence by the last valid step (forward) and the first step (backward).

    Packing makes the output for a padded sequence equal to that for the sequence alone.
    """

    def __init__(
        self,
        n_features: int,
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.out_features = hidden_size * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        # h_n: (layers * directions, B, H); the last layer's forward and backward states.
        if self.lstm.bidirectional:
            h = torch.cat([h_n[-2], h_n[-1]], dim=1)
        else:
            h = h_n[-1]
        return self.dropout(h)


@register_model(
    Knob("num_layers", "--layers", "LSTM layers", sweep=(1, 2)),
    # Larger sizes cost minutes per epoch on a CPU.
    Knob("hidden_size", "--hidden", "LSTM hidden size", sweep=(32, 64)),
    Knob("bidirectional", "--bidirectional", "read the clip both ways", sweep=(False, True)),
    layers="num_layers",
)
def lstm(
    n_features: int,
    hidden_size: int = 64,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
) -> LSTMBackbone:
    """LSTM over packed variable-length sequences (last valid step)."""
    return LSTMBackbone(n_features, hidden_size, num_layers, bidirectional, dropout)
