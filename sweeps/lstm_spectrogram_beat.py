"""Genre sweep: LSTM on beat-synced mel spectrograms.

python sweeps/lstm_spectrogram_beat.py --samples 100
python sweeps/lstm_spectrogram_beat.py --smoke-test          # tiny budget (CI)
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_spectrogram_beat")
