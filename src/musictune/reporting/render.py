"""The render step: a report's pages and files from its results alone.

`render_report` writes index.md, index.html, the PNGs, summary.csv / summary.json and the
per-experiment CSVs into a report folder that already holds the saved results (results.json and
each experiment's trials.csv). Nothing here reads the sweeps, loads data, or trains, so a
`--render-only` run rebuilds a report in seconds and gives the same page as the first build.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from musictune.reporting import reference
from musictune.reporting.html import Document
from musictune.reporting.noise import RULE
from musictune.reporting.results import ReportResults
from musictune.reporting.sections import describe_experiment
from musictune.reporting.views import describe_anytime_by_task, describe_views
from musictune.training import baselines
from musictune.training.evaluation import format_mean_sd

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
    describe_anytime_by_task(results, doc, root)
    describe_views(results, doc, root)
    reference_section(results, doc)
    for section in sections:
        doc.blocks += section.blocks
    write_summary(rows, root)
    doc.write(root)


def write_summary(rows: list[dict], root: Path) -> None:
    """summary.csv (the list-valued columns left out) and summary.json (everything)."""
    frame = pd.DataFrame(rows)
    listed = [
        c
        for c in frame
        if c.endswith("_values") or c in ("baseline_seeds", "default_config", "paired_seeds")
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
        "the same seeds and budget; tuned − default is the mean ± sd of the per-seed differences "
        f"of the test metric, and {RULE}. Chance: majority class / stratified random guessing "
        "(genre), the training mean (affect; Spearman undefined, so its MSE is compared)."
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
            "tuned − default (paired)": [paired_cell(r) for r in rows],
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


def paired_cell(row: dict) -> str:
    """Tuned - default of the test metric, paired by seed, and whether it is within noise;
    `-` for results saved before the paired difference."""
    if "paired_n" not in row:
        return "-"
    if not row["paired_n"]:
        return "not measured"
    sd = row.get("paired_sd")
    spread = "" if sd is None or math.isnan(sd) else f" ± {sd:.3f}"
    return f"{row['paired_mean']:+.3f}{spread} (n={row['paired_n']}), {row['paired_verdict']}"


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

COURSE_NOTE = (
    f"Published test figures of the {reference.SOURCE} (genre: its test split of "
    f"{reference.COURSE_TEST_CLIPS} clips; affect: a {reference.COURSE_AFFECT_SPLIT}; the "
    "course split column names each), not measured here. A figure stands beside an "
    "experiment only when task, model kind (lstm: lstm and course_lstm; cnn: cnn and course_cnn), "
    "features, beat and target all agree (transfer: the fine-tuned backbone only, the one the "
    "course published), and the measured side is the same test metric: mean ± sd over the tested "
    "config's seeds. A regression mean is the mean of the three single-target experiments' test "
    "means. Demo data is synthetic: its figures show the pipeline runs, not how it compares."
)


def measured(results: ReportResults) -> tuple[list[reference.Measured], list[str]]:
    """The experiments as the pairing sees them, and why the others have no course figures
    (their data is not the course's)."""
    kept, excluded = [], []
    for e in results.experiments:
        data = e.data
        why = reference.not_course_data(data.task, data.classes, data.origin == "extracted")
        if why:
            excluded.append(f"{e.name} ({data.data_dir}): {why}")
            continue
        tested = [t for t in e.tested if t.trial_id == e.row.get("tested_trial")][:1]
        demo = data.origin == "demo" if data.origin else bool(e.row.get("demo_data"))
        where = "demo data (synthetic)" if demo else data.data_dir
        kept.append(
            reference.Measured(
                name=f"{e.name} ({e.meta.get('model')})",
                meta=e.meta,
                config=tested[0].config if tested else {},
                runs=[r.metrics for r in tested[0].runs] if tested else [],
                data=f"{where}, {data.test} test clips" + split_note(data.test_note),
            )
        )
    return kept, excluded


def split_note(test_note: str) -> str:
    """How the test clips were held out, when not as a labelled test split."""
    return "" if test_note == "held-out test split" else f" ({test_note})"


def view_label(r: reference.Reference) -> str:
    features = "fused (mel+chroma)" if r.features == "fused" else r.features
    return f"{features}, {'beat-synced' if r.beat else 'full-length'}"


def measured_cell(pair: reference.Pair) -> str:
    mean = pair.mean
    if mean is None:
        return "-"
    if pair.reference.derived:
        return f"{mean:.3f}"
    return f"{format_mean_sd(mean, pair.sd)} (n={len(pair.values)})"


def pairs_frame(pairs: list[reference.Pair]) -> pd.DataFrame:
    rows = []
    for p in pairs:
        r = p.reference
        target = r.target + (" (fine-tuned)" if r.task == "transfer" else "")
        rows.append(
            {
                "task": r.task,
                "model": r.model.upper(),
                "view": view_label(r),
                "target": target or "-",
                "test metric": baselines.metric_label(r.metric.removesuffix(f"_{r.target}")),
                "course (real FMA)": f"{r.value:g}",
                "measured here": measured_cell(p),
                "experiment": ", ".join(p.experiments) or "-",
                "measured on": p.data or "-",
                "note": p.note,
                "course split": r.split,
            }
        )
    return pd.DataFrame(rows)


def reference_section(results: ReportResults, doc: Document) -> None:
    """Every published figure beside the experiment it belongs to; none at all when no
    experiment ran on the course's data set."""
    doc.heading("Course reference figures")
    kept, excluded = measured(results)
    if not kept:
        doc.note(
            "No course figures: they are the course's results on its own data set, and this "
            "report's data is not that data set (" + "; ".join(excluded) + ")."
        )
        return
    doc.note(COURSE_NOTE)
    if excluded:
        doc.note(
            "Not set beside course figures, their data is not the course's: "
            + "; ".join(excluded)
            + "."
        )
    if any(e.data.origin is None for e in results.experiments):
        doc.note(
            "These results predate the record of the data's origin: only genre classes were "
            "checked against the course's."
        )
    doc.table(pairs_frame(reference.pairs(kept)))
