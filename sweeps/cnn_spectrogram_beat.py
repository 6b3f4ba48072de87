"""Genre sweep: 2D CNN on beat-synced mel spectrograms.

python sweeps/cnn_spectrogram_beat.py --samples 100
python sweeps/cnn_spectrogram_beat.py --smoke-test          # tiny budget (CI)
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("cnn_spectrogram_beat")
