"""Best-config reruns: the winning config retrained with a long budget and K seeds.

As the course did, a rerun trains for up to 1000 epochs with early stopping (patience 10 on the
validation metric); unlike the course, the K seeds run in parallel as trials of one Ray Tune
experiment, with the sweep's own trainable and data sharing. Every epoch is checkpointed and
Ray keeps the best one by the validation metric (of equal scores, the later epoch), which is
what the test split sees.

Reruns live in `<experiment>/reruns/<trial>-seeds<K>-epochs<N>-patience<P>/`; a finished one
(marked by `rerun.json`) is read back with Ray's result API instead of being trained again, and
an interrupted one is resumed with `Tuner.restore`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from ray import tune

from musictune.baselines import config_digest
from musictune.data import Dataset
from musictune.reporting.experiments import RERUN_DIR, Experiment
from musictune.reporting.options import RerunSettings
from musictune.tuning.cluster import check_resources, connect
from musictune.tuning.options import SweepOptions
from musictune.tuning.runner import build_trainable, tune_environment
from musictune.tuning.storage import write_json_atomic
from musictune.tuning.summary import ray_trials

DONE_FILE = "rerun.json"


@dataclass
class SeedRun:
    seed: int
    checkpoint: str | None  # the best-scoring checkpoint folder Ray kept
    best_val: float
    best_epoch: int  # first epoch with best_val (early stopping counts from here)
    checkpoint_epoch: (
        int  # epoch of `checkpoint`: best_val too (of equal scores Ray keeps the later)
    )
    epochs: int
    history: pd.DataFrame


@dataclass
class Rerun:
    trial_id: str  # the sweep trial whose config was retrained
    config: dict
    path: Path
    reused: bool
    runs: list[SeedRun] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def rerun_key(trial_id: str, settings: RerunSettings) -> str:
    return (
        f"{trial_id}-seeds{settings.seeds}-epochs{settings.max_epochs}-patience{settings.patience}"
    )


def _quiet() -> None:
    # Ray logs a line per checkpoint, and reruns checkpoint every epoch.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)


def rerun_trainable(config: dict, data: Dataset) -> None:
    """The sweep's own trainable, quieter."""
    from trainables import train_supervised

    _quiet()
    train_supervised(config, data)


def rerun_transfer(config: dict, data: Dataset, source: dict) -> None:
    """A transfer sweep's trainable: starts again from the same genre weights."""
    from trainables.transfer import train_transfer

    _quiet()
    train_transfer(config, data, source)


def trainable_for(exp: Experiment, options: SweepOptions, data: Dataset):
    """The trainable the sweep used, bound to its data (and genre weights for transfer)."""
    if not exp.meta.get("transfer"):
        return build_trainable(options, data, rerun_trainable)
    from musictune.tuning.affect import transfer_source

    return build_trainable(options, data, rerun_transfer, transfer_source(exp.meta))


def rerun_space(trial_config: dict, settings: RerunSettings) -> dict:
    base_seed = int(trial_config.get("seed", 0))
    return {
        **trial_config,
        "max_epochs": settings.max_epochs,
        "patience": settings.patience,
        "checkpoint_every": 1,  # every epoch, so the best epoch is on disk
        "threads": max(1, int(settings.cpus_per_trial)),
        "seed": tune.grid_search([base_seed + i for i in range(settings.seeds)]),
    }


class RerunProgress(tune.Callback):
    """One bar over the seeds; its postfix shows each seed's epoch and best metric so far."""

    def __init__(self, seeds: int, metric: str):
        self.seeds, self.metric = seeds, metric
        self.state: dict[int, tuple[int, float]] = {}
        self.bar = None
        self.shown_at = 0.0

    def setup(self, **info) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.seeds, desc="rerun seeds", unit="seed", file=sys.stderr)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        seed = trial.config.get("seed")
        value = result.get(f"best_{self.metric}", result.get(self.metric, float("nan")))
        self.state[seed] = (result.get("training_iteration", 0), value)
        shown = ", ".join(
            f"seed {s}: epoch {e} best {v:.3f}" for s, (e, v) in sorted(self.state.items())
        )
        self.bar.set_postfix_str(shown, refresh=False)
        if time.monotonic() - self.shown_at > 1.0:  # one line a second in a log file
            self.bar.refresh()
            self.shown_at = time.monotonic()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.bar.update(1)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.bar.update(1)

    def on_experiment_end(self, trials, **info) -> None:
        self.bar.close()


def collect(grid, metric: str, trial_id: str, config: dict, path: Path, reused: bool) -> Rerun:
    """Seed runs from a ResultGrid (fresh from fit, or read back from disk)."""
    rerun = Rerun(trial_id, config, path, reused)
    for result in grid:
        if result.error is not None:
            seed = (result.config or {}).get("seed")
            rerun.errors.append(f"seed {seed}: {str(result.error).splitlines()[0][:200]}")
            continue
        history = result.metrics_dataframe
        # Ray kept the best-scoring checkpoint; of equal scores, the later epoch.
        kept = [(c, m) for c, m in result.best_checkpoints if m.get(metric) is not None]
        checkpoint, metrics = max(
            kept, key=lambda p: (p[1][metric], p[1]["training_iteration"]), default=(None, {})
        )
        best = history[metric].idxmax()
        rerun.runs.append(
            SeedRun(
                seed=int(result.config["seed"]),
                checkpoint=checkpoint.path if checkpoint else None,
                best_val=float(history.loc[best, metric]),
                best_epoch=int(history.loc[best, "training_iteration"]),
                checkpoint_epoch=int(metrics.get("training_iteration", 0)),
                epochs=int(history["training_iteration"].max()),
                history=history,
            )
        )
    rerun.runs.sort(key=lambda r: r.seed)
    return rerun


def read_rerun(path: Path, metric: str, trial_id: str, config: dict) -> Rerun:
    analysis = tune.ExperimentAnalysis(str(path), default_metric=metric, default_mode="max")
    return collect(tune.ResultGrid(analysis), metric, trial_id, config, path, reused=True)


def run_rerun(
    exp: Experiment,
    trial_id: str,
    data: Dataset,
    settings: RerunSettings,
    config: dict | None = None,
) -> Rerun:
    """Retrain trial `trial_id`'s config with K seeds, or reuse a finished rerun of it.

    With `config`, that config is retrained instead and `trial_id` only names it (e.g.
    "default", the untuned default); its folder name carries a hash of the config, so a changed
    default is trained again rather than read back.
    """
    given = config is not None
    config = dict(config) if given else dict(exp.result_of(trial_id).config)
    root = exp.path / RERUN_DIR
    key = rerun_key(trial_id, settings)
    if given:
        key = f"{trial_id}-{config_digest(config)}-{key.removeprefix(trial_id + '-')}"
    path = root / key
    what = f"the {trial_id} config" if given else f"trial {trial_id}"
    if (path / DONE_FILE).exists():
        print(f"  reusing rerun {path}")
        return read_rerun(path, exp.metric, trial_id, config)

    options = SweepOptions(
        preset=exp.meta.get("preset", exp.name),
        samples=settings.seeds,
        cpus_per_trial=settings.cpus_per_trial,
        gpus_per_trial=settings.gpus_per_trial,
        address=settings.address,
    )
    tune_environment()
    # Keeping only the best checkpoint makes Ray snapshot the experiment after every epoch,
    # which is cheap for K trials but triggers a warning per epoch.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    connect(options)
    check_resources(options)
    trainable = trainable_for(exp, options, data)
    resumed = tune.Tuner.can_restore(str(path))
    print(
        f"  rerun of {what}: {settings.seeds} seeds in parallel, up to "
        f"{settings.max_epochs} epochs, patience {settings.patience} -> {path}"
        + ("  (resuming an interrupted rerun)" if resumed else ""),
        flush=True,
    )
    started = time.time()
    if resumed:
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_errored=True)
    else:
        root.mkdir(parents=True, exist_ok=True)
        tuner = tune.Tuner(
            trainable,
            param_space=rerun_space(config, settings),
            tune_config=tune.TuneConfig(metric=exp.metric, mode="max", reuse_actors=True),
            run_config=tune.RunConfig(
                name=key,
                storage_path=str(root),
                failure_config=tune.FailureConfig(max_failures=2),
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=1,  # Ray also keeps the latest one, for resuming
                    checkpoint_score_attribute=exp.metric,
                    checkpoint_score_order="max",
                ),
                callbacks=[RerunProgress(settings.seeds, exp.metric)],
                verbose=0,
            ),
        )
    before = signal.getsignal(signal.SIGINT)
    try:
        grid = tuner.fit()  # Ctrl-C: Tune stops the trials, saves their state and returns
    finally:
        if before is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, before)  # Tune leaves its handler behind
    statuses = [t.status for t in ray_trials(grid)]
    if len(grid) < settings.seeds or any(s not in ("TERMINATED", "ERROR") for s in statuses):
        raise KeyboardInterrupt  # unfinished: the next report resumes it (Tuner.restore)
    rerun = collect(grid, exp.metric, trial_id, config, path, reused=False)
    if not rerun.errors:  # a rerun with failed seeds is tried again next time
        write_json_atomic(
            path / DONE_FILE,
            {
                "experiment": exp.name,
                "trial_id": trial_id,
                "metric": exp.metric,
                "seeds": [r.seed for r in rerun.runs],
                "max_epochs": settings.max_epochs,
                "patience": settings.patience,
                "wall_time_s": time.time() - started,
                "finished": time.time(),
                **({"config": config} if given else {}),
            },
        )
    return rerun


def rerun_done(path: Path) -> dict:
    return json.loads((path / DONE_FILE).read_text())
