"""Affect sweep: LSTM regressing one target (default energy) on beat-synced mel spectrograms.

python sweeps/lstm_regression.py --target valence --full --samples 50
python sweeps/lstm_regression.py --target energy --features fused
python sweeps/lstm_regression.py --smoke-test         # tiny budget (CI)

= `musictune sweep lstm_regression`. It overrides only the preset: task regression, model lstm,
mel beat-synced, target energy. Every other option is the shared CLI's, with its defaults
(--help lists them).
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_regression")
