"""Affect sweep: 2D CNN regressing one target (default energy) on beat-synced mel spectrograms.

python sweeps/cnn_regression.py --target valence --samples 50
python sweeps/cnn_regression.py --target danceability --features fused --full
python sweeps/cnn_regression.py --smoke-test          # tiny budget (CI)

= `musictune sweep cnn_regression`. It overrides only the preset: task regression, model cnn,
mel beat-synced, target energy. Every other option is the shared CLI's, with its defaults
(--help lists them).
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("cnn_regression")
