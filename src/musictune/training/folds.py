"""K-fold training in lockstep: one model per fold, one process, the data shared once.

Each fold's epoch is the same step `fit` takes (`loop.run_epoch`), so fold k trains exactly as a
separate `fit` on fold k with the same seed would; the epoch's report is the folds' mean and sd.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from musictune.data.dataset import Dataset
from musictune.models import MusicModel
from musictune.training.loop import (
    TrainConfig,
    TrainState,
    cpu_weights,
    record_epoch,
    run_epoch,
    seed_everything,
    should_stop,
    start_run,
)
from musictune.training.metrics import PRIMARY_METRIC

# on_epoch(metrics, state, models, optimizers) of a K-fold run: one model per fold.
FoldsCallback = Callable[[dict, TrainState, list, list], None]


def fit_folds(
    models: list[MusicModel],
    data: Dataset,
    config: TrainConfig,
    on_epoch: FoldsCallback | None = None,
    resume: dict | None = None,
) -> TrainState:
    """K-fold training in lockstep: model k trains on every fold but k of train+validation
    (`data.folds`) and validates on fold k; each epoch reports the folds' mean and sd of every
    metric (`fold_mean`), and the best epoch and early stopping follow the mean.

    One process, the data shared once: fold k's steps are what `fit` on fold k alone would take
    with the same seed. `resume` is a checkpoint of `checkpoints.save_folds`; the state's
    `best_weights` is then the list of the folds' weights at the best mean epoch.
    """
    metric = PRIMARY_METRIC[models[0].head.task]
    seed_everything(config.seed)
    pool, folds = data.pool(), data.folds
    saved = [None] * len(models) if resume is None else resume["folds"]
    runs = [
        start_run(
            model,
            config,
            pool,
            pool,
            None if saved[k] is None else {**saved[k], "state": resume["state"]},
            np.flatnonzero(folds != k),
            np.flatnonzero(folds == k),
        )
        for k, model in enumerate(models)
    ]
    state = runs[0].state
    if state.best_weights is not None:  # resumed from the best epoch itself: every fold's
        state.best_weights = [cpu_weights(run.model) for run in runs]
    while state.epoch < config.max_epochs:
        epoch = state.epoch + 1
        metrics = fold_mean([run_epoch(run, epoch, config, data.targets) for run in runs])
        state.epoch = epoch
        weights = lambda: [cpu_weights(run.model) for run in runs]  # noqa: E731
        record_epoch(state, metrics, metric, weights, config.select_by)
        stop = should_stop(state, metrics, config)
        if on_epoch is not None:
            on_epoch(metrics, state, models, [run.optimizer for run in runs])
        if stop:
            break
    return state


def fold_mean(per_fold: list[dict]) -> dict:
    """One epoch's report of K folds: each metric's mean and sample sd (`<name>_sd`) over the
    folds; a diverged fold makes the epoch diverged (worst value, no validation)."""
    diverged = [m for m in per_fold if m["diverged"]]
    if diverged:
        return diverged[0]
    out = {"epoch": per_fold[0]["epoch"]}
    for key in per_fold[0]:
        if key in ("epoch", "diverged"):
            continue
        values = np.array([m[key] for m in per_fold], dtype=float)
        out[key] = float(values.mean())
        out[f"{key}_sd"] = float(values.std(ddof=1))
    return out | {"folds": len(per_fold), "diverged": 0}
