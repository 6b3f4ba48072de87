"""What a report's evaluation found, as plain typed data: the contract between the two steps.

`evaluate` (reruns, test metrics, baselines: needs Ray, the data and torch) fills these;
`render` (index.md, index.html, PNGs, CSV/JSON) reads nothing else, so a report can be rebuilt
from its saved results (`saved`) without training anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from musictune.reporting.options import RerunSettings
from musictune.training.baselines import Figures

History = dict[str, list[float]]  # column -> per-epoch values (training_iteration, metric, losses)


@dataclass
class DataFacts:
    """The data view an experiment was tested on, as the page describes it."""

    task: str  # genre | regression | multitask
    data_dir: str
    train: int  # clips per split
    val: int
    test: int
    test_note: str
    classes: list[str]
    targets: list[str]
    # "demo" (synthetic), "extracted" (`musictune extract`'s manifest in the folder), "layout"
    # (neither: the course's data or another copy of its layout); None: older results.
    origin: str | None = None


@dataclass
class SeedTraining:
    """One rerun seed's training: the per-seed table's columns and its learning curve."""

    seed: int
    tested: bool  # Ray kept a checkpoint, so this seed has a test result
    epochs: int
    best_epoch: int
    checkpoint_epoch: int
    best_val: float
    history: History


@dataclass
class RerunSummary:
    """A rerun (K seeds of one config) as the report shows it."""

    path: str
    reused: bool
    seeds: list[SeedTraining]
    errors: list[str]
    wall_time_s: float | None  # from its rerun.json; None: not marked finished (failed seeds)


@dataclass
class SeedTest:
    """One checkpoint's test metrics."""

    seed: int
    checkpoint: str
    metrics: dict[str, float]


@dataclass
class Pair:
    """True and predicted values of one affect target, seeds pooled (a scatter plot)."""

    true: np.ndarray
    predicted: np.ndarray


@dataclass
class TestedConfig:
    """One config's test runs (a rerun's seeds, or the sweep's checkpoint) and figure data."""

    trial_id: str
    source: str  # "rerun, 3 seed(s) (reused)" / "sweep checkpoint (no rerun)"
    config: dict  # its hyperparameters as shown (JSON values)
    runs: list[SeedTest]
    rerun: RerunSummary | None = None
    report: str = ""  # classification: scikit-learn's report text, seeds pooled
    confusion: np.ndarray | None = None  # classification: row-normalised, seeds pooled
    pairs: dict[str, Pair] = field(default_factory=dict)  # affect: per target

    @property
    def val_mean(self) -> float:
        """Mean best validation metric over the rerun's seeds (nan without a rerun)."""
        if not self.rerun or not self.rerun.seeds:
            return float("nan")
        return float(np.mean([s.best_val for s in self.rerun.seeds]))


@dataclass
class PairedDifference:
    """The tuned best minus the untuned default on the test split, seed by seed.

    Both are retrained with the same seeds, so a seed's difference leaves out what that seed did
    to both; `reporting.noise` says whether the mean difference is within noise.
    """

    metric: str  # the test metric (macro_f1, spearman_mean, ...), higher is better
    seeds: list[int]  # the seeds both were tested with
    differences: list[float]  # tuned - default, per seed in `seeds`
    absent: str = ""  # why there is no difference: the default not retrained, no seed in common

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def mean(self) -> float:
        return float(np.mean(self.differences)) if self.differences else float("nan")

    @property
    def sd(self) -> float:
        """Sample sd of the per-seed differences (nan with fewer than two)."""
        return float(np.std(self.differences, ddof=1)) if self.n > 1 else float("nan")


@dataclass
class Comparison:
    """The tuned best beside the untuned default and chance on the test split."""

    metrics: list[str]  # the table's columns (baselines.shown_metrics)
    seeds: list[int]  # the default's and stratified guessing's seeds
    rows: list[Figures]  # tuned, default, then the chance rows
    default_config: dict  # the untuned default's hyperparameters as shown
    default_described: str  # baselines.describe_default: the values replacing the tuned ones
    default: TestedConfig | None = None  # the default's rerun; None when not retrained
    paired: PairedDifference | None = None  # None: results saved before it was computed


@dataclass
class FeatureMaps:
    """What a tested CNN's first two conv blocks respond to, for a few test clips.

    Each map is features x time (low bins first), averaged over the block's channels and
    shrunk to at most MAP_SHAPE by block means, so results.npz stays small.
    """

    checkpoint: str  # the tested checkpoint (the first seed's)
    seed: int
    columns: list[str]  # "input", "block 1 (32 ch)", ...
    clips: list[str]  # row labels: track id and class or target values
    maps: list[list[np.ndarray]]  # per clip, per column


@dataclass
class Importance:
    """How much of the variance in the best validation metric each hyperparameter explains
    (Optuna's fANOVA over the finished trials), with its spread over bootstrap resamples.

    `absent` says why there is nothing to show (too few trials, nothing varied); then the lists
    are empty.
    """

    params: list[str]  # most important first
    importance: list[float]  # on all used trials; sums to 1
    mean: list[float]  # over the bootstrap resamples
    sd: list[float]
    trials: int  # trials used (finished, with the metric and a config in the space)
    stopped_early: int  # of those, trials that ended before max_epochs (ASHA or patience)
    resamples: int  # bootstrap resamples that gave a fit (a constant resample gives none)
    evaluator: str
    absent: str = ""


@dataclass
class AnytimeCurve:
    """The sweep's best validation metric so far, after each reported epoch of any trial,
    epochs in the order they were reported (all trials pooled)."""

    wall_s: list[float]  # seconds since the first trial began (empty: no timestamps logged)
    value: list[float]  # that epoch's metric
    best: list[float]  # best so far (max, or min for a `min` metric)
    trials: int  # trials that reported at least once
    max_epochs: int | None  # the sweep's per-trial budget: trials x max_epochs without stopping


@dataclass
class ExperimentResult:
    """Everything one experiment's section and summary row need."""

    name: str
    path: str  # the experiment's folder in the storage
    meta: dict  # its sweep.json
    trials: str  # its trial table, copied into the report: relative path
    data: DataFacts
    hyperparameters: list[str]  # config keys that varied between trials
    curves: dict[str, History]  # learning curves of the best trials, best first
    tested: list[TestedConfig]
    comparison: Comparison
    row: dict  # the cross-sweep row: one line of summary.csv / summary.json
    feature_maps: FeatureMaps | None = None  # CNN experiments: their best model's conv blocks
    importance: Importance | None = None  # None: results saved before it was computed
    anytime: AnytimeCurve | None = None


@dataclass
class ReportResults:
    """One report's evaluation: saved as results.json (+ results.npz) in its folder."""

    version: int
    created: str  # when evaluated, as the page title shows it
    storage: str
    skipped: list[str]  # experiments not reportable, with the reason
    rerun: bool  # False: the sweeps' own checkpoints were tested (--no-rerun)
    settings: RerunSettings
    experiments: list[ExperimentResult]
