"""`course_lstm`: the course lab's LSTM (patreco3, lab 3), as its provided `LSTMBackbone`."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from musictune.models.registry import Knob, register_model

COURSE_HIDDEN = 128  # the course's rnn_size


class CourseLSTM(nn.Module):
    """Unidirectional LSTM over packed sequences; the last valid step -> dropout.

    Packing makes the output for a padded sequence equal to that for the sequence alone.
    """

    def __init__(self, n_features: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            # Between layers only: with one layer there is none (nn.LSTM would only warn).
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.out_features = hidden_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        return self.dropout(h_n[-1])  # the last layer's state at each clip's last valid frame


@register_model(
    # Same flags as the lstm family: `musictune train --model course_lstm --layers 2`.
    Knob("num_layers", "--layers", "LSTM layers", sweep=(1, 2)),
    Knob("hidden_size", "--hidden", "LSTM hidden size", sweep=None),  # the course's 128
    layers="num_layers",
)
def course_lstm(
    n_features: int,
    hidden_size: int = COURSE_HIDDEN,
    num_layers: int = 1,
    dropout: float = 0.0,
) -> CourseLSTM:
    """The course lab's exact LSTM: hidden 128, 1 or 2 layers, unidirectional, last valid step.

    nn.LSTM(n_features -> 128, `num_layers`, dropout between layers when there are two), the
    last layer's output at each clip's last valid frame (packed sequences, so padding changes
    nothing), Dropout(`dropout`), then the shared head's linear to the outputs. This is the
    course's provided LSTMBackbone with bidirectional=False; its one difference is that the
    course passed `dropout` to nn.LSTM with one layer too, where PyTorch ignores it (and warns).

    The course trained it with batches of 64; that is a training setting (`--batch-size`),
    not part of the model.
    """
    return CourseLSTM(n_features, hidden_size, num_layers, dropout)
