"""Genre sweep: LSTM on full-length mel + chroma.

python sweeps/lstm_fused.py --samples 100
python sweeps/lstm_fused.py --smoke-test          # tiny budget (CI)

= `musictune sweep lstm_fused`. It overrides only the preset: task genre, model lstm, fused
full-length. Every other option is the shared CLI's, with its defaults (--help lists them).
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_fused")
