"""Genre sweep: 2D CNN on full-length mel spectrograms.

python sweeps/cnn_spectrogram.py --samples 100
python sweeps/cnn_spectrogram.py --smoke-test          # tiny budget (CI)

= `musictune sweep cnn_spectrogram`. It overrides only the preset: task genre, model cnn, mel
full-length. Every other option is the shared CLI's, with its defaults (--help lists them).
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("cnn_spectrogram")
