"""Genre sweep: LSTM on beat-synced chromagrams.

python sweeps/lstm_chroma_beat.py --samples 100
python sweeps/lstm_chroma_beat.py --smoke-test          # tiny budget (CI)

= `musictune sweep lstm_chroma_beat`. It overrides only the preset: task genre, model lstm,
chroma beat-synced. Every other option is the shared CLI's, with its defaults (--help lists
them).
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("lstm_chroma_beat")
