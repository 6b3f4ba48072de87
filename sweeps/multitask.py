"""Affect sweep: one 2D CNN predicting valence, energy and danceability (metric: mean Spearman).

python sweeps/multitask.py --samples 50                      # equal loss weights
python sweeps/multitask.py --loss-weights 1 2 1              # relative weights V E D
python sweeps/multitask.py --tune-loss-weights --full        # weights tuned, full-length
python sweeps/multitask.py --smoke-test                      # tiny budget (CI)

= `musictune sweep multitask`. It overrides only the preset: task multitask, model cnn, mel
beat-synced. Every other option is the shared CLI's, with its defaults (--help lists them).
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("multitask")
