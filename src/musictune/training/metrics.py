"""Metrics from the field's libraries: scikit-learn for classes, scipy for Spearman's rho.

Each is imported by the function that needs it: a trial worker pays at start-up only for the
library its task's metric uses (about half a second each on a busy 2-core machine).
"""

from __future__ import annotations

import numpy as np

# Primary validation metric (always maximised) per head task.
PRIMARY_METRIC = {
    "genre": "val_macro_f1",
    "regression": "val_spearman",
    "multitask": "val_spearman_mean",
}
# What a diverged (NaN) trial records for its primary metric: the worst possible value.
WORST_VALUE = {"genre": 0.0, "regression": -1.0, "multitask": -1.0}


def classification_metrics(y_true: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    y_pred = logits.argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def _constant(values: np.ndarray) -> bool:
    values = np.asarray(values)
    return values.size == 0 or bool(np.all(values == values.flat[0]))


def spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Spearman's rho, 0.0 where it is undefined (a constant prediction).

    Constant means all equal: np.std of equal float32 values can come out non-zero (rounding in
    the mean), and scipy would then warn and return NaN.
    """
    if _constant(y_pred) or _constant(y_true):
        return 0.0
    from scipy.stats import spearmanr

    return float(spearmanr(y_true, y_pred).statistic)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {"spearman": spearman(y_true, y_pred)}


def multitask_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, targets: tuple[str, ...]
) -> dict[str, float]:
    per = {f"spearman_{t}": spearman(y_true[:, i], y_pred[:, i]) for i, t in enumerate(targets)}
    return {**per, "spearman_mean": float(np.mean(list(per.values())))}


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2))


def task_metrics(
    task: str, y_true: np.ndarray, outputs: np.ndarray, targets: tuple[str, ...] = ()
) -> dict[str, float]:
    if task == "genre":
        return classification_metrics(y_true, outputs)
    if task == "regression":
        return regression_metrics(y_true, outputs)
    return multitask_metrics(y_true, outputs, targets)


def evaluation_metrics(
    task: str, y_true: np.ndarray, outputs: np.ndarray, targets: tuple[str, ...] = ()
) -> dict[str, float]:
    """Final (test-split) metrics: `task_metrics` plus, for affect, the mean squared error
    (overall as `mse`, and per target for multitask): the one figure that a constant predictor
    such as the training mean has too, since Spearman's rho is undefined for it."""
    metrics = task_metrics(task, y_true, outputs, targets)
    if task == "multitask":
        metrics |= {f"mse_{t}": mse(y_true[:, i], outputs[:, i]) for i, t in enumerate(targets)}
    if task != "genre":
        metrics["mse"] = mse(y_true, outputs)
    return metrics
