"""Carry out a sweep plan: load the data once, run the Tuner, write the experiment's files,
print the summary and the test-split comparison."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from ray.tune.search import ConcurrencyLimiter

from musictune import paths
from musictune.data.dataset import Dataset, load_task
from musictune.data.files import resolve_data_dir
from musictune.tuning.cluster import check_resources, connect
from musictune.tuning.options import SweepOptions
from musictune.tuning.plan import SweepPlan, make_plan
from musictune.tuning.presets import PRESETS
from musictune.tuning.progress import SweepInterrupted, SweepProgress
from musictune.tuning.space import describe_space, largest
from musictune.tuning.storage import (
    TRIALS_FILE,
    read_sweep_meta,
    write_experiment_file,
    write_sweep_meta,
)
from musictune.tuning.summary import MODE, compare_on_test, print_summary, trial_table
from musictune.tuning.tuner import TunerPlan, bind_trainable, build_tuner, run_tuner

# Trials selected on fewer validation clips than this get a warning: ties and noise.
SMALL_VALIDATION = 50

# The experiment's own settings: options repeated with --resume do not change them.
KEPT_ON_RESUME = ("samples", "search", "scheduler", "max_epochs", "seed", "smoke_test")
KEPT_ON_RESUME += ("command", "started", "wall_time_s", "mlflow")


class PlainValues(ConcurrencyLimiter):
    """A ConcurrencyLimiter whose configs hold plain Python values: BOHB's ConfigSpace hands
    back numpy scalars (an np.int64 hidden size), which torch's layers refuse."""

    def suggest(self, trial_id: str):
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            config = {k: v.item() if isinstance(v, np.generic) else v for k, v in config.items()}
        return config


def build_search(options: SweepOptions, metric: str, slots: int = 2):
    """Random search, or Optuna's TPE or BOHB asking for `slots` configs at a time (the trials
    the cluster runs at once): more would be suggested before any result could inform them."""
    from ray.tune.search import BasicVariantGenerator

    if options.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return ConcurrencyLimiter(
            OptunaSearch(metric=metric, mode=MODE, seed=options.seed), max_concurrent=slots
        )
    if options.search == "bohb":
        from ray.tune.search.bohb import TuneBOHB

        return PlainValues(
            TuneBOHB(metric=metric, mode=MODE, seed=options.seed), max_concurrent=slots
        )
    return BasicVariantGenerator(
        random_state=options.seed, max_concurrent=options.max_concurrent or 0
    )


def build_scheduler(options: SweepOptions):
    """ASHA (grace, reduction, max_t = the epoch budget), HyperBand (reduction, max_t; BOHB's
    own variant under --search bohb) or FIFO."""
    from ray.tune.schedulers import (
        ASHAScheduler,
        FIFOScheduler,
        HyperBandForBOHB,
        HyperBandScheduler,
    )

    if options.scheduler == "fifo":
        return FIFOScheduler()
    if options.scheduler == "hyperband":
        kind = HyperBandForBOHB if options.search == "bohb" else HyperBandScheduler
        return kind(
            time_attr="training_iteration",
            max_t=options.max_epochs,
            reduction_factor=options.reduction_factor,
        )
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=options.max_epochs,
        grace_period=options.grace_period,
        reduction_factor=options.reduction_factor,
    )


def tuner_plan(plan: SweepPlan) -> TunerPlan:
    options = plan.options
    return TunerPlan(
        name=plan.name,
        root=plan.root,
        metric=plan.metric,
        param_space=plan.space,
        samples=options.samples,
        search_alg=build_search(options, plan.metric, plan.resources.slots()),
        scheduler=build_scheduler(options),
        max_failures=options.max_failures,
        callbacks=[SweepProgress(options.samples, plan.metric), *mlflow_loggers(plan)],
        resume=options.resume,
    )


def mlflow_loggers(plan: SweepPlan) -> list:
    """--mlflow: Ray Tune's MLflow callback, logging every trial into the sweep's experiment."""
    if plan.mlflow is None:
        return []
    from musictune.tuning.mlflow_tracking import sweep_logger

    tags = {"musictune.preset": plan.options.preset, "musictune.sweep": plan.path}
    return [sweep_logger(plan.mlflow[0], plan.name, tags | {"musictune.metric": plan.metric})]


# --------------------------------------------------------------------------- messages


def resume_command(options: SweepOptions, name: str, root: str) -> str:
    """The user's own command line with `--resume --name NAME --storage ROOT` in place of any
    earlier ones; for a call from Python, the preset script with the data options."""
    argv, preset = sys.argv, options.preset
    if argv[1:3] == ["sweep", preset]:
        head, rest = ["musictune", "sweep", preset], argv[3:]
    elif Path(argv[0]).name == f"{preset}.py":
        head, rest = ["python", argv[0]], argv[1:]
    else:
        head, rest = ["python", f"sweeps/{preset}.py"], []
        rest += ["--data-dir", options.data_dir] if options.data_dir else []
        rest += ["--smoke-test"] if options.smoke_test else []
        rest += ["--target", options.target] if options.target else []
    kept, skip = [], False
    for arg in rest:
        option = arg.split("=", 1)[0]
        if skip or option == "--resume":
            skip = False
        elif option in ("--name", "--storage"):
            skip = "=" not in arg  # the value is the next argument
        else:
            kept.append(arg)
    return shlex.join([*head, *kept, "--resume", "--name", name, "--storage", root])


def print_start(plan: SweepPlan, data: Dataset, data_dir: str) -> None:
    o = plan.options
    schedule = {
        "asha": f", grace {o.grace_period}, reduction {o.reduction_factor}",
        "hyperband": f", reduction {o.reduction_factor}",
    }
    print(
        f"musictune sweep {o.preset}: {o.samples} trials, {o.search} search, "
        f"{o.scheduler.upper()} (max {o.max_epochs} epochs"
        + schedule.get(o.scheduler, "")
        + f"), {o.cpus_per_trial:g} CPU / {o.gpus_per_trial:g} GPU per trial"
    )
    print(
        f"data: {data.task} {data.features}{' beat-synced' if data.beat else ''} from {data_dir}: "
        f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test clips, "
        "loaded once and shared through the object store"
    )
    for line in selection_lines(plan, data):
        print(line)
    if o.model:
        usual = PRESETS[o.preset].model
        print(f"model: {plan.preset.model} (--model; {o.preset} uses {usual})")
    for note in plan.notes:
        print(note)
    print(f"experiment: {plan.path}{'  (resumed)' if o.resume else ''}")
    if plan.mlflow:
        print(f"mlflow: every trial logged to {plan.mlflow[0]}, experiment {plan.name}")
    print(f"watch live: tensorboard --logdir {plan.path}", flush=True)


def validation_clips(data: Dataset) -> int:
    """Clips a trial is selected on: the validation split, or the smallest fold."""
    return len(data.val) if data.folds is None else int(np.bincount(data.folds).min())


def selection_lines(plan: SweepPlan, data: Dataset) -> list[str]:
    """How trials are scored (folds, crops), and a warning when that rests on few clips."""
    lines = []
    if data.folds is not None:
        sizes = np.bincount(data.folds)
        lines.append(
            f"selection: {data.n_folds}-fold cross-validation over train+val "
            f"({len(data.folds)} clips, {sizes.min()}-{sizes.max()} a fold, grouped by track); "
            "trials report the folds' mean; the tuned best is then retrained on the "
            "train/validation split and tested on the held-out test split"
        )
    crop = largest(plan.space.get("crop", 0))
    if crop:
        unit = "beats" if data.beat else "frames"
        lines.append(
            f"crops: up to {crop:g} s ({data.crop_frames(crop)} {unit}) at random per clip each "
            "epoch; validation and test average each clip's consecutive windows"
        )
    clips = validation_clips(data)
    if clips < SMALL_VALIDATION:
        where = "smallest fold" if data.folds is not None else "validation split"
        fix = "more clips" if data.folds is not None else "--folds 5, or more clips"
        lines.append(
            f"warning: the {where} holds {clips} clips (under {SMALL_VALIDATION}): one clip moves "
            f"its accuracy by {1 / clips:.2f}, so close trials differ by noise; use {fix}"
        )
    return lines


# --------------------------------------------------------------------------- run


def sweep_data_dir(plan: SweepPlan, earlier: dict) -> str:
    """--data-dir, else the data a resumed sweep started with, else $MUSICTUNE_DATA, else the
    genre sweep's data (transfer), else the demo set (tiny for a smoke test)."""
    genre = plan.source.meta.get("data_dir") if plan.source else None
    data_dir = (
        plan.options.data_dir
        or earlier.get("data_dir")
        or os.environ.get(paths.DATA_ENV)
        or (genre if genre and Path(genre).is_dir() else None)
    )
    return str(resolve_data_dir(data_dir, "tiny" if plan.options.smoke_test else "small"))


def sweep_meta(plan: SweepPlan, data: Dataset, data_dir: str, earlier: dict) -> dict:
    o, preset = plan.options, plan.preset
    meta = {
        "preset": o.preset,
        "task": plan.task,
        "model": preset.model,
        "features": preset.features,
        "beat": preset.beat,
        "target": plan.target,
        "metric": plan.metric,
        "mode": MODE,
        "samples": o.samples,
        "search": o.search,
        "scheduler": o.scheduler,
        "max_epochs": o.max_epochs,
        "patience": o.patience,
        "select_by": o.select_by,
        "checkpoint_every": o.checkpoint_every,
        "seed": o.seed,
        "data_dir": str(data_dir),
        "smoke_test": o.smoke_test,
        "command": " ".join(sys.argv),
        "status": "running",
        "started": time.time(),
        "classes": list(data.classes),
        "targets": list(data.targets),
        "space": describe_space(plan.space),  # what was searched, after --space and --set
        "folds": o.folds,
        "test_fraction": o.test_fraction,  # of the multitask train set, when it has no labels
        "val_clips": validation_clips(data),
        **plan.meta,
    }
    return meta | {k: earlier[k] for k in KEPT_ON_RESUME if k in earlier}


def run_sweep(options: SweepOptions | SweepPlan, trainable=None):
    """Run (or resume) one sweep and return Ray's ResultGrid."""
    plan = options if isinstance(options, SweepPlan) else make_plan(options)
    if plan.mlflow:  # a bad URI fails here, before the data is read
        from musictune.tuning.mlflow_tracking import ensure_experiment

        ensure_experiment(plan.mlflow[0], plan.name, plan.mlflow[1])
    earlier = read_sweep_meta(plan.path) if plan.options.resume else {}
    data_dir = sweep_data_dir(plan, earlier)
    preset = plan.preset
    data = load_task(
        plan.task, data_dir, preset.features, preset.beat, plan.target, folds=plan.options.folds,
        test_fraction=plan.options.test_fraction,
    )  # fmt: skip
    plan.check(data)
    connect(plan.resources)
    check_resources(plan.resources)
    print_start(plan, data, data_dir)
    source = plan.source.weights if plan.source else None
    bound = bind_trainable(data, plan.settings, plan.resources, source, trainable)
    tuner = build_tuner(tuner_plan(plan), bound)
    meta = sweep_meta(plan, data, data_dir, earlier)
    write_sweep_meta(plan.path, meta)
    started = time.time()
    hint = f"resume with: {resume_command(plan.options, plan.name, plan.root)}"
    outcome = run_tuner(tuner, meta["samples"], lambda: hint)
    return finish(plan, outcome, data, meta, started, hint)


def finish(plan: SweepPlan, outcome, data: Dataset, meta: dict, started: float, hint: str):
    """Write trials.csv and the final sweep.json, print the summary; the test-split comparison
    only for a finished sweep (an interrupted one has no tuned best yet)."""
    results = outcome.results
    table = trial_table(results, plan.metric, outcome.status, plan.settings.select_by)
    write_experiment_file(plan.path, TRIALS_FILE, table.to_csv(index=False))
    meta["wall_time_s"] = meta.get("wall_time_s", 0.0) + time.time() - started
    meta["status"] = "interrupted" if outcome.interrupted else "finished"
    if not outcome.interrupted:
        meta["finished"] = time.time()
    meta["trials"] = len(table)
    write_sweep_meta(plan.path, meta)

    def comparison() -> None:
        meta["test"] = compare_on_test(results, data, plan, meta)
        write_sweep_meta(plan.path, meta)

    columns = ["lr", "dropout", *plan.columns]
    comparing = None if outcome.interrupted else comparison
    print_summary(table, plan.metric, plan.path, plan.root, plan.name, columns, comparing)
    if outcome.interrupted:
        ended = len(results) - len(outcome.unfinished)
        raise SweepInterrupted(
            f"{ended} of {meta['samples']} trials ended and are kept in {plan.path}; {hint}"
        )
    return results
