"""What a report's evaluation found, the contract between `evaluate` and `render`: pydantic
models saved as results.json, their NumPy arrays in results.npz (referenced by name)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator
from pydantic_core import PydanticCustomError

from musictune.training.baselines import Figures
from musictune.tuning.experiments import RerunSettings
from musictune.tuning.importance import AnytimeCurve, Importance

History = dict[str, list[int | float]]  # column -> per-epoch values
ARRAY_KEY = "__array__"


def _array_in(value, info) -> np.ndarray:
    """An array as built, or a saved reference into the context's .npz arrays."""
    if isinstance(value, np.ndarray):
        return value
    arrays = (info.context or {}).get("arrays", {})
    if not isinstance(value, dict) or value.get(ARRAY_KEY) not in arrays:
        raise PydanticCustomError("array", "no array")
    return arrays[value[ARRAY_KEY]]


def _array_out(value: np.ndarray, info) -> dict:
    """Into the context's arrays (named in the order met), a reference in the JSON."""
    arrays = info.context["arrays"]
    name = f"a{len(arrays)}"
    arrays[name] = value
    return {ARRAY_KEY: name}


Array = Annotated[
    np.ndarray, PlainValidator(_array_in), PlainSerializer(_array_out, when_used="always")
]


class Model(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)


class DataFacts(Model):
    """The data view an experiment was tested on, as the page describes it."""

    task: str  # genre | regression | multitask
    data_dir: str
    train: int  # clips per split
    val: int
    test: int
    test_note: str
    classes: list[str]
    targets: list[str]
    origin: str | None = None  # demo | extracted | layout; None: older results


class SeedTraining(Model):
    """One rerun seed's training: the per-seed table's columns and its learning curve."""

    seed: int
    tested: bool  # Ray kept a checkpoint, so this seed has a test result
    epochs: int
    best_epoch: int  # first epoch with best_val (early stopping counts from here)
    checkpoint_epoch: int  # of the tested checkpoint (of equal scores Ray keeps the later)
    best_val: float
    history: History


class RerunSummary(Model):
    path: str
    reused: bool
    seeds: list[SeedTraining]
    errors: list[str]
    wall_time_s: float | None  # from its rerun.json; None: not marked finished (failed seeds)


class SeedTest(Model):
    seed: int
    checkpoint: str
    metrics: dict[str, float]


class Pair(Model):
    """True and predicted values of one affect target, seeds pooled (a scatter plot)."""

    true: Array
    predicted: Array


class TestedConfig(Model):
    """One config's test runs (a rerun's seeds, or the sweep's checkpoint) and figure data."""

    trial_id: str
    source: str  # "rerun, 3 seed(s) (reused)" / "sweep checkpoint (no rerun)"
    config: dict  # its hyperparameters as shown (JSON values)
    runs: list[SeedTest]
    rerun: RerunSummary | None = None
    report: str = ""  # classification: scikit-learn's report text, seeds pooled
    confusion: Array | None = None  # classification: row-normalised, seeds pooled
    pairs: dict[str, Pair] = {}  # affect: per target

    @property
    def val_mean(self) -> float:
        """Mean best validation metric over the rerun's seeds (nan without a rerun)."""
        if not self.rerun or not self.rerun.seeds:
            return float("nan")
        return float(np.mean([s.best_val for s in self.rerun.seeds]))


class PairedDifference(Model):
    """The tuned best minus the untuned default on the test split, seed by seed."""

    metric: str  # the test metric, higher is better
    seeds: list[int]
    differences: list[float]  # tuned - default, per seed in `seeds`
    absent: str = ""  # why there is no difference

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def mean(self) -> float:
        return float(np.mean(self.differences)) if self.differences else float("nan")

    @property
    def sd(self) -> float:
        return float(np.std(self.differences, ddof=1)) if self.n > 1 else float("nan")


class Comparison(Model):
    """The tuned best beside the untuned default and chance on the test split."""

    metrics: list[str]  # the table's columns (baselines.shown_metrics)
    seeds: list[int]  # the default's and stratified guessing's seeds
    rows: list[Figures]  # tuned, default, then the chance rows
    default_config: dict
    default_described: str  # the values replacing the tuned ones
    default: TestedConfig | None = None  # None: not retrained
    paired: PairedDifference | None = None  # None: results saved before it was computed


class FeatureMaps(Model):
    """A tested CNN's first conv blocks on a few test clips: per clip, per column, a map."""

    checkpoint: str
    seed: int
    columns: list[str]  # "input", "block 1 (32 ch)", ...
    clips: list[str]
    maps: list[list[Array]]


class ExperimentResult(Model):
    name: str
    path: str
    meta: dict  # its sweep.json
    trials: str  # its trial table, copied into the report: relative path
    data: DataFacts
    hyperparameters: list[str]  # config keys that varied between trials
    curves: dict[str, History]  # learning curves of the best trials, best first
    tested: list[TestedConfig]
    comparison: Comparison
    row: dict  # one line of summary.csv / summary.json
    feature_maps: FeatureMaps | None = None
    importance: Importance | None = None  # None: results saved before it was computed
    anytime: AnytimeCurve | None = None


class ReportResults(Model):
    version: int
    created: str
    storage: str
    skipped: list[str]
    rerun: bool  # False: the sweeps' own checkpoints were tested (--no-rerun)
    settings: RerunSettings
    experiments: list[ExperimentResult]
