"""The render step: a report's pages and files from its results alone.

`render_report` writes index.md, index.html, the PNGs, summary.csv / summary.json and the
per-experiment CSVs into a report folder that already holds the saved results (results.json and
each experiment's trials.csv). Nothing here reads the sweeps, loads data, or trains, so a
`--render-only` run rebuilds a report in seconds and gives the same page as the first build.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from musictune import baselines
from musictune.evaluation import format_mean_sd
from musictune.reporting import reference
from musictune.reporting.html import Document
from musictune.reporting.results import ReportResults
from musictune.reporting.sections import describe_experiment

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"


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
    reference_section(results, doc)
    for section in sections:
        doc.blocks += section.blocks
    write_summary(rows, root)
    doc.write(root)


def write_summary(rows: list[dict], root: Path) -> None:
    """summary.csv (the list-valued columns left out) and summary.json (everything)."""
    frame = pd.DataFrame(rows)
    listed = [
        c for c in frame if c.endswith("_values") or c in ("baseline_seeds", "default_config")
    ]
    frame.drop(columns=listed).to_csv(root / SUMMARY_CSV, index=False)
    (root / SUMMARY_JSON).write_text(json.dumps({"experiments": rows}, indent=2, default=str))


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
        "the same seeds and budget. Chance: majority class / stratified random guessing (genre), "
        "the training mean (affect; Spearman undefined, so its MSE is compared)."
    )


# --------------------------------------------------------------------------- cross-sweep table


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


# --------------------------------------------------------------------------- references


def reference_section(results: ReportResults, doc: Document) -> None:
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
    for exp in results.experiments:
        row = exp.row
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
