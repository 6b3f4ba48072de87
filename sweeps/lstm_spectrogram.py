"""Genre sweep: LSTM on full-length mel spectrograms.

python sweeps/lstm_spectrogram.py --samples 100
python sweeps/lstm_spectrogram.py --smoke-test          # tiny budget (CI)
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_spectrogram")
