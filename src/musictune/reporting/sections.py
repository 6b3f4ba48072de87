"""One experiment's section of the page, from its saved results: text, tables, PNGs, per-seed CSVs.

Pure rendering: reads the report's own files (the copied trials.csv) and writes into the report
folder; no Ray, no data, no training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from musictune.reporting import plots
from musictune.reporting.comparison import describe_comparison
from musictune.reporting.experiments import Experiment
from musictune.reporting.html import Document
from musictune.reporting.mattered import describe_what_mattered
from musictune.reporting.noise import selection_text, val_warning
from musictune.reporting.results import ExperimentResult, ReportResults, TestedConfig
from musictune.reporting.seeds import describe_rerun, save_seed_metrics
from musictune.training.evaluation import format_mean_sd, summary_table

FEATURE_MAPS_PNG = "feature-maps.png"


def experiment_view(result: ExperimentResult, folder: Path) -> Experiment:
    """The saved experiment as an `Experiment` over the report's copy of its trial table (its
    Ray results are never read here)."""
    trials = pd.read_csv(folder / result.trials, dtype={"trial_id": str})
    return Experiment(result.name, Path(result.path), result.meta, trials)


def describe_experiment(report: ReportResults, result: ExperimentResult, root: Path) -> Document:
    """One experiment's section; its PNGs and CSVs go to `root/<experiment>/`."""
    exp = experiment_view(result, root)
    folder, data = root / exp.name, result.data
    doc = Document(exp.name)
    doc.heading(f"{exp.name}: {exp.label} ({exp.task})")
    doc.text(
        f"Preset {exp.meta.get('preset')}, data {data.data_dir}: "
        f"{data.train} train / {data.val} val / {data.test} test clips. "
        f"Command: `{exp.meta.get('command') or '?'}`"
    )
    warning = val_warning(exp.meta, data)
    if warning:
        doc.note(warning)
    selection = selection_text(exp.meta, report.rerun)
    if selection:
        doc.text(selection)
    transfer = exp.meta.get("transfer")
    if isinstance(transfer, dict):
        best = transfer.get("source_best")
        shown = f"{best:.4f}" if isinstance(best, float) else "?"
        doc.text(
            f"Transfer from genre sweep {transfer.get('source_sweep')}, trial "
            f"{transfer.get('source_trial')} ({transfer.get('source_metric')} {shown})."
        )
    describe_space(exp.meta.get("space"), doc)
    describe_trials(exp, result, doc, folder)
    describe_what_mattered(exp, result, doc, folder)
    for t in result.tested:
        describe_test(exp, result, t, report, doc, folder)
    describe_feature_maps(exp, result, doc, folder)
    describe_comparison(exp, result, report, doc, folder)
    return doc


def searched(spec) -> str:
    """A sweep.json space entry as the page shows it: `log-uniform 4e-05 .. 0.01`, `fixed 64`."""
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, args),) = spec.items()
        if kind == "choice" and isinstance(args, list):
            return "choice of " + ", ".join(json.dumps(a) for a in args)
        names = {"loguniform": "log-uniform", "uniform": "uniform", "randint": "integer"}
        if kind in names and isinstance(args, list) and len(args) == 2:
            high = " (excluded)" if kind == "randint" else ""
            return f"{names[kind]} {args[0]:.4g} .. {args[1]:.4g}{high}"
    return f"fixed {json.dumps(spec, default=str)}"


def describe_space(space, doc: Document) -> None:
    """The search space the sweep used (after --space and --set); older sweeps did not record
    it, and get nothing."""
    if not isinstance(space, dict) or not space:
        return
    doc.text("Search space (as the sweep used it):")
    doc.table(pd.DataFrame({"key": list(space), "searched": [searched(v) for v in space.values()]}))


def describe_trials(exp: Experiment, result: ExperimentResult, doc: Document, folder: Path) -> None:
    finished = exp.finished_trials
    errors = int((exp.trials["status"] == "ERROR").sum())
    doc.text(
        f"{len(exp.trials)} trials ({len(finished)} finished, {errors} failed), "
        f"{exp.meta.get('search', '?')} search, {exp.meta.get('scheduler', '?')} scheduler, "
        f"up to {exp.meta.get('max_epochs', '?')} epochs; selected by {exp.metric} on the "
        f"validation split. Full trial table: `{result.trials}`."
    )
    hparams = result.hyperparameters
    shown = [c for c in hparams if c in finished] + ["epochs", exp.best_column]
    doc.table(finished[["trial_id", *shown]].head(10))
    value = exp.best_column
    if hparams:
        plots.hyperparameter_scatter(
            finished,
            [h for h in hparams if h in finished],
            value,
            folder / "scatter.png",
            f"{exp.name}: {value} per trial",
        )
        caption = f"{value} against each hyperparameter (colour: dropout, marker: layers)"
        doc.image(f"{exp.name}/scatter.png", caption)
    else:
        doc.note("No hyperparameter varied between trials: no scatter plot.")
    if result.curves:
        n = len(result.curves)
        plots.learning_curves(
            {t: pd.DataFrame(h) for t, h in result.curves.items()},
            exp.metric,
            folder / "curves.png",
            f"{exp.name}: learning curves of the top {n} trials",
        )
        doc.image(f"{exp.name}/curves.png", f"learning curves of the top {n} trials")


def describe_test(
    exp: Experiment,
    result: ExperimentResult,
    t: TestedConfig,
    report: ReportResults,
    doc: Document,
    folder: Path,
) -> None:
    """One tested config: its hyperparameters, the rerun, and the test metrics and figures."""
    doc.heading(f"Config of trial {t.trial_id}: {t.source}", 3)
    doc.pre(json.dumps(t.config, indent=1, default=str))
    if t.rerun:
        s = report.settings
        doc.text(
            f"Retrained with seeds {[r.seed for r in t.rerun.seeds]} for up to {s.max_epochs} "
            f"epochs, early stopping with patience {s.patience} on {exp.metric}; each seed's "
            "best-epoch checkpoint is tested (where later epochs tie with the best, Ray keeps the "
            "latest of them: the tested epoch)."
        )
    if not t.runs:
        doc.note("No checkpoint to test: " + "; ".join(t.rerun.errors if t.rerun else []))
        return
    if t.rerun:
        describe_rerun(exp, t, doc, folder)
    summary = summary_table([r.metrics for r in t.runs])
    main = summary[~summary["metric"].str.startswith("f1_")]
    data = result.data
    doc.text(f"Test split ({data.test_note}, {data.test} clips): mean ± sd over seeds.")
    doc.table(
        pd.DataFrame(
            {
                "test metric": main["metric"],
                "mean ± sd": [format_mean_sd(m, s) for m, s in zip(main["mean"], main["sd"])],
                "n": main["n"],
            }
        )
    )
    save_seed_metrics(exp, t, folder / f"{t.trial_id}-test.csv")
    if exp.head_task == "genre":
        describe_classification(exp, result, t, summary, doc, folder)
    else:
        describe_regression(exp, t, doc, folder)


def describe_classification(
    exp: Experiment,
    result: ExperimentResult,
    t: TestedConfig,
    summary: pd.DataFrame,
    doc: Document,
    folder: Path,
) -> None:
    per_class = summary[summary["metric"].str.startswith("f1_")]
    doc.table(
        pd.DataFrame(
            {
                "class": per_class["metric"].str.removeprefix("f1_"),
                "F1 mean ± sd": [
                    format_mean_sd(m, s) for m, s in zip(per_class["mean"], per_class["sd"])
                ],
            }
        )
    )
    doc.text("scikit-learn classification report (predictions of all seeds pooled):")
    doc.pre(t.report)
    plots.confusion_matrix_plot(
        t.confusion,
        tuple(result.data.classes),
        folder / f"{t.trial_id}-confusion.png",
        f"{exp.name}: normalised confusion matrix (test)",
    )
    doc.image(f"{exp.name}/{t.trial_id}-confusion.png", "normalised confusion matrix (rows: true)")


def describe_regression(exp: Experiment, t: TestedConfig, doc: Document, folder: Path) -> None:
    def rho(metrics: dict, target: str) -> float:
        return metrics.get(f"spearman_{target}", metrics.get("spearman"))

    rhos = {target: float(np.mean([rho(r.metrics, target) for r in t.runs])) for target in t.pairs}
    plots.predicted_vs_true(
        {target: (p.true, p.predicted) for target, p in t.pairs.items()},
        rhos,
        folder / f"{t.trial_id}-scatter-test.png",
        f"{exp.name}: predicted vs true (test, seeds pooled)",
    )
    doc.image(
        f"{exp.name}/{t.trial_id}-scatter-test.png", "predicted against true on the test split"
    )


def describe_feature_maps(
    exp: Experiment, result: ExperimentResult, doc: Document, folder: Path
) -> None:
    """What the CNN sees: the tested CNN's first conv blocks on a few test clips."""
    maps = result.feature_maps
    if maps is None or not maps.clips:
        return
    doc.heading("What the CNN sees", 3)
    which = "one per class" if exp.head_task == "genre" else "spread over the target's range"
    doc.text(
        f"Mean activation (over channels) of the first conv blocks of the tested checkpoint "
        f"(seed {maps.seed}) for {len(maps.clips)} test clips ({which}), beside the input the "
        "first block receives; features upward, time across; each panel on its own scale."
    )
    plots.feature_map_grid(
        maps.columns,
        maps.clips,
        maps.maps,
        folder / FEATURE_MAPS_PNG,
        f"{exp.name}: what the CNN sees (test clips)",
    )
    doc.image(f"{exp.name}/{FEATURE_MAPS_PNG}", "input and mean maps of conv blocks 1 and 2")
