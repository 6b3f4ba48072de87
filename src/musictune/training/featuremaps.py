"""What the CNN sees: a tested CNN's first two conv blocks (forward hooks on
`model.backbone.blocks`), one test clip at a time so none is padded, averaged over channels and
shrunk, so a report keeps them in its results and `--render-only` redraws them without torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from musictune.data.dataset import Dataset, Split
from musictune.training.checkpoints import load_checkpoint, model_from_checkpoint

CNN_FAMILIES = ("cnn", "course_cnn")
BLOCKS = 2  # the first two conv blocks
MAP_SHAPE = (64, 128)  # at most feature bins x time steps per stored map
AFFECT_CLIPS = 4  # clips spread over the target's range (one per class for genre)


def shrink(a: np.ndarray, shape: tuple[int, int] = MAP_SHAPE) -> np.ndarray:
    """Block means over near-equal slices so at most `shape` remains (never enlarged)."""
    for axis, most in enumerate(shape):
        if a.shape[axis] > most:
            parts = np.array_split(a, most, axis=axis)
            a = np.stack([p.mean(axis=axis) for p in parts], axis=axis)
    return a.astype(np.float16)


def chosen_clips(data: Dataset) -> list[tuple[int, str]]:
    """(test index, row label): the first test clip of each class, or clips at evenly spaced
    ranks of the affect target (their mean for multitask), lowest first."""
    test = data.test
    if data.task == "genre":
        firsts = [(np.flatnonzero(test.y == c), name) for c, name in enumerate(data.classes)]
        return [(int(i[0]), f"{test.ids[i[0]]}: {name}") for i, name in firsts if len(i)]
    y = test.y if test.y.ndim == 2 else test.y[:, None]
    order = np.argsort(y.mean(axis=1), kind="stable")
    ranks = np.linspace(0, len(order) - 1, min(AFFECT_CLIPS, len(order))).round().astype(int)
    chosen = [int(order[r]) for r in dict.fromkeys(ranks.tolist())]

    def label(i: int) -> str:
        values = ", ".join(f"{t} {v:.2f}" for t, v in zip(data.targets, y[i]))
        return f"{test.ids[i]}: {values}"

    return [(i, label(i)) for i in chosen]


def one_clip(model, split: Split, index: int) -> list[np.ndarray]:
    """The input and the first blocks' channel-mean outputs for one clip, features x time."""
    blocks = list(model.backbone.blocks)[:BLOCKS]
    seen: list[np.ndarray] = []

    def keep_input(module, args) -> None:
        seen.append(args[0][0, 0].detach().float().numpy())  # (1, 1, T, F) -> (T, F)

    def keep_output(module, args, output) -> None:
        seen.append(output[0].detach().float().mean(dim=0).numpy())  # (C, T', F') -> (T', F')

    hooks = [blocks[0].register_forward_pre_hook(keep_input)]
    hooks += [b.register_forward_hook(keep_output) for b in blocks]
    length = int(split.lengths[index])
    x = torch.from_numpy(split.clip(index)[None].copy())
    try:
        with torch.no_grad():
            model(x, torch.tensor([length]))
    finally:
        for hook in hooks:
            hook.remove()
    return [shrink(m.T) for m in seen]  # low bins first, as the plot's origin="lower" draws


def capture(checkpoint: str, seed: int, data: Dataset) -> dict | None:
    """The feature maps of a checkpoint's CNN on a few test clips, as the report's `FeatureMaps`
    fields (None: not a conv backbone)."""
    model = model_from_checkpoint(load_checkpoint(Path(checkpoint)))
    blocks = getattr(model.backbone, "blocks", None)
    if blocks is None or len(blocks) == 0:
        return None
    model.eval()
    columns = ["input"] + [
        f"block {i + 1} ({getattr(b[0], 'out_channels', '?')} ch)"
        for i, b in enumerate(list(blocks)[:BLOCKS])
    ]
    clips = chosen_clips(data)
    maps = [one_clip(model, data.test, i) for i, _ in clips]
    labels = [label for _, label in clips]
    return {
        "checkpoint": str(checkpoint),
        "seed": seed,
        "columns": columns,
        "clips": labels,
        "maps": maps,
    }
