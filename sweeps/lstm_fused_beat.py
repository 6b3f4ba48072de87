"""Genre sweep: LSTM on beat-synced mel + chroma.

python sweeps/lstm_fused_beat.py --samples 100
python sweeps/lstm_fused_beat.py --smoke-test          # tiny budget (CI)

= `musictune sweep lstm_fused_beat`. It overrides only the preset: task genre, model lstm, fused
beat-synced. Every other option is the shared CLI's, with its defaults (--help lists them).
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_fused_beat")
