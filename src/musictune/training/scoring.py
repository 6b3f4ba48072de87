"""Model outputs and validation scores of a split: what `fit` validates each epoch with, and
what checkpoints are tested, exported and served with.

A model trained on crops (`model.window`) scores each clip on its consecutive windows and averages
them, so every caller gets one output per clip whatever the model trained on.
"""

from __future__ import annotations

import numpy as np
import torch

from musictune.data.batches import DeviceSplit, iterate_batches, iterate_windows
from musictune.data.dataset import Split
from musictune.models import MusicModel
from musictune.training.metrics import task_metrics


def predict(
    model: MusicModel,
    split: Split,
    batch_size: int = 64,
    device=None,
    on_device: DeviceSplit | None = None,
) -> np.ndarray:
    """Model outputs (logits or values) for a whole split, in split order, one row per clip."""
    return _outputs(model, split, batch_size, device, on_device).cpu().numpy()


def _outputs(
    model: MusicModel,
    split: Split,
    batch_size: int = 64,
    device=None,
    on_device: DeviceSplit | None = None,
    index: np.ndarray | None = None,
) -> torch.Tensor:
    """One output per clip (of `index`, sorted; default all) as one tensor on the model's
    device: copied to the host once, not per batch. A model trained on crops (`model.window`)
    scores each clip on its windows and averages them (`average_windows`)."""
    device = device or next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        if not model.window:
            batches = iterate_batches(split, batch_size, index, on_device)
            return torch.cat([model(x.to(device), n).float() for x, n, _ in batches])
        batches, clips = iterate_windows(split, batch_size, model.window, index, on_device)
        outs = torch.cat([model(x.to(device), n).float() for x, n, _ in batches])
    count = len(split) if index is None else len(index)
    return average_windows(outs, clips, count, classify=model.head.task == "genre")


def average_windows(
    outputs: torch.Tensor, clips: np.ndarray, count: int, classify: bool
) -> torch.Tensor:
    """Per-clip means of window outputs: class probabilities (returned as their log, which
    softmax, argmax and cross-entropy read as logits) or regression values."""
    values = outputs.softmax(-1) if classify else outputs
    index = torch.from_numpy(clips).to(values.device)
    total = torch.zeros((count, *values.shape[1:]), dtype=values.dtype, device=values.device)
    total.index_add_(0, index, values)
    windows = torch.bincount(index, minlength=count).to(values.dtype)
    mean = total / windows.reshape(-1, *[1] * (values.dim() - 1))
    return mean.clamp_min(1e-30).log() if classify else mean


def evaluate(
    model: MusicModel,
    split: Split,
    targets: tuple[str, ...] = (),
    batch_size: int = 64,
    on_device: DeviceSplit | None = None,
    index: np.ndarray | None = None,
) -> dict[str, float]:
    """The model's loss and the task's metrics (scikit-learn's) on a split, or on the clips of
    `index` (a K-fold's validation fold), one score per clip."""
    index = None if index is None else np.sort(index)
    outputs = _outputs(model, split, batch_size, index=index, on_device=on_device)
    # The loss on the device, against targets already there when the split is; the outputs go to
    # the host once, for scikit-learn's metrics.
    y_host = split.y if index is None else split.y[index]
    y = None
    if on_device is not None and on_device.y is not None:
        y = on_device.y
        if index is not None:
            y = y[torch.from_numpy(index).to(outputs.device)]
    if y is None:
        y = torch.tensor(y_host, device=outputs.device)
    with torch.no_grad():
        loss = model.loss(outputs, y)
    host = outputs.cpu().numpy()
    return {"loss": float(loss), **task_metrics(model.head.task, y_host, host, targets)}
