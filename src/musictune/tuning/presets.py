"""Named sweep presets: which task, model and feature view a sweep tunes.

`sweeps/<name>.py` and `musictune sweep <name>` run them; everything else is a CLI option.
"""

from __future__ import annotations

from dataclasses import dataclass

from musictune.errors import UserError


@dataclass(frozen=True)
class Preset:
    task: str  # genre | regression | multitask
    model: str  # a registered model name
    features: str  # mel | chroma | fused
    beat: bool  # beat-synced clips
    doc: str
    # Affect presets: the target used when --target is not given ("regression"), or the only
    # one allowed (transfer). A transfer preset starts from a genre sweep's best checkpoint.
    target: str | None = None
    transfer: bool = False


PRESETS: dict[str, Preset] = {
    "lstm_spectrogram": Preset("genre", "lstm", "mel", False, "LSTM, full mel spectrograms"),
    "lstm_spectrogram_beat": Preset("genre", "lstm", "mel", True, "LSTM, beat-synced mel"),
    "lstm_chroma": Preset("genre", "lstm", "chroma", False, "LSTM, full chromagrams"),
    "lstm_chroma_beat": Preset("genre", "lstm", "chroma", True, "LSTM, beat-synced chroma"),
    "lstm_fused": Preset("genre", "lstm", "fused", False, "LSTM, full mel + chroma"),
    "lstm_fused_beat": Preset("genre", "lstm", "fused", True, "LSTM, beat-synced mel + chroma"),
    "cnn_spectrogram": Preset("genre", "cnn", "mel", False, "2D CNN, full mel spectrograms"),
    "cnn_spectrogram_beat": Preset("genre", "cnn", "mel", True, "2D CNN, beat-synced mel"),
    # Affect: the view defaults to full mel; --features mel|fused and --beat choose another.
    "cnn_regression": Preset(
        "regression", "cnn", "mel", False, "2D CNN, one affect target", target="energy"
    ),
    "lstm_regression": Preset(
        "regression", "lstm", "mel", False, "LSTM, one affect target", target="energy"
    ),
    "multitask": Preset("multitask", "cnn", "mel", False, "2D CNN, all three affect targets"),
    # The view is the --from-sweep genre sweep's; energy is the only target.
    "transfer_energy": Preset(
        "regression", "cnn", "mel", False, "genre CNN backbone -> energy", "energy", True
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
