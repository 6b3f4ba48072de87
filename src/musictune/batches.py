"""Batches from a split held in memory, and a split copied to the GPU once per trial.

Batches are slices of the padded arrays trimmed to their longest clip: no per-item file reads,
and on a GPU no per-batch host-to-device copies of the data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from musictune.data import Split

# A split is copied to the GPU whole when it needs at most this share of the free GPU memory:
# trials packed on one GPU (--gpus-per-trial 0.25) each hold their own copy.
DEVICE_DATA_SHARE = 0.25


@dataclass
class DeviceSplit:
    """A split's arrays on the GPU, copied once per trial: batches are then gathered there."""

    x: torch.Tensor  # (N, T, F)
    y: torch.Tensor | None


def to_device(split: Split, device: torch.device) -> DeviceSplit | None:
    """The split on a CUDA device when it fits; None on CPU, where batches come from the arrays."""
    if device.type != "cuda" or len(split) == 0:
        return None
    nbytes = split.x.nbytes + (0 if split.y is None else split.y.nbytes)
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes > DEVICE_DATA_SHARE * free:
        return None
    with warnings.catch_warnings():
        # Arrays from Ray's object store are read-only; the copy only reads them.
        warnings.simplefilter("ignore", UserWarning)
        x = torch.from_numpy(split.x).to(device)
        y = None if split.y is None else torch.from_numpy(split.y).to(device)
    return DeviceSplit(x, y)


def iterate_batches(
    split: Split,
    batch_size: int,
    order: np.ndarray | None = None,
    on_device: DeviceSplit | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """In-memory batches trimmed to their longest clip (no per-item file reads).

    With `on_device` (the split already on the GPU) x and y are gathered there; lengths stay on
    the CPU, where sequence packing wants them.
    """
    order = np.arange(len(split)) if order is None else order
    if on_device is not None:  # the whole order goes to the GPU once, not an index per batch
        device_order = torch.from_numpy(np.ascontiguousarray(order)).to(on_device.x.device)
    batches = []
    for start in range(0, len(order), batch_size):
        idx = np.sort(order[start : start + batch_size])
        lengths = split.lengths[idx]
        if on_device is not None:
            index = torch.sort(device_order[start : start + batch_size]).values
            x = on_device.x[index, : int(lengths.max())]
            y = None if on_device.y is None else on_device.y[index]
        else:
            x = torch.from_numpy(split.x[idx, : int(lengths.max())])
            y = None if split.y is None else torch.from_numpy(split.y[idx])
        batches.append((x, torch.from_numpy(lengths), y))
    return batches
