"""Per-seed figures of a rerun, from saved results: the page's seed table, the seeds' learning
curves and `<trial>-test.csv` (one row per tested seed: training summary and every test metric).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from musictune.reporting import plots
from musictune.reporting.experiments import Experiment
from musictune.reporting.html import Document
from musictune.reporting.results import TestedConfig


def describe_rerun(
    exp: Experiment, t: TestedConfig, doc: Document, folder: Path, curves: bool = True
) -> None:
    """Per-seed table (epochs, best epoch, validation and test metrics) and the seeds' curves."""
    trained = [s for s in t.rerun.seeds if s.tested]
    doc.table(
        pd.DataFrame(
            [
                {
                    "seed": s.seed,
                    "epochs": s.epochs,
                    "best epoch": s.best_epoch,
                    "tested epoch": s.checkpoint_epoch,
                    f"best {exp.metric}": s.best_val,
                    **{f"test {k}": v for k, v in run.metrics.items() if not k.startswith("f1_")},
                }
                for s, run in zip(trained, t.runs)
            ]
        )
    )
    if t.rerun.errors:
        doc.note("Failed seeds (retried on the next report run): " + "; ".join(t.rerun.errors))
    if t.rerun.wall_time_s is not None:
        doc.note(f"Rerun folder: {t.rerun.path} (trained in {t.rerun.wall_time_s:.0f} s).")
    if not curves:
        return
    plots.learning_curves(
        {f"seed {s.seed}": pd.DataFrame(s.history) for s in t.rerun.seeds},
        exp.metric,
        folder / f"{t.trial_id}-rerun-curves.png",
        f"{exp.name}: reruns of {t.trial_id}",
    )
    doc.image(f"{exp.name}/{t.trial_id}-rerun-curves.png", "rerun learning curves, one per seed")


def save_seed_metrics(exp: Experiment, t: TestedConfig, path: Path) -> None:
    """`<trial>-test.csv`: one row per seed, training summary and every test metric."""
    trained = {s.seed: s for s in t.rerun.seeds} if t.rerun else {}
    rows = []
    for run in t.runs:
        s = trained.get(run.seed)
        extra = (
            {
                "epochs": s.epochs,
                "best_epoch": s.best_epoch,
                "tested_epoch": s.checkpoint_epoch,
                f"best_{exp.metric}": s.best_val,
            }
            if s
            else {}
        )
        rows.append({"seed": run.seed, **extra, **run.metrics})
    pd.DataFrame(rows).to_csv(path, index=False)
