"""What a tuned model is measured against on the test split: chance, and the untuned default.

Tuning only pays if the tuned best beats (a) guessing and (b) the configuration one would have
trained without any search. So every report and every sweep summary puts these rows beside the
tuned best:

- **chance**: scikit-learn's dummy estimators fitted on the *training* labels only, scored with
  the project's own metric functions (`musictune.training.metrics`) on the test split. Genre: the
  majority class, and stratified random guessing (averaged over seeds). Affect: predicting the
  training mean, whose Spearman's rho is undefined (a constant prediction) and shown as such;
  its MSE is the comparable figure.
- **the untuned default**: the model family's defaults (declared with the family in
  `musictune.models`, the values `musictune train` uses), trained with the same budget and
  seeds as the tuned best.

A row of the comparison is a `Figures`: one metric dict per seed (one for deterministic rows).
Computation only: the report (`musictune.reporting`) and the sweep summary format them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from musictune.data.dataset import Dataset
    from musictune.training.trial import TrialSettings

# torch, scikit-learn and the model registry (torch) are imported by the functions that use them:
# a --render-only report needs `Figures` here, and would wait seconds for them.

CHANCE_SEEDS = 3  # stratified guessing in a sweep summary: as many seeds as a report's reruns


# --------------------------------------------------------------------------- the default config


def default_hyperparameters(model: str, transfer: bool = False) -> dict[str, object]:
    """The untuned default: what `musictune train` uses when given no option.

    Transfer keeps the genre checkpoint's conv blocks (they carry its weights); untuned, the
    whole network is fine-tuned, the usual first choice.
    """
    from musictune.models import SHARED_DEFAULTS
    from musictune.models import default_hyperparameters as family_defaults

    return {**SHARED_DEFAULTS, "freeze_backbone": False} if transfer else family_defaults(model)


def default_config(config: dict, meta: dict) -> dict:
    """A trial config with every tuned value replaced by its untuned default.

    Budget, seed, data view, fixed loss weights and a transfer's conv blocks stay as the sweep
    had them, so the default differs from the tuned best in the tuned values only. `meta` is the
    sweep's sweep.json (model, transfer, loss_weights).
    """
    out = dict(config) | default_hyperparameters(meta["model"], bool(meta.get("transfer")))
    if meta.get("loss_weights") == "tuned":  # multitask with tuned weights: equal ones
        out |= {k: 1.0 for k in out if k.startswith("loss_weight_")}
    return out


def describe_default(meta: dict) -> str:
    """`lr 0.001, dropout 0.2, num_layers 1, ...`: the values that replace the tuned ones."""
    values = default_hyperparameters(meta["model"], bool(meta.get("transfer")))
    if meta.get("loss_weights") == "tuned":
        values["loss weights"] = "equal"
    return ", ".join(
        f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
    )


def config_digest(config: dict) -> str:
    """A short stable hash of a config: a cached default rerun is reused only for the same one."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


# --------------------------------------------------------------------------- one row of figures


@dataclass
class Figures:
    """One row of the comparison: its test metrics per run (seed), mean ± sd over them.

    A metric value of None is undefined (Spearman's rho of a constant prediction); an empty
    `runs` means the row was not measured (e.g. the default not retrained) and `note` says why.
    """

    key: str  # tuned | default | majority | stratified | train_mean: summary column prefix
    label: str
    runs: list[dict[str, float | None]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    note: str = ""

    @property
    def title(self) -> str:
        return f"{self.label} ({self.note})" if self.note else self.label

    def values(self, metric: str) -> list[float | None]:
        return [run.get(metric) for run in self.runs]

    def mean_sd(self, metric: str) -> tuple[float | None, float]:
        """Mean and sample sd over the runs; (nan, nan) unmeasured, (None, nan) undefined."""
        values = self.values(metric)
        if not values:
            return float("nan"), float("nan")
        if any(v is None for v in values):
            return None, float("nan")
        array = np.asarray(values, dtype=float)
        sd = float(array.std(ddof=1)) if len(array) > 1 else float("nan")
        return float(array.mean()), sd

    def as_json(self, metrics: list[str]) -> dict:
        """Strict JSON (null, never NaN): mean, sd and per-run values of each metric."""

        def plain(x: float | None) -> float | None:
            return None if x is None or np.isnan(x) else x

        summary = {m: self.mean_sd(m) for m in metrics}
        return {
            "label": self.label,
            "note": self.note,
            "seeds": self.seeds,
            "n": len(self.runs),
            "mean": {m: plain(mean) for m, (mean, _) in summary.items()},
            "sd": {m: plain(sd) for m, (_, sd) in summary.items()},
            "values": {m: self.values(m) for m in metrics},
        }

    def columns(self, metrics: list[str]) -> dict[str, object]:
        """Flat summary columns: `<key>_test_<metric>` (mean), `..._sd`, `..._values`."""
        out: dict[str, object] = {}
        for m in metrics:
            mean, sd = self.mean_sd(m)
            out[f"{self.key}_test_{m}"] = mean
            out[f"{self.key}_test_{m}_sd"] = sd
            out[f"{self.key}_test_{m}_values"] = self.values(m)
        return out


def shown_metrics(data: Dataset) -> list[str]:
    """The comparison's columns: accuracy and macro F1, or Spearman per target / mean and MSE."""
    task = data.task
    if task == "genre":
        return ["accuracy", "macro_f1"]
    if task == "regression":
        return ["spearman", "mse"]
    return [*(f"spearman_{t}" for t in data.targets), "spearman_mean", "mse"]


def seed_span(seeds: list[int]) -> str:
    if not seeds:
        return ""
    contiguous = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    if len(seeds) > 2 and contiguous:
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(map(str, seeds))


# --------------------------------------------------------------------------- chance


def _no_features(n: int) -> np.ndarray:
    return np.zeros((n, 1))  # dummy estimators ignore X; only its length counts


def _scores(data: Dataset, predictions: np.ndarray) -> dict[str, float | None]:
    """The project's test metrics of class predictions (as one-hot scores) or affect values."""
    from musictune.training.metrics import evaluation_metrics

    task = data.task
    outputs = np.eye(len(data.classes))[predictions] if task == "genre" else predictions
    return evaluation_metrics(task, data.test.y, outputs, data.targets)


def majority_class(data: Dataset) -> Figures:
    """Always the most frequent training class (deterministic: one run)."""
    from sklearn.dummy import DummyClassifier

    dummy = DummyClassifier(strategy="most_frequent").fit(
        _no_features(len(data.train)), data.train.y
    )
    predictions = dummy.predict(_no_features(len(data.test)))
    name = data.classes[int(predictions[0])] if len(predictions) else "?"
    return Figures("majority", "majority class", [_scores(data, predictions)], [], name)


def stratified_random(data: Dataset, seeds: list[int]) -> Figures:
    """Random classes in the training proportions, one draw per seed."""
    from sklearn.dummy import DummyClassifier

    runs = []
    for seed in seeds:
        dummy = DummyClassifier(strategy="stratified", random_state=seed)
        dummy.fit(_no_features(len(data.train)), data.train.y)
        runs.append(_scores(data, dummy.predict(_no_features(len(data.test)))))
    return Figures("stratified", "stratified random", runs, list(seeds), seed_span(list(seeds)))


def train_mean(data: Dataset) -> Figures:
    """The training mean of each target for every clip: MSE only, rho undefined (None)."""
    from sklearn.dummy import DummyRegressor

    dummy = DummyRegressor(strategy="mean").fit(_no_features(len(data.train)), data.train.y)
    predictions = dummy.predict(_no_features(len(data.test))).astype(np.float32)
    scores = _scores(data, predictions.reshape(data.test.y.shape))
    # metrics.spearman gives 0.0 for a constant prediction; here it is undefined, not zero.
    scores = {k: (None if k.startswith("spearman") else v) for k, v in scores.items()}
    return Figures("train_mean", "training mean", [scores], [], "constant prediction")


def chance_baselines(data: Dataset, seeds: list[int]) -> list[Figures]:
    """Genre: majority class and stratified random (over `seeds`); affect: the training mean."""
    if data.task == "genre":
        return [majority_class(data), stratified_random(data, seeds)]
    return [train_mean(data)]


# --------------------------------------------------------------------------- the default, trained


@dataclass
class DefaultRun:
    """The untuned default trained once (sweep summary): its test figures and training cost."""

    config: dict
    figures: Figures
    epochs: int
    best_epoch: int
    best_val: float
    wall_time_s: float

    def as_json(self, metrics: list[str]) -> dict:
        return {
            **self.figures.as_json(metrics),
            "config": self.config,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "wall_time_s": self.wall_time_s,
        }


def train_default(
    data: Dataset, config: dict, settings: TrialSettings, source: dict | None = None
) -> DefaultRun:
    """Train `config` in this process as a sweep trial would, and test its best epoch's weights.

    The model and training settings are built exactly as the trainable builds them
    (`musictune.training.trial`; `source`: the genre weights of a transfer sweep); the best epoch's
    weights, which `fit` keeps in memory, are the ones tested.
    """
    import torch

    from musictune.training.evaluation import evaluate_model
    from musictune.training.loop import fit
    from musictune.training.trial import trial_model

    seed = int(config.get("seed", 0))
    before = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    try:
        model = trial_model(config, data, settings, source)
        state = fit(model, data, settings.train_config(config))
        if state.best_weights is not None:  # fit leaves the last epoch's weights in the model
            model.load_state_dict(state.best_weights)
        evaluation = evaluate_model(model, data, seed, model.head.task)
    finally:
        torch.set_num_threads(before)
    took = time.perf_counter() - started
    note = f"seed {seed}, best epoch {state.best_epoch}"
    figures = Figures("default", "untuned default", [evaluation.metrics], [seed], note)
    return DefaultRun(config, figures, state.epoch, state.best_epoch, state.best_metric, took)
