"""Search efficiency: the course's sequential random search against this project's default sweep.

Both runs are `run_sweep` with the same preset, search space, number of trials, seed and
patience, so within a repeat they draw the same configurations in the same order, and both
use every core Ray has:
- the course's method: FIFO, one trial at a time, every trial to the epoch budget unless early
  stopping (the same patience) ends it; the one trial gets all the CPUs (torch threads = CPUs);
- the project's default: ASHA (grace 1, reduction 3), one CPU (one torch thread) per trial, as
  many trials at once as the CPUs allow.
The figure that matters is the wall time each needs to first reach the course's best validation
macro F1 within 0.01, read from the per-trial results Ray recorded. Each repeat draws new
configurations (seed + repeat, shared by both sides); the project runs first in each, so any
cold-start cost falls on the side whose claim is being tested. The best-so-far validation macro
F1 against wall time of every repeat is plotted (search_efficiency.png).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.tuning.options import SweepOptions  # noqa: E402
from musictune.tuning.runner import run_sweep  # noqa: E402

METRIC = "val_macro_f1"
TOLERANCE = 0.01
TARGET = 0.25
PLOT = "search_efficiency.png"
SIDES = ("course", "project")


def result_times(history: pd.DataFrame) -> pd.Series:
    """Epoch-end wall-clock times (epoch seconds) of one trial.

    Ray stamps results with whole seconds; `time_total_s` counts from the trial's start in
    float seconds. Every `timestamp - time_total_s` is the start rounded down by under a second,
    so their maximum recovers the start far more precisely than any single stamp.
    """
    start = (history["timestamp"] - history["time_total_s"]).max()
    return start + history["time_total_s"]


def best_so_far(histories: list[pd.DataFrame | None], started: float) -> pd.DataFrame:
    """The best METRIC any trial had reported by each moment: columns seconds (from the sweep's
    start) and best, one row per epoch result, in time order."""
    parts = [
        pd.DataFrame({"seconds": result_times(h) - started, "value": h[METRIC]})
        for h in histories
        if h is not None and METRIC in h and len(h)
    ]
    if not parts:
        return pd.DataFrame({"seconds": [], "best": []})
    points = pd.concat(parts).sort_values("seconds", kind="stable")
    return pd.DataFrame(
        {"seconds": points["seconds"].to_numpy(), "best": points["value"].cummax().to_numpy()}
    )


def until(curve: pd.DataFrame, seconds: float) -> pd.DataFrame:
    """The curve held at its last value until the sweep's end, so the plot shows its length."""
    if not len(curve):
        return curve
    end = pd.DataFrame({"seconds": [seconds], "best": [curve["best"].iloc[-1]]})
    return pd.concat([curve, end], ignore_index=True)


def time_to_reach(histories: list[pd.DataFrame], level: float, started: float) -> float:
    """Seconds from the sweep's start until any trial first reported METRIC >= level."""
    curve = best_so_far(histories, started)
    reached = curve[curve["best"] >= level]
    return float(reached["seconds"].iloc[0]) if len(reached) else float("inf")


def best_metric(grid) -> float:
    values = [
        r.metrics_dataframe[METRIC].max()
        for r in grid
        if r.metrics_dataframe is not None and METRIC in r.metrics_dataframe
    ]
    return float(max(values)) if values else float("nan")


def epochs_trained(grid) -> int:
    return int(sum((r.metrics or {}).get("training_iteration", 0) for r in grid))


def configs(grid) -> list[tuple]:
    keys = ("lr", "dropout", "num_layers", "hidden_size", "bidirectional", "conv_blocks")
    return sorted(
        tuple(round(r.config.get(k), 12) if k in r.config else None for k in keys) for r in grid
    )


def side_options(base: dict, cpus: int, repeat: int) -> dict[str, SweepOptions]:
    """The two sweeps of one repeat: the same trials, seed, patience and cores.

    The project's side is the default sweep (ASHA, 1 CPU = 1 torch thread per trial, as many
    at once as the CPUs allow); the course's side runs one trial at a time on all the CPUs
    (torch threads = CPUs), so neither leaves a core idle.
    """
    project = common.sweep_options(**base, name=f"project-{repeat}")
    course = common.sweep_options(
        **base,
        name=f"course-{repeat}",
        scheduler="fifo",
        max_concurrent=1,
        cpus_per_trial=float(cpus),
        patience=project.patience,
    )
    return {"project": project, "course": course}


def timed_sweep(options: SweepOptions, log: Path):
    started = time.time()
    with common.quiet(log):
        grid = run_sweep(options)
    errors = [r.error for r in grid if r.error]
    if errors:
        raise RuntimeError(f"a {options.name} trial failed: {errors[0]}")
    return grid, started, time.time() - started


def one_repeat(
    data_dir: Path, preset: str, samples: int, max_epochs: int, seed: int, repeat: int, cpus: int
) -> dict:
    """Both sweeps of one repeat (the project's first); the figures and both curves."""
    with tempfile.TemporaryDirectory(prefix="bench-search-") as storage:
        base = {
            "preset": preset,
            "samples": samples,
            "max_epochs": max_epochs,
            "seed": seed,
            "data_dir": str(data_dir),
            "storage": storage,
        }
        options = side_options(base, cpus, repeat)
        log = Path(storage) / "sweeps.log"
        runs = {side: timed_sweep(options[side], log) for side in ("project", "course")}
    (project, p_start, p_wall), (course, c_start, c_wall) = runs["project"], runs["course"]
    course_best, project_best = best_metric(course), best_metric(project)
    level = course_best - TOLERANCE
    c_hist = [r.metrics_dataframe for r in course]
    p_hist = [r.metrics_dataframe for r in project]
    c_reach = time_to_reach(c_hist, level, c_start)
    p_reach = time_to_reach(p_hist, level, p_start)
    return {
        "seed": seed,
        "course_wall": c_wall,
        "project_wall": p_wall,
        "course_best": course_best,
        "project_best": project_best,
        "best_diff": project_best - course_best,
        "course_reach": c_reach,
        "project_reach": p_reach,
        "speed": common.ratio(p_reach, c_reach),
        "total": p_wall / c_wall,
        "course_epochs": epochs_trained(course),
        "project_epochs": epochs_trained(project),
        "same_configs": configs(project) == configs(course),
        "curves": {
            "course": until(best_so_far(c_hist, c_start), c_wall),
            "project": until(best_so_far(p_hist, p_start), p_wall),
        },
    }


def plot_curves(repeats: list[dict], path: Path, title: str = "") -> Path:
    """Best-so-far validation macro F1 against wall time, both sides, each repeat a thin line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"course": "tab:blue", "project": "tab:orange"}
    labels = {
        "course": "course: random search, FIFO, 1 trial at a time",
        "project": "project: ASHA, trials at once",
    }
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for side in SIDES:
        for i, result in enumerate(repeats):
            curve = result["curves"][side]
            if not len(curve):
                continue
            ax.step(
                curve["seconds"],
                curve["best"],
                where="post",
                color=colours[side],
                linewidth=0.9,
                alpha=0.8,
                label=labels[side] if i == 0 else None,
            )
    ax.set_xlabel("wall time from the sweep's start (s); a line ends when its sweep does")
    ax.set_xlim(left=0)
    ax.set_ylabel(f"best {METRIC} so far")
    ax.set_title(title or "search efficiency", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    samples: int = 8,
    max_epochs: int = 5,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
    plot: Path | None = None,
) -> list[common.Row]:
    """Both sweeps per repeat on the running Ray, seed + repeat each; the curves to `plot`."""
    cpus = common.ray_cpus()
    results = [
        one_repeat(data_dir, preset, samples, max_epochs, seed + r, r, cpus) for r in range(repeats)
    ]
    if plot is not None:
        title = (
            f"{preset}, {samples} trials x {max_epochs} epochs, {repeats} repeat(s), {cpus} CPUs\n"
            f"commit {common.RUN_COMMIT or common.git_commit()}, "
            f"{time.strftime('%Y-%m-%d %H:%M')}; each repeat a line, seed + repeat per repeat"
        )
        plot_curves(results, plot, title)

    def values(key: str) -> list[float]:
        return common.per_repeat(results, key)

    speed = common.median(values("speed"))
    c_reach, p_reach = common.median(values("course_reach")), common.median(values("project_reach"))
    reach = {side: common.median_range(values(f"{side}_reach")) for side in SIDES}
    note = (
        f"course reached its best - {TOLERANCE:g} after {reach['course']} s, "
        f"project after {reach['project']} s"
    )
    if not common.at_most(TARGET)(speed):
        note += (
            f"; {speed / TARGET:.1f}x over the target"
            if p_reach != float("inf") and c_reach != float("inf")
            else "; in at least half the repeats no project trial got there: ASHA (or "
            "patience) cut the ones that would have"
        )
    different = [r["seed"] for r in results if not r["same_configs"]]
    budget = f"{samples} trials x {max_epochs} epochs"
    return [
        common.Row(
            "search efficiency",
            f"course: random search, FIFO, 1 at a time ({cpus} threads), wall time (s)",
            values("course_wall"),
            note=f"{budget}; epochs trained {common.median_range(values('course_epochs'))}",
        ),
        common.Row(
            "search efficiency",
            f"project: ASHA, up to {cpus} at once (1 thread each), wall time (s)",
            values("project_wall"),
            note=f"epochs trained {common.median_range(values('project_epochs'))}"
            + (f"; WARNING: seeds {different} drew different configs" if different else ""),
        ),
        common.Row("search efficiency", "best val macro F1, course", values("course_best")),
        common.Row("search efficiency", "best val macro F1, project", values("project_best")),
        common.Row("search efficiency", "best val macro F1, project - course", values("best_diff")),
        common.Row(
            "search efficiency",
            f"time to course best - {TOLERANCE:g}, project / course",
            values("speed"),
            f"<= {TARGET:g}",
            common.at_most(TARGET),
            note,
        ),
        common.Row(
            "search efficiency",
            "total wall time, project / course",
            values("total"),
            note=budget,
        ),
    ]


def sizes(quick: bool) -> dict:
    return {"samples": 8, "max_epochs": 5} if quick else {"samples": 20, "max_epochs": 10}


def describe(cpus: int, samples: int, max_epochs: int) -> str:
    defaults = SweepOptions(preset="", samples=1)  # the project side is the default sweep
    return (
        f"search_efficiency: {samples} trials x {max_epochs} epochs per side and repeat, "
        f"patience {defaults.patience} on both sides; course FIFO, 1 trial at a time on {cpus} "
        f"CPUs ({cpus} torch threads); project ASHA (grace {defaults.grace_period}, reduction "
        f"{defaults.reduction_factor}), 1 CPU (1 thread) per trial, up to {cpus} at once; "
        "project first"
    )


def seeds(seed: int, repeats: int) -> str:
    last = seed + repeats - 1
    which = f"{seed}" if repeats == 1 else f"{seed}..{last}"
    return (
        f"search_efficiency seed + repeat ({which}), the same for both sides within a repeat "
        "(they draw the same configurations)"
    )


def main(argv: list[str] | None = None) -> int:
    return common.script_main(sys.modules[__name__], "Search efficiency", argv)


if __name__ == "__main__":
    sys.exit(main())
