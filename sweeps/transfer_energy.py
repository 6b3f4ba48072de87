"""Transfer sweep: the best genre CNN of a finished sweep, its head replaced, trained on energy.

Tunes lr, dropout and freeze_backbone (head only vs full fine-tuning).

    python sweeps/cnn_spectrogram.py --smoke-test --name genre-cnn
    python sweeps/transfer_energy.py --from-sweep genre-cnn --smoke-test

= `musictune sweep transfer_energy`. It overrides only the preset: task regression, the
--from-sweep genre sweep's model and view, target energy. Every other option is the shared
CLI's, with its defaults (--help lists them).
"""

from musictune.commands.cli import sweep_main

if __name__ == "__main__":
    sweep_main("transfer_energy")
