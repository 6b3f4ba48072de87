"""Best-config reruns: the winning config retrained with K seeds (trials of one Tune run), a
long budget and early stopping, as the course did. Reruns live in `<experiment>/reruns/`; a
finished one (`rerun.json`) is read back with Ray's result API, an interrupted one resumed."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from ray import tune

from musictune.data.dataset import Dataset
from musictune.models import get_family
from musictune.training.baselines import config_digest
from musictune.training.selection import selection
from musictune.training.trial import TrialSettings
from musictune.tuning.cluster import Resources, check_resources, connect
from musictune.tuning.experiments import RERUN_DIR, Experiment, RerunSettings
from musictune.tuning.progress import RerunProgress
from musictune.tuning.storage import write_json_atomic
from musictune.tuning.transfer import transfer_source
from musictune.tuning.tuner import TunerPlan, bind_trainable, build_tuner, run_tuner

DONE_FILE = "rerun.json"
# What the config of a sweep from before the settings left the trial config still lists.
OLD_SETTINGS = ("model", "max_epochs", "patience", "checkpoint_every", "threads", "amp")
OLD_SETTINGS += ("features", "beat", "source_sweep")
CURVE_COLUMNS = ("training_iteration", "train_loss", "val_loss")  # + the metric
INTERRUPTED = "finished reruns are kept and an unfinished one resumes on the next run"


@dataclass
class SeedRun:
    """One seed's training, as the report's `SeedTraining` records it, and its checkpoint."""

    seed: int
    checkpoint: str | None  # the best-scoring checkpoint folder Ray kept
    tested: bool  # Ray kept a checkpoint, so this seed has a test result
    best_val: float
    best_epoch: int  # first epoch with best_val (early stopping counts from here)
    checkpoint_epoch: int  # of the kept checkpoint (of equal scores Ray keeps the later)
    epochs: int
    history: dict[str, list]  # column -> per-epoch values


def history(frame: pd.DataFrame, metric: str) -> dict[str, list]:
    """The columns a learning curve plots, as plain lists."""
    return {c: frame[c].tolist() for c in (*CURVE_COLUMNS, metric) if c in frame}


@dataclass
class Rerun:
    trial_id: str  # the sweep trial whose config was retrained
    config: dict
    path: Path
    reused: bool
    runs: list[SeedRun] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def rerun_space(trial_config: dict, settings: RerunSettings) -> dict:
    """The trial's hyperparameters with K seeds; a sweep from before settings left the config
    still lists its budget, which the rerun's own settings replace."""
    base_seed = int(trial_config.get("seed", 0))
    config = {k: v for k, v in trial_config.items() if k not in OLD_SETTINGS}
    return {**config, "seed": tune.grid_search([base_seed + i for i in range(settings.seeds)])}


def selection_of(meta: dict) -> tuple[str, str]:
    """(attribute, mode) that picks a seed's best epoch: as the sweep selected (--select-by)."""
    return selection(meta["metric"], meta.get("select_by", "metric"))


def collect(grid, meta: dict, trial_id: str, config: dict, path: Path, reused: bool) -> Rerun:
    """Seed runs from a ResultGrid (fresh from fit, or read back from disk)."""
    metric, (attr, mode) = meta["metric"], selection_of(meta)
    sign = 1 if mode == "max" else -1
    rerun = Rerun(trial_id, config, path, reused)
    for result in grid:
        if result.error is not None:
            seed = (result.config or {}).get("seed")
            rerun.errors.append(f"seed {seed}: {str(result.error).splitlines()[0][:200]}")
            continue
        frame = result.metrics_dataframe
        # Ray kept the best-scoring checkpoint; of equal scores, the later epoch.
        kept = [(c, m) for c, m in result.best_checkpoints if m.get(attr) is not None]
        checkpoint, metrics = max(
            kept,
            key=lambda p: (sign * p[1][attr], p[1]["training_iteration"]),
            default=(None, {}),
        )
        best = frame[attr].idxmax() if mode == "max" else frame[attr].idxmin()
        run = SeedRun(
            seed=int(result.config["seed"]), checkpoint=checkpoint.path if checkpoint else None,
            tested=checkpoint is not None, best_val=float(frame.loc[best, metric]),
            best_epoch=int(frame.loc[best, "training_iteration"]),
            checkpoint_epoch=int(metrics.get("training_iteration", 0)),
            epochs=int(frame["training_iteration"].max()), history=history(frame, metric),
        )  # fmt: skip
        rerun.runs.append(run)
    rerun.runs.sort(key=lambda r: r.seed)
    return rerun


def read_rerun(path: Path, meta: dict, trial_id: str, config: dict) -> Rerun:
    analysis = tune.ExperimentAnalysis(str(path), default_metric=meta["metric"], default_mode="max")
    return collect(tune.ResultGrid(analysis), meta, trial_id, config, path, reused=True)


def run_rerun(
    exp: Experiment,
    trial_id: str,
    data: Dataset,
    settings: RerunSettings,
    config: dict | None = None,
) -> Rerun:
    """Retrain trial `trial_id`'s config with K seeds, or reuse a finished rerun of it. With
    `config`, that config instead (`trial_id` names it, e.g. "default"; a hash of it names the
    folder, so a changed default is trained again)."""
    given = config is not None
    config = dict(config) if given else dict(exp.result_of(trial_id).config)
    s = settings
    key = f"seeds{s.seeds}-epochs{s.max_epochs}-patience{s.patience}"
    path = exp.path / RERUN_DIR / f"{trial_id}-{config_digest(config) + '-' if given else ''}{key}"
    what = f"the {trial_id} config" if given else f"trial {trial_id}"
    if (path / DONE_FILE).exists():
        print(f"  reusing rerun {path}")
        return read_rerun(path, exp.meta, trial_id, config)

    started = time.time()
    grid = train_seeds(exp, data, settings, config, path, what)
    rerun = collect(grid, exp.meta, trial_id, config, path, reused=False)
    if not rerun.errors:  # a rerun with failed seeds is tried again next time
        done = {
            "experiment": exp.name, "trial_id": trial_id, "metric": exp.metric,
            "seeds": [r.seed for r in rerun.runs], "max_epochs": settings.max_epochs,
            "patience": settings.patience, "wall_time_s": time.time() - started,
            "finished": time.time(), **({"config": config} if given else {}),
        }  # fmt: skip
        write_json_atomic(path / DONE_FILE, done)
    return rerun


def train_seeds(
    exp: Experiment, data: Dataset, settings: RerunSettings, config: dict, path: Path, what: str
):
    """The K seeds as trials of one Tune run (resumed if an earlier report was interrupted)."""
    resources = Resources(settings.cpus_per_trial, settings.gpus_per_trial, None, settings.address)
    # Keeping only the best checkpoint makes Ray snapshot the experiment after every epoch,
    # which is cheap for K trials but triggers a warning per epoch.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    connect(resources)
    check_resources(resources)
    trial = TrialSettings(
        family=get_family(exp.meta["model"]), max_epochs=settings.max_epochs,
        patience=settings.patience, threads=resources.threads, quiet=True,
        checkpoint_every=1,  # every epoch, so the best epoch is on disk
        select_by=exp.meta.get("select_by", "metric"),
    )  # fmt: skip
    keep = selection_of(exp.meta)
    trainable = bind_trainable(data, trial, resources, transfer_source(exp.meta))
    resumed = tune.Tuner.can_restore(str(path))
    print(
        f"  rerun of {what}: {settings.seeds} seeds in parallel, up to "
        f"{settings.max_epochs} epochs, patience {settings.patience} -> {path}"
        + ("  (resuming an interrupted rerun)" if resumed else ""),
        flush=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    plan = TunerPlan(
        name=path.name, root=str(path.parent), metric=exp.metric, keep_best=keep,
        param_space=rerun_space(config, settings), resume=resumed,
        callbacks=[RerunProgress(settings.seeds, exp.metric)],
    )  # fmt: skip
    outcome = run_tuner(build_tuner(plan, trainable), settings.seeds, lambda: INTERRUPTED)
    if outcome.interrupted:
        raise KeyboardInterrupt  # unfinished: the next report resumes it (Tuner.restore)
    return outcome.results
