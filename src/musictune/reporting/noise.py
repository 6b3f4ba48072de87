"""Whether a report's differences are real: the tuned best against the untuned default, paired
by seed and judged by `RULE`; a warning when few validation clips chose the tuned best."""

from __future__ import annotations

import math

from musictune.reporting.html import signed, test_cell
from musictune.reporting.results import DataFacts, PairedDifference, ReportResults

FEW_VAL_CLIPS = 50  # fewer validation clips than this: the report warns
RULE = (
    "a difference is within noise when the mean of the per-seed differences is no larger than "
    "their sd (|mean| ≤ sd, i.e. a paired t statistic of at most √n); with one seed there is no "
    "sd and it is not judged"
)


def paired_difference(
    metric: str, tuned: dict[int, float | None], default: dict[int, float | None], absent: str = ""
) -> PairedDifference:
    """Tuned - default of `metric` on the seeds both were tested with (None leaves a seed out)."""
    both = [s for s in tuned.keys() & default.keys() if _finite(tuned[s]) and _finite(default[s])]
    if not absent and not both:
        absent = "no seed tested both" if tuned and default else "the untuned default has no result"
    seeds = [] if absent else sorted(both)
    differences = [float(tuned[s]) - float(default[s]) for s in seeds]
    return PairedDifference(metric=metric, seeds=seeds, differences=differences, absent=absent)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def judged(p: PairedDifference) -> str:
    if not p.n:
        return "not measured"
    if p.n < 2:
        return "not judged (one seed)"
    if abs(p.mean) <= p.sd:
        return "within noise"
    return "tuned best ahead beyond noise" if p.mean > 0 else "default ahead beyond noise"


def verdict(p: PairedDifference) -> str:
    """The short answer with its reason: `within noise (|mean| ≤ sd)`."""
    if not p.n:
        return f"{judged(p)}: {p.absent}"
    if p.n < 2:
        return f"{judged(p)}: no sd of the differences"
    return f"{judged(p)} (|mean| {'≤' if abs(p.mean) <= p.sd else '>'} sd)"


def headline(p: PairedDifference) -> str:
    """`tuned - default test_macro_f1 +0.012 ± 0.034 (n=2, paired seeds [0, 1]): within ...`"""
    measured = f" {signed(p.mean, p.sd)} (n={p.n}, paired seeds {p.seeds})" if p.n else ""
    return f"tuned - default test_{p.metric}{measured}: {verdict(p)}"


def paragraph(p: PairedDifference) -> str:
    """The page's account of the paired difference, with its per-seed values and the rule."""
    if not p.n:
        return f"Tuned best − untuned default (test {p.metric}), paired by seed: {verdict(p)}."
    per_seed = ", ".join(f"seed {s}: {d:+.3f}" for s, d in zip(p.seeds, p.differences))
    return (
        f"Tuned best − untuned default (test {p.metric}), paired by seed (both retrained with "
        f"seeds {p.seeds}): {signed(p.mean, p.sd)} (n={p.n}), mean ± sd of the per-seed "
        f"differences ({per_seed}): **{verdict(p)}**. The rule: {RULE}."
    )


def few_val_clips(meta: dict, data: DataFacts) -> tuple[int, str] | None:
    """(clips, where) when fewer than FEW_VAL_CLIPS chose the tuned best: sweep.json's count
    (K-fold: the smallest fold's), else the validation split loaded; None if enough or unknown."""
    folds, clips = meta.get("folds") or 0, meta.get("val_clips")
    if not isinstance(clips, int) or isinstance(clips, bool):
        if folds or not data.val:
            return None
        clips = int(data.val)
    if clips >= FEW_VAL_CLIPS:
        return None
    if folds:
        return clips, f"the smallest of the {int(folds)} folds holds {clips} validation clips"
    return clips, f"the validation split holds {clips} clips"


def val_warning(meta: dict, data: DataFacts) -> str:
    """The page's warning on few validation clips, with what a clip is worth; '' if enough."""
    few = few_val_clips(meta, data)
    if few is None:
        return ""
    clips, where = few
    if data.task == "genre":
        step = f"{1 / clips:.3f}" if clips else "-"
        noise = f"one clip more or less classified right moves validation accuracy by {step}"
    else:
        step = f"{1 / math.sqrt(clips - 1):.2f}" if clips > 1 else "-"
        noise = f"Spearman's rho over so few clips varies by about {step} (1/√(n−1)) by chance"
    return (
        f"Few validation clips: {where} (fewer than {FEW_VAL_CLIPS}): {noise}. Trials this "
        "close are tied in all but name and the tuned best may be the one the split's noise "
        "favoured: judge it by its paired difference from the untuned default on the test split, "
        "not by its validation score."
    )


def selection_text(meta: dict, rerun: bool) -> str:
    """How K-fold or crops scored trials and what was tested; '' for a plain single split."""
    parts = []
    folds = meta.get("folds") or 0
    if folds:
        tested = (
            "the reruns train the tuned best and the untuned default on the train/validation "
            "split (early stopping on validation) and test them on the held-out test split"
            if rerun
            else "the sweep's checkpoint is a fold's model (it saw part of train+validation)"
        )
        parts.append(
            f"Trials were selected by {folds}-fold cross-validation: train and validation "
            f"pooled into {folds} folds (stratified, grouped by track), each trial scored by the "
            f"mean over its {folds} fold models. No fold model saw all the data, so {tested}."
        )
    crop = (meta.get("space") or {}).get("crop")
    if crop:
        shown = f"{crop:g} s" if isinstance(crop, (int, float)) else "length searched"
        parts.append(
            f"Trained on random crops ({shown}); validation and test scores average each "
            "clip's consecutive windows, one score per clip."
        )
    return " ".join(parts)


def top_lines(results: ReportResults) -> list[str]:
    """What the report command prints per experiment: best validation and test as the table
    reads, the paired difference, and any warning on few validation clips."""
    lines = []
    for e in results.experiments:
        r = e.row
        best = f"best {r['metric']} {r['best_val']:.4f} (trial {r['best_trial']})"
        lines.append(f"{e.name}: {best}, {test_cell(r)}")
        if e.comparison.paired is not None:
            lines.append(f"{e.name}: {headline(e.comparison.paired)}")
        if few := few_val_clips(e.meta, e.data):
            lines.append(
                f"{e.name}: warning: {few[1]} (fewer than {FEW_VAL_CLIPS}): the tuned best may be "
                "noise, judge it by the paired difference"
            )
    return lines
