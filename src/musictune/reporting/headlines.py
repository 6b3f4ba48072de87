"""The report's top lines, printed by the report command: so a user sees the outcome (per
experiment: best validation, test mean ± sd over seeds) without opening the page."""

from __future__ import annotations

from musictune.evaluation import format_mean_sd
from musictune.reporting.results import ReportResults


def top_lines(results: ReportResults) -> list[str]:
    """One line per experiment, as the cross-sweep table reads."""
    lines = []
    for e in results.experiments:
        r = e.row
        test = format_mean_sd(r["test_mean"], r["test_sd"])
        lines.append(
            f"{e.name}: best {r['metric']} {r['best_val']:.4f} (trial {r['best_trial']}), "
            f"{r['test_metric']} {test} (n={r['seeds']})"
        )
    return lines
