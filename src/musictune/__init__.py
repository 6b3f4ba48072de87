"""musictune: Ray Tune sweeps of PyTorch music models on FMA-style spectrogram data."""

__version__ = "0.1.0"
