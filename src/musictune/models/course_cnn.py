"""`course_cnn`: the course lab's 2D CNN exactly as its report describes it (patreco3, lab 3).

Layers (the input (batch, time, features) is a one-channel time x features image, as in cnn.py):

    block 1: Conv2d(1 -> 32, 5x5, padding 2)    -> BatchNorm2d -> ReLU -> MaxPool2d(2)
    block 2: Conv2d(32 -> 64, 5x5, padding 2)   -> BatchNorm2d -> ReLU -> MaxPool2d(2)
    block 3: Conv2d(64 -> 128, 3x3, padding 1)  -> BatchNorm2d -> ReLU -> MaxPool2d(2)
    block 4: Conv2d(128 -> 256, 3x3, padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2)
    flatten -> Linear(256 * T' * F' -> 1000) -> Dropout(dropout)

and the shared head (models/heads.py) maps the 1000 units to the outputs, so `out_features` is
1000. Unlike `cnn` (global average pool, any length), flattening fixes the input size; see
CourseCNN for how a clip is fitted to it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from musictune.errors import UserError
from musictune.models.registry import Knob, register_model

CHANNELS = (1, 32, 64, 128, 256)
KERNELS = (5, 5, 3, 3)
PADDINGS = (2, 2, 1, 1)
HIDDEN = 1000  # the course's "linear to 1000"
FULL_LENGTH_FRAMES = 1293  # a full 30 s clip's mel/chroma frames; beat-synced clips are ~62
POOLINGS = len(KERNELS)
MIN_SIZE = 2**POOLINGS  # 16: the least time frames / feature bins that survive 4 floor-poolings


def pooled(size: int) -> int:
    """What 4 blocks leave of `size` (convolutions keep it; each 2x2 max-pool floor-halves it)."""
    for _ in range(POOLINGS):
        size //= 2
    return size


class CourseCNN(nn.Module):
    """The course's CNN on a fixed-size (frames x n_features) image.

    The time axis is fitted to `frames`: frames past a clip's length are zeroed (as the data's
    padding already is, so a clip's output does not depend on the clip it was batched with),
    then the batch is cropped (keeping the first `frames`) or zero-padded at the end to exactly
    `frames`. A clip longer than `frames` loses its end; one shorter is padded like the course
    zero-padded its clips to the longest one.

    The max-pools are the course's `nn.MaxPool2d(2)` (floor mode), so the flatten size and the
    parameter count are the course's; the price is that an axis under 16 would pool to nothing,
    which the builder refuses (12 chroma bins: use `cnn`, whose pooling keeps them, or mel or
    fused features).
    """

    def __init__(self, n_features: int, frames: int, dropout: float, units: int = HIDDEN):
        super().__init__()
        self.frames = frames
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(CHANNELS[i], CHANNELS[i + 1], KERNELS[i], padding=PADDINGS[i]),
                    nn.BatchNorm2d(CHANNELS[i + 1]),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
                for i in range(POOLINGS)
            )
        )
        self.flat_features = CHANNELS[-1] * pooled(frames) * pooled(n_features)
        self.linear = nn.Linear(self.flat_features, units)
        self.dropout = nn.Dropout(dropout)
        self.out_features = units

    def fit_frames(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, frames, F): zero past each length, then crop or zero-pad the end."""
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        x = x * valid[..., None]
        if x.shape[1] >= self.frames:
            return x[:, : self.frames]
        return F.pad(x, (0, 0, 0, self.frames - x.shape[1]))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.fit_frames(x, lengths).unsqueeze(1))  # (B, 256, T', F')
        return self.dropout(self.linear(h.flatten(1)))


@register_model(
    Knob(
        "frames",
        "--frames",
        "course_cnn input length: clips are cropped or zero-padded to it "
        "(default: the training clips' length)",
        sweep=None,
        kind=int,
    ),
    layers=None,
)
def course_cnn(
    n_features: int,
    frames: int | None = None,
    dropout: float = 0.0,
    data_frames: int | None = None,
    units: int = HIDDEN,
) -> CourseCNN:
    """The course lab's exact 2D CNN: 4 conv blocks (32/64/128/256), flatten, linear to 1000.

    Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d(2) four times (kernels 5, 5, 3, 3, padding
    2, 2, 1, 1), flatten, Linear to 1000, Dropout(`dropout`), then the shared head's linear to
    the outputs. There is no activation between the 1000-unit layer and the head: the course's
    report says "flatten -> linear to 1000 -> linear to the outputs" and names none (its lab
    code leaves the CNN to the students, so no other source says otherwise); the dropout after
    the 1000 units is this project's, for the sweep to tune like every family's.

    `frames` is the time length the flatten layer is sized for. Unless given (`--frames`, or
    `--set frames=N` in a sweep) it is, as the course sized it for its clips, the training
    split's padded length, which `training.build_model` passes as `data_frames` (1293 for the
    course's full-length clips, ~62 beat-synced, 130 for the demo's 3 s clips; at least 16,
    so a demo's few-beat clip is zero-padded up to it); built without data it is 1293. Any
    clip is cropped to its first `frames` frames or zero-padded at the end to fit. The pools
    floor-halve as the course's did, so `n_features` and `frames` must be at least 16 (mel 128
    and fused 140 are; 12 chroma bins are not: a UserError names the fix).

    `units` is the width of the head's hidden layer (the course's 1000): a sweep can fix or
    search it like any builder argument (`--set units=256`, or `units: {choice: [...]}`).

    The course trained it with batches of 64; that is a training setting (`--batch-size`),
    not part of the model.
    """
    if frames is None:
        frames = FULL_LENGTH_FRAMES if data_frames is None else max(data_frames, MIN_SIZE)
    for what, size, fix in (
        (
            "feature bins",
            n_features,
            "use mel (128) or fused (140) features, or the cnn family, whose ceil-mode "
            "pooling keeps 12 chroma bins",
        ),
        ("frames", frames, "set --frames (the frames knob) to 16 or more"),
    ):
        if size < MIN_SIZE:
            raise UserError(
                f"course_cnn needs at least {MIN_SIZE} {what}, got {size}: its four 2x2 "
                f"max-pools (floor mode, as the course's) leave {pooled(size)}; {fix}"
            )
    return CourseCNN(n_features, frames, dropout, units)
