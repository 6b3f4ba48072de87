"""Small data: K-fold selection with crops against one train/validation split, same budget.

    python benchmarks/small_data.py --repeats 1   # 2 sweeps x (samples, epochs), 2 reports
    python benchmarks/small_data.py --quick       # smaller budget

Two sweeps of one preset on the same data with the same trial budget and seed: today's single
split, and `--folds 5 --crop SECONDS`. Each is followed by a report that reruns its tuned best
and the untuned default on the same seeds (3), both on the train/validation split and tested on
the held-out test split. The table gives, per side, the test macro F1 of the tuned best, of the
untuned default, and their paired difference (tuned - default per seed, mean ± sd), the
sweep's wall time, and a 5-fold trial's cost against a one-split trial's.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.reporting import saved  # noqa: E402
from musictune.reporting.build import build_report  # noqa: E402
from musictune.reporting.options import ReportOptions  # noqa: E402
from musictune.tuning.runner import run_sweep  # noqa: E402

FOLDS = 5
CROP_S = 1.5  # the demo clips are 3 s: two crops' worth, scored on 3 windows
REPORT_SEEDS = 3
SIDES = {"one split": {}, f"{FOLDS}-fold, crop {CROP_S:g} s": {"folds": FOLDS, "crop": CROP_S}}


def side(folder: Path, storage: Path, preset: str, name: str, extra: dict, **budget) -> dict:
    """One sweep and its report: the test figures per seed and the sweep's own wall time."""
    options = common.sweep_options(
        preset=preset, data_dir=str(folder), storage=str(storage), name=name, **budget, **extra
    )
    started = time.perf_counter()
    with common.quiet(storage / f"{name}.log"):
        grid = run_sweep(options)
    sweep_s = time.perf_counter() - started
    trial_s = [
        r.metrics.get("time_total_s", np.nan) / max(1, r.metrics.get("training_iteration", 1))
        for r in grid
        if not r.error
    ]
    report = build_report(
        ReportOptions(
            storage=str(storage),
            sweeps=[name],
            out=str(storage / "reports"),
            seeds=REPORT_SEEDS,
            rerun_max_epochs=budget["max_epochs"] * 2,
        )
    )
    experiment = saved.load(report).experiments[0]
    rows = {r.key: r for r in experiment.comparison.rows}
    tuned, default = (
        {s: run["macro_f1"] for s, run in zip(rows[k].seeds, rows[k].runs)}
        for k in ("tuned", "default")
    )
    both = sorted(tuned.keys() & default.keys())
    return {
        "tuned": list(tuned.values()),
        "default": list(default.values()),
        "difference": [tuned[s] - default[s] for s in both],
        "sweep_s": sweep_s,
        "epoch_s": float(np.nanmedian(trial_s)),
        "val_clips": float(experiment.meta.get("val_clips", np.nan)),
    }


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    samples: int = 20,
    max_epochs: int = 20,
    repeats: int = 1,
    seed: int = 0,
) -> list[common.Row]:
    found: dict[str, list[dict]] = {label: [] for label in SIDES}
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-small-") as tmp:
            for i, (label, extra) in enumerate(SIDES.items()):
                budget = {"samples": samples, "max_epochs": max_epochs, "seed": seed + repeat}
                found[label].append(side(data_dir, Path(tmp), preset, f"side{i}", extra, **budget))
    rows = []
    for label, results in found.items():
        seeds = f"seeds {REPORT_SEEDS} per report"
        pooled = {k: [v for r in results for v in r[k]] for k in ("tuned", "default", "difference")}

        rows += [
            common.Row(
                label,
                "test macro F1, tuned best (reruns)",
                pooled["tuned"],
                note=mean_sd(pooled["tuned"]) + f", {seeds}",
            ),
            common.Row(
                label,
                "test macro F1, untuned default (reruns)",
                pooled["default"],
                note=mean_sd(pooled["default"]),
            ),
            common.Row(
                label,
                "paired difference, tuned - default",
                pooled["difference"],
                note=mean_sd(pooled["difference"]) + "; within noise when |mean| <= sd",
            ),
            common.Row(
                label, "validation clips per trial score", common.per_repeat(results, "val_clips")
            ),
            common.Row(label, "sweep wall time (s)", common.per_repeat(results, "sweep_s")),
            common.Row(
                label, "median trial time per epoch (s)", common.per_repeat(results, "epoch_s")
            ),
        ]
    one, folds = (found[label] for label in SIDES)
    cost = [f["epoch_s"] / o["epoch_s"] for o, f in zip(one, folds)]
    rows.append(
        common.Row(
            "K-fold cost",
            f"{FOLDS}-fold epoch / one-split epoch",
            cost,
            f"<= {FOLDS}",
            common.at_most(FOLDS),
            "same process, data shared once; crops make the fold epochs shorter too",
        )
    )
    return rows


def mean_sd(values: list[float]) -> str:
    sd = np.std(values, ddof=1) if len(values) > 1 else float("nan")
    return f"{np.mean(values):.3f} ± {sd:.3f} (n={len(values)})"


def sizes(quick: bool) -> dict:
    return {"samples": 6, "max_epochs": 4} if quick else {"samples": 20, "max_epochs": 20}


def describe(cpus: int, samples: int, max_epochs: int) -> str:
    return (
        f"small data: {samples} trials x up to {max_epochs} epochs (ASHA, random search) per "
        f"side on {cpus} CPUs; reports rerun tuned and default for {REPORT_SEEDS} seeds, up to "
        f"{2 * max_epochs} epochs, patience 10"
    )


def seeds(seed: int, repeats: int) -> str:
    return f"search seed {seed} + repeat (0..{repeats - 1}); report seeds 0..{REPORT_SEEDS - 1}"


def main(argv: list[str] | None = None) -> int:
    return common.script_main(sys.modules[__name__], "Small data: K-fold and crops", argv)


if __name__ == "__main__":
    sys.exit(main())
