"""The report's top lines, printed by the report command: so a user sees the outcome (per
experiment: best validation, test mean ± sd over seeds, the tuned best minus the untuned default
paired by seed and whether that is within noise, a warning on few validation clips) without
opening the page."""

from __future__ import annotations

from musictune.reporting.noise import headline, val_headline
from musictune.reporting.results import ReportResults
from musictune.training.evaluation import format_mean_sd


def top_lines(results: ReportResults) -> list[str]:
    """Per experiment a line as the cross-sweep table reads, then (results that hold it) the
    paired difference, then any warning on few validation clips."""
    lines = []
    for e in results.experiments:
        r = e.row
        test = format_mean_sd(r["test_mean"], r["test_sd"])
        lines.append(
            f"{e.name}: best {r['metric']} {r['best_val']:.4f} (trial {r['best_trial']}), "
            f"{r['test_metric']} {test} (n={r['seeds']})"
        )
        if e.comparison.paired is not None:
            lines.append(f"{e.name}: {headline(e.comparison.paired)}")
        warning = val_headline(e.meta, e.data)
        if warning:
            lines.append(f"{e.name}: {warning}")
    return lines
