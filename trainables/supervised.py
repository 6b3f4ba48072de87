"""One function trainable for every model x feature view x task.

The sweep binds the data set with `tune.with_parameters`, so it is read once by the driver and
shared through the object store; `config["model"]` picks the registered model and the data
set picks the head (genre classes, one affect target, or all three).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ray
import torch
from ray import tune

from musictune.affect import set_loss_weights
from musictune.data import Dataset
from musictune.models import model_kwargs
from musictune.training import (
    CHECKPOINT_FILE,
    TrainConfig,
    build_model,
    fit,
    load_checkpoint,
    save_checkpoint,
)


def trial_device() -> str:
    """The device of this trial: CUDA when Ray gave it a GPU, else the CPU; "auto" outside Ray.

    Ray points CUDA_VISIBLE_DEVICES at the assigned GPU (fractions share one), so "cuda" is that
    GPU; it leaves the variable alone for a trial with no GPU, which must then stay on the CPU.
    """
    if not ray.is_initialized() or ray.get_runtime_context().get_actor_id() is None:
        return "auto"
    return "cuda" if ray.get_runtime_context().get_accelerator_ids().get("GPU") else "cpu"


def train_config(config: dict) -> TrainConfig:
    return TrainConfig(
        lr=config["lr"],
        weight_decay=config.get("weight_decay", 0.0),
        batch_size=config.get("batch_size", 32),
        max_epochs=config["max_epochs"],
        patience=config.get("patience", 10),
        checkpoint_every=config.get("checkpoint_every", 5),
        seed=config.get("seed", 0),
        amp=config.get("amp", False),
        device=trial_device(),
    )


def restored_checkpoint() -> dict | None:
    """The checkpoint Ray hands back after a crash or a resumed driver, if any."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return load_checkpoint(Path(directory) / CHECKPOINT_FILE)


def train_supervised(config: dict, data: Dataset) -> None:
    # Only this trial's CPU share: concurrent trials must not fight over cores.
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    model = build_model(
        data, config["model"], seed=config.get("seed", 0), **model_kwargs(config["model"], config)
    )
    set_loss_weights(model, config, data.targets)  # multitask only: the sweep's loss weights
    settings = train_config(config)
    # Where this epoch ran: the cluster node, and the device (cuda when Ray gave it a GPU).
    where = {"node_id": ray.get_runtime_context().get_node_id(), "device": settings.device}

    def report(metrics: dict, state, model, optimizer) -> None:
        metrics = {**metrics, "data_pid": data.loaded_by_pid, **where}
        if state.finished or state.epoch % settings.checkpoint_every == 0:
            with tempfile.TemporaryDirectory() as directory:
                save_checkpoint(Path(directory) / CHECKPOINT_FILE, model, optimizer, state, config)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)

    fit(model, data, settings, on_epoch=report, resume=restored_checkpoint())
