"""Which epoch of a run is its best: the one kept, tested, and that early stopping waits on.

The project's default is the validation metric (macro F1, Spearman's rho); the course kept the
epoch of lowest validation loss (`select_by="loss"`). Plain values, cheap to import: option
dataclasses take their defaults from here.
"""

from __future__ import annotations

import math

PATIENCE = 10  # the course's early stopping: epochs without a better best epoch
SELECT_BY = ("metric", "loss")


def selection(metric: str, select_by: str) -> tuple[str, str]:
    """(attribute, mode) of the best epoch in reported metrics: for Ray's checkpoint choice."""
    return ("val_loss", "min") if select_by == "loss" else (metric, "max")


def selection_score(metrics: dict, metric: str, select_by: str) -> float:
    """Higher is better: the metric, or minus the validation loss (a diverged epoch: -inf)."""
    if select_by == "loss":
        return -metrics.get("val_loss", math.inf)
    return metrics[metric]


# --------------------------------------------------------------------------- the best trial

# The one tie-break between trials, used wherever a best trial is chosen: the sweep's tuned best
# (tested on the test split), the order of trials.csv, a report's tested and rerun configs, and a
# transfer's source. Selecting by the metric (the default), trials rank by
#   1. the higher best validation metric,
#   2. the lower validation loss at that best epoch,
#   3. the earlier best epoch (fewer epochs to get there),
#   4. the trial id;
# with --select-by loss, 1 is the lower best validation loss and 2 the higher metric there.
# A trial's best epoch is the first with its best score, as training keeps it.
TIE_DIGITS = 12  # values equal to this many decimals tie: float noise is no difference
BEST_EPOCH = "best_epoch"
LOSS_AT_BEST = "val_loss_at_best"


def metric_at_best(metric: str) -> str:
    """The column of the metric at the trial's best epoch (trials.csv)."""
    return f"{metric}_at_best"


def _values(history, column: str) -> list | None:
    """A column of per-epoch values (a DataFrame or a dict of lists), or None."""
    return list(history[column]) if column in history else None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def best_epoch_figures(history, metric: str, select_by: str) -> dict:
    """What the tie-break reads of one trial's per-epoch history (Ray's metrics dataframe, with
    `training_iteration`): its best epoch, and the validation loss and metric there. Empty when
    no epoch has a finite score."""
    if history is None or metric not in history:
        return {}
    values = _values(history, metric)
    losses = _values(history, "val_loss") or [math.nan] * len(values)
    epochs = _values(history, "training_iteration") or list(range(1, len(values) + 1))
    scores = [
        selection_score({metric: v, "val_loss": loss}, metric, select_by)
        for v, loss in zip(values, losses)
    ]
    scores = [s if _finite(s) else -math.inf for s in scores]
    if not scores or max(scores) == -math.inf:
        return {}
    best = scores.index(max(scores))  # the first epoch of the best score
    return {
        BEST_EPOCH: int(epochs[best]),
        LOSS_AT_BEST: float(losses[best]),
        metric_at_best(metric): float(values[best]),
    }


def _key(row, column: str, sign: int) -> float:
    """One part of a rank key, smaller is better: an absent column ties every trial (an older
    trials.csv), a missing value (NaN, None) ranks last."""
    if column not in row:
        return 0.0
    value = row[column]
    if not _finite(value):
        return math.inf
    return sign * round(float(value), TIE_DIGITS)


def rank_key(row, metric: str, select_by: str = "metric", mode: str = "max") -> tuple:
    """Sort key of one trial (a trials.csv row, as a dict or Series): smaller ranks first."""
    better = -1 if mode == "max" else 1
    if select_by == "loss":
        first = LOSS_AT_BEST if LOSS_AT_BEST in row else "best_val_loss"
        keys = (_key(row, first, 1), _key(row, metric_at_best(metric), better))
    else:
        first = f"best_{metric}" if f"best_{metric}" in row else metric_at_best(metric)
        keys = (_key(row, first, better), _key(row, LOSS_AT_BEST, 1))
    return (*keys, _key(row, BEST_EPOCH, 1), str(row.get("trial_id", "")))


def rank_order(rows: list, metric: str, select_by: str = "metric", mode: str = "max") -> list:
    """Positions of `rows` (trials.csv rows as dicts), best trial first."""
    return sorted(range(len(rows)), key=lambda i: rank_key(rows[i], metric, select_by, mode))
