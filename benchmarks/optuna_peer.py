"""The peer a user would pick instead of the harness: a plain Optuna study, TPE sampler with a
pruner (Hyperband or median), two worker processes sharing one SQLite study, as Optuna's docs run
it on one machine.

The benchmark builds the very SweepPlan our side runs (`make_plan` of the same options) and hands
each worker what it holds: the search space as Optuna distributions, the fixed config values and
the trial settings (epoch budget, patience, torch threads: 1 per worker, 1 CPU each). Each worker
is this file run again (`--worker`), importing only Optuna, torch and the training code (no Ray,
as a user's script would not); it loads the data itself, then asks the shared study for
configurations until the trial budget is used up. Every epoch's
validation macro F1 is reported to the pruner and appended, with its wall-clock time, to a
shared log that the benchmark reads to build the best-so-far curve. The workers' imports and data
loading count in its wall time, as they do for a user's script.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

PRUNERS = ("hyperband", "median")
METRIC = "val_macro_f1"


def distributions(space: dict) -> tuple[dict, dict]:
    """The plan's space split into Optuna distributions (searched) and fixed values."""
    from ray.tune.search.optuna import OptunaSearch
    from ray.tune.search.sample import Domain

    searched = {k: v for k, v in space.items() if isinstance(v, Domain)}
    fixed = {k: v for k, v in space.items() if not isinstance(v, Domain)}
    return OptunaSearch.convert_search_space(searched), fixed


def make_pruner(name: str, max_epochs: int, grace: int = 1, reduction: int = 3):
    """Optuna's pruner with the same resource unit (epochs) and rungs as the harness's ASHA;
    the median pruner with Optuna's defaults (5 startup trials, no warm-up steps)."""
    import optuna

    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=grace, max_resource=max_epochs, reduction_factor=reduction
        )
    if name == "median":
        return optuna.pruners.MedianPruner()
    raise ValueError(f"unknown pruner {name!r}: one of {', '.join(PRUNERS)}")


def peer_job(options: dict) -> dict:
    """What every worker needs, from the harness's own plan for these SweepOptions fields."""
    import optuna

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common

    from musictune.tuning.plan import make_plan

    plan = make_plan(common.sweep_options(**options))
    space, fixed = distributions(plan.space)
    return {
        "space": {k: optuna.distributions.distribution_to_json(v) for k, v in space.items()},
        "fixed": fixed,
        "settings": plan.settings,
        "data": (plan.task, options["data_dir"], plan.preset.features, plan.preset.beat),
        "samples": options["samples"],
        "seed": options["seed"],
    }


def worker(job_file: str, index: int) -> None:
    """One of the workers: ask, train with pruning, tell, until the study holds the budget."""
    import optuna
    import torch

    from musictune.data.dataset import load_task
    from musictune.training.loop import fit
    from musictune.training.trial import trial_model

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    job = pickle.loads(Path(job_file).read_bytes())
    settings, fixed = job["settings"], job["fixed"]
    space = {k: optuna.distributions.json_to_distribution(v) for k, v in job["space"].items()}
    torch.set_num_threads(settings.threads)
    data = load_task(*job["data"])
    study = optuna.load_study(
        study_name="peer",
        storage=job["storage"],
        sampler=optuna.samplers.TPESampler(seed=job["seed"] * 100 + index),
        pruner=make_pruner(job["pruner"], settings.max_epochs),
    )
    log = open(job["log"], "a", buffering=1)  # one line per epoch, appended by both workers
    while True:
        trial = study.ask(space)
        if trial.number >= job["samples"]:  # the other worker took the last one
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        config = {**fixed, **trial.params}

        def report(metrics: dict, state, model, optimizer, trial=trial) -> None:
            value = float(metrics[METRIC])
            log.write(f"{time.time()} {value} {trial.number} {state.epoch}\n")
            trial.report(value, state.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        model = trial_model(config, data, settings)
        try:
            best = fit(model, data, settings.train_config(config), on_epoch=report).best_metric
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, best)
    log.close()


def run_peer(options: dict, pruner: str, workers: int, folder: Path) -> tuple[float, float, Path]:
    """The whole Optuna side: a new SQLite study, `workers` processes at once; returns
    (start, wall seconds, the epoch log). `options` are the SweepOptions fields of our side."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{folder / 'study.db'}"
    optuna.create_study(study_name="peer", storage=storage, direction="maximize")
    log = folder / "epochs.txt"
    job = peer_job(options) | {"pruner": pruner, "storage": storage, "log": str(log)}
    job_file = folder / "job.pkl"
    job_file.write_bytes(pickle.dumps(job))
    argv = [sys.executable, __file__, "--worker", str(job_file)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.time()
    procs = [
        subprocess.Popen([*argv, str(i)], env=env, stderr=subprocess.PIPE, text=True)
        for i in range(workers)
    ]
    errors = [p.communicate()[1] for p in procs]
    wall = time.time() - started
    failed = [e for p, e in zip(procs, errors) if p.returncode]
    if failed:
        raise RuntimeError(f"an Optuna worker failed:\n{failed[0][-2000:]}")
    return started, wall, log


def read_epochs(log: Path):
    """The epoch log as a frame: time, value, trial, epoch."""
    import pandas as pd

    rows = [line.split() for line in Path(log).read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(rows, columns=["time", "value", "trial", "epoch"])
    return frame.astype({"time": float, "value": float, "trial": int, "epoch": int})


if __name__ == "__main__":
    if sys.argv[1:2] != ["--worker"]:
        sys.exit("optuna_peer.py is run by search_efficiency.py (--worker JOB INDEX)")
    worker(sys.argv[2], int(sys.argv[3]))
