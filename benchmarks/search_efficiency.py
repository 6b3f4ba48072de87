"""Search efficiency: the course's sequential random search against this project's default sweep.

Both runs are `run_sweep` with the same preset, search space, number of trials and seed, so they
draw the same configurations in the same order:
- the course's method: FIFO, one trial at a time, every trial to the full epoch budget
  (patience 0);
- the project's default: ASHA (grace 1, reduction 3), as many trials at once as the CPUs allow.
The figure that matters is the wall time each needs to first reach the course's best validation
macro F1 within 0.01, read from the per-trial results Ray recorded. The project runs first, so
any cold-start cost falls on the side whose claim is being tested.
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


def result_times(history: pd.DataFrame) -> pd.Series:
    """Epoch-end wall-clock times (epoch seconds) of one trial.

    Ray stamps results with whole seconds; `time_total_s` counts from the trial's start in
    float seconds. Every `timestamp - time_total_s` is the start rounded down by under a second,
    so their maximum recovers the start far more precisely than any single stamp.
    """
    start = (history["timestamp"] - history["time_total_s"]).max()
    return start + history["time_total_s"]


def time_to_reach(histories: list[pd.DataFrame], level: float, started: float) -> float:
    """Seconds from the sweep's start until any trial first reported METRIC >= level."""
    best = float("inf")
    for history in histories:
        if history is None or METRIC not in history:
            continue
        reached = history[METRIC] >= level
        if reached.any():
            best = min(best, float(result_times(history)[reached].min()) - started)
    return best


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


def timed_sweep(options: SweepOptions, log: Path):
    started = time.time()
    with common.quiet(log):
        grid = run_sweep(options)
    return grid, started, time.time() - started


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    samples: int = 8,
    max_epochs: int = 6,
    seed: int = 0,
) -> list[common.Row]:
    """Run both sweeps on the running Ray and compare them."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    shared = {"preset": preset, "samples": samples, "max_epochs": max_epochs, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as storage:
        log = Path(storage) / "sweeps.log"
        base = {**shared, "data_dir": str(data_dir), "storage": storage}
        project, p_start, p_wall = timed_sweep(SweepOptions(**base, name="project"), log)
        course, c_start, c_wall = timed_sweep(
            SweepOptions(**base, name="course", scheduler="fifo", max_concurrent=1, patience=0),
            log,
        )
        same = configs(project) == configs(course)
    course_best, project_best = best_metric(course), best_metric(project)
    level = course_best - TOLERANCE
    c_reach = time_to_reach([r.metrics_dataframe for r in course], level, c_start)
    p_reach = time_to_reach([r.metrics_dataframe for r in project], level, p_start)
    speed = common.ratio(p_reach, c_reach)
    met = common.at_most(speed, TARGET)
    note = f"course reached {level:.3f} after {c_reach:.0f} s, project after {common.fmt(p_reach)}"
    if p_reach != float("inf"):
        note += " s"
    if not met:
        note += (
            f"; {speed / TARGET:.1f}x over the target"
            if p_reach != float("inf")
            else "; no project trial got there: ASHA (or patience) cut the ones that would have"
        )
    budget = f"{samples} trials x {max_epochs} epochs"
    return [
        common.Row(
            "search efficiency",
            "course: random search, FIFO, 1 at a time, wall time (s)",
            c_wall,
            note=f"{budget}, {epochs_trained(course)} epochs trained, best F1 {course_best:.3f}",
        ),
        common.Row(
            "search efficiency",
            f"project: ASHA, up to {cpus} at once, wall time (s)",
            p_wall,
            note=f"{epochs_trained(project)} epochs trained, best F1 {project_best:.3f}"
            + ("" if same else "; WARNING: the two runs drew different configs"),
        ),
        common.Row(
            "search efficiency",
            "best val macro F1, project - course",
            project_best - course_best,
            note=f"{project_best:.3f} vs {course_best:.3f}",
        ),
        common.Row(
            "search efficiency",
            f"time to course best - {TOLERANCE:g}, project / course",
            speed,
            f"<= {TARGET:g}",
            met,
            note,
        ),
        common.Row(
            "search efficiency", "total wall time, project / course", p_wall / c_wall, note=budget
        ),
    ]


def sizes(quick: bool) -> dict:
    return {"samples": 8, "max_epochs": 6} if quick else {"samples": 20, "max_epochs": 20}


def main(argv: list[str] | None = None) -> int:
    return common.script_main(run, sizes, "Search efficiency", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
