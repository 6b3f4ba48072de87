"""Transfer trainable: a genre CNN's backbone under a fresh regression head, trained on energy.

The sweep loads the genre checkpoint once on the driver, checks that it fits, and binds it with
`tune.with_parameters` next to the data. `config["freeze_backbone"]` picks between training the
head alone and fine-tuning everything, so a sweep reports both.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from ray import tune

from musictune.affect import transfer_model
from musictune.data import Dataset
from musictune.training import CHECKPOINT_FILE, fit, save_checkpoint, start_at_train_mean
from trainables.supervised import restored_checkpoint, train_config


def train_transfer(config: dict, data: Dataset, source: dict) -> None:
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    model = transfer_model(
        source,
        data.n_features,
        dropout=config["dropout"],
        freeze=bool(config["freeze_backbone"]),
        seed=config.get("seed", 0),
    )
    start_at_train_mean(model, data)
    settings = train_config(config)

    def report(metrics: dict, state, model, optimizer) -> None:
        metrics = {**metrics, "data_pid": data.loaded_by_pid}
        if state.finished or state.epoch % settings.checkpoint_every == 0:
            with tempfile.TemporaryDirectory() as directory:
                save_checkpoint(Path(directory) / CHECKPOINT_FILE, model, optimizer, state, config)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)

    # A restored trial loads its own last weights over the genre ones (same shapes).
    fit(model, data, settings, on_epoch=report, resume=restored_checkpoint())
