"""Genre sweep: 2D CNN on beat-synced mel spectrograms.

python sweeps/cnn_spectrogram_beat.py --samples 100
python sweeps/cnn_spectrogram_beat.py --smoke-test          # tiny budget (CI)

= `musictune sweep cnn_spectrogram_beat`. It overrides only the preset: task genre, model cnn,
mel beat-synced. Every other option is the shared CLI's, with its defaults (--help lists them).
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("cnn_spectrogram_beat")
