"""The report head's comparisons across experiments: anytime curves overlaid per task, and the
feature views (and models) of the same task compared on the test split.

From saved results only (each experiment's summary row and anytime curve), so `--render-only`
redraws them. Experiments are compared only when they share task, target, test metric and data
folder: then they differ in model, feature view or sweep settings, which the table shows.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from musictune.reporting import sweep_plots
from musictune.reporting.html import Document
from musictune.reporting.results import ExperimentResult, ReportResults
from musictune.training.evaluation import format_mean_sd, mean_sd

VIEWS_CSV = "views.csv"
VIEWS_PNG = "views.png"


def experiment_label(e: ExperimentResult) -> str:
    m = e.meta
    view = m["features"] + (" beat" if m["beat"] else "")
    return f"{e.name} ({m['model']}, {view})"


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
        sweep_plots.anytime_plot(
            curves, metric, root / name, f"{task}: best {metric} so far ({len(curves)} sweeps)"
        )
        doc.image(name, f"{task}: best {metric} so far, per experiment")


def view_groups(results: ReportResults) -> dict[str, list[ExperimentResult]]:
    """Experiments comparable on the test split (same task, target, test metric and data), in
    groups of two or more, by label (the data folder named only when the report has several)."""
    folders = {e.row["data_dir"] for e in results.experiments}
    groups: dict[str, list[ExperimentResult]] = {}
    for e in results.experiments:
        r = e.row
        label = r["task"] + (f" {r['target']}" if r.get("target") else "") + f", {r['test_metric']}"
        if len(folders) > 1:
            label += f", data {r['data_dir']}"
        groups.setdefault(label, []).append(e)
    return {k: v for k, v in groups.items() if len(v) > 1}


def views_frame(groups: dict[str, list[ExperimentResult]]) -> pd.DataFrame:
    """One row per experiment: its view and model, and its test metric over the tested seeds."""
    rows = []
    for group, experiments in groups.items():
        for e in experiments:
            r, m = e.row, e.meta
            values = [float(v) for v in r["test_values"]]
            mean, sd = mean_sd(values) if values else (float("nan"), float("nan"))
            rows.append(
                {
                    "group": group,
                    "experiment": e.name,
                    "label": experiment_label(e),
                    "model": m["model"],
                    "features": m["features"],
                    "beat": bool(m["beat"]),
                    "metric": r["test_metric"],
                    "mean": mean,
                    "sd": sd,
                    "n": len(values),
                    "trials": r["trials"],
                    "max_epochs": m.get("max_epochs"),
                }
            )
    return pd.DataFrame(rows)


def overlap_notes(frame: pd.DataFrame) -> list[str]:
    """Pairs of a group whose mean ± sd intervals overlap (their difference is within the seeds'
    spread), and those that cannot be judged (one seed: no sd)."""
    notes = []
    for _, part in frame.groupby("group", sort=False):
        for (_, a), (_, b) in combinations(part.iterrows(), 2):
            pair = f"{a['experiment']} and {b['experiment']}"
            if np.isnan(a["sd"]) or np.isnan(b["sd"]):
                notes.append(f"{pair}: one seed, no sd: overlap not judged")
            elif abs(a["mean"] - b["mean"]) <= a["sd"] + b["sd"]:
                notes.append(f"{pair}: the intervals (mean ± sd) overlap")
            else:
                notes.append(f"{pair}: the intervals (mean ± sd) do not overlap")
    return notes


def describe_views(results: ReportResults, doc: Document, root: Path) -> None:
    groups = view_groups(results)
    if not groups:
        return
    frame = views_frame(groups)
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
    sweep_plots.views_plot(
        {g: part for g, part in frame.groupby("group", sort=False)},
        root / VIEWS_PNG,
        "test metric, mean ± sd over seeds",
    )
    doc.image(VIEWS_PNG, "test metric mean ± sd per experiment, comparable experiments together")
