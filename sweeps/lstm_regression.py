"""Affect sweep: LSTM regressing one target (default energy) on beat-synced mel spectrograms.

python sweeps/lstm_regression.py --target valence --full --samples 50
python sweeps/lstm_regression.py --target energy --features fused
python sweeps/lstm_regression.py --smoke-test         # tiny budget (CI)
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_regression")
