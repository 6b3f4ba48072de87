"""Checkpoint files: one plain dict per file, written atomically and loaded without pickle.

A checkpoint holds the weights, the optimiser, the model spec (enough to rebuild the model) and
the training state, so `fit` resumes exactly where it stopped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from musictune.atomic import atomic_path
from musictune.errors import UserError
from musictune.models import MusicModel, create_model

if TYPE_CHECKING:
    from musictune.training.loop import TrainState

CHECKPOINT_FILE = "checkpoint.pt"  # the file in a checkpoint folder (a Ray Tune checkpoint)


def save_checkpoint(
    path: str | os.PathLike,
    model: MusicModel,
    optimizer,
    state: TrainState,
    config: dict,
    extra: dict | None = None,
) -> None:
    """One plain dict (weights, optimiser, model spec, state, config), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "model_spec": model.spec,
        "window": int(model.window),  # the training crop, in frames (0: whole clips)
        "state": state.to_dict(),
        "config": config,
        **(extra or {}),
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def save_folds(
    path: str | os.PathLike,
    models: list[MusicModel],
    optimizers: list,
    state: TrainState,
    config: dict,
) -> None:
    """A K-fold trial's checkpoint: fold 0 where a plain checkpoint keeps its model (so it
    loads like one), and every fold's weights and optimiser under "folds" for resuming."""
    folds = [
        {"model": m.state_dict(), "optimizer": o.state_dict()} for m, o in zip(models, optimizers)
    ]
    save_checkpoint(path, models[0], optimizers[0], state, config, {"folds": folds})


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load with weights_only=True: a checkpoint can never execute code."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found: pass a checkpoint file or its folder")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}); "
            "it is damaged or not a musictune checkpoint"
        ) from None
    if not isinstance(checkpoint, dict) or not {"model", "state"} <= checkpoint.keys():
        raise UserError(
            f"{path} is not a musictune checkpoint (no model weights and training state): "
            "pass a best.pt / last.pt that musictune wrote"
        )
    return checkpoint


def model_from_checkpoint(checkpoint: dict) -> MusicModel:
    """The model a checkpoint was saved from, with its weights."""
    model = create_model(**checkpoint["model_spec"])
    model.load_state_dict(checkpoint["model"])
    model.window = int(checkpoint.get("window", 0))
    return model
