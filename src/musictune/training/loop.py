"""The training core: Adam, early stopping, checkpoints and resume, with no Ray in sight.

`fit` runs epochs and calls `on_epoch(metrics, state, model, optimizer)` after each one, once
that epoch's best.pt / last.pt are written; `state.finished` marks the run's last epoch. The Ray
trainables report to Tune this way (saving a checkpoint of their own with the report when they
want one), and `musictune train` prints its progress. Shuffling and dropout are seeded from
(seed, epoch), so a run resumed from an epoch-k checkpoint repeats the epochs an uninterrupted
run would have done. Batches come from `musictune.data.batches`, checkpoint files from
`musictune.training.checkpoints`, validation scores from `musictune.training.scoring`; K-fold
training in lockstep (`fit_folds`) is in `musictune.training.folds` and takes the same epoch
step (`start_run`, `run_epoch`, `record_epoch`, `should_stop`).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from musictune.data.batches import DeviceSplit, iterate_batches, to_device
from musictune.data.dataset import Dataset, Split
from musictune.errors import UserError
from musictune.models import MusicModel, create_model, get_family
from musictune.training.checkpoints import save_checkpoint
from musictune.training.metrics import PRIMARY_METRIC, WORST_VALUE
from musictune.training.scoring import evaluate
from musictune.training.selection import PATIENCE, SELECT_BY, selection_score


@dataclass
class TrainConfig:
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam L2 penalty
    batch_size: int = 32
    max_epochs: int = 50
    patience: int = PATIENCE  # 0 = never stop early
    checkpoint_every: int = 5  # epochs between periodic checkpoints
    seed: int = 0  # weights, shuffling and dropout
    device: str = "auto"  # "auto" picks CUDA when present
    amp: bool = False  # mixed precision (CUDA only)
    overfit_batches: int = 0  # > 0: train and validate on this many fixed batches (sanity check)
    # Which epoch is best (kept, tested, and what early stopping waits on): the validation
    # metric ("metric", maximised) or, as the course did, the validation loss ("loss").
    select_by: str = "metric"

    def __post_init__(self):
        checks = {
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "batch_size": self.batch_size >= 1,
            "max_epochs": self.max_epochs >= 1,
            "patience": self.patience >= 0,
            "checkpoint_every": self.checkpoint_every >= 1,
            "select_by": self.select_by in SELECT_BY,
        }
        for name, ok in checks.items():
            if not ok:
                raise UserError(f"{name}={getattr(self, name)} is out of range; see --help")


@dataclass
class TrainState:
    """What a checkpoint holds besides the weights: enough to resume exactly.

    `best_weights` is the one part a checkpoint leaves out (`best.pt` is its copy on disk): the
    best epoch's weights on the CPU, kept by `fit` so that the caller tests that epoch, not the
    last one, with or without a checkpoint folder. None when no epoch of this process's run
    (or the checkpoint it resumed from) was the best.
    """

    epoch: int = 0  # epochs completed
    best_metric: float = -math.inf  # the primary metric at the best epoch
    best_epoch: int = 0
    best_score: float = -math.inf  # what selected it: the metric, or minus the validation loss
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    finished: bool = False  # the last epoch of this run (budget, early stop or divergence)
    best_weights: dict[str, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """The checkpointed part: plain values, without the in-memory best weights."""
        return {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(self)
            if f.name != "best_weights"
        }


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the weights (a few MB for these models), safe from later steps."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(
            f"--device {name!r} is not a device: use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s); "
            "use --device cpu or auto"
        )
    return device


def seed_everything(seed: int) -> None:
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- fit


def build_model(
    data: Dataset, model_name: str, seed: int = 0, window: int = 0, **model_kwargs
) -> MusicModel:
    """A model whose input size and head match the data set; weights seeded for repeatability.

    `window` > 0: the model trains on random crops of that many frames and scores a clip on its
    windows. A family sized for a fixed clip length (a builder with a `data_frames` argument, such
    as the course's flattening CNN) is told that window, or the training split's longest clip.
    """
    seed_everything(seed)
    if "data_frames" in get_family(model_name).arguments:
        model_kwargs["data_frames"] = window or int(data.train.lengths.max())
    if data.task == "genre":
        head, n_outputs = "classifier", data.n_classes
    elif data.y_dim == 1:
        head, n_outputs = "regressor", 1
    else:
        head, n_outputs = "multitask", len(data.targets)
    model = create_model(
        model_name, data.n_features, head=head, n_outputs=n_outputs, **model_kwargs
    )
    model.window = window
    start_at_train_mean(model, data)
    return model


def start_at_train_mean(model: MusicModel, data: Dataset) -> None:
    """Start a regression head's output at the training targets' mean (a classifier is left alone).

    From a zero bias the first epochs climb towards the mean, and on the demo data that climb
    alone ranked clips in step with energy: LSTMs trained on shuffled energy labels reached test
    Spearman up to 0.9. Starting at the mean, a ranking has to be learnt from the targets.
    """
    if model.head.task == "genre":
        return
    mean = torch.as_tensor(np.asarray(data.train.y, dtype=np.float32).mean(axis=0)).reshape(-1)
    with torch.no_grad():
        model.head.net[-1].bias.copy_(mean)


# on_epoch(metrics, state, model, optimizer): report, print, or save a checkpoint.
EpochCallback = Callable[[dict, TrainState, MusicModel, torch.optim.Optimizer], None]


def _resume(model: MusicModel, optimizer: torch.optim.Optimizer, resume: dict) -> TrainState:
    """Put a loaded checkpoint's weights and optimiser in place; return its training state."""
    try:
        model.load_state_dict(resume["model"])
        if resume.get("optimizer"):
            optimizer.load_state_dict(resume["optimizer"])
        state = TrainState(**resume["state"])
        if "best_score" not in resume["state"]:  # a checkpoint from before select_by
            state.best_score = state.best_metric
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        lines = [s.strip() for s in str(exc).splitlines()] or [type(exc).__name__]
        why = next((s for s in lines if "size mismatch" in s or "key" in s), lines[0])
        raise UserError(
            f"the checkpoint does not fit this model ({why.split(':')[0][:120]}): resume with "
            "the --model, --features/--beat and model options it was trained with"
        ) from None
    if state.epoch and state.best_epoch == state.epoch:
        state.best_weights = cpu_weights(model)  # resumed from the best epoch itself
    return state


def _fit_splits(data: Dataset, config: TrainConfig) -> tuple[Split, Split]:
    """Train and validation splits; with overfit_batches both are the same few fixed batches."""
    train, val = data.train, data.val
    if config.overfit_batches:
        keep = np.arange(min(len(train), config.overfit_batches * config.batch_size))
        train = val = train.subset(keep)
    return train, val


def _train_epoch(
    model: MusicModel,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batches: list,
    device: torch.device,
    use_amp: bool,
) -> float:
    """One pass of Adam steps; the mean training loss, non-finite when the loss diverged."""
    model.train()
    # The loss is summed on the device and read once per epoch: no host synchronisation per
    # step. A non-finite loss makes the sum non-finite, which marks the epoch as diverged.
    loss_sum, steps = torch.zeros((), device=device), 0
    for x, lengths, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=use_amp):
            loss = model.loss(model(x, lengths), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach().float()
        steps += 1
    return float(loss_sum) / max(steps, 1)


def _epoch_metrics(
    epoch: int,
    train_loss: float,
    model: MusicModel,
    val: Split,
    targets: tuple[str, ...],
    val_on_device: DeviceSplit | None,
    val_index: np.ndarray | None = None,
) -> dict:
    """The epoch's report; a diverged epoch skips validation and scores the worst value."""
    task = model.head.task
    if not math.isfinite(train_loss):
        return {
            "epoch": epoch,
            "train_loss": float("nan"),
            PRIMARY_METRIC[task]: WORST_VALUE[task],
            "diverged": 1,
        }
    val_metrics = evaluate(model, val, targets, on_device=val_on_device, index=val_index)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        **{f"val_{k}": v for k, v in val_metrics.items()},
        "diverged": 0,
    }


@dataclass
class Run:
    """One model's training on one train/validation pair (`*_index`: its clips of a shared
    split, for a K-fold's folds): what an epoch step needs."""

    model: MusicModel
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    state: TrainState
    device: torch.device
    use_amp: bool
    train: Split
    val: Split
    train_index: np.ndarray | None = None
    val_index: np.ndarray | None = None
    train_on_device: DeviceSplit | None = None
    val_on_device: DeviceSplit | None = None


def start_run(
    model: MusicModel,
    config: TrainConfig,
    train: Split,
    val: Split,
    resume: dict | None = None,
    train_index: np.ndarray | None = None,
    val_index: np.ndarray | None = None,
) -> Run:
    """Model and data on the device, a fresh Adam (or the checkpoint's), the AMP scaler: one
    run ready for `run_epoch`, shared by `fit` and each fold of `folds.fit_folds`."""
    device = pick_device(config.device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state = TrainState() if resume is None else _resume(model, optimizer, resume)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    # On a GPU the data goes there once per trial, not batch by batch (when it fits); folds
    # share one copy.
    train_on_device = to_device(train, device)
    val_on_device = train_on_device if val is train else to_device(val, device)
    return Run(
        model, optimizer, scaler, state, device, use_amp, train, val,
        train_index, val_index, train_on_device, val_on_device,
    )  # fmt: skip


def run_epoch(run: Run, epoch: int, config: TrainConfig, targets: tuple[str, ...]) -> dict:
    """Train one epoch and validate. Shuffling, dropout and crops are seeded from (seed, epoch),
    so each fold of a K-fold trial draws what a separate fit with the same seed would."""
    torch.manual_seed(config.seed * 100_003 + epoch)
    index = run.train_index
    order = np.random.default_rng([config.seed, epoch]).permutation(
        len(run.train) if index is None else len(index)
    )
    order = order if index is None else index[order]
    crops = np.random.default_rng([config.seed, epoch, 1])
    batches = iterate_batches(
        run.train, config.batch_size, order, run.train_on_device, run.model.window, crops
    )
    train_loss = _train_epoch(
        run.model, run.optimizer, run.scaler, batches, run.device, run.use_amp
    )
    return _epoch_metrics(
        epoch, train_loss, run.model, run.val, targets, run.val_on_device, run.val_index
    )


def record_epoch(
    state: TrainState, metrics: dict, metric: str, weights: Callable[[], object], select_by: str
) -> bool:
    """Track the best epoch (keeping `weights()`) and the epochs since; True if it improved."""
    score = selection_score(metrics, metric, select_by)
    improved = score > state.best_score
    if improved:
        state.best_score, state.best_metric = score, metrics[metric]
        state.best_epoch, state.bad_epochs = state.epoch, 0
        state.best_weights = weights()
    else:
        state.bad_epochs += 1
    metrics[f"best_{metric}"] = state.best_metric
    state.history.append(metrics)
    return improved


def _save_checkpoints(
    ckpt_dir: Path,
    model: MusicModel,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    config: TrainConfig,
    improved: bool,
    stop: bool,
) -> None:
    """best.pt when validation improved; last.pt every checkpoint_every epochs and at the end."""
    config_dict = asdict(config)
    if improved:
        save_checkpoint(ckpt_dir / "best.pt", model, optimizer, state, config_dict)
    epoch = state.epoch
    if stop or epoch % config.checkpoint_every == 0 or epoch == config.max_epochs:
        save_checkpoint(ckpt_dir / "last.pt", model, optimizer, state, config_dict)


def fit(
    model: MusicModel,
    data: Dataset,
    config: TrainConfig,
    on_epoch: EpochCallback | None = None,
    resume: dict | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
) -> TrainState:
    """Train until max_epochs, early stopping, or a non-finite loss (which marks `diverged`).

    `resume` is a loaded checkpoint dict; `checkpoint_dir` gets `last.pt` every
    `checkpoint_every` epochs and at the end, and `best.pt` whenever validation improves.
    The model ends with the last epoch's weights (what a resumed run continues from); the
    returned state's `best_weights` holds the best epoch's, which is what should be tested.
    """
    metric = PRIMARY_METRIC[model.head.task]
    seed_everything(config.seed)
    train, val = _fit_splits(data, config)
    run = start_run(model, config, train, val, resume)
    state = run.state
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else None

    while state.epoch < config.max_epochs:
        epoch = state.epoch + 1
        metrics = run_epoch(run, epoch, config, data.targets)
        state.epoch = epoch
        improved = record_epoch(
            state, metrics, metric, lambda: cpu_weights(model), config.select_by
        )
        stop = should_stop(state, metrics, config)
        if ckpt_dir is not None:
            _save_checkpoints(ckpt_dir, model, run.optimizer, state, config, improved, stop)
        if on_epoch is not None:
            on_epoch(metrics, state, model, run.optimizer)
        if stop:
            break
    return state


def should_stop(state: TrainState, metrics: dict, config: TrainConfig) -> bool:
    """Diverged, or `patience` epochs without a better best; marks the run's last epoch."""
    stop = bool(metrics["diverged"]) or bool(
        config.patience and state.bad_epochs >= config.patience
    )
    state.finished = stop or state.epoch == config.max_epochs
    return stop
