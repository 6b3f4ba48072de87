"""Genre sweep: LSTM on full-length mel + chroma.

python sweeps/lstm_fused.py --samples 100
python sweeps/lstm_fused.py --smoke-test          # tiny budget (CI)
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_fused")
