"""The options of `musictune sweep PRESET` and every `sweeps/*.py` preset, declared once.

`SweepOptions` is what the user typed (checked one option at a time here); `tuning.plan` turns
it into a `SweepPlan`, where the options are checked against the preset and each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from musictune.audio.features import VIEWS
from musictune.data.dataset import MULTITASK_TEST_FRACTION
from musictune.errors import UserError
from musictune.layout import AFFECT_TARGETS
from musictune.options import (
    first_problem,
    non_negative_float,
    non_negative_int,
    option,
    positive_float,
    positive_int,
)
from musictune.training.selection import PATIENCE, SELECT_BY
from musictune.tuning.mlflow_tracking import INSTALL, require_mlflow
from musictune.tuning.presets import PRESETS, get_preset
from musictune.tuning.space import DROPOUT_RANGE, LR_RANGE

SEARCHES = ("random", "optuna", "bohb")
SCHEDULERS = ("asha", "hyperband", "fifo")
BOHB_INSTALL = 'pip install "musictune[bohb]"'
SMOKE = {"samples": 4, "max_epochs": 2}  # --smoke-test shrinks counts, never the code path
DEFAULTS = {"samples": 20, "max_epochs": 50}


@dataclass
class SweepOptions:
    # --help by topic; an option named in no group is listed under "options".
    OPTION_GROUPS: ClassVar[dict[str, tuple[str, ...]]] = {
        "search and schedule": (
            "samples", "search", "scheduler", "max_epochs", "grace_period", "reduction_factor",
            "seed", "smoke_test",
        ),
        "model, task and view": (
            "model", "target", "features", "beat", "full", "loss_weights", "tune_loss_weights",
            "from_sweep",
        ),
        "search space": ("sets", "space_file", "lr_min", "lr_max", "dropout_min", "dropout_max"),
        "training and selection": (
            "batch_size", "crop", "folds", "test_fraction", "patience", "select_by",
            "checkpoint_every", "max_failures", "amp", "baseline_train",
        ),
        "resources and cluster": ("cpus_per_trial", "gpus_per_trial", "max_concurrent", "address"),
        "data and results": ("data_dir", "storage", "name", "resume", "mlflow"),
    }  # fmt: skip

    preset: str = option(None, "one of: " + ", ".join(sorted(PRESETS)), positional=True)
    samples: int | None = option(
        None,
        f"trials (default {DEFAULTS['samples']}; smoke test {SMOKE['samples']})",
        type=positive_int,
    )
    search: str = option(
        "random",
        f"random, Optuna TPE, or BOHB (with --scheduler hyperband; needs {BOHB_INSTALL})",
        choices=list(SEARCHES),
    )
    scheduler: str = option(
        "asha",
        "ASHA stops poor trials early; HyperBand pauses and resumes them in synchronous "
        "brackets; FIFO trains every trial to the budget",
        choices=list(SCHEDULERS),
    )
    max_epochs: int | None = option(
        None,
        f"epoch budget per trial (default {DEFAULTS['max_epochs']}; "
        f"smoke test {SMOKE['max_epochs']})",
        type=positive_int,
    )
    grace_period: int = option(1, "ASHA: epochs before a trial can be stopped", type=positive_int)
    reduction_factor: int = option(
        3,
        "ASHA: about 1 in N trials (HyperBand's too) goes on at each rung",
        type=positive_int,
    )
    model: str | None = option(
        None, "model family in place of the preset's: lstm, cnn, or one of $MUSICTUNE_MODELS"
    )
    # Affect presets
    target: str | None = option(
        None,
        "affect target of regression presets (default energy)",
        choices=list(AFFECT_TARGETS),
    )
    features: str | None = option(None, "regression/multitask: feature view", choices=list(VIEWS))
    beat: bool = option(False, "regression/multitask: beat-synced clips (their default)")
    full: bool = option(False, "regression/multitask: full-length clips instead of beat-synced")
    loss_weights: tuple[float, ...] | None = option(
        None,
        "multitask: relative weights of the valence, energy, danceability MSEs "
        "(default 1 1 1; scaled to average 1)",
        type=positive_float,
        nargs=len(AFFECT_TARGETS),
        metavar=tuple(t[0].upper() for t in AFFECT_TARGETS),
    )
    tune_loss_weights: bool = option(False, "multitask: tune the three weights")
    from_sweep: str | None = option(
        None, "transfer presets: the finished genre CNN sweep", metavar="NAME"
    )
    # The search space, beyond the preset's
    sets: list[str] | None = option(
        None,
        "fix a config key, e.g. --set hidden_size=128 (repeatable; over --space)",
        flag="--set",
        action="append",
        metavar="KEY=VALUE",
    )
    space_file: str | None = option(
        None,
        "YAML: per key a value or {loguniform|uniform|randint: [low, high]} or "
        "{choice: [...]}, over the preset's space",
        flag="--space",
        metavar="FILE.yaml",
    )
    # Resources and cluster
    cpus_per_trial: float = option(1.0, "also the torch threads of a trial", type=positive_float)
    gpus_per_trial: float = option(0.0, "fractions pack trials on one GPU", type=float)
    max_concurrent: int | None = option(
        None,
        "trials at once (default: as many as the cluster's CPUs/GPUs hold when the sweep "
        "starts; Optuna then suggests that many configs at a time)",
        type=positive_int,
    )
    address: str | None = option(None, "existing Ray cluster (default: $RAY_ADDRESS, else local)")
    # Data and results
    data_dir: str | None = option(
        None, "patreco3-layout data (default: $MUSICTUNE_DATA, else demo data)"
    )
    storage: str | None = option(
        None, "results folder or URI such as s3://bucket/path (default ./results)"
    )
    name: str | None = option(None, "experiment name (default: PRESET-YYYYmmdd-HHMMSS)")
    resume: bool = option(False, "continue --name (or the latest run of this preset)")
    seed: int = option(0, "search and training seed", type=int)
    smoke_test: bool = option(False, "tiny demo data, 4 trials, 2 epochs (CI)")
    # Search space and training
    lr_min: float = option(LR_RANGE[0], "lowest learning rate", type=float)
    lr_max: float = option(LR_RANGE[1], "highest learning rate", type=float)
    dropout_min: float = option(DROPOUT_RANGE[0], "lowest dropout", type=float)
    dropout_max: float = option(DROPOUT_RANGE[1], "highest dropout", type=float)
    batch_size: int = option(32, "clips per batch", type=positive_int)
    crop: float = option(
        0.0,
        "train on a random crop of this many seconds of each clip, anew every epoch; validation "
        "and test score each clip on its consecutive windows, averaged (beat-synced: 2 beats a "
        "second); searchable with --space, e.g. crop: {choice: [3, 6]}; 0: whole clips",
        type=non_negative_float,
        metavar="SECONDS",
    )
    folds: int = option(
        0,
        "select by K-fold cross-validation: train+validation split into K stratified folds by "
        "track; each trial trains K models in lockstep and reports their mean; the test split "
        "stays held out (0: one train/validation split)",
        type=non_negative_int,
        metavar="K",
    )
    test_fraction: float = option(
        MULTITASK_TEST_FRACTION,
        "affect: the share of train held out as test when the multitask test split has no "
        "labels (the course's lab: 0.2)",
        type=positive_float,
        metavar="F",
    )
    patience: int = option(
        PATIENCE, "early stopping inside a trial (0 disables)", type=non_negative_int
    )
    checkpoint_every: int = option(5, "epochs between trial checkpoints", type=positive_int)
    max_failures: int = option(
        2, "retries of a crashed trial from its checkpoint", type=non_negative_int
    )
    select_by: str = option(
        "metric",
        "which epoch of a trial is best (kept, tested, early stopping): the validation metric, "
        "or the validation loss as the course did",
        choices=list(SELECT_BY),
    )
    amp: bool = option(False, "mixed precision on CUDA")
    mlflow: str | None = option(
        None,
        "also log every trial (params, per-epoch metrics) to MLflow: a tracking URI or a "
        "folder (default: <storage>/mlflow, a SQLite store); experiment = the sweep's name; a "
        f"--resume logs as the sweep's first run did; needs {INSTALL}",
        nargs="?",
        const="",
        metavar="URI",
    )
    # After the sweep, train the untuned default once for the test-split comparison.
    baseline_train: bool = option(
        True,
        "skip training the untuned default for the end-of-sweep test comparison",
        flag="--no-baseline-train",
    )

    def __post_init__(self) -> None:
        base = SMOKE if self.smoke_test else DEFAULTS
        self.samples = base["samples"] if self.samples is None else self.samples
        self.max_epochs = base["max_epochs"] if self.max_epochs is None else self.max_epochs

    def validate(self) -> None:
        """Checks of one option, or of options against each other, run once per sweep (by
        `tuning.plan.make_plan`, whether the options came from a command line or were built
        in Python); the checks against the preset come after, in the plan."""
        get_preset(self.preset)  # an unknown name fails first, naming the known ones
        first_problem([*self._budget_problems(), *self._resource_problems()])
        first_problem([*self._space_problems(), *self._training_problems()])
        if self.mlflow is not None:
            require_mlflow()  # before any data is read or Ray starts
        if self.search == "bohb":
            require_bohb()

    def _budget_problems(self) -> list[tuple[bool, str]]:
        return [
            (self.samples < 1, f"--samples must be at least 1, got {self.samples}"),
            (self.max_epochs < 1, f"--max-epochs must be at least 1, got {self.max_epochs}"),
            (self.grace_period < 1, f"--grace-period must be at least 1, got {self.grace_period}"),
            (
                self.reduction_factor < 2,
                f"--reduction-factor must be at least 2, got {self.reduction_factor}",
            ),
            (
                self.search == "bohb" and self.scheduler != "hyperband",
                f"--search bohb needs --scheduler hyperband (BOHB's own brackets), not "
                f"--scheduler {self.scheduler}",
            ),
            (
                self.scheduler == "asha" and self.grace_period > self.max_epochs,
                f"--grace-period {self.grace_period} is above --max-epochs "
                f"{self.max_epochs}: lower it or raise --max-epochs",
            ),
        ]

    def _resource_problems(self) -> list[tuple[bool, str]]:
        gpus = self.gpus_per_trial
        return [
            (self.cpus_per_trial <= 0, f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}"),
            (gpus < 0, f"--gpus-per-trial must be >= 0, got {gpus}"),
            (
                gpus > 1 and gpus != int(gpus),
                f"--gpus-per-trial {gpus}: above 1 it must be a whole number",
            ),
            (
                self.max_concurrent is not None and self.max_concurrent < 1,
                f"--max-concurrent must be at least 1, got {self.max_concurrent}",
            ),
            (self.max_failures < 0, f"--max-failures must be >= 0, got {self.max_failures}"),
        ]

    def _space_problems(self) -> list[tuple[bool, str]]:
        lo, hi = self.lr_min, self.lr_max
        return [
            (lo <= 0 or hi <= 0, f"--lr-min/--lr-max must be > 0, got {lo:g} and {hi:g}"),
            (lo >= hi, f"--lr-min {lo:g} must be below --lr-max {hi:g}"),
            (
                not 0 <= self.dropout_min < self.dropout_max < 1,
                "--dropout-min/--dropout-max must satisfy 0 <= min < max < 1, got "
                f"{self.dropout_min:g} and {self.dropout_max:g}",
            ),
        ]

    def _training_problems(self) -> list[tuple[bool, str]]:
        return [
            (self.beat and self.full, "--beat and --full contradict each other: give one"),
            (
                not 0 < self.test_fraction < 1,
                f"--test-fraction must lie strictly between 0 and 1, not {self.test_fraction}",
            ),
            (
                self.folds == 1,
                "--folds 1 is one fold, no cross-validation: use --folds 2 or more, "
                "or 0 for one train/validation split",
            ),
            (
                self.batch_size < 1 or self.patience < 0 or self.checkpoint_every < 1,
                "--batch-size and --checkpoint-every must be >= 1, --patience >= 0",
            ),
        ]

    @property
    def lr_range(self) -> tuple[float, float]:
        return (self.lr_min, self.lr_max)

    @property
    def dropout_range(self) -> tuple[float, float]:
        return (self.dropout_min, self.dropout_max)


def require_bohb() -> None:
    """Refuse --search bohb in one line when its packages are missing, before anything runs."""
    import importlib.util

    missing = [m for m in ("hpbandster", "ConfigSpace") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"--search bohb needs {' and '.join(missing)}: {BOHB_INSTALL}")
