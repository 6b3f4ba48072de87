"""Metrics from the field's libraries: scikit-learn for classes, scipy for Spearman's rho."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, f1_score

# Primary validation metric (always maximised) per head task.
PRIMARY_METRIC = {
    "classification": "val_macro_f1",
    "regression": "val_spearman",
    "multitask": "val_spearman_mean",
}
# What a diverged (NaN) trial records for its primary metric: the worst possible value.
WORST_VALUE = {"classification": 0.0, "regression": -1.0, "multitask": -1.0}


def classification_metrics(y_true: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    y_pred = logits.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Spearman's rho, 0.0 where it is undefined (a constant prediction)."""
    if np.std(y_pred) == 0 or np.std(y_true) == 0:
        return 0.0
    return float(spearmanr(y_true, y_pred).statistic)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {"spearman": spearman(y_true, y_pred)}


def multitask_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, targets: tuple[str, ...]
) -> dict[str, float]:
    per = {f"spearman_{t}": spearman(y_true[:, i], y_pred[:, i]) for i, t in enumerate(targets)}
    return {**per, "spearman_mean": float(np.mean(list(per.values())))}


def task_metrics(
    task: str, y_true: np.ndarray, outputs: np.ndarray, targets: tuple[str, ...] = ()
) -> dict[str, float]:
    if task == "classification":
        return classification_metrics(y_true, outputs)
    if task == "regression":
        return regression_metrics(y_true, outputs)
    return multitask_metrics(y_true, outputs, targets)
