"""The course's published test figures (patreco3, real FMA data, never measured here) and the
page's section that sets each beside the experiment it belongs to: only an exact match of task,
model kind, feature view, target (transfer: a fine-tuned backbone) and the same test metric, as
a near match reads as a comparison never made. Regression "mean" rows come from the three
single-target experiments."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from musictune.genres import FMA_CLASSES
from musictune.reporting.html import Document, format_mean_sd, metric_label
from musictune.reporting.results import ReportResults
from musictune.training.evaluation import mean_sd

SOURCE = "course lab (patreco3), real FMA data"
COURSE_TEST_CLIPS = 575  # the course's genre test split, as its report states
# The course's affect figures: a held-out 20 % of the multitask set, after 30 epochs.
COURSE_AFFECT_SPLIT = "held-out 20 % of the multitask set, after 30 epochs"
TARGETS = ("valence", "energy", "danceability")
MODEL_KIND = {"lstm": "lstm", "course_lstm": "lstm", "cnn": "cnn", "course_cnn": "cnn"}
MEAN = "mean"  # the target of a mean row


@dataclass(frozen=True)
class Reference:
    """One published figure, with the experiment it belongs to."""

    task: str  # genre | regression | transfer | multitask
    model: str  # a model kind: lstm | cnn (see MODEL_KIND)
    features: str  # mel | chroma | fused
    beat: bool
    target: str  # "" (genre), an affect target, or MEAN
    metric: str  # the test metric: accuracy, macro_f1, spearman, spearman_<target>
    value: float

    @property
    def split(self) -> str:
        """What the course measured this figure on."""
        genre = f"genre test split, {COURSE_TEST_CLIPS} clips"
        return genre if self.task == "genre" else COURSE_AFFECT_SPLIT

    @property
    def derived(self) -> bool:
        """A regression mean: the mean of three experiments, matched by none of them alone."""
        return self.task == "regression" and self.target == MEAN


def _genre(model: str, features: str, beat: bool, accuracy: float, f1: float) -> list[Reference]:
    return [
        Reference("genre", model, features, beat, "", "accuracy", accuracy),
        Reference("genre", model, features, beat, "", "macro_f1", f1),
    ]


def _affect(task: str, model: str, values: tuple[float, ...], metric: str) -> list[Reference]:
    """valence, energy, danceability, mean on beat-synced mel (the course's affect view)."""
    rows = []
    for target, value in zip((*TARGETS, MEAN), values):
        name = metric if task != "multitask" else f"spearman_{target}"
        rows.append(Reference(task, model, "mel", True, target, name, value))
    return rows


REFERENCES: tuple[Reference, ...] = (
    *_genre("lstm", "mel", False, 0.35, 0.23),
    *_genre("lstm", "mel", True, 0.39, 0.25),
    *_genre("lstm", "chroma", False, 0.21, 0.08),
    *_genre("lstm", "fused", False, 0.29, 0.15),
    *_genre("cnn", "mel", False, 0.37, 0.34),
    *_genre("cnn", "mel", True, 0.42, 0.36),
    *_affect("regression", "lstm", (0.135, 0.559, 0.371, 0.355), "spearman"),
    *_affect("regression", "cnn", (0.491, 0.743, 0.569, 0.6007), "spearman"),
    Reference("transfer", "cnn", "mel", True, "energy", "spearman", 0.749),
    *_affect("multitask", "cnn", (0.519, 0.754, 0.543, 0.6054), "spearman"),
)


def matches(meta: dict, config: dict | None = None) -> list[Reference]:
    """The figures an experiment (its sweep.json, its tested config) stands beside; the derived
    regression means are never matched to a single experiment. Transfer: only a fine-tuned
    backbone (the space's fixed freeze_backbone, else the tested config's), as published."""
    task = str(meta.get("task", ""))
    if task == "regression" and meta.get("transfer"):
        task = "transfer"
        frozen = (meta.get("space") or {}).get("freeze_backbone")
        frozen = frozen if isinstance(frozen, bool) else (config or {}).get("freeze_backbone")
        if not isinstance(frozen, bool) or frozen:
            return []
    target = meta.get("target") or ""
    return [
        r
        for r in REFERENCES
        if not r.derived
        and r.task == task
        and r.model == MODEL_KIND.get(str(meta.get("model")))
        and r.features == meta.get("features")
        and r.beat == bool(meta.get("beat"))
        and (task == "multitask" or r.target == target)
    ]


@dataclass(frozen=True)
class Measured:
    """One experiment as the pairing sees it: what identifies it, and its test metrics."""

    name: str
    meta: dict  # its sweep.json
    config: dict  # the tested config
    runs: list[dict[str, float]]  # the tested config's per-seed test metrics
    data: str  # what it was measured on, as the page names it


@dataclass(frozen=True)
class Pair:
    """A figure and what was measured beside it (mean None: nothing measured; note: why)."""

    reference: Reference
    experiments: tuple[str, ...] = ()
    values: tuple[float, ...] = ()  # per seed; a derived mean: per experiment (their means)
    data: str = ""
    note: str = ""
    sd: float = math.nan

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None


def measured_pair(ref: Reference, m: Measured) -> Pair:
    values = [float(r[ref.metric]) for r in m.runs if r.get(ref.metric) is not None]
    if not values:
        return Pair(ref, (m.name,), data=m.data, note="no tested checkpoint")
    return Pair(ref, (m.name,), tuple(values), m.data, sd=mean_sd(values)[1])


def derived_pair(ref: Reference, measured: list[Measured]) -> Pair:
    """A regression mean: the mean of the three single-target experiments' test means, when
    each target has exactly one experiment of that model kind in the report."""
    same = [r for r in REFERENCES if (r.task, r.model) == (ref.task, ref.model)]
    singles = {t: next(r for r in same if r.target == t) for t in TARGETS}
    found = {t: [m for m in measured if r in matches(m.meta, m.config)] for t, r in singles.items()}
    missing = [t for t, ms in found.items() if not ms]
    if missing:
        return Pair(ref, note=f"needs one experiment per target (none for {', '.join(missing)})")
    several = [m.name for ms in found.values() if len(ms) > 1 for m in ms]
    if several:
        return Pair(ref, note=f"several experiments per target ({', '.join(several)}): no mean")
    chosen = {t: ms[0] for t, ms in found.items()}
    means = [measured_pair(singles[t], m).mean for t, m in chosen.items()]
    if any(v is None for v in means):
        return Pair(ref, note="an experiment has no tested checkpoint")
    data = "; ".join(dict.fromkeys(m.data for m in chosen.values()))
    names = tuple(m.name for m in chosen.values())
    return Pair(ref, names, tuple(means), data, "mean of the three experiments' test means")


def pairs(measured: Iterable[Measured]) -> list[Pair]:
    """Every published figure, in the course's order, with each experiment that matches it (one
    line per experiment; one line without a measurement when none does)."""
    measured = list(measured)
    out: list[Pair] = []
    for ref in REFERENCES:
        if ref.derived:
            out.append(derived_pair(ref, measured))
            continue
        beside = [measured_pair(ref, m) for m in measured if ref in matches(m.meta, m.config)]
        out += beside or [Pair(ref, note="no matching experiment in this report")]
    return out


def not_course_data(task: str, classes: list[str], extracted: bool | None) -> str:
    """Why an experiment's data is not the course's ("" when it may be): `musictune extract`'s
    manifest, or genre classes other than the course's ten."""
    if extracted:
        return "made by `musictune extract` (its folder has a musictune.json manifest)"
    if task == "genre" and classes and sorted(classes) != sorted(FMA_CLASSES):
        return f"genre classes {', '.join(classes)} are not the course's ten"
    return ""


COURSE_NOTE = (
    f"Published test figures of the {SOURCE} (genre: its test split of "
    f"{COURSE_TEST_CLIPS} clips; affect: a {COURSE_AFFECT_SPLIT}; the "
    "course split column names each), not measured here. A figure stands beside an "
    "experiment only when task, model kind (lstm: lstm and course_lstm; cnn: cnn and course_cnn), "
    "features, beat and target all agree (transfer: the fine-tuned backbone only, the one the "
    "course published), and the measured side is the same test metric: mean ± sd over the tested "
    "config's seeds. A regression mean is the mean of the three single-target experiments' test "
    "means. Demo data is synthetic: its figures show the pipeline runs, not how it compares."
)


def measured(results: ReportResults) -> tuple[list[Measured], list[str]]:
    """The experiments as the pairing sees them, and why the others have no course figures."""
    kept, excluded = [], []
    for e in results.experiments:
        data = e.data
        why = not_course_data(data.task, data.classes, data.origin == "extracted")
        if why:
            excluded.append(f"{e.name} ({data.data_dir}): {why}")
            continue
        tested = next((t for t in e.tested if t.trial_id == e.row.get("tested_trial")), None)
        demo = data.origin == "demo" if data.origin else bool(e.row.get("demo_data"))
        where = "demo data (synthetic)" if demo else data.data_dir
        held_out = "" if data.test_note == "held-out test split" else f" ({data.test_note})"
        config, runs = (tested.config, [r.metrics for r in tested.runs]) if tested else ({}, [])
        name, on = f"{e.name} ({e.meta.get('model')})", f"{where}, {data.test} test clips{held_out}"
        kept.append(Measured(name, e.meta, config, runs, on))
    return kept, excluded


def pairs_frame(pairs: list[Pair]) -> pd.DataFrame:
    rows = []
    for p in pairs:
        r, mean = p.reference, p.mean
        measured = "-" if mean is None else f"{format_mean_sd(mean, p.sd)} (n={len(p.values)})"
        features = "fused (mel+chroma)" if r.features == "fused" else r.features
        rows.append(
            {
                "task": r.task,
                "model": r.model.upper(),
                "view": f"{features}, {'beat-synced' if r.beat else 'full-length'}",
                "target": r.target + (" (fine-tuned)" if r.task == "transfer" else "") or "-",
                "test metric": metric_label(r.metric.removesuffix(f"_{r.target}")),
                "course (real FMA)": f"{r.value:g}",
                "measured here": f"{mean:.3f}" if r.derived and mean is not None else measured,
                "experiment": ", ".join(p.experiments) or "-",
                "measured on": p.data or "-",
                "note": p.note,
                "course split": r.split,
            }
        )
    return pd.DataFrame(rows)


def reference_section(results: ReportResults, doc: Document) -> None:
    """Every published figure beside its experiment; none when no data is the course's."""
    doc.heading("Course reference figures")
    kept, excluded = measured(results)
    why = "; ".join(excluded)
    if not kept:
        doc.note(
            "No course figures: they are the course's results on its own data set, and this "
            f"report's data is not that data set ({why})."
        )
        return
    doc.note(COURSE_NOTE)
    if excluded:
        doc.note(f"Not set beside course figures, their data is not the course's: {why}.")
    if any(e.data.origin is None for e in results.experiments):
        doc.note(
            "These results predate the record of the data's origin: only genre classes were "
            "checked against the course's."
        )
    doc.table(pairs_frame(pairs(kept)))
