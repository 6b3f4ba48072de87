"""Named sweep presets: which task, model and feature view a sweep tunes.

`sweeps/<name>.py` and `musictune sweep <name>` run them; everything else is a CLI option.
"""

from __future__ import annotations

from dataclasses import dataclass

from musictune.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    task: str  # genre | regression | multitask
    model: str  # a registered model name
    features: str  # mel | chroma | fused
    beat: bool  # beat-synced clips
    doc: str
    # Affect presets: the target used when --target is not given ("regression"), or the only
    # one allowed (transfer). A transfer preset starts from a genre sweep's best checkpoint.
    target: str | None = None
    transfer: bool = False


def _presets(*presets: Preset) -> dict[str, Preset]:
    return {p.name: p for p in presets}


PRESETS: dict[str, Preset] = _presets(
    Preset("lstm_spectrogram", "genre", "lstm", "mel", False, "LSTM, full mel spectrograms"),
    Preset("lstm_spectrogram_beat", "genre", "lstm", "mel", True, "LSTM, beat-synced mel"),
    Preset("lstm_chroma", "genre", "lstm", "chroma", False, "LSTM, full chromagrams"),
    Preset("lstm_chroma_beat", "genre", "lstm", "chroma", True, "LSTM, beat-synced chroma"),
    Preset("lstm_fused", "genre", "lstm", "fused", False, "LSTM, full mel + chroma"),
    Preset("lstm_fused_beat", "genre", "lstm", "fused", True, "LSTM, beat-synced mel + chroma"),
    Preset("cnn_spectrogram", "genre", "cnn", "mel", False, "2D CNN, full mel spectrograms"),
    Preset("cnn_spectrogram_beat", "genre", "cnn", "mel", True, "2D CNN, beat-synced mel"),
    # Affect: beat-synced mel as the course trained it; --features and --full choose another.
    Preset(
        "cnn_regression", "regression", "cnn", "mel", True, "2D CNN, one affect target", "energy"
    ),
    Preset(
        "lstm_regression", "regression", "lstm", "mel", True, "LSTM, one affect target", "energy"
    ),
    Preset("multitask", "multitask", "cnn", "mel", True, "2D CNN, all three affect targets"),
    # The view is the --from-sweep genre sweep's; energy is the only target.
    Preset(
        "transfer_energy",
        "regression",
        "cnn",
        "mel",
        False,
        "genre CNN backbone -> energy",
        "energy",
        True,
    ),
)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
