"""The render step: the pages from saved results alone (no Ray, no data, no training), so
`--render-only` rebuilds the same page in seconds; here the head of the page and summary files."""

from __future__ import annotations

import json
import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from musictune.reporting import plots
from musictune.reporting.html import UNDEFINED, Document, format_mean_sd, signed, test_cell
from musictune.reporting.noise import RULE
from musictune.reporting.reference import reference_section
from musictune.reporting.results import ExperimentResult, ReportResults
from musictune.reporting.sections import describe_experiment

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
VIEWS_CSV = "views.csv"
VIEWS_PNG = "views.png"
LISTED = ("baseline_seeds", "default_config", "paired_seeds")  # + *_values: not in summary.csv


def render_report(results: ReportResults, root: Path) -> None:
    """Every rendered file of the report into `root`, which holds its saved results."""
    sections = [describe_experiment(results, e, root) for e in results.experiments]
    rows = [e.row for e in results.experiments]
    doc = Document(f"musictune report, {results.created}")
    doc.text(f"Storage `{results.storage}`: {len(results.experiments)} experiment(s).")
    for problem in results.skipped:
        doc.note(f"Skipped: {problem}")
    doc.heading("All experiments")
    doc.table(cross_table(rows))
    doc.note(method_note(results))
    describe_anytime_by_task(results, doc, root)
    describe_views(results, doc, root)
    reference_section(results, doc)
    for section in sections:
        doc.blocks += section.blocks
    frame = pd.DataFrame(rows)
    listed = [c for c in frame if c.endswith("_values") or c in LISTED]
    frame.drop(columns=listed).to_csv(root / SUMMARY_CSV, index=False)
    (root / SUMMARY_JSON).write_text(json.dumps({"experiments": rows}, indent=2, default=str))
    doc.write(root)


def method_note(results: ReportResults) -> str:
    s = results.settings
    if not results.rerun:
        return (
            "Test: the sweep's best checkpoint of its best trial (run without --no-rerun "
            "for seeded reruns). The untuned default is not retrained in a --no-rerun report; "
            "chance: majority class / stratified random guessing (genre), the training mean "
            "(affect)."
        )
    return (
        "Best validation: the sweep's best trial. Test: the best-validation config retrained "
        f"with {s.seeds} seed(s) (early stopping, patience {s.patience}), each seed's best-epoch "
        "checkpoint on the test split; sd is the sample standard deviation over seeds. Untuned "
        "default: the defaults of `musictune train` in place of the tuned values, retrained with "
        "the same seeds and budget; tuned − default is the mean ± sd of the per-seed differences "
        f"of the test metric, and {RULE}. Chance: majority class / stratified random guessing "
        "(genre), the training mean (affect; Spearman undefined, so its MSE is compared)."
    )


def cross_table(rows: list[dict]) -> pd.DataFrame:
    columns = {
        "experiment": lambda r: r["experiment"],
        "model": lambda r: r["model"],
        "features": lambda r: r["features"] + (f" ({r['target']})" if r["target"] else ""),
        "beat": lambda r: "yes" if r["beat"] else "no",
        "best validation": lambda r: f"{r['metric']} {r['best_val']:.4f}",
        "test mean ± sd": test_cell,
        "untuned default (test)": default_cell,
        "tuned − default (paired)": paired_cell,
        "chance (test)": chance_cell,
        "trials": lambda r: f"{r['finished_trials']}/{r['trials']}",
        "wall time": lambda r: f"{r['wall_time_s'] / 60:.1f} min",
    }
    return pd.DataFrame({head: [make(r) for r in rows] for head, make in columns.items()})


def _mean_sd_cell(row: dict, key: str) -> str:
    mean = row.get(key)
    return UNDEFINED if mean is None else format_mean_sd(mean, row.get(f"{key}_sd", math.nan))


def default_cell(row: dict) -> str:
    if not row.get("default_retrained"):
        return "not retrained"
    metric = row["test_metric"].removeprefix("test_")
    return f"{_mean_sd_cell(row, f'default_test_{metric}')} (n={row['seeds']})"


def paired_cell(row: dict) -> str:
    """Tuned - default, paired by seed, and its verdict; `-` for results saved before it."""
    if not row.get("paired_n"):
        return "not measured" if "paired_n" in row else "-"
    difference = signed(row["paired_mean"], row["paired_sd"])
    return f"{difference} (n={row['paired_n']}), {row['paired_verdict']}"


def chance_cell(row: dict) -> str:
    """Genre: majority class / stratified random; affect: the training mean's MSE."""
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


def experiment_label(e: ExperimentResult) -> str:
    m = e.meta
    return f"{e.name} ({m['model']}, {m['features'] + (' beat' if m['beat'] else '')})"


def describe_anytime_by_task(results: ReportResults, doc: Document, root: Path) -> None:
    """One figure per task and metric: every experiment's best validation so far."""
    groups: dict[tuple[str, str], dict] = {}
    for e in results.experiments:
        if e.anytime is not None and e.anytime.best:
            key = (e.meta["task"], e.meta["metric"])
            groups.setdefault(key, {})[experiment_label(e)] = e.anytime
    if not groups:
        return
    doc.heading("Best validation so far, per task")
    doc.text(
        "Each sweep's best validation metric found so far, against wall time and against epochs "
        "trained over all its trials: the earlier a curve flattens, the less its remaining "
        "budget bought. Per experiment, the same curve with each epoch's value and the epochs "
        "that running every trial in full would have cost is in its section."
    )
    for (task, metric), curves in groups.items():
        name = f"anytime-{task}-{metric}.png"
        title = f"{task}: best {metric} so far ({len(curves)} sweeps)"
        plots.anytime_plot(curves, metric, root / name, title)
        doc.image(name, f"{task}: best {metric} so far, per experiment")


def views_frame(results: ReportResults) -> pd.DataFrame:
    """One row per experiment comparable with another (same task, target, test metric, data;
    the data folder in the group's name only when the report has several)."""
    several = len({e.row["data_dir"] for e in results.experiments}) > 1

    def group(r: dict) -> str:
        label = r["task"] + (f" {r['target']}" if r.get("target") else "") + f", {r['test_metric']}"
        return label + (f", data {r['data_dir']}" if several else "")

    groups: dict[str, list[ExperimentResult]] = {}
    for e in results.experiments:
        groups.setdefault(group(e.row), []).append(e)
    rows = []
    for name, experiments in groups.items():
        for e in experiments if len(experiments) > 1 else []:
            r, m = e.row, e.meta
            rows.append({
                "group": name, "experiment": e.name, "label": experiment_label(e),
                "model": m["model"], "features": m["features"], "beat": bool(m["beat"]),
                "metric": r["test_metric"], "mean": r["test_mean"], "sd": r["test_sd"],
                "n": r["seeds"], "trials": r["trials"], "max_epochs": m.get("max_epochs"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def overlap_notes(frame: pd.DataFrame) -> list[str]:
    """Per pair of a group: whether their mean ± sd intervals overlap (one seed: not judged)."""
    notes = []
    for _, part in frame.groupby("group", sort=False):
        for (_, a), (_, b) in combinations(part.iterrows(), 2):
            pair = f"{a['experiment']} and {b['experiment']}"
            if np.isnan(a["sd"]) or np.isnan(b["sd"]):
                notes.append(f"{pair}: one seed, no sd: overlap not judged")
            else:
                apart = abs(a["mean"] - b["mean"]) > a["sd"] + b["sd"]
                notes.append(f"{pair}: the intervals (mean ± sd) {'do not ' * apart}overlap")
    return notes


def describe_views(results: ReportResults, doc: Document, root: Path) -> None:
    frame = views_frame(results)
    if frame.empty:
        return
    frame.drop(columns=["label"]).to_csv(root / VIEWS_CSV, index=False)
    doc.heading("Feature views and models compared (test split)")
    doc.text(
        "Experiments of the same task, target, test metric and data folder, side by side: each "
        "one's tested config, test metric mean ± sd over its seeds. Overlapping intervals mean "
        f"the difference is within the seeds' spread, not a finding. Data: `{VIEWS_CSV}`."
    )
    shown = frame.assign(
        beat=["yes" if b else "no" for b in frame["beat"]],
        **{"test mean ± sd": [format_mean_sd(m, s) for m, s in zip(frame["mean"], frame["sd"])]},
    )
    columns = ["group", "experiment", "model", "features", "beat", "metric", "test mean ± sd"]
    doc.table(shown[[*columns, "n", "trials", "max_epochs"]])
    doc.note("; ".join(overlap_notes(frame)) + ".")
    groups = {g: part for g, part in frame.groupby("group", sort=False)}
    plots.views_plot(groups, root / VIEWS_PNG, "test metric, mean ± sd over seeds")
    doc.image(VIEWS_PNG, "test metric mean ± sd per experiment, comparable experiments together")
