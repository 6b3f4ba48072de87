"""The "tuned best against baselines" part of a section, from saved results: its table, the
untuned default's per-seed figures and `baselines.csv` (every comparison row's figures, per seed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from musictune.reporting.experiments import Experiment
from musictune.reporting.html import Document
from musictune.reporting.noise import paragraph
from musictune.reporting.results import Comparison, ExperimentResult, ReportResults
from musictune.reporting.seeds import describe_rerun, save_seed_metrics
from musictune.training import baselines
from musictune.training.baselines import Figures

BASELINES_CSV = "baselines.csv"  # per experiment: every comparison row's figures, per seed


def describe_comparison(
    exp: Experiment, result: ExperimentResult, report: ReportResults, doc: Document, folder: Path
) -> None:
    """The comparison table with its notes, the default's per-seed table and the CSVs."""
    c, data, settings = result.comparison, result.data, report.settings
    doc.heading("Tuned best against baselines (test split)", 3)
    doc.text(
        f"Test split ({data.test_note}, {data.test} clips); mean ± sd over seeds. Untuned "
        f"default: the sweep's config with the defaults of `musictune train` in place of every "
        f"tuned value ({c.default_described})"
        + (
            f", retrained with the same seeds {c.seeds}, up to {settings.max_epochs} "
            f"epochs and patience {settings.patience} as the tuned best."
            if report.rerun
            else "; not retrained in a --no-rerun report (no training)."
        )
    )
    doc.table(comparison_frame(c.rows, c.metrics))
    if c.paired is not None:
        doc.text(paragraph(c.paired))
    elif report.rerun:
        doc.note(
            "These results predate the paired difference (tuned − untuned default, seed by "
            "seed): rebuild the report without --render-only to see it."
        )
    doc.note(chance_note(c, data.task))
    retrained = c.default
    if retrained is not None:
        doc.text(f"Untuned default, per seed ({json.dumps(c.default_config, default=str)}):")
        if retrained.runs:
            describe_rerun(exp, retrained, doc, folder, curves=False)
            save_seed_metrics(exp, retrained, folder / f"{retrained.trial_id}-test.csv")
        else:
            doc.note("No checkpoint to test: " + "; ".join(retrained.rerun.errors))
    per_seed_frame(c).to_csv(folder / BASELINES_CSV, index=False)


def chance_note(c: Comparison, task: str) -> str:
    return (
        "Chance rows: scikit-learn's dummy estimators fitted on the training labels only, scored "
        "with the same metric functions. "
        + (
            f"Majority class: always {c.rows[2].note!r}; stratified random: classes drawn in the "
            f"training proportions, one draw per seed ({baselines.seed_span(c.seeds)})."
            if task == "genre"
            else "Training mean: every clip gets the training mean of its target, a constant "
            "prediction, so Spearman's rho is undefined for it (n/a); compare its MSE."
        )
    )


def comparison_frame(rows: list[Figures], metrics: list[str]) -> pd.DataFrame:
    """One line per comparison row: its label, runs, and each metric as mean ± sd."""
    frame = pd.DataFrame({"": [f.title for f in rows], "n": [len(f.runs) for f in rows]})
    for m in metrics:
        frame[f"test {baselines.metric_label(m)}"] = [f.cell(m) for f in rows]
    return frame


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
