"""musictune: Ray Tune sweeps of PyTorch music models on FMA-style spectrogram data."""

__version__ = "0.1.0"


def load_model(path):
    """An exported model folder (`musictune export --out`): `.predict(paths)` scores audio files
    and returns a pandas DataFrame (see `musictune.serving.predict`)."""
    from musictune.serving.predict import load_model as load

    return load(path)
