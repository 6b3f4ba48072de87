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
