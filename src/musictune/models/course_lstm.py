"""`course_lstm`: the course lab's LSTM (patreco3, lab 3), as its provided `LSTMBackbone`."""

from __future__ import annotations

from musictune.models.lstm import LSTMBackbone
from musictune.models.registry import Knob, register_model

COURSE_HIDDEN = 128  # the course's rnn_size


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
) -> LSTMBackbone:
    """The course lab's exact LSTM: hidden 128, 1 or 2 layers, unidirectional, last valid step.

    nn.LSTM(n_features -> 128, `num_layers`, dropout between layers when there are two), the
    last layer's output at each clip's last valid frame (packed sequences, so padding changes
    nothing), Dropout(`dropout`), then the shared head's linear to the outputs. This is the
    course's provided LSTMBackbone with bidirectional=False; its one difference is that the
    course passed `dropout` to nn.LSTM with one layer too, where PyTorch ignores it (and warns).

    The course trained it with batches of 64; that is a training setting (`--batch-size`),
    not part of the model.
    """
    # The project's LSTM backbone read one way is the course's, layer for layer.
    return LSTMBackbone(n_features, hidden_size, num_layers, bidirectional=False, dropout=dropout)
