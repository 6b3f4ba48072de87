"""Named sweep presets: which task, model and feature view a sweep tunes.

`sweeps/<name>.py` and `musictune sweep <name>` run them; everything else is a CLI option.
A preset's fields are keywords, declared here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from musictune.errors import UserError


@dataclass(frozen=True, kw_only=True)
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

    @property
    def summary(self) -> str:
        """What the preset fixes, in words: its sweep script's docstring repeats it."""
        if self.transfer:
            view = "the --from-sweep genre sweep's model and view"
        else:
            clips = "beat-synced" if self.beat else "full-length"
            view = f"model {self.model}, {self.features} {clips}"
        target = f", target {self.target}" if self.target else ""
        return f"task {self.task}, {view}{target}"


def _presets(*presets: Preset) -> dict[str, Preset]:
    return {p.name: p for p in presets}


PRESETS: dict[str, Preset] = _presets(
    Preset(
        name="lstm_spectrogram",
        task="genre",
        model="lstm",
        features="mel",
        beat=False,
        doc="LSTM, full mel spectrograms",
    ),
    Preset(
        name="lstm_spectrogram_beat",
        task="genre",
        model="lstm",
        features="mel",
        beat=True,
        doc="LSTM, beat-synced mel",
    ),
    Preset(
        name="lstm_chroma",
        task="genre",
        model="lstm",
        features="chroma",
        beat=False,
        doc="LSTM, full chromagrams",
    ),
    Preset(
        name="lstm_chroma_beat",
        task="genre",
        model="lstm",
        features="chroma",
        beat=True,
        doc="LSTM, beat-synced chroma",
    ),
    Preset(
        name="lstm_fused",
        task="genre",
        model="lstm",
        features="fused",
        beat=False,
        doc="LSTM, full mel + chroma",
    ),
    Preset(
        name="lstm_fused_beat",
        task="genre",
        model="lstm",
        features="fused",
        beat=True,
        doc="LSTM, beat-synced mel + chroma",
    ),
    Preset(
        name="cnn_spectrogram",
        task="genre",
        model="cnn",
        features="mel",
        beat=False,
        doc="2D CNN, full mel spectrograms",
    ),
    Preset(
        name="cnn_spectrogram_beat",
        task="genre",
        model="cnn",
        features="mel",
        beat=True,
        doc="2D CNN, beat-synced mel",
    ),
    # Affect: beat-synced mel as the course trained it; --features and --full choose another.
    Preset(
        name="cnn_regression",
        task="regression",
        model="cnn",
        features="mel",
        beat=True,
        doc="2D CNN, one affect target",
        target="energy",
    ),
    Preset(
        name="lstm_regression",
        task="regression",
        model="lstm",
        features="mel",
        beat=True,
        doc="LSTM, one affect target",
        target="energy",
    ),
    Preset(
        name="multitask",
        task="multitask",
        model="cnn",
        features="mel",
        beat=True,
        doc="2D CNN, all three affect targets",
    ),
    # The view is the --from-sweep genre sweep's; energy is the only target.
    Preset(
        name="transfer_energy",
        task="regression",
        model="cnn",
        features="mel",
        beat=False,
        doc="genre CNN backbone -> energy",
        target="energy",
        transfer=True,
    ),
)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
