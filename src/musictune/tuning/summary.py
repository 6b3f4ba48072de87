"""After a sweep: the trial table (trials.csv), the console summary and the tuned best tested
beside the baselines on the test split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from musictune.data.dataset import Dataset
from musictune.training.selection import best_epoch_figures, rank_order, selection
from musictune.tuning.storage import TRIALS_FILE, is_uri

if TYPE_CHECKING:
    from musictune.training.baselines import Figures
    from musictune.tuning.plan import SweepPlan

MODE = "max"
METRIC_LABELS = {"macro_f1": "macro F1", "mse": "MSE", "spearman": "Spearman"}


def text_table(rows: list[Figures], metrics: list[str]) -> str:
    """The comparison as an aligned console table: labels left, mean ± sd right."""

    def cell(f: Figures, metric: str) -> str:
        mean, sd = f.mean_sd(metric)
        if mean is None or mean != mean:  # undefined (a constant prediction), or not measured
            return "n/a (constant)" if mean is None else "-"
        return f"{mean:.3f}" + ("" if sd != sd else f" ± {sd:.3f}")

    heads = [METRIC_LABELS.get(m, m.replace("spearman_", "Spearman ")) for m in metrics]
    grid = [["", *heads]] + [[f.title, *(cell(f, m) for m in metrics)] for f in rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
    lines = [
        "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])])
        for r in grid
    ]
    return "\n".join(line.rstrip() for line in lines)


def ray_trials(results) -> list:
    """Ray's Trial objects behind a ResultGrid, in its order: status and crash count live there
    (Ray 2.60 has no public accessor for them)."""
    analysis = getattr(results, "_experiment_analysis", None)
    trials = list(getattr(analysis, "trials", None) or [])
    return trials if len(trials) == len(results) else []


def first_error(result) -> str:
    """The trial's error, or the first crash a retry survived (Ray logs those in error.txt)."""
    if result.error:
        return (str(result.error).strip().splitlines() or [type(result.error).__name__])[0][:200]
    log = Path(result.path) / "error.txt"
    if not log.is_file():
        return ""
    lines = [s for s in log.read_text(errors="replace").splitlines() if s.strip()]
    return next((s.strip()[:200] for s in lines if not s.startswith("Failure #")), "")


def result_trial_id(result) -> str:
    """A Ray result's trial id, as trials.csv records it."""
    return (result.metrics or {}).get("trial_id") or Path(result.path).name


def rank_figures(result, metric: str, select_by: str) -> dict:
    """What the tie-break (`selection.rank_key`) reads of a Ray result: its trial id, best
    metric and loss, and its best epoch with the loss and metric there."""
    history = result.metrics_dataframe
    row = {"trial_id": result_trial_id(result)}
    for key in dict.fromkeys((metric, "val_loss")):
        if history is not None and key in history:
            row[f"best_{key}"] = history[key].min() if "loss" in key else history[key].max()
    return row | best_epoch_figures(history, metric, select_by)


def ranked_results(results, metric: str, select_by: str = "metric") -> list:
    """The trials that ended without an error, best first by the one tie-break (see
    `training.selection`): what the tuned best, a report and a transfer all choose from."""
    rows = [rank_figures(r, metric, select_by) for r in results]
    order = rank_order(rows, metric, select_by)
    return [results[i] for i in order if results[i].error is None]


def trial_table(
    results, metric: str, status: dict[str, str] | None = None, select_by: str = "metric"
) -> pd.DataFrame:
    """One tidy row per trial: status, config, last and best metrics, epochs, folder; the best
    epoch and the loss and metric there (the tie-break's columns). Best trial first, ranked by
    `selection.rank_key`.

    `status` (trial id -> status) overrides the statuses the ResultGrid carries.
    """
    status = status or {}
    rows = []
    trials = ray_trials(results)
    for i, result in enumerate(results):
        history = result.metrics_dataframe
        last = result.metrics or {}
        trial = trials[i] if trials else None
        row = {
            "trial_id": result_trial_id(result),
            # RUNNING / PENDING / PAUSED only after Ctrl-C: those trials resume with --resume.
            "status": status.get(trial.trial_id, trial.status)
            if trial
            else ("ERROR" if result.error else "TERMINATED"),
            # Times the trial's process died; each is retried from the last checkpoint while
            # --max-failures allows.
            "crashes": int(getattr(trial, "num_failures", 0) or 0),
            **{k: v for k, v in (result.config or {}).items()},
            "epochs": last.get("training_iteration", 0),
            "diverged": int(last.get("diverged", 0) or 0),
            "error": first_error(result),
            "time_total_s": last.get("time_total_s"),
            "path": result.path,
        }
        per_target = [] if history is None else [c for c in history if c.startswith("val_spearman")]
        for key in dict.fromkeys(
            ("val_macro_f1", "val_accuracy", "val_loss", "train_loss", metric, *per_target)
        ):
            if history is not None and key in history:
                row[f"last_{key}"] = history[key].iloc[-1]
                row[f"best_{key}"] = history[key].min() if "loss" in key else history[key].max()
        rows.append(row | best_epoch_figures(history, metric, select_by))
    order = rank_order(rows, metric, select_by)
    return pd.DataFrame([rows[i] for i in order]).reset_index(drop=True)


def failure_lines(table: pd.DataFrame) -> list[str]:
    """What went wrong in a sweep, one line per kind: crashes retried, failures, divergence."""
    lines = []
    crashes = table.get("crashes", pd.Series(dtype=int)).fillna(0)
    if (crashes > 0).any():
        lines.append(
            f"{int((crashes > 0).sum())} trial(s) crashed ({int(crashes.sum())} crash(es)) and "
            "were retried from their last checkpoint up to --max-failures times "
            "(crashes and error columns of trials.csv)"
        )
    errors = int((table["status"] == "ERROR").sum()) if "status" in table else 0
    if errors:
        lines.append(
            f"{errors} trial(s) failed after all retries (--max-failures): see the error column "
            "of trials.csv and error.txt in the trial folder"
        )
    diverged = int(table.get("diverged", pd.Series(dtype=int)).fillna(0).sum())
    if diverged:
        lines.append(
            f"{diverged} trial(s) diverged (NaN/inf loss): stopped at once and scored the worst "
            "value (try a lower --lr-max)"
        )
    return lines


def print_summary(
    table: pd.DataFrame,
    metric: str,
    path: str,
    root: str,
    name: str,
    columns: list[str],
    comparison: Callable[[], None] | None = None,
) -> None:
    """The top 5 trials (`columns`: the tuned values to show), what went wrong, then
    `comparison` (the test-split table), then where the results are and what to run next."""
    shown = [c for c in (*columns, "epochs", f"best_{metric}") if c in table]
    if "status" in table and (table["status"] != "TERMINATED").any():
        shown.append("status")  # ERROR, or RUNNING / PENDING after Ctrl-C
    print(f"\ntop 5 of {len(table)} trials by best {metric}:")
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 120):
        print(table[shown].head(5).to_string(index=False))
    for line in failure_lines(table):
        print(line)
    if comparison is not None:
        comparison()
    print(f"\nexperiment: {path}")
    print(f"trial table: {path}/{TRIALS_FILE}")
    print(f"next:  tensorboard --logdir {path}")
    if "status" not in table or table["status"].isin(["TERMINATED", "ERROR"]).all():
        if is_uri(root):  # reports read a local copy
            copy = "aws s3 sync" if root.startswith("s3://") else "copy"
            print(f"       {copy} {path} results/{name}")
            root = "results"
        print(f"       musictune report --storage {root} --sweep {name}")


# --------------------------------------------------------------------------- test split


def best_checkpoint(
    results, metric: str, select_by: str = "metric"
) -> tuple[object, object, str] | None:
    """The tuned best trial (`ranked_results`: the one tie-break) and its best epoch's
    checkpoint by what the sweep selected epochs with (--select-by).

    Trials checkpoint at each new best epoch, every --checkpoint-every epochs and at their end;
    a trial that saved none (a crash before its first) gives way to the next best, with a note.
    """
    ranked = ranked_results(results, metric, select_by)
    for result in ranked:
        if result.best_checkpoints:
            best_id = result_trial_id(ranked[0])
            note = "" if result is ranked[0] else f"; the best trial, {best_id}, saved none"
            return result, result.get_best_checkpoint(*selection(metric, select_by)), note
    return None


def test_tuned_best(results, data: Dataset, metric: str, seed: int, select_by: str):
    """The tuned best's best checkpoint tested once: (Figures, what sweep.json records) or None."""
    from musictune.training import baselines
    from musictune.training.checkpoints import (
        CHECKPOINT_FILE,
        load_checkpoint,
        model_from_checkpoint,
    )
    from musictune.training.evaluation import evaluate_model

    found = best_checkpoint(results, metric, select_by)
    if found is None:
        return None
    result, checkpoint, note = found
    with checkpoint.as_directory() as folder:
        saved = load_checkpoint(Path(folder) / CHECKPOINT_FILE)
    seed = int(result.config.get("seed", seed))
    evaluation = evaluate_model(model_from_checkpoint(saved), data, seed, data.task)
    trial = result_trial_id(result)
    epoch = int(saved["state"]["epoch"])
    note = f"trial {trial}, checkpoint of epoch {epoch}{note}"
    tuned = baselines.Figures("tuned", "tuned best", [evaluation.metrics], [seed], note)
    where = {"trial": trial, "checkpoint": checkpoint.path, "checkpoint_epoch": epoch}
    return tuned, where, dict(result.config)


def retrain_tuned_best(results, data: Dataset, plan: SweepPlan):
    """K-fold sweeps: a trial's K models each saw part of train+val, so the tuned best config
    is trained once more on the train/validation split (early stopping on validation, as the
    report's reruns do) and that model is tested: (Figures, what sweep.json records, config)."""
    from musictune.training import baselines

    ranked = ranked_results(results, plan.metric, plan.settings.select_by)
    if not ranked:
        return None
    best, trial = ranked[0], result_trial_id(ranked[0])
    print(f"\nretraining the tuned best ({trial}) on the train/validation split ...", flush=True)
    source = plan.source.weights if plan.source else None
    run = baselines.train_default(data, dict(best.config), plan.settings, source)
    seed = int(best.config.get("seed", plan.options.seed))
    note = f"trial {trial}, retrained on train/validation, best epoch {run.best_epoch}"
    tuned = baselines.Figures("tuned", "tuned best", run.figures.runs, [seed], note)
    where = {"trial": trial, "retrained": True, "best_epoch": run.best_epoch}
    return tuned, where, dict(best.config)


def train_untuned_default(data: Dataset, plan: SweepPlan, meta: dict, config: dict, seed: int):
    """The untuned default trained once here, or a row that says why not."""
    from musictune.training import baselines

    default = baselines.Figures("default", "untuned default", note="not trained")
    if not plan.options.baseline_train:
        default.note = "not trained: --no-baseline-train"
        return default, None
    settings = plan.settings
    print(
        f"training the untuned default for comparison ({baselines.describe_default(meta)}; "
        f"up to {settings.max_epochs} epochs, patience {settings.patience}, seed {seed}, "
        f"{settings.threads} thread(s)) ...",
        flush=True,
    )
    source = plan.source.weights if plan.source else None
    try:
        trained = baselines.train_default(data, config, settings, source)
    except KeyboardInterrupt:
        default.note = "stopped by Ctrl-C"
        print("  stopped (Ctrl-C): no untuned default in this comparison")
        return default, None
    print(
        f"  done in {trained.wall_time_s:.1f} s ({trained.epochs} epochs, best epoch "
        f"{trained.best_epoch})"
    )
    return trained.figures, trained


def compare_on_test(results, data: Dataset, plan: SweepPlan, meta: dict) -> dict:
    """Print the tuned best beside the untuned default and chance on the test split; return the
    figures for sweep.json ("test").

    The tuned best is its best saved checkpoint (trials save one every --checkpoint-every epochs
    and at their end), tested once; the untuned default (`baselines`) is trained here, once,
    with the sweep's seed, epoch budget and patience, unless --no-baseline-train; stratified
    guessing is averaged over the seeds a report's reruns use.
    """
    from musictune.training import baselines

    metrics = baselines.shown_metrics(data)
    select_by = plan.settings.select_by
    if data.folds is not None:
        found = retrain_tuned_best(results, data, plan)
    else:
        found = test_tuned_best(results, data, plan.metric, plan.options.seed, select_by)
    if found is None:
        print("\ntest split: no trial saved a checkpoint to test; no comparison")
        return {"skipped": "no trial saved a checkpoint"}
    tuned, where, config = found
    seed = tuned.seeds[0]
    split = f"{data.test_note}, {len(data.test)} clips"
    print(f"\ntest split ({split}): the tuned best beside baselines")
    config = baselines.default_config(config, meta)
    default, trained = train_untuned_default(data, plan, meta, config, seed)
    seeds = [seed + i for i in range(baselines.CHANCE_SEEDS)]
    rows = [tuned, default, *baselines.chance_baselines(data, seeds)]
    print(text_table(rows, metrics))
    test = {
        "split": data.test_note,
        "clips": len(data.test),
        "metrics": metrics,
        "tuned": tuned.as_json(metrics) | where,
        "default": trained.as_json(metrics) if trained else default.as_json(metrics),
    }
    return test | {f.key: f.as_json(metrics) for f in rows[2:]}
