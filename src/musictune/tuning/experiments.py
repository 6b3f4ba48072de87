"""Finished experiments in a storage folder (`<storage>/<name>/` as `run_sweep` wrote it:
sweep.json, trials.csv and Ray's state), read back through Ray's own result API for the
report and for export; and `RerunSettings`, how one is retrained, here because this module
stays light (a saved report holds them and `--render-only` never imports Ray)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from musictune import paths
from musictune.errors import UserError
from musictune.training.selection import PATIENCE, rank_order
from musictune.tuning.storage import SWEEP_FILE, TRIALS_FILE

RERUN_DIR = "reruns"  # best-config reruns live inside their experiment
# Config keys that are budget or plumbing, not hyperparameters worth a scatter plot.
NOT_TUNED = {"max_epochs", "patience", "checkpoint_every", "seed", "threads", "amp", "batch_size"}
LAYER_KEYS = ("num_layers", "conv_blocks")  # what "layers" means per model family


@dataclass
class Experiment:
    """One finished sweep: its sweep.json, its trial table and (lazily) Ray's results."""

    name: str
    path: Path
    meta: dict
    trials: pd.DataFrame  # trials.csv exactly as the sweep wrote it

    @property
    def metric(self) -> str:
        return self.meta["metric"]

    @property
    def mode(self) -> str:
        return self.meta.get("mode", "max")

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def best_column(self) -> str:
        return f"best_{self.metric}"

    @property
    def label(self) -> str:
        """`lstm mel beat` / `cnn chroma` (+ the target of a single-target regression)."""
        m = self.meta
        parts = [m["model"], m["features"], "beat" if m["beat"] else "", m.get("target") or ""]
        return " ".join(p for p in parts if p)

    @property
    def select_by(self) -> str:
        return self.meta.get("select_by", "metric")

    @property
    def finished_trials(self) -> pd.DataFrame:
        """Trials that ended normally with the metric, best first (`selection.rank_order`)."""
        t = self.trials
        done = t[(t["status"] == "TERMINATED") & t[self.best_column].notna()]
        order = rank_order(done.to_dict("records"), self.metric, self.select_by, self.mode)
        return done.iloc[order]

    def best_trials(self, n: int = 1) -> pd.DataFrame:
        return self.finished_trials.head(n)

    @cached_property
    def results(self):
        """Ray's ResultGrid of the sweep, read from disk (no Ray cluster needed)."""
        from ray import tune

        analysis = tune.ExperimentAnalysis(
            str(self.path), default_metric=self.metric, default_mode=self.mode
        )
        return tune.ResultGrid(analysis)

    def result_of(self, trial_id: str):
        for result in self.results:
            if (result.metrics or {}).get("trial_id") == trial_id:
                return result
        raise UserError(f"{self.path}: trial {trial_id} is in {TRIALS_FILE} but not in Ray's state")

    def histories(self) -> dict[str, pd.DataFrame]:
        """trial id -> per-epoch metrics, as Ray logged them."""
        out = {}
        for result in self.results:
            trial_id, frame = (result.metrics or {}).get("trial_id"), result.metrics_dataframe
            if trial_id and frame is not None and len(frame):
                out[trial_id] = frame
        return out

    def hyperparameters(self) -> list[str]:
        """Config keys that differ between trials (tuned ones), in config order."""
        configs = pd.DataFrame([r.config or {} for r in self.results])
        keys = [k for k in configs.columns if k not in NOT_TUNED]
        return [k for k in keys if configs[k].astype(str).nunique() > 1]

    def data_dir(self, override: str | os.PathLike | None = None) -> str:
        chosen = str(override) if override else self.meta.get("data_dir")
        if not chosen or not Path(chosen).is_dir():
            raise UserError(
                f"experiment {self.name}: its data directory {chosen} is not here: pass "
                "--data-dir to the folder the sweep used"
            )
        return chosen


@dataclass
class RerunSettings:
    """How a finished experiment's best config is retrained (`tuning.rerun`); a report keeps it."""

    seeds: int = 3  # K: independent trainings of the same config
    max_epochs: int = 1000  # the course's long budget; early stopping ends runs far sooner
    patience: int = PATIENCE  # epochs without a better best epoch
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None


def is_demo_data(data_dir: str) -> bool:
    """The cached synthetic demo set (not the real FMA data)."""
    try:
        Path(data_dir).resolve().relative_to(paths.cache_dir().resolve())
    except ValueError:
        return False
    return Path(data_dir).name.startswith("demo-")


def read_experiment(path: Path) -> Experiment:
    try:
        meta = json.loads((path / SWEEP_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path / SWEEP_FILE} cannot be read ({exc}): re-run that sweep") from None
    table = path / TRIALS_FILE
    trials = pd.read_csv(table, dtype={"trial_id": str}) if table.exists() else pd.DataFrame()
    return Experiment(path.name, path, meta, trials)


def _problem(exp: Experiment) -> str | None:
    """Why an experiment cannot be reported on, or None."""
    status = exp.meta.get("status")
    if status != "finished":
        preset = exp.meta.get("preset", "PRESET")
        resume = (
            f"`musictune sweep {preset} --resume --name {exp.name} --storage {exp.path.parent}`"
        )
        if status == "running":
            return (
                f"experiment {exp.name} is still running (sweep.json status 'running'): wait for "
                f"it to finish, or if its driver was killed, resume it with {resume}"
            )
        return (
            f"experiment {exp.name} has not finished (sweep.json status {status!r}): "
            f"resume it with {resume}"
        )
    if exp.trials.empty or "status" not in exp.trials or exp.best_column not in exp.trials:
        return f"experiment {exp.name} has no trial table with {exp.best_column}: re-run it"
    if exp.finished_trials.empty:
        return (
            f"experiment {exp.name} has no finished trial (all {len(exp.trials)} failed; see "
            f"the error column of {exp.path / TRIALS_FILE}): fix the cause and re-run it"
        )
    return None


def find_experiments(
    storage: str | os.PathLike, names: list[str] | None = None
) -> tuple[list[Experiment], list[str]]:
    """Every finished experiment in `storage` and why others were skipped; or the named ones
    (each must be finished)."""
    if "://" in str(storage):
        raise UserError(f"--storage {storage}: reports read a local folder; copy the results here")
    # Absolute: pyarrow refuses a relative path from Ray's result API; the page records it.
    root = Path(storage).expanduser().absolute()
    found = sorted(p.parent for p in root.glob(f"*/{SWEEP_FILE}")) if root.is_dir() else []
    if not found:
        what = "does not exist" if not root.is_dir() else f"holds no experiment (no */{SWEEP_FILE})"
        raise UserError(
            f"storage {root} {what}: run a sweep first "
            "(musictune sweep lstm_spectrogram --smoke-test) or pass --storage"
        )
    known = {p.name: p for p in found}
    if names:
        missing = [n for n in names if n not in known]
        if missing:
            raise UserError(
                f"no experiment {missing[0]!r} in {root}: known ones are {', '.join(known)}"
            )
        chosen = [read_experiment(known[n]) for n in dict.fromkeys(names)]
        problems = [p for p in map(_problem, chosen) if p]
        if problems:
            raise UserError(problems[0])
        return chosen, []
    experiments, skipped = [], []
    for exp in map(read_experiment, found):
        problem = _problem(exp)
        (skipped if problem else experiments).append(problem or exp)
    if not experiments:
        raise UserError(skipped[0] if len(skipped) == 1 else f"{skipped[0]} (and others)")
    return experiments, skipped
