"""Affect models: multitask loss weights, and a genre CNN's backbone reused for affect.

Transfer keeps a genre model's convolutional blocks and swaps its classifier for a regression
head. A frozen backbone trains only the head: its parameters take no gradient and it stays in
eval mode, so BatchNorm keeps the running statistics it learnt on genres.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from musictune.errors import UserError
from musictune.models import MusicModel, create_model
from musictune.training.loop import seed_everything

BACKBONE_PREFIX = "backbone."
# Genre models whose backbone transfer reuses: the 2D CNNs (the project's and the course's).
TRANSFER_FAMILIES = ("cnn", "course_cnn")
# Spec keys of create_model itself; the rest are the backbone's own options (conv_blocks, ...).
_MODEL_KEYS = ("name", "n_features", "head", "n_outputs", "head_dropout")


# --------------------------------------------------------------------------- multitask


def loss_weights(config: dict, targets: Sequence[str]) -> torch.Tensor:
    """`loss_weight_<target>` values (default 1), scaled to average 1.

    The scaling makes the weights relative: only the balance between targets changes, not the
    size of the loss, so a learning rate means the same whatever the weights.
    """
    raw = [float(config.get(f"loss_weight_{t}", 1.0)) for t in targets]
    if not all(w > 0 and w < float("inf") for w in raw):
        raise UserError(f"loss weights must be positive numbers, got {raw}: fix --loss-weights")
    weights = torch.tensor(raw, dtype=torch.float32)
    return weights * len(raw) / weights.sum()


def set_loss_weights(model: MusicModel, config: dict, targets: Sequence[str]) -> None:
    """Load the sweep's loss weights into a multitask head (other heads have none)."""
    if model.head.task == "multitask":
        model.head.weights.copy_(loss_weights(config, targets))


# --------------------------------------------------------------------------- transfer


def backbone_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The backbone's tensors of a checkpoint, named as the backbone module names them."""
    n = len(BACKBONE_PREFIX)
    return {k[n:]: v for k, v in checkpoint["model"].items() if k.startswith(BACKBONE_PREFIX)}


def _describe(spec: dict | None) -> str:
    spec = spec or {}
    blocks = f", {spec['conv_blocks']} conv blocks" if "conv_blocks" in spec else ""
    return f"{spec.get('name', '?')}{blocks}"


def load_backbone(model: MusicModel, checkpoint: dict, source: str = "the checkpoint") -> None:
    """Copy a checkpoint's backbone into `model`, or name the first tensor that does not fit."""
    theirs = backbone_state(checkpoint)
    ours = model.backbone.state_dict()
    problems = [f"{k} is missing from it" for k in sorted(ours.keys() - theirs.keys())]
    problems += [f"{k} is not in the model" for k in sorted(theirs.keys() - ours.keys())]
    problems += [
        f"{k} has shape {tuple(theirs[k].shape)}, the model {tuple(ours[k].shape)}"
        for k in sorted(ours.keys() & theirs.keys())
        if theirs[k].shape != ours[k].shape
    ]
    if problems:
        raise UserError(
            f"{source} ({_describe(checkpoint.get('model_spec'))}) does not fit the model "
            f"({_describe(getattr(model, 'spec', None))}): {problems[0]}; transfer from a genre "
            "CNN sweep of the same feature view"
        )
    model.backbone.load_state_dict(theirs)


def check_fits(checkpoint: dict, n_features: int, source: str = "the checkpoint") -> None:
    """Fail before any trial starts when a genre checkpoint cannot seed the affect model."""
    spec = checkpoint.get("model_spec") or {}
    if spec.get("name") not in TRANSFER_FAMILIES:
        raise UserError(
            f"{source} holds a {spec.get('name')!r} model, not a CNN: transfer from a genre CNN "
            "sweep (cnn_spectrogram or cnn_spectrogram_beat)"
        )
    if spec.get("n_features") != n_features:
        raise UserError(
            f"{source} was trained on {spec.get('n_features')} features per frame but the "
            f"affect data has {n_features}: transfer from a genre sweep of the same feature view"
        )
    transfer_model(checkpoint, n_features, source=source)  # every backbone tensor fits


def _keep_eval(module: nn.Module, args) -> None:
    # fit() calls model.train() every epoch; a frozen backbone switches straight back.
    if module.training:
        module.eval()


def freeze_backbone(model: MusicModel) -> None:
    """Train the head only: no gradients and eval mode (fixed BatchNorm stats) for the backbone."""
    model.backbone.requires_grad_(False)
    model.backbone.eval()
    model.backbone.register_forward_pre_hook(_keep_eval)


def transfer_model(
    checkpoint: dict,
    n_features: int,
    dropout: float = 0.0,
    freeze: bool = False,
    seed: int = 0,
    source: str = "the checkpoint",
) -> MusicModel:
    """The checkpoint's backbone (its conv blocks and weights) under a fresh regression head.

    Dropout sits in the head, on the pooled features, so it regularises a frozen backbone too.
    """
    spec = checkpoint["model_spec"]
    options = {k: v for k, v in spec.items() if k not in _MODEL_KEYS}
    options["dropout"] = 0.0
    seed_everything(seed)  # the head's initial weights
    model = create_model(
        spec["name"], n_features, head="regressor", n_outputs=1, head_dropout=dropout, **options
    )
    load_backbone(model, checkpoint, source)
    if freeze:
        freeze_backbone(model)
    return model
