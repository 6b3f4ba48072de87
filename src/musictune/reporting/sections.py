"""One experiment's section of the page, from its saved results: text, tables, PNGs and CSVs
(per-seed test metrics, `baselines.csv`). Reads only the report's own files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from musictune.reporting import plots
from musictune.reporting.html import Document, figures_cell, format_mean_sd, metric_label
from musictune.reporting.mattered import describe_anytime, describe_importance, describe_parallel
from musictune.reporting.noise import paragraph, selection_text, val_warning
from musictune.reporting.results import Comparison, ExperimentResult, ReportResults, TestedConfig
from musictune.training.baselines import seed_span
from musictune.training.evaluation import mean_sd
from musictune.tuning.experiments import Experiment

FEATURE_MAPS_PNG = "feature-maps.png"
BASELINES_CSV = "baselines.csv"  # per experiment: every comparison row's figures, per seed
SPACE_NAMES = {"loguniform": "log-uniform", "uniform": "uniform", "randint": "integer"}


def experiment_view(result: ExperimentResult, folder: Path) -> Experiment:
    """The saved experiment over the report's copy of its trial table (no Ray)."""
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
    if warning := val_warning(exp.meta, data):
        doc.note(warning)
    if selection := selection_text(exp.meta, report.rerun):
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
    describe_importance(exp, result, doc, folder)  # what mattered in the sweep
    describe_parallel(exp, result, doc, folder)
    describe_anytime(exp, result, doc, folder)
    for t in result.tested:
        describe_test(exp, result, t, report, doc, folder)
    describe_feature_maps(exp, result, doc, folder)
    describe_comparison(exp, result, report, doc, folder)
    return doc


def searched(spec) -> str:
    """A sweep.json space entry as shown: `log-uniform 4e-05 .. 0.01`, `fixed 64`."""
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, args),) = spec.items()
        if kind == "choice" and isinstance(args, list):
            return "choice of " + ", ".join(json.dumps(a) for a in args)
        if kind in SPACE_NAMES and isinstance(args, list) and len(args) == 2:
            high = " (excluded)" if kind == "randint" else ""
            return f"{SPACE_NAMES[kind]} {args[0]:.4g} .. {args[1]:.4g}{high}"
    return f"fixed {json.dumps(spec, default=str)}"


def describe_space(space, doc: Document) -> None:
    """The search space the sweep used (older sweeps did not record it: nothing)."""
    if not isinstance(space, dict) or not space:
        return
    doc.text("Search space (as the sweep used it):")
    doc.table(pd.DataFrame({"key": list(space), "searched": [searched(v) for v in space.values()]}))


def describe_trials(exp: Experiment, result: ExperimentResult, doc: Document, folder: Path) -> None:
    finished, value = exp.finished_trials, exp.best_column
    errors = int((exp.trials["status"] == "ERROR").sum())
    doc.text(
        f"{len(exp.trials)} trials ({len(finished)} finished, {errors} failed), "
        f"{exp.meta.get('search', '?')} search, {exp.meta.get('scheduler', '?')} scheduler, "
        f"up to {exp.meta.get('max_epochs', '?')} epochs; selected by {exp.metric} on the "
        f"validation split. Full trial table: `{result.trials}`."
    )
    hparams = [c for c in result.hyperparameters if c in finished]
    doc.table(finished[["trial_id", *hparams, "epochs", value]].head(10))
    if result.hyperparameters:
        title = f"{exp.name}: {value} per trial"
        plots.hyperparameter_scatter(finished, hparams, value, folder / "scatter.png", title)
        caption = f"{value} against each hyperparameter (colour: dropout, marker: layers)"
        doc.image(f"{exp.name}/scatter.png", caption)
    else:
        doc.note("No hyperparameter varied between trials: no scatter plot.")
    if result.curves:
        n, curves = len(result.curves), {t: pd.DataFrame(h) for t, h in result.curves.items()}
        title = f"{exp.name}: learning curves of the top {n} trials"
        plots.learning_curves(curves, exp.metric, folder / "curves.png", title)
        doc.image(f"{exp.name}/curves.png", f"learning curves of the top {n} trials")


def mean_sd_table(runs: list[dict], keys: list[str], first: str, head: str, prefix: str = ""):
    cells = [format_mean_sd(*mean_sd([r[k] for r in runs])) for k in keys]
    return pd.DataFrame({first: [k.removeprefix(prefix) for k in keys], head: cells})


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
    metrics = [r.metrics for r in t.runs]
    main = [k for k in metrics[0] if not k.startswith("f1_")]
    doc.text(
        f"Test split ({result.data.test_note}, {result.data.test} clips): mean ± sd over seeds."
    )
    doc.table(mean_sd_table(metrics, main, "test metric", "mean ± sd").assign(n=len(metrics)))
    pd.DataFrame(seed_rows(exp, t)).to_csv(folder / f"{t.trial_id}-test.csv", index=False)
    if exp.task != "genre":
        describe_regression(exp, t, doc, folder)
        return
    f1 = [k for k in metrics[0] if k.startswith("f1_")]
    doc.table(mean_sd_table(metrics, f1, "class", "F1 mean ± sd", "f1_"))
    doc.text("scikit-learn classification report (predictions of all seeds pooled):")
    doc.pre(t.report)
    png = f"{t.trial_id}-confusion.png"
    title = f"{exp.name}: normalised confusion matrix (test)"
    plots.confusion_matrix_plot(t.confusion, tuple(result.data.classes), folder / png, title)
    doc.image(f"{exp.name}/{png}", "normalised confusion matrix (rows: true)")


def describe_regression(exp: Experiment, t: TestedConfig, doc: Document, folder: Path) -> None:
    def rho(metrics: dict, target: str) -> float:
        return metrics.get(f"spearman_{target}", metrics.get("spearman"))

    rhos = {target: float(np.mean([rho(r.metrics, target) for r in t.runs])) for target in t.pairs}
    png = f"{t.trial_id}-scatter-test.png"
    title = f"{exp.name}: predicted vs true (test, seeds pooled)"
    pairs = {target: (p.true, p.predicted) for target, p in t.pairs.items()}
    plots.predicted_vs_true(pairs, rhos, folder / png, title)
    doc.image(f"{exp.name}/{png}", "predicted against true on the test split")


def describe_feature_maps(
    exp: Experiment, result: ExperimentResult, doc: Document, folder: Path
) -> None:
    """What the CNN sees: the tested CNN's first conv blocks on a few test clips."""
    maps = result.feature_maps
    if maps is None or not maps.clips:
        return
    doc.heading("What the CNN sees", 3)
    which = "one per class" if exp.task == "genre" else "spread over the target's range"
    doc.text(
        f"Mean activation (over channels) of the first conv blocks of the tested checkpoint "
        f"(seed {maps.seed}) for {len(maps.clips)} test clips ({which}), beside the input the "
        "first block receives; features upward, time across; each panel on its own scale."
    )
    title = f"{exp.name}: what the CNN sees (test clips)"
    plots.feature_map_grid(maps.columns, maps.clips, maps.maps, folder / FEATURE_MAPS_PNG, title)
    doc.image(f"{exp.name}/{FEATURE_MAPS_PNG}", "input and mean maps of conv blocks 1 and 2")


def seed_rows(exp: Experiment, t: TestedConfig) -> list[dict]:
    """One row per tested seed: its training (when rerun) and every test metric."""
    trained = {s.seed: s for s in t.rerun.seeds} if t.rerun else {}
    rows = []
    for run in t.runs:
        s, extra = trained.get(run.seed), {}
        if s:
            extra = {"epochs": s.epochs, "best_epoch": s.best_epoch}
            extra |= {"tested_epoch": s.checkpoint_epoch, f"best_{exp.metric}": s.best_val}
        rows.append({"seed": run.seed, **extra, **run.metrics})
    return rows


def describe_rerun(
    exp: Experiment, t: TestedConfig, doc: Document, folder: Path, curves: bool = True
) -> None:
    """Per-seed table (epochs, best epoch, validation and test metrics) and the seeds' curves."""
    training = {"seed", "epochs", "best_epoch", "tested_epoch", f"best_{exp.metric}"}
    rows = [
        {(k.replace("_", " ", 1) if k in training else f"test {k}"): v for k, v in r.items()}
        for r in seed_rows(exp, t)
    ]
    doc.table(pd.DataFrame(rows).filter(regex="^(?!test f1_)"))
    if t.rerun.errors:
        doc.note("Failed seeds (retried on the next report run): " + "; ".join(t.rerun.errors))
    if t.rerun.wall_time_s is not None:
        doc.note(f"Rerun folder: {t.rerun.path} (trained in {t.rerun.wall_time_s:.0f} s).")
    if not curves:
        return
    png = f"{t.trial_id}-rerun-curves.png"
    curves = {f"seed {s.seed}": pd.DataFrame(s.history) for s in t.rerun.seeds}
    plots.learning_curves(curves, exp.metric, folder / png, f"{exp.name}: reruns of {t.trial_id}")
    doc.image(f"{exp.name}/{png}", "rerun learning curves, one per seed")


def describe_comparison(
    exp: Experiment, result: ExperimentResult, report: ReportResults, doc: Document, folder: Path
) -> None:
    """The tuned best against the untuned default and chance; writes `baselines.csv`."""
    c, data, settings = result.comparison, result.data, report.settings
    doc.heading("Tuned best against baselines (test split)", 3)
    retrained = (
        f", retrained with the same seeds {c.seeds}, up to {settings.max_epochs} "
        f"epochs and patience {settings.patience} as the tuned best."
        if report.rerun
        else "; not retrained in a --no-rerun report (no training)."
    )
    doc.text(
        f"Test split ({data.test_note}, {data.test} clips); mean ± sd over seeds. Untuned "
        f"default: the sweep's config with the defaults of `musictune train` in place of every "
        f"tuned value ({c.default_described})" + retrained
    )
    frame = pd.DataFrame({"": [f.title for f in c.rows], "n": [len(f.runs) for f in c.rows]})
    for m in c.metrics:
        frame[f"test {metric_label(m)}"] = [figures_cell(f, m) for f in c.rows]
    doc.table(frame)
    if c.paired is not None:
        doc.text(paragraph(c.paired))
    elif report.rerun:
        doc.note(
            "These results predate the paired difference (tuned − untuned default, seed by "
            "seed): rebuild the report without --render-only to see it."
        )
    doc.note(chance_note(c, data.task))
    if c.default is not None:
        doc.text(f"Untuned default, per seed ({json.dumps(c.default_config, default=str)}):")
        if c.default.runs:
            describe_rerun(exp, c.default, doc, folder, curves=False)
            csv = folder / f"{c.default.trial_id}-test.csv"
            pd.DataFrame(seed_rows(exp, c.default)).to_csv(csv, index=False)
        else:
            doc.note("No checkpoint to test: " + "; ".join(c.default.rerun.errors))
    per_seed_frame(c).to_csv(folder / BASELINES_CSV, index=False)


def chance_note(c: Comparison, task: str) -> str:
    return (
        "Chance rows: scikit-learn's dummy estimators fitted on the training labels only, scored "
        "with the same metric functions. "
        + (
            f"Majority class: always {c.rows[2].note!r}; stratified random: classes drawn in the "
            f"training proportions, one draw per seed ({seed_span(c.seeds)})."
            if task == "genre"
            else "Training mean: every clip gets the training mean of its target, a constant "
            "prediction, so Spearman's rho is undefined for it (n/a); compare its MSE."
        )
    )


def per_seed_frame(c: Comparison) -> pd.DataFrame:
    """`baselines.csv`: one line per row and run (seed blank for the one-run rows)."""
    per_seed = pd.DataFrame(
        [
            {"row": f.key, "label": f.label, "seed": f.seeds[i] if i < len(f.seeds) else None}
            | {m: run.get(m) for m in c.metrics}
            for f in c.rows
            for i, run in enumerate(f.runs)
        ]
    )
    per_seed["seed"] = per_seed["seed"].astype("Int64")
    return per_seed
