"""Genre sweep: LSTM on full-length chromagrams.

python sweeps/lstm_chroma.py --samples 100
python sweeps/lstm_chroma.py --smoke-test          # tiny budget (CI)
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_chroma")
