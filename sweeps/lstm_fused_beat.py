"""Genre sweep: LSTM on beat-synced mel + chroma.

python sweeps/lstm_fused_beat.py --samples 100
python sweeps/lstm_fused_beat.py --smoke-test          # tiny budget (CI)
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_fused_beat")
