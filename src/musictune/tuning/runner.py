"""Build and run the Ray Tune sweep: the one place that knows Tuner, searchers and schedulers."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from ray import tune

from musictune import paths
from musictune.data import Dataset, load_task
from musictune.metrics import PRIMARY_METRIC
from musictune.tuning.affect import plan_affect
from musictune.tuning.cluster import check_address, check_resources, connect
from musictune.tuning.options import SweepOptions
from musictune.tuning.presets import get_preset
from musictune.tuning.progress import HideRayResumeNotes, SweepInterrupted, SweepProgress
from musictune.tuning.space import search_space
from musictune.tuning.storage import (
    TRIALS_FILE,
    choose_name,
    experiment_path,
    read_sweep_meta,
    storage_root,
    write_experiment_file,
    write_sweep_meta,
)
from musictune.tuning.summary import MODE, compare_on_test, print_summary, ray_trials, trial_table

log = logging.getLogger("musictune")


def tune_environment() -> None:
    """Ray Tune settings the sweep relies on, set by the sweep itself (never at import time)."""
    # Save the experiment state every second, so a killed driver loses no finished trial.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    # The classic console output honours verbose=0: our progress bar and summary replace Ray's.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    quiet = logging.getLogger("ray.tune.tune")
    if not any(isinstance(f, HideRayResumeNotes) for f in quiet.filters):
        quiet.addFilter(HideRayResumeNotes())


# --------------------------------------------------------------------------- tuner


def build_param_space(options: SweepOptions, model: str) -> dict:
    return {
        **search_space(model, options.lr_range, options.dropout_range),
        "model": model,
        "max_epochs": options.max_epochs,
        "patience": options.patience,
        "batch_size": options.batch_size,
        "checkpoint_every": options.checkpoint_every,
        "seed": options.seed,
        "threads": max(1, int(options.cpus_per_trial)),
        "amp": options.amp,
        **options.extra,
    }


def build_search(options: SweepOptions, metric: str):
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if options.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        limit = options.max_concurrent or 2
        return ConcurrencyLimiter(
            OptunaSearch(metric=metric, mode=MODE, seed=options.seed), max_concurrent=limit
        )
    return BasicVariantGenerator(
        random_state=options.seed, max_concurrent=options.max_concurrent or 0
    )


def build_scheduler(options: SweepOptions):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if options.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=options.max_epochs,
        grace_period=options.grace_period,
        reduction_factor=3,
    )


def build_trainable(options: SweepOptions, data: Dataset, trainable=None, source=None):
    from trainables import train_supervised

    resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
    # A transfer sweep also shares the genre checkpoint's weights through the object store.
    shared = {"data": data} if source is None else {"data": data, "source": source}
    return tune.with_resources(
        tune.with_parameters(trainable or train_supervised, **shared), resources
    )


# --------------------------------------------------------------------------- run


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


def run_sweep(options: SweepOptions, trainable=None):
    """Run (or resume) one sweep and return Ray's ResultGrid."""
    tune_environment()
    preset = get_preset(options.preset)
    task = preset.task
    root = storage_root(options.storage)
    if options.address:
        check_address(options.address)  # in seconds, before any minutes of data loading
    # Affect presets: target, feature view, loss weights, transfer source (genre: nothing).
    affect = plan_affect(options.preset, preset, options.target, options.extra, root)
    preset = affect.preset
    name = choose_name(options, root)
    path = experiment_path(root, name)
    demo_size = "tiny" if options.smoke_test else "small"
    # A resumed sweep trains on the data it started with, unless --data-dir says otherwise.
    earlier = read_sweep_meta(path) if options.resume else {}
    data_dir = (
        options.data_dir
        or earlier.get("data_dir")
        or os.environ.get(paths.DATA_ENV)
        or affect.data_dir
    )
    if not data_dir:
        from musictune.demo import ensure_demo

        data_dir = ensure_demo(demo_size)
    data = load_task(task, data_dir, preset.features, preset.beat, affect.target)
    affect.check(data)
    head_task = {"genre": "classification"}.get(task, task)
    metric = PRIMARY_METRIC[head_task]

    connect(options)
    check_resources(options)
    started = time.time()
    print(
        f"musictune sweep {options.preset}: {options.samples} trials, {options.search} search, "
        f"{options.scheduler.upper()} (max {options.max_epochs} epochs"
        + (f", grace {options.grace_period}" if options.scheduler == "asha" else "")
        + f"), {options.cpus_per_trial:g} CPU / {options.gpus_per_trial:g} GPU per trial"
    )
    print(
        f"data: {data.task} {data.features}{' beat-synced' if data.beat else ''} from {data_dir}: "
        f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test clips, "
        "loaded once and shared through the object store"
    )
    for note in affect.notes:
        print(note)
    print(f"experiment: {path}{'  (resumed)' if options.resume else ''}")
    print(f"watch live: tensorboard --logdir {path}", flush=True)

    if affect.source is not None:
        from trainables.transfer import train_transfer

        trainable = build_trainable(options, data, trainable or train_transfer, affect.source)
    else:
        trainable = build_trainable(options, data, trainable)
    progress = SweepProgress(options.samples, metric)
    if options.resume:
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={**build_param_space(options, preset.model), **affect.extra},
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=MODE,
                num_samples=options.samples,
                search_alg=build_search(options, metric),
                scheduler=build_scheduler(options),
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=root,
                failure_config=tune.FailureConfig(max_failures=options.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                callbacks=[progress],
                verbose=0,
            ),
        )
    meta = {
        "preset": options.preset,
        "task": task,
        "model": preset.model,
        "features": preset.features,
        "beat": preset.beat,
        "target": affect.target,
        "metric": metric,
        "mode": MODE,
        "samples": options.samples,
        "search": options.search,
        "scheduler": options.scheduler,
        "max_epochs": options.max_epochs,
        "seed": options.seed,
        "data_dir": str(data_dir),
        "smoke_test": options.smoke_test,
        "command": " ".join(sys.argv),
        "status": "running",
        "started": started,
        "classes": list(data.classes),
        "targets": list(data.targets),
        **affect.meta,
    }
    if earlier:
        # The experiment's own settings: options repeated with --resume do not change them.
        kept = ("samples", "search", "scheduler", "max_epochs", "seed", "smoke_test")
        kept += ("command", "started", "wall_time_s")
        meta |= {k: earlier[k] for k in kept if k in earlier}
    write_sweep_meta(path, meta)
    SweepProgress.ctrl_c, SweepProgress.status = False, {}
    before = signal.getsignal(signal.SIGINT)
    try:
        # Ctrl-C: Tune stops the trials, saves the experiment state and returns.
        results = tuner.fit()
    except KeyboardInterrupt:
        # A second Ctrl-C skipped that last save; the state of a second earlier is on disk.
        raise SweepInterrupted(f"resume with: {resume_command(options, name, root)}") from None
    finally:
        if before is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, before)  # Tune leaves its handler behind
    status = {t.trial_id: t.status for t in ray_trials(results)} | SweepProgress.status
    unfinished = [i for i, s in status.items() if s not in ("TERMINATED", "ERROR")]
    interrupted = SweepProgress.ctrl_c or bool(unfinished) or len(results) < meta["samples"]
    table = trial_table(results, metric, status)
    write_experiment_file(path, TRIALS_FILE, table.to_csv(index=False))
    meta["wall_time_s"] = meta.get("wall_time_s", 0.0) + time.time() - started
    meta["status"] = "interrupted" if interrupted else "finished"
    if not interrupted:
        meta["finished"] = time.time()
    meta["trials"] = len(table)
    write_sweep_meta(path, meta)

    def comparison() -> None:
        meta["test"] = compare_on_test(results, data, options, meta, metric, affect.source)
        write_sweep_meta(path, meta)

    # An interrupted sweep has no tuned best yet: no test-split comparison.
    print_summary(table, metric, path, root, name, None if interrupted else comparison)
    if interrupted:
        ended = len(results) - len(unfinished)
        raise SweepInterrupted(
            f"{ended} of {meta['samples']} trials ended and are kept in {path}; "
            f"resume with: {resume_command(options, name, root)}"
        )
    return results
