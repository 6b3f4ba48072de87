"""Final evaluation on the held-out test split, with scikit-learn and scipy.

Each checkpoint (one per rerun seed) gives one `Evaluation`; summaries are mean and sample standard
deviation over the seeds. Classification pools the seeds' predictions for scikit-learn's
classification report and the normalised confusion matrix; regression gives Spearman's rho per
target and their mean.

A library module under reports and sweep summaries alike (`musictune.training.baselines`,
`musictune.tuning.summary`, `musictune.reporting`); it depends on none of them. Torch and the
models are imported only by the functions that score a model, so the summary helpers stay cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from musictune.data.dataset import Dataset
    from musictune.models import MusicModel

# The test counterpart of each primary validation metric.
TEST_METRIC = {
    "val_macro_f1": "macro_f1",
    "val_spearman": "spearman",
    "val_spearman_mean": "spearman_mean",
}


@dataclass
class Evaluation:
    """One checkpoint's test-split outputs and metrics."""

    seed: int
    checkpoint: str
    metrics: dict[str, float]
    y_true: np.ndarray
    outputs: np.ndarray  # logits (N, classes) or values (N,) / (N, targets)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike, data: Dataset, seed: int, task: str
) -> Evaluation:
    """Rebuild the model from a checkpoint (weights_only) and score it on `data.test`."""
    from musictune.training.checkpoints import load_checkpoint, model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(Path(checkpoint)))
    return evaluate_model(model, data, seed, task, str(checkpoint))


def evaluate_model(
    model: MusicModel, data: Dataset, seed: int, task: str, checkpoint: str = ""
) -> Evaluation:
    """Score a model on `data.test`: the task's metrics, MSE for affect, per-class F1 for genre."""
    from sklearn.metrics import f1_score

    from musictune.training.metrics import evaluation_metrics
    from musictune.training.scoring import predict

    outputs = predict(model, data.test)
    metrics = evaluation_metrics(task, data.test.y, outputs, data.targets)
    if task == "genre":
        labels = np.arange(len(data.classes))
        per_class = f1_score(
            data.test.y, outputs.argmax(1), labels=labels, average=None, zero_division=0
        )
        metrics |= {f"f1_{c}": float(v) for c, v in zip(data.classes, per_class)}
    return Evaluation(seed, checkpoint, metrics, data.test.y, outputs)


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (nan for a single value)."""
    values = np.asarray(list(values), dtype=float)
    sd = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return float(values.mean()), sd


def classification_details(runs: list[Evaluation], classes: tuple[str, ...]) -> dict:
    """sklearn's report text and the row-normalised confusion matrix, seeds pooled."""
    from sklearn.metrics import classification_report, confusion_matrix

    y_true = np.concatenate([r.y_true for r in runs])
    y_pred = np.concatenate([r.outputs.argmax(1) for r in runs])
    labels = np.arange(len(classes))
    report = classification_report(
        y_true, y_pred, labels=labels, target_names=list(classes), digits=3, zero_division=0
    )
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    return {"report": report, "confusion": np.nan_to_num(matrix)}


def regression_pairs(runs: list[Evaluation], targets: tuple[str, ...]) -> dict[str, tuple]:
    """target -> (true values, predictions) with the seeds pooled, for scatter plots."""
    pairs = {}
    for i, target in enumerate(targets):
        true = np.concatenate([r.y_true if r.y_true.ndim == 1 else r.y_true[:, i] for r in runs])
        pred = np.concatenate([r.outputs if r.outputs.ndim == 1 else r.outputs[:, i] for r in runs])
        pairs[target] = (true, pred)
    return pairs
