"""Batches from a split held in memory, random crops and evaluation windows, and a split copied
to the GPU once per trial.

A split stores its clips end to end (`data.Split`); a batch pads only the clips (or crops) it
holds. No per-item file reads, and on a GPU no per-batch host-to-device copies of the data.

Crops (`crop` frames > 0): training takes one random window of `crop` frames from each clip,
drawn anew every epoch; evaluation scores every clip on its consecutive windows (`windows`) and
the caller averages them back to one output per clip, so metrics stay per clip.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from musictune.data.dataset import Split, pad_frames

# A split is copied to the GPU whole when it needs at most this share of the free GPU memory:
# trials packed on one GPU (--gpus-per-trial 0.25) each hold their own copy.
DEVICE_DATA_SHARE = 0.25

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]  # x (B, T, F), lengths, y


@dataclass
class DeviceSplit:
    """A split's arrays on the GPU, copied once per trial: batches are then gathered there."""

    frames: torch.Tensor  # (sum of lengths, F)
    y: torch.Tensor | None


def to_device(split: Split, device: torch.device) -> DeviceSplit | None:
    """The split on a CUDA device when it fits; None on CPU, where batches come from the arrays."""
    if device.type != "cuda" or len(split) == 0:
        return None
    nbytes = split.frames.nbytes + (0 if split.y is None else split.y.nbytes)
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes > DEVICE_DATA_SHARE * free:
        return None
    with warnings.catch_warnings():
        # Arrays from Ray's object store are read-only; the copy only reads them.
        warnings.simplefilter("ignore", UserWarning)
        frames = torch.from_numpy(split.frames).to(device)
        y = None if split.y is None else torch.from_numpy(split.y).to(device)
    return DeviceSplit(frames, y)


def _gather(
    split: Split, on_device: DeviceSplit | None, starts: np.ndarray, lengths: np.ndarray
) -> torch.Tensor:
    """(B, longest, F) zero-padded windows (absolute start, length) of the split's frames."""
    if on_device is None:
        return torch.from_numpy(pad_frames(split.frames, starts, lengths))
    device = on_device.frames.device
    steps = torch.arange(int(lengths.max()), device=device)
    lengths_t = torch.from_numpy(lengths).to(device)
    valid = steps[None, :] < lengths_t[:, None]
    rows = torch.from_numpy(starts).to(device)[:, None] + steps[None, :]
    x = on_device.frames[torch.where(valid, rows, 0)]
    return x * valid[..., None].to(x.dtype)


def random_offsets(lengths: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform start in [0, length - crop] per clip (0 for a clip no longer than the crop)."""
    room = np.maximum(lengths - crop, 0) + 1
    return np.minimum((rng.random(len(lengths)) * room).astype(np.int64), room - 1)


def iterate_batches(
    split: Split,
    batch_size: int,
    order: np.ndarray | None = None,
    on_device: DeviceSplit | None = None,
    crop: int = 0,
    rng: np.random.Generator | None = None,
) -> list[Batch]:
    """In-memory batches in `order` (default: split order), padded to their longest clip.

    With `crop` > 0 each clip is cut to a random window of `crop` frames drawn from `rng`.
    With `on_device` (the split already on the GPU) x and y are gathered there; lengths stay on
    the CPU, where sequence packing wants them.
    """
    order = np.arange(len(split)) if order is None else np.asarray(order)
    all_starts = split.starts
    batches = []
    for first in range(0, len(order), batch_size):
        idx = np.sort(order[first : first + batch_size])
        starts, lengths = all_starts[idx], split.lengths[idx]
        if crop:
            rng = rng if rng is not None else np.random.default_rng(0)
            starts = starts + random_offsets(lengths, crop, rng)
            lengths = np.minimum(lengths, crop)
        x = _gather(split, on_device, starts, lengths)
        if on_device is not None:
            y = None if on_device.y is None else on_device.y[torch.from_numpy(idx).to(x.device)]
        else:
            y = None if split.y is None else torch.from_numpy(split.y[idx])
        batches.append((x, torch.from_numpy(lengths), y))
    return batches


def windows(lengths: np.ndarray, crop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clip, offset, length) of every evaluation window: consecutive `crop`-frame windows from
    each clip's start, plus one ending at its last frame when the crop does not divide it, so
    every frame is scored; a clip no longer than the crop is one window of itself."""
    clips, offsets = [], []
    for i, n in enumerate(np.asarray(lengths)):
        starts = list(range(0, max(int(n) - crop, 0) + 1, crop))
        if n > crop and (n - crop) % crop:
            starts.append(int(n) - crop)
        clips += [i] * len(starts)
        offsets += starts
    clips, offsets = np.array(clips, np.int64), np.array(offsets, np.int64)
    return clips, offsets, np.minimum(np.asarray(lengths)[clips], crop).astype(np.int64)


def iterate_windows(
    split: Split,
    batch_size: int,
    crop: int,
    index: np.ndarray | None = None,
    on_device: DeviceSplit | None = None,
) -> tuple[list[Batch], np.ndarray]:
    """Batches of the evaluation windows of the indexed clips (all by default), and each
    window's position in `index`, to average the windows' outputs back to one per clip."""
    index = np.arange(len(split)) if index is None else np.asarray(index)
    clips, offsets, lengths = windows(split.lengths[index], crop)
    starts = split.starts[index][clips] + offsets
    batches = []
    for first in range(0, len(clips), batch_size):
        part = slice(first, first + batch_size)
        x = _gather(split, on_device, starts[part], lengths[part])
        batches.append((x, torch.from_numpy(lengths[part]), None))
    return batches, clips
