"""The one function trainable, for every model x feature view x task, transfer included.

The sweep binds the data set, the run's fixed settings and (transfer) the genre weights with
`tune.with_parameters`, so they are read once by the driver and shared through the object
store; the config holds only the trial's hyperparameters (see `musictune.training.trial`).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import ray
import torch
from ray import tune

from musictune.data.dataset import Dataset
from musictune.training.checkpoints import (
    CHECKPOINT_FILE,
    load_checkpoint,
    save_checkpoint,
    save_folds,
)
from musictune.training.folds import fit_folds
from musictune.training.loop import fit
from musictune.training.trial import TrialSettings, trial_model


def trial_device() -> str:
    """The device of this trial: CUDA when Ray gave it a GPU, else the CPU; "auto" outside Ray.

    Ray points CUDA_VISIBLE_DEVICES at the assigned GPU (fractions share one), so "cuda" is that
    GPU; it leaves the variable alone for a trial with no GPU, which must then stay on the CPU.
    """
    if not ray.is_initialized() or ray.get_runtime_context().get_actor_id() is None:
        return "auto"
    return "cuda" if ray.get_runtime_context().get_accelerator_ids().get("GPU") else "cpu"


def restored_checkpoint() -> dict | None:
    """The checkpoint Ray hands back after a crash or a resumed driver, if any."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return load_checkpoint(Path(directory) / CHECKPOINT_FILE)


def train_trial(
    config: dict, data: Dataset, settings: TrialSettings, source: dict | None = None
) -> None:
    torch.set_num_threads(settings.threads)
    if settings.quiet:
        logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    train = settings.train_config(config, trial_device())
    # Where this epoch ran: the cluster node, and the device (cuda when Ray gave it a GPU).
    where = {"node_id": ray.get_runtime_context().get_node_id(), "device": train.device}

    def report(metrics: dict, state, model, optimizer) -> None:
        metrics = {**metrics, "data_pid": data.loaded_by_pid, **where}
        # Also at every new best epoch, so the trial's best epoch is always on disk (for the
        # test split, reruns and transfer), not only the latest multiple of checkpoint_every.
        best = state.best_epoch == state.epoch
        if best or state.finished or state.epoch % train.checkpoint_every == 0:
            save = save_folds if data.folds is not None else save_checkpoint
            with tempfile.TemporaryDirectory() as directory:
                save(Path(directory) / CHECKPOINT_FILE, model, optimizer, state, config)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)

    # A restored trial loads its own last weights (over the genre ones, for transfer).
    if data.folds is not None:  # K-fold: one model per fold, in lockstep
        models = [trial_model(config, data, settings, source) for _ in range(data.n_folds)]
        fit_folds(models, data, train, on_epoch=report, resume=restored_checkpoint())
    else:
        model = trial_model(config, data, settings, source)
        fit(model, data, train, on_epoch=report, resume=restored_checkpoint())
