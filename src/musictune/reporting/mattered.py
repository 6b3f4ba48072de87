"""What mattered in one sweep: hyperparameter importance, parallel coordinates and the anytime
curve; each section writes the numbers it drew as a CSV beside its PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from musictune.reporting import plots
from musictune.reporting.html import Document, format_mean_sd
from musictune.reporting.results import ExperimentResult
from musictune.tuning.experiments import Experiment

IMPORTANCE = "importance"  # file stems: <experiment>/importance.png and .csv
PARALLEL = "parallel"
ANYTIME = "anytime"
OLDER = "These results predate this section: rebuild the report (without --render-only)."


def importance_method(exp: Experiment, result: ExperimentResult) -> str:
    imp = result.importance
    budget = exp.meta.get("max_epochs", "?")
    scheduler = str(exp.meta.get("scheduler", "the scheduler")).upper()  # ASHA, FIFO
    return (
        f"Share of the variance in each trial's best {exp.metric} that each searched "
        f"hyperparameter explains: {imp.evaluator} over the {imp.trials} finished trials, "
        f"normalised to sum to 1; mean ± sd over {imp.resamples} bootstrap resamples of the "
        f"trials (seeded). {imp.stopped_early} of the {imp.trials} trials ended before "
        f"{budget} epochs (stopped by the {scheduler} scheduler or by their "
        "own early stopping). Optuna's importance evaluators use only COMPLETE trials and ignore "
        "PRUNED ones, so every finished trial enters as COMPLETE with its best value so far: an "
        "early-stopped trial counts with what it reached in fewer epochs. Failed trials are left "
        "out. A forest on few trials is rough: read the sd before the ranking."
    )


def describe_importance(exp: Experiment, result: ExperimentResult, doc: Document, folder: Path):
    doc.heading("Hyperparameter importance", 3)
    imp = result.importance
    if imp is None:
        doc.note(OLDER)
        return
    if imp.absent:
        doc.note(f"No importance for this sweep: {imp.absent}.")
        return
    doc.text(importance_method(exp, result))
    heads = ["hyperparameter", "importance (all trials)", "bootstrap mean", "bootstrap sd"]
    table = pd.DataFrame(dict(zip(heads, [imp.params, imp.importance, imp.mean, imp.sd])))
    table.to_csv(folder / f"{IMPORTANCE}.csv", index=False)
    spread = [format_mean_sd(m, s) for m, s in zip(imp.mean, imp.sd)]
    shares = [f"{v:.3f}" for v in imp.importance]
    resampled = f"mean ± sd ({imp.resamples} resamples)"
    doc.table(
        pd.DataFrame({"hyperparameter": imp.params, table.columns[1]: shares, resampled: spread})
    )
    title = f"{exp.name}: what explains {exp.best_column}"
    plots.importance_bars(imp, folder / f"{IMPORTANCE}.png", title)
    doc.image(f"{exp.name}/{IMPORTANCE}.png", "hyperparameter importance (fANOVA), mean ± sd")


def describe_parallel(exp: Experiment, result: ExperimentResult, doc: Document, folder: Path):
    """One line per finished trial, best first, over its varied hyperparameters and metric."""
    doc.heading("Parallel coordinates of the trials", 3)
    finished = exp.finished_trials
    hparams = [h for h in result.hyperparameters if h in finished]
    table = finished[["trial_id", *hparams, exp.best_column]].reset_index(drop=True)
    if not hparams:
        doc.note("No hyperparameter varied between trials: no parallel coordinates.")
        return
    table.to_csv(folder / f"{PARALLEL}.csv", index=False)
    top = min(plots.TOP, len(table))
    doc.text(
        f"One line per finished trial ({len(table)}), across one axis per varied hyperparameter "
        f"and its best {exp.metric}; colour: that metric; the top {top} drawn thick. Each axis "
        "spans the values tried (lr-like keys on a log scale; choices evenly spaced). Data: "
        f"`{exp.name}/{PARALLEL}.csv`."
    )
    title = f"{exp.name}: trials in parallel coordinates"
    png = folder / f"{PARALLEL}.png"
    plots.parallel_coordinates(table, hparams, exp.best_column, exp.mode, png, title)
    doc.image(f"{exp.name}/{PARALLEL}.png", "parallel coordinates, one line per trial")


def anytime_summary(exp: Experiment, result: ExperimentResult) -> str:
    """When the sweep first had its final best, and what every trial in full would have cost."""
    c = result.anytime
    trained = len(c.best)
    first = next(i for i, b in enumerate(c.best) if b == c.best[-1] or np.isnan(c.best[-1]))
    when = f" ({c.wall_s[first]:.1f} s)" if c.wall_s else ""
    text = (
        f"The sweep trained {trained} epochs over {c.trials} trials and first reached its best "
        f"{exp.metric} {c.best[-1]:.4f} after {first + 1} of them{when}."
    )
    if c.max_epochs:
        full = c.trials * c.max_epochs
        text += (
            f" Every trial run to its {c.max_epochs} epochs would have been {full} epochs: "
            f"early stopping trained {trained / full:.0%} of that."
        )
    return text


def describe_anytime(exp: Experiment, result: ExperimentResult, doc: Document, folder: Path):
    doc.heading("Anytime curve: best validation so far", 3)
    if result.anytime is None:
        doc.note(OLDER)
        return
    if not result.anytime.best:
        doc.note(f"No trial reported {exp.metric}: no anytime curve.")
        return
    doc.text(
        f"Best {exp.metric} found so far after each epoch any trial reported (all trials pooled, "
        "in the order they reported), against wall time since the first trial began (Ray's "
        "timestamps, refined by each trial's own clock) and against epochs trained. "
        + anytime_summary(exp, result)
        + f" Data: `{exp.name}/{ANYTIME}.csv`."
    )
    c = result.anytime
    frame = pd.DataFrame({"epochs_trained": np.arange(1, len(c.best) + 1)})
    if c.wall_s:
        frame["wall_s"] = c.wall_s
    frame.assign(value=c.value, best_so_far=c.best).to_csv(folder / f"{ANYTIME}.csv", index=False)
    title = f"{exp.name}: best {exp.metric} so far"
    plots.anytime_plot({exp.label: c}, exp.metric, folder / f"{ANYTIME}.png", title)
    doc.image(f"{exp.name}/{ANYTIME}.png", "best validation so far, by wall time and by epochs")
