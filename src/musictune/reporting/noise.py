"""Whether a report's differences are real: the tuned best against the untuned default, paired
by seed, and how few validation clips chose the tuned best.

A search over 50 configs on a small validation split picks, among configs that are equally good,
the one the split's noise favoured; its test score can then fall below the untuned default's,
and the spread over seeds can exceed any difference the report shows. So the report pairs the
tuned best and the default seed by seed (both retrained with the same seeds) and applies one
rule, stated on the page (`RULE`), and it warns when the validation split (or the smallest
K-fold fold) holds fewer than `FEW_VAL_CLIPS` clips.

Pure functions of saved results (no Ray, no torch), so `--render-only` redraws them.
"""

from __future__ import annotations

import math

from musictune.reporting.results import DataFacts, PairedDifference

FEW_VAL_CLIPS = 50  # fewer validation clips than this: the report warns
RULE = (
    "a difference is within noise when the mean of the per-seed differences is no larger than "
    "their sd (|mean| ≤ sd, i.e. a paired t statistic of at most √n); with one seed there is no "
    "sd and it is not judged"
)


def paired_difference(
    metric: str, tuned: dict[int, float | None], default: dict[int, float | None], absent: str = ""
) -> PairedDifference:
    """Tuned - default of `metric` on the seeds both were tested with (seed -> value; None, an
    undefined value, leaves the seed out)."""
    if absent:
        return PairedDifference(metric, [], [], absent)
    seeds = sorted(s for s in tuned.keys() & default.keys() if _value(tuned[s], default[s]))
    if not seeds:
        why = "no seed tested both" if tuned and default else "the untuned default has no result"
        return PairedDifference(metric, [], [], why)
    return PairedDifference(metric, seeds, [float(tuned[s]) - float(default[s]) for s in seeds])


def _value(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def judged(p: PairedDifference) -> str:
    """The rule's short answer: `within noise`, which side is ahead beyond noise, `not judged`
    (one seed) or `not measured`."""
    if not p.n:
        return "not measured"
    if p.n < 2:
        return "not judged (one seed)"
    if abs(p.mean) <= p.sd:
        return "within noise"
    return "tuned best ahead beyond noise" if p.mean > 0 else "default ahead beyond noise"


def verdict(p: PairedDifference) -> str:
    """The short answer with its reason: `within noise (|mean| ≤ sd)`."""
    short = judged(p)
    if not p.n:
        return f"{short}: {p.absent}"
    if p.n < 2:
        return f"{short}: no sd of the differences"
    return f"{short} (|mean| {'≤' if abs(p.mean) <= p.sd else '>'} sd)"


def signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}"


def difference_text(p: PairedDifference) -> str:
    """`+0.012 ± 0.034 (n=2)`, or `-` without a difference."""
    if not p.n:
        return "-"
    sd = "" if math.isnan(p.sd) else f" ± {p.sd:.3f}"
    return f"{signed(p.mean)}{sd} (n={p.n})"


def headline(p: PairedDifference) -> str:
    """The report command's line: `tuned - default test_macro_f1 +0.012 ± 0.034 (n=2, paired
    seeds [0, 1]): within noise (|mean| ≤ sd)`."""
    if not p.n:
        return f"tuned - default test_{p.metric}: {verdict(p)}"
    return (
        f"tuned - default test_{p.metric} {difference_text(p).removesuffix(f' (n={p.n})')} "
        f"(n={p.n}, paired seeds {p.seeds}): {verdict(p)}"
    )


def paragraph(p: PairedDifference) -> str:
    """The page's account of the paired difference, with its per-seed values and the rule."""
    if not p.n:
        return f"Tuned best − untuned default (test {p.metric}), paired by seed: {verdict(p)}."
    per_seed = ", ".join(f"seed {s}: {signed(d)}" for s, d in zip(p.seeds, p.differences))
    return (
        f"Tuned best − untuned default (test {p.metric}), paired by seed (both retrained with "
        f"seeds {p.seeds}): {difference_text(p)}, mean ± sd of the per-seed differences "
        f"({per_seed}): **{verdict(p)}**. The rule: {RULE}."
    )


def val_clips(meta: dict, data: DataFacts) -> tuple[int, int] | None:
    """(clips, folds): the validation clips that chose the tuned best (with K-fold, the smallest
    fold's) as sweep.json records them (`val_clips`, `folds`); without that record, the
    validation split the report loaded (single split only); None when not known."""
    folds = meta.get("folds") or 0
    clips = meta.get("val_clips")
    if isinstance(clips, int) and not isinstance(clips, bool):
        return clips, int(folds)
    if not folds and data.val:
        return int(data.val), 0
    return None


def few_val_clips(meta: dict, data: DataFacts) -> str:
    """`the validation split holds 9 clips` when fewer than FEW_VAL_CLIPS validation clips chose
    the tuned best, else ''."""
    known = val_clips(meta, data)
    if known is None or known[0] >= FEW_VAL_CLIPS:
        return ""
    clips, folds = known
    if folds:
        return f"the smallest of the {folds} folds holds {clips} validation clips"
    return f"the validation split holds {clips} clips"


def val_warning(meta: dict, data: DataFacts) -> str:
    """The page's warning on few validation clips, with what a clip is worth; '' if enough."""
    where = few_val_clips(meta, data)
    if not where:
        return ""
    clips = val_clips(meta, data)[0]
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


def val_headline(meta: dict, data: DataFacts) -> str:
    """The report command's warning line, or ''."""
    where = few_val_clips(meta, data)
    if not where:
        return ""
    return (
        f"warning: {where} (fewer than {FEW_VAL_CLIPS}): the tuned best may be noise, judge it by "
        "the paired difference"
    )


def selection_text(meta: dict, rerun: bool) -> str:
    """How the sweep scored trials and how its tuned best became the tested model: K-fold
    and crops say so; a plain single-split sweep says nothing."""
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
