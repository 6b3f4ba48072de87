"""The report's content: one section per experiment, the cross-sweep table, the references.

Imported only once the experiments are known to be reportable: it pulls in Ray, torch,
scikit-learn and matplotlib.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from musictune import baselines
from musictune.baselines import Figures
from musictune.data import Dataset, load_task
from musictune.evaluation import (
    TEST_METRIC,
    Evaluation,
    classification_details,
    evaluate_checkpoint,
    format_mean_sd,
    mean_sd,
    regression_pairs,
    summary_table,
)
from musictune.reporting import plots, reference
from musictune.reporting.experiments import (
    NOT_TUNED,
    TRIALS_FILE,
    Experiment,
    is_demo_data,
)
from musictune.reporting.html import Document
from musictune.reporting.options import ReportOptions
from musictune.reporting.rerun import DONE_FILE, Rerun, rerun_done, run_rerun

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
BASELINES_CSV = "baselines.csv"  # per experiment: every comparison row's figures, per seed
DEFAULT_LABEL = "default"  # the untuned default's rerun and file names
TOP_CURVES = 5  # learning curves of this many best trials


@dataclass
class EvaluatedConfig:
    """One config's test runs (a rerun's seeds, or the sweep's checkpoint)."""

    trial_id: str
    source: str
    runs: list[Evaluation]
    rerun: Rerun | None = None

    @property
    def val_mean(self) -> float:
        return mean_sd([r.best_val for r in self.rerun.runs])[0] if self.rerun else float("nan")


# --------------------------------------------------------------------------- data


class DataCache:
    """Experiments that share a data view load it once."""

    def __init__(self, override: str | None):
        self.override = override
        self.loaded: dict[tuple, Dataset] = {}

    def get(self, exp: Experiment) -> Dataset:
        m = exp.meta
        key = (m["task"], exp.data_dir(self.override), m["features"], m["beat"], m.get("target"))
        if key not in self.loaded:
            self.loaded[key] = load_task(*key)
        return self.loaded[key]


# --------------------------------------------------------------------------- one experiment


def evaluate_configs(
    exp: Experiment, data: Dataset, options: ReportOptions
) -> list[EvaluatedConfig]:
    """Rerun the best config(s) with K seeds and test each seed, or test the sweep checkpoint."""
    tested = []
    for trial_id in exp.best_trials(options.top)["trial_id"]:
        if options.rerun:
            rerun = run_rerun(exp, trial_id, data, options.settings)
            runs = [
                evaluate_checkpoint(r.checkpoint, data, r.seed, exp.head_task)
                for r in rerun.runs
                if r.checkpoint
            ]
            source = f"rerun, {len(runs)} seed(s)" + (" (reused)" if rerun.reused else "")
            tested.append(EvaluatedConfig(trial_id, source, runs, rerun))
        else:
            result = exp.result_of(trial_id)
            checkpoint = result.get_best_checkpoint(exp.metric, exp.mode)
            runs = []
            if checkpoint is not None:
                seed = int(result.config.get("seed", 0))
                runs = [evaluate_checkpoint(checkpoint.path, data, seed, exp.head_task)]
            tested.append(EvaluatedConfig(trial_id, "sweep checkpoint (no rerun)", runs))
    return tested


def chosen(tested: list[EvaluatedConfig]) -> EvaluatedConfig:
    """The config the cross-sweep table reports: best mean validation over its seeds."""
    with_runs = [t for t in tested if t.runs] or tested
    return max(with_runs, key=lambda t: np.nan_to_num(t.val_mean, nan=-np.inf))


def describe_trials(exp: Experiment, doc: Document, folder: Path) -> None:
    finished = exp.finished_trials
    errors = int((exp.trials["status"] == "ERROR").sum())
    doc.text(
        f"{len(exp.trials)} trials ({len(finished)} finished, {errors} failed), "
        f"{exp.meta.get('search', '?')} search, {exp.meta.get('scheduler', '?')} scheduler, "
        f"up to {exp.meta.get('max_epochs', '?')} epochs; selected by {exp.metric} on the "
        f"validation split. Full trial table: `{exp.name}/{TRIALS_FILE}`."
    )
    hparams = exp.hyperparameters()
    shown = [c for c in hparams if c in finished] + ["epochs", exp.best_column]
    doc.table(finished[["trial_id", *shown]].head(10))
    value = exp.best_column
    if hparams:
        name = f"{exp.name}/scatter.png"
        plots.hyperparameter_scatter(
            finished,
            [h for h in hparams if h in finished],
            value,
            folder / "scatter.png",
            f"{exp.name}: {value} per trial",
        )
        doc.image(name, f"{value} against each hyperparameter (colour: dropout, marker: layers)")
    else:
        doc.note("No hyperparameter varied between trials: no scatter plot.")
    histories = exp.histories()
    top = [t for t in finished["trial_id"] if t in histories][:TOP_CURVES]
    if top:
        plots.learning_curves(
            {t: histories[t] for t in top},
            exp.metric,
            folder / "curves.png",
            f"{exp.name}: learning curves of the top {len(top)} trials",
        )
        doc.image(f"{exp.name}/curves.png", f"learning curves of the top {len(top)} trials")


def describe_rerun(
    exp: Experiment, t: EvaluatedConfig, doc: Document, folder: Path, curves: bool = True
) -> None:
    """Per-seed table (epochs, best epoch, validation and test metrics) and the seeds' curves."""
    trained = [r for r in t.rerun.runs if r.checkpoint]
    doc.table(
        pd.DataFrame(
            [
                {
                    "seed": r.seed,
                    "epochs": r.epochs,
                    "best epoch": r.best_epoch,
                    "tested epoch": r.checkpoint_epoch,
                    f"best {exp.metric}": r.best_val,
                    **{f"test {k}": v for k, v in ev.metrics.items() if not k.startswith("f1_")},
                }
                for r, ev in zip(trained, t.runs)
            ]
        )
    )
    if t.rerun.errors:
        doc.note("Failed seeds (retried on the next report run): " + "; ".join(t.rerun.errors))
    if (t.rerun.path / DONE_FILE).exists():
        took = rerun_done(t.rerun.path).get("wall_time_s", float("nan"))
        doc.note(f"Rerun folder: {t.rerun.path} (trained in {took:.0f} s).")
    if not curves:
        return
    plots.learning_curves(
        {f"seed {r.seed}": r.history for r in t.rerun.runs},
        exp.metric,
        folder / f"{t.trial_id}-rerun-curves.png",
        f"{exp.name}: reruns of {t.trial_id}",
    )
    doc.image(f"{exp.name}/{t.trial_id}-rerun-curves.png", "rerun learning curves, one per seed")


def save_seed_metrics(exp: Experiment, t: EvaluatedConfig, path: Path) -> None:
    """`<trial>-test.csv`: one row per seed, training summary and every test metric."""
    trained = {r.seed: r for r in t.rerun.runs} if t.rerun else {}
    rows = []
    for ev in t.runs:
        r = trained.get(ev.seed)
        extra = (
            {
                "epochs": r.epochs,
                "best_epoch": r.best_epoch,
                "tested_epoch": r.checkpoint_epoch,
                f"best_{exp.metric}": r.best_val,
            }
            if r
            else {}
        )
        rows.append({"seed": ev.seed, **extra, **ev.metrics})
    pd.DataFrame(rows).to_csv(path, index=False)


def describe_classification(
    exp: Experiment,
    data: Dataset,
    t: EvaluatedConfig,
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
    details = classification_details(t.runs, data.classes)
    doc.text("scikit-learn classification report (predictions of all seeds pooled):")
    doc.pre(details["report"])
    plots.confusion_matrix_plot(
        details["confusion"],
        data.classes,
        folder / f"{t.trial_id}-confusion.png",
        f"{exp.name}: normalised confusion matrix (test)",
    )
    doc.image(f"{exp.name}/{t.trial_id}-confusion.png", "normalised confusion matrix (rows: true)")


def describe_regression(
    exp: Experiment, data: Dataset, t: EvaluatedConfig, doc: Document, folder: Path
) -> None:
    def rho(ev, target: str) -> float:
        return ev.metrics.get(f"spearman_{target}", ev.metrics.get("spearman"))

    rhos = {target: float(np.mean([rho(ev, target) for ev in t.runs])) for target in data.targets}
    plots.predicted_vs_true(
        regression_pairs(t.runs, data.targets),
        rhos,
        folder / f"{t.trial_id}-scatter-test.png",
        f"{exp.name}: predicted vs true (test, seeds pooled)",
    )
    doc.image(
        f"{exp.name}/{t.trial_id}-scatter-test.png", "predicted against true on the test split"
    )


def describe_test(
    exp: Experiment,
    data: Dataset,
    t: EvaluatedConfig,
    doc: Document,
    folder: Path,
    options: ReportOptions,
) -> None:
    """One tested config: its hyperparameters, the rerun, and the test metrics and figures."""
    config = {k: v for k, v in exp.result_of(t.trial_id).config.items() if k not in NOT_TUNED}
    doc.heading(f"Config of trial {t.trial_id}: {t.source}", 3)
    doc.pre(json.dumps(config, indent=1, default=str))
    if t.rerun:
        s = options.settings
        doc.text(
            f"Retrained with seeds {[r.seed for r in t.rerun.runs]} for up to {s.max_epochs} "
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
    doc.text(f"Test split ({data.test_note}, {len(data.test)} clips): mean ± sd over seeds.")
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
        describe_classification(exp, data, t, summary, doc, folder)
    else:
        describe_regression(exp, data, t, doc, folder)


def compare_with_baselines(
    exp: Experiment,
    data: Dataset,
    best: EvaluatedConfig,
    options: ReportOptions,
    doc: Document,
    folder: Path,
) -> dict:
    """The tuned best beside the untuned default and chance on the test split.

    The default is retrained through the rerun machinery with the tuned best's seeds, budget and
    patience (so it is cached and reused like any rerun); stratified guessing uses the same
    seeds. Writes the section's table and `baselines.csv`, and returns the summary columns.
    """
    metrics = baselines.shown_metrics(data)
    trial_config = dict(exp.result_of(best.trial_id).config)
    base_seed = int(trial_config.get("seed", 0))
    trained = best.rerun.runs if best.rerun else []
    seeds = [r.seed for r in trained] or [base_seed + i for i in range(options.settings.seeds)]
    tuned = Figures(
        "tuned",
        "tuned best",
        [ev.metrics for ev in best.runs],
        [ev.seed for ev in best.runs],
        f"trial {best.trial_id}, {best.source}",
    )
    config = baselines.default_config(trial_config, exp.meta)
    default = Figures("default", "untuned default", note="not retrained: --no-rerun")
    retrained = None
    if options.rerun:
        rerun = run_rerun(exp, DEFAULT_LABEL, data, options.settings, config)
        runs = [
            evaluate_checkpoint(r.checkpoint, data, r.seed, exp.head_task)
            for r in rerun.runs
            if r.checkpoint
        ]
        source = f"rerun, {len(runs)} seed(s)" + (" (reused)" if rerun.reused else "")
        retrained = EvaluatedConfig(DEFAULT_LABEL, source, runs, rerun)
        default = Figures(
            "default", "untuned default", [ev.metrics for ev in runs], [ev.seed for ev in runs]
        )
        default.note = source
    rows = [tuned, default, *baselines.chance_baselines(data, seeds)]

    doc.heading("Tuned best against baselines (test split)", 3)
    doc.text(
        f"Test split ({data.test_note}, {len(data.test)} clips); mean ± sd over seeds. Untuned "
        f"default: the sweep's config with the defaults of `musictune train` in place of every "
        f"tuned value ({baselines.describe_default(exp.meta)})"
        + (
            f", retrained with the same seeds {seeds}, up to {options.settings.max_epochs} "
            f"epochs and patience {options.settings.patience} as the tuned best."
            if options.rerun
            else "; not retrained in a --no-rerun report (no training)."
        )
    )
    doc.table(comparison_frame(rows, metrics))
    doc.note(
        "Chance rows: scikit-learn's dummy estimators fitted on the training labels only, scored "
        "with the same metric functions. "
        + (
            f"Majority class: always {rows[2].note!r}; stratified random: classes drawn in the "
            f"training proportions, one draw per seed ({baselines.seed_span(seeds)})."
            if data.task == "genre"
            else "Training mean: every clip gets the training mean of its target, a constant "
            "prediction, so Spearman's rho is undefined for it (n/a); compare its MSE."
        )
    )
    if retrained is not None:
        doc.text(f"Untuned default, per seed ({json.dumps(config_shown(config), default=str)}):")
        if retrained.runs:
            describe_rerun(exp, retrained, doc, folder, curves=False)
            save_seed_metrics(exp, retrained, folder / f"{DEFAULT_LABEL}-test.csv")
        else:
            doc.note("No checkpoint to test: " + "; ".join(retrained.rerun.errors))
    per_seed = pd.DataFrame(
        [
            {"row": f.key, "label": f.label, "seed": f.seeds[i] if i < len(f.seeds) else None}
            | {m: run.get(m) for m in metrics}
            for f in rows
            for i, run in enumerate(f.runs)
        ]
    )
    per_seed["seed"] = per_seed["seed"].astype("Int64")  # blank for the one-run rows
    per_seed.to_csv(folder / BASELINES_CSV, index=False)
    columns: dict = {"baseline_seeds": seeds, "default_retrained": bool(default.runs)}
    columns["default_config"] = config_shown(config)
    for f in rows:
        columns |= f.columns(metrics)
    if data.task == "genre":
        columns["majority_class"] = rows[2].note
    return columns


def config_shown(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in NOT_TUNED}


def comparison_frame(rows: list[Figures], metrics: list[str]) -> pd.DataFrame:
    """One line per comparison row: its label, runs, and each metric as mean ± sd."""
    frame = pd.DataFrame({"": [f.title for f in rows], "n": [len(f.runs) for f in rows]})
    for m in metrics:
        frame[f"test {baselines.metric_label(m)}"] = [f.cell(m) for f in rows]
    return frame


def report_experiment(
    exp: Experiment, data: Dataset, options: ReportOptions, root: Path
) -> tuple[dict, Document]:
    """One experiment's section and its row of the cross-sweep table."""
    folder = root / exp.name
    folder.mkdir()
    shutil.copyfile(exp.path / TRIALS_FILE, folder / TRIALS_FILE)
    doc = Document(exp.name)
    doc.heading(f"{exp.name}: {exp.label} ({exp.task})")
    doc.text(
        f"Preset {exp.meta.get('preset')}, data {exp.data_dir(options.data_dir)}: "
        f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test clips. "
        f"Command: `{exp.meta.get('command') or '?'}`"
    )
    transfer = exp.meta.get("transfer")
    if isinstance(transfer, dict):
        best = transfer.get("source_best")
        shown = f"{best:.4f}" if isinstance(best, float) else "?"
        doc.text(
            f"Transfer from genre sweep {transfer.get('source_sweep')}, trial "
            f"{transfer.get('source_trial')} ({transfer.get('source_metric')} {shown})."
        )
    describe_trials(exp, doc, folder)
    tested = evaluate_configs(exp, data, options)
    for t in tested:
        describe_test(exp, data, t, doc, folder, options)
    best = chosen(tested)
    compared = compare_with_baselines(exp, data, best, options, doc, folder)
    test_metric = TEST_METRIC[exp.metric]
    values = [r.metrics[test_metric] for r in best.runs]
    mean, sd = mean_sd(values) if values else (float("nan"), float("nan"))
    row = {
        "experiment": exp.name,
        "task": exp.task,
        "model": exp.meta["model"],
        "features": exp.meta["features"],
        "beat": bool(exp.meta["beat"]),
        "target": exp.meta.get("target") or "",
        "metric": exp.metric,
        "best_val": float(exp.finished_trials[exp.best_column].iloc[0]),
        "best_trial": exp.finished_trials["trial_id"].iloc[0],
        "tested_trial": best.trial_id,
        "test_metric": f"test_{test_metric}",
        "test_mean": mean,
        "test_sd": sd,
        "test_values": values,
        "test_source": best.source,
        "seeds": len(values),
        "trials": len(exp.trials),
        "finished_trials": len(exp.finished_trials),
        "wall_time_s": float(exp.meta.get("wall_time_s", float("nan"))),
        "data_dir": exp.meta.get("data_dir"),
        "demo_data": is_demo_data(str(exp.meta.get("data_dir", ""))),
        "rerun_path": str(best.rerun.path) if best.rerun else "",
        "rerun_reused": bool(best.rerun and best.rerun.reused),
        **compared,
    }
    return row, doc


# --------------------------------------------------------------------------- cross-sweep


def cross_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "experiment": [r["experiment"] for r in rows],
            "model": [r["model"] for r in rows],
            "features": [
                r["features"] + (f" ({r['target']})" if r["target"] else "") for r in rows
            ],
            "beat": ["yes" if r["beat"] else "no" for r in rows],
            "best validation": [f"{r['metric']} {r['best_val']:.4f}" for r in rows],
            "test mean ± sd": [
                f"{r['test_metric']} {format_mean_sd(r['test_mean'], r['test_sd'])}"
                + f" (n={r['seeds']})"
                for r in rows
            ],
            "untuned default (test)": [default_cell(r) for r in rows],
            "chance (test)": [chance_cell(r) for r in rows],
            "trials": [f"{r['finished_trials']}/{r['trials']}" for r in rows],
            "wall time": [f"{r['wall_time_s'] / 60:.1f} min" for r in rows],
        }
    )


def _mean_sd_cell(row: dict, key: str) -> str:
    mean = row.get(key)
    if mean is None:
        return baselines.UNDEFINED
    return format_mean_sd(mean, row.get(f"{key}_sd", float("nan")))


def default_cell(row: dict) -> str:
    """The untuned default's primary test metric, as the tuned best's column shows it."""
    if not row.get("default_retrained"):
        return "not retrained"
    metric = row["test_metric"].removeprefix("test_")
    return f"{_mean_sd_cell(row, f'default_test_{metric}')} (n={row['seeds']})"


def chance_cell(row: dict) -> str:
    """Genre: majority class / stratified random; affect: the training mean's MSE beside the
    tuned best's (its rho is undefined)."""
    metric = row["test_metric"].removeprefix("test_")
    if "majority_test_" + metric in row:
        return (
            f"majority {_mean_sd_cell(row, f'majority_test_{metric}')} / stratified "
            + _mean_sd_cell(row, f"stratified_test_{metric}")
        )
    return (
        f"training mean: MSE {_mean_sd_cell(row, 'train_mean_test_mse')} "
        f"(tuned best {_mean_sd_cell(row, 'tuned_test_mse')}), rho n/a"
    )


def reference_section(rows: list[dict], experiments: list[Experiment], doc: Document) -> None:
    doc.heading("Course reference figures")
    doc.note(
        f"Reference figures from the {reference.SOURCE}: published numbers, not measured here. "
        "No genre rows: the course's published genre figures are not recorded in this project."
    )
    doc.table(
        pd.DataFrame(
            [
                {
                    "task": r.task,
                    "target": r.target,
                    "setting": r.setting,
                    f"{r.metric} (reference)": f"{r.value:.2f}",
                }
                for r in reference.REFERENCES
            ]
        )
    )
    beside = []
    for row, exp in zip(rows, experiments):
        for ref in reference.references_for(exp.meta):
            beside.append(
                {
                    "experiment": row["experiment"],
                    "measured here": f"{row['test_metric']} "
                    + format_mean_sd(row["test_mean"], row["test_sd"]),
                    "data": "demo (synthetic)" if row["demo_data"] else str(row["data_dir"]),
                    "course reference (real FMA)": f"{ref.value:.2f} ({ref.setting}, {ref.target})",
                }
            )
    if beside:
        doc.text("Measured results beside the reference figures that match their task:")
        doc.table(pd.DataFrame(beside))
    else:
        doc.note("None of these experiments has a matching reference figure (genre tasks).")


# --------------------------------------------------------------------------- whole report


def write_report(
    tmp: Path,
    experiments: list[Experiment],
    skipped: list[str],
    storage: Path,
    options: ReportOptions,
) -> None:
    """Everything of the report into `tmp`: sections, tables, summary files, index.md/html."""
    data = DataCache(options.data_dir)
    rows, sections = [], []
    for exp in experiments:
        print(f"report: {exp.name} ({exp.label}, {len(exp.trials)} trials)", flush=True)
        row, section = report_experiment(exp, data.get(exp), options, tmp)
        rows.append(row)
        sections.append(section)
    doc = Document(f"musictune report, {time.strftime('%Y-%m-%d %H:%M')}")
    doc.text(f"Storage `{storage}`: {len(experiments)} experiment(s).")
    for problem in skipped:
        doc.note(f"Skipped: {problem}")
    doc.heading("All experiments")
    doc.table(cross_table(rows))
    doc.note(
        "Best validation: the sweep's best trial. Test: the best-validation config retrained "
        f"with {options.settings.seeds} seed(s) (early stopping, patience "
        f"{options.settings.patience}), each seed's best-epoch checkpoint on the test split; "
        "sd is the sample standard deviation over seeds. Untuned default: the defaults of "
        "`musictune train` in place of the tuned values, retrained with the same seeds and "
        "budget. Chance: majority class / stratified random guessing (genre), the training mean "
        "(affect; Spearman undefined, so its MSE is compared)."
        if options.rerun
        else "Test: the sweep's best checkpoint of its best trial (run without --no-rerun "
        "for seeded reruns). The untuned default is not retrained in a --no-rerun report; chance: "
        "majority class / stratified random guessing (genre), the training mean (affect)."
    )
    reference_section(rows, experiments, doc)
    for section in sections:
        doc.blocks += section.blocks
    frame = pd.DataFrame(rows)
    listed = [
        c for c in frame if c.endswith("_values") or c in ("baseline_seeds", "default_config")
    ]
    frame.drop(columns=listed).to_csv(tmp / SUMMARY_CSV, index=False)
    (tmp / SUMMARY_JSON).write_text(json.dumps({"experiments": rows}, indent=2, default=str))
    doc.write(tmp)
