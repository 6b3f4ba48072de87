"""Search efficiency: the course's sequential random search, this project's default sweep, other
searches and schedulers of the harness, and the peer a user would pick instead (plain Optuna: TPE
with a Hyperband or median pruner, two worker processes on one SQLite study), on one budget.

Every side trains the same preset, search space, fixed config values, number of trials, epoch
budget, patience and seed, and uses every core Ray has:
- course: FIFO, one trial at a time, every trial to the epoch budget unless early stopping (the
  same patience) ends it; the one trial gets all the CPUs (torch threads = CPUs);
- project: the default sweep (random search + ASHA with the default grace and reduction), one
  CPU (one torch thread) per trial, as many trials at once as the CPUs allow;
- tpe_asha, asha_r2, asha_g2, asha_r4: the harness with Optuna's TPE, or ASHA's reduction 2 or
  4 or grace 2, otherwise as project (ASHA's max_t is the epoch budget on every ASHA side: a
  lower max_t is a lower --max-epochs);
- hyperband, bohb: the harness with Ray's HyperBandScheduler (random search), or BOHB (TuneBOHB
  with HyperBandForBOHB; skipped, saying so, without `pip install "musictune[bohb]"`), both with
  max_t = the epoch budget and reduction 3; their brackets pause trials and resume them from
  their last checkpoint;
- optuna_hyperband, optuna_median: plain Optuna (`optuna_peer.py`), one worker process per CPU
  (1 torch thread each) on one SQLite study, TPE sampler, HyperbandPruner with ASHA's rungs
  (min 1, max the epoch budget, reduction 3) or MedianPruner with Optuna's defaults; the same
  plan (space, budget, patience, threads) as the harness's, built by `make_plan`.
The figures per side: wall time, time to the course's best validation macro F1 - 0.01 (when the
course runs), time to the best of all sides - 0.01, the best reached, epochs trained. The Ray
sides run on a Ray already started (its `ray.init` is reported apart); the Optuna sides' time
includes their processes' start, imports and data loading, as a user's script pays them. Each
repeat draws new configurations (seed + repeat); the project runs first in each, so any
cold-start cost falls on the side whose claim is being tested. The best-so-far validation macro
F1 against wall time of every side and repeat is plotted (search_efficiency.png).

    python benchmarks/search_efficiency.py                     # 20 x 5, the sides of DEFAULT_SIDES
    python benchmarks/search_efficiency.py --samples 100 --epochs 3 --repeats 1 \
        --sides project tpe_asha bohb                           # the 100-trial comparison
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import optuna_peer  # noqa: E402

from musictune.errors import UserError  # noqa: E402
from musictune.tuning.options import BOHB_INSTALL, SweepOptions  # noqa: E402
from musictune.tuning.runner import run_sweep  # noqa: E402

METRIC = "val_macro_f1"
TOLERANCE = 0.01
TARGET = 0.25  # project / course, time to the course's best - 0.01
PEER_TARGET = 0.8  # project / the best Optuna side, the same time
PLOT = "search_efficiency.png"


@dataclass(frozen=True)
class Side:
    label: str
    overrides: dict = field(default_factory=dict)  # SweepOptions fields over the default sweep
    pruner: str | None = None  # an Optuna peer side: its pruner


SIDES = {
    "project": Side("project: random + ASHA (the default)"),
    "tpe_asha": Side("harness: Optuna TPE + ASHA", {"search": "optuna"}),
    "asha_r2": Side("harness: random + ASHA reduction 2", {"reduction_factor": 2}),
    "asha_r4": Side("harness: random + ASHA reduction 4", {"reduction_factor": 4}),
    "asha_g2": Side("harness: random + ASHA grace 2", {"grace_period": 2}),
    "hyperband": Side("harness: random + HyperBand", {"scheduler": "hyperband"}),
    "bohb": Side(
        "harness: BOHB (TuneBOHB + HyperBandForBOHB)", {"search": "bohb", "scheduler": "hyperband"}
    ),
    "optuna_hyperband": Side(
        "plain Optuna: TPE + HyperbandPruner, 2 processes", pruner="hyperband"
    ),
    "optuna_median": Side("plain Optuna: TPE + MedianPruner, 2 processes", pruner="median"),
    "course": Side("course: random search, FIFO, 1 trial at a time", {"scheduler": "fifo"}),
}
DEFAULT_SIDES = (
    "project", "tpe_asha", "hyperband", "bohb", "asha_g2", "asha_r2", "optuna_hyperband", "course",
)  # fmt: skip
QUICK_SIDES = ("project", "optuna_hyperband", "course")
PEERS = tuple(name for name, side in SIDES.items() if side.pruner)


def bohb_installed() -> bool:
    """BOHB's packages are optional (`pip install "musictune[bohb]"`): without them its side is
    skipped, saying so in the table."""
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("hpbandster", "ConfigSpace"))


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


def side_options(
    base: dict, cpus: int, repeat: int, sides: tuple[str, ...] = tuple(SIDES)
) -> dict[str, SweepOptions | dict]:
    """The sweeps of one repeat: the same trials, seed, patience and cores on every side.

    Harness sides are SweepOptions: the default sweep with the side's overrides (1 CPU = 1 torch
    thread per trial, as many at once as the CPUs allow); the course's side runs one trial at a
    time on all the CPUs (torch threads = CPUs), so no side leaves a core idle. An Optuna side
    is the default sweep's options as a dict: its workers build the same plan from them.
    """
    project = common.sweep_options(**base, name=f"project-{repeat}")
    chosen: dict[str, SweepOptions | dict] = {}
    for name in sides:
        side = SIDES[name]
        if side.pruner:
            chosen[name] = {**base, "name": f"{name}-{repeat}"}
            continue
        extra = dict(side.overrides)
        if name == "course":
            extra |= {"max_concurrent": 1, "cpus_per_trial": float(cpus)}
        chosen[name] = common.sweep_options(
            **base, name=f"{name}-{repeat}", patience=project.patience, **extra
        )
    return chosen


def timed_sweep(options: SweepOptions, log: Path) -> dict:
    started = time.time()
    with common.quiet(log):
        grid = run_sweep(options)
    wall = time.time() - started
    errors = [r.error for r in grid if r.error]
    if errors:
        raise RuntimeError(f"a {options.name} trial failed: {errors[0]}")
    histories = [r.metrics_dataframe for r in grid]
    return {
        "wall": wall,
        "best": best_metric(grid),
        "epochs": epochs_trained(grid),
        "configs": configs(grid),
        "curve": best_so_far(histories, started),
    }


def timed_peer(options: dict, pruner: str, cpus: int, folder: Path) -> dict:
    started, wall, log = optuna_peer.run_peer(options, pruner, cpus, folder)
    epochs = optuna_peer.read_epochs(log)
    points = pd.DataFrame({"seconds": epochs["time"] - started, "best": epochs["value"]})
    points = points.sort_values("seconds", kind="stable")
    curve = pd.DataFrame(
        {"seconds": points["seconds"].to_numpy(), "best": points["best"].cummax().to_numpy()}
    )
    best = float(epochs["value"].max()) if len(epochs) else float("nan")
    return {"wall": wall, "best": best, "epochs": len(epochs), "configs": None, "curve": curve}


def reach(curve: pd.DataFrame, level: float) -> float:
    """Seconds from the side's start until its best-so-far first reached `level`."""
    reached = curve[curve["best"] >= level]
    return float(reached["seconds"].iloc[0]) if len(reached) else float("inf")


def one_repeat(
    data_dir: Path,
    preset: str,
    samples: int,
    max_epochs: int,
    seed: int,
    repeat: int,
    cpus: int,
    sides: tuple[str, ...] = DEFAULT_SIDES,
) -> dict:
    """Every side of one repeat, in the order given (the project's first); their figures."""
    with tempfile.TemporaryDirectory(prefix="bench-search-") as storage:
        base = {
            "preset": preset,
            "samples": samples,
            "max_epochs": max_epochs,
            "seed": seed,
            "data_dir": str(data_dir),
            "storage": storage,
        }
        options = side_options(base, cpus, repeat, sides)
        log = Path(storage) / "sweeps.log"
        runs = {}
        for name, opts in options.items():
            if SIDES[name].pruner:
                folder = Path(storage) / name
                runs[name] = timed_peer(opts, SIDES[name].pruner, cpus, folder)
            else:
                runs[name] = timed_sweep(opts, log)
    overall = max(r["best"] for r in runs.values()) - TOLERANCE
    course = runs["course"]["best"] - TOLERANCE if "course" in runs else None
    for run in runs.values():
        run["reach_all"] = reach(run["curve"], overall)
        run["reach_course"] = reach(run["curve"], course) if course is not None else None
        run["curve"] = until(run["curve"], run["wall"])
    # Random search with one seed draws the same configurations for the course and the project.
    same = not {"course", "project"} <= set(runs) or (
        runs["course"]["configs"] == runs["project"]["configs"]
    )
    return {"seed": seed, "sides": runs, "same_configs": same}


def plot_curves(repeats: list[dict], path: Path, title: str = "") -> Path:
    """Best-so-far validation macro F1 against wall time, every side, each repeat a thin line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    names = [n for n in SIDES if any(n in r["sides"] for r in repeats)]
    for colour, name in enumerate(names):
        first = True
        for result in repeats:
            curve = result["sides"].get(name, {}).get("curve")
            if curve is None or not len(curve):
                continue
            ax.step(
                curve["seconds"],
                curve["best"],
                where="post",
                color=f"C{colour}",
                linewidth=0.9,
                alpha=0.8,
                label=SIDES[name].label if first else None,
            )
            first = False
    ax.set_xlabel("wall time from the side's start (s); a line ends when its side does")
    ax.set_xlim(left=0)
    ax.set_ylabel(f"best {METRIC} so far")
    ax.set_title(title or "search efficiency", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
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
    sides: tuple[str, ...] = DEFAULT_SIDES,
) -> list[common.Row]:
    """Every side per repeat on the running Ray, seed + repeat each; the curves to `plot`."""
    unknown = [s for s in sides if s not in SIDES]
    if unknown:
        raise UserError(f"unknown side {unknown[0]!r}: choose from {', '.join(SIDES)}")
    skipped = []
    if "bohb" in sides and not bohb_installed():
        sides = tuple(s for s in sides if s != "bohb")
        skipped.append(
            common.Row(
                "search efficiency",
                f"{SIDES['bohb'].label}: skipped",
                f"hpbandster or ConfigSpace not installed: {BOHB_INSTALL}",
            )
        )
        print(f"search_efficiency: bohb skipped: {skipped[0].value}", file=sys.stderr)
    cpus = common.ray_cpus()
    results = []
    for r in range(repeats):
        results.append(
            one_repeat(data_dir, preset, samples, max_epochs, seed + r, r, cpus, tuple(sides))
        )
    if plot is not None:
        title = (
            f"{preset}, {samples} trials x {max_epochs} epochs, {repeats} repeat(s), {cpus} CPUs\n"
            f"commit {common.RUN_COMMIT or common.git_commit()}, "
            f"{time.strftime('%Y-%m-%d %H:%M')}; each repeat a line, seed + repeat per repeat"
        )
        plot_curves(results, plot, title)
    return side_rows(results, samples, max_epochs, cpus) + ratio_rows(results) + skipped


def figure(results: list[dict], side: str, key: str) -> list[float]:
    return [r["sides"][side][key] for r in results]


def side_rows(results: list[dict], samples: int, max_epochs: int, cpus: int) -> list[common.Row]:
    """Per side: wall time, epochs trained, best reached, and the times to the two levels."""
    rows = []
    with_course = "course" in results[0]["sides"]
    for name in results[0]["sides"]:
        label = SIDES[name].label
        threads = f"{cpus} threads" if name == "course" else f"1 thread each, {cpus} at once"
        rows += [
            common.Row(
                "search efficiency",
                f"{label}: wall time (s)",
                figure(results, name, "wall"),
                note=f"{samples} trials x {max_epochs} epochs; {threads}",
            ),
            common.Row(
                "search efficiency", f"{label}: epochs trained", figure(results, name, "epochs")
            ),
            common.Row(
                "search efficiency", f"{label}: best val macro F1", figure(results, name, "best")
            ),
            common.Row(
                "search efficiency",
                f"{label}: time to the best of all sides - {TOLERANCE:g} (s)",
                figure(results, name, "reach_all"),
            ),
        ]
        if with_course:
            rows.append(
                common.Row(
                    "search efficiency",
                    f"{label}: time to the course's best - {TOLERANCE:g} (s)",
                    figure(results, name, "reach_course"),
                )
            )
    different = [r["seed"] for r in results if not r["same_configs"]]
    if different:
        rows[0].note += f"; WARNING: seeds {different}: course and project drew different configs"
    return rows


def per_repeat_ratio(results: list[dict], side: str, other: str, key: str, add: float = 0.0):
    return [common.ratio(r["sides"][side][key] + add, r["sides"][other][key]) for r in results]


def faster_in(results: list[dict], side: str, other: str, key: str) -> str:
    """'SIDE first in k of n repeat(s)': the repeats in which `side` reached the level strictly
    before `other` did (both never: not first)."""
    wins = sum(r["sides"][side][key] < r["sides"][other][key] for r in results)
    return f"{side} first in {wins} of {len(results)} repeat(s)"


def fastest(results: list[dict], names, key: str) -> str:
    """The side with the lowest median time to the level `key`."""
    return min(names, key=lambda n: common.median(figure(results, n, key)))


def ratio_rows(results: list[dict]) -> list[common.Row]:
    """The claims: project / course (target 0.25) and project / the best Optuna side (0.8),
    each side's ratio to the course and to the project, and which side got there first."""
    names = list(results[0]["sides"])
    key = "reach_course" if "course" in names else "reach_all"
    level = (
        f"the course's best - {TOLERANCE:g}"
        if key == "reach_course"
        else (f"the best of all sides - {TOLERANCE:g}")
    )
    rows = []
    if "course" in names:
        for name in names:
            if name == "course":
                continue
            values = per_repeat_ratio(results, name, "course", key)
            project = name == "project"
            note = ""
            if project and not common.at_most(TARGET)(common.median(values)):
                note = f"{common.median(values) / TARGET:.1f}x the target"
            rows.append(
                common.Row(
                    "search efficiency",
                    f"time to {level}, {name} / course",
                    values,
                    f"<= {TARGET:g}" if project else "",
                    common.at_most(TARGET) if project else None,
                    note,
                )
            )
        if "project" in names:
            rows.append(
                common.Row(
                    "search efficiency",
                    "total wall time, project / course",
                    per_repeat_ratio(results, "project", "course", "wall"),
                )
            )
    if "project" in names:
        # Each other side against the default, repeat by repeat (the same configurations drawn):
        # below 1 in every repeat is a side that beats the default at this budget.
        levels = {"reach_all": f"the best of all sides - {TOLERANCE:g}"}
        if "course" in names:
            levels["reach_course"] = level
        for name in [n for n in names if n not in ("project", "course")]:
            rows += [
                common.Row(
                    "search efficiency",
                    f"time to {words}, {name} / project",
                    per_repeat_ratio(results, name, "project", level_key),
                    note=faster_in(results, name, "project", level_key),
                )
                for level_key, words in levels.items()
            ]
    peers = [n for n in names if n in PEERS]
    if "project" in names and peers:
        best = fastest(results, peers, key)
        values = per_repeat_ratio(results, "project", best, key)
        rows.append(
            common.Row(
                "search efficiency",
                f"time to {level}, project / the best Optuna side ({best})",
                values,
                f"<= {PEER_TARGET:g}",
                common.at_most(PEER_TARGET),
                "Ray already running on the project's side",
            )
        )
        if common.RAY_START_S is not None:
            rows.append(
                common.Row(
                    "search efficiency",
                    f"the same, the project's ray.init ({common.RAY_START_S:.1f} s) added",
                    per_repeat_ratio(results, "project", best, key, common.RAY_START_S),
                    f"<= {PEER_TARGET:g}",
                    common.at_most(PEER_TARGET),
                )
            )
    winner = fastest(results, names, "reach_all")
    rows.append(
        common.Row(
            "search efficiency",
            f"fastest side to the best of all sides - {TOLERANCE:g} (lowest median)",
            f"{winner}: {common.median_range(figure(results, winner, 'reach_all'))} s",
        )
    )
    return rows


def sizes(quick: bool) -> dict:
    if quick:
        return {"samples": 8, "max_epochs": 3, "sides": QUICK_SIDES}
    return {"samples": 20, "max_epochs": 5, "sides": DEFAULT_SIDES}


def describe(cpus: int, samples: int, max_epochs: int, sides=DEFAULT_SIDES) -> str:
    defaults = SweepOptions(preset="", samples=1)  # the project side is the default sweep
    return (
        f"search_efficiency: {samples} trials x {max_epochs} epochs per side and repeat, "
        f"patience {defaults.patience} on every side; sides in this order: {', '.join(sides)}; "
        f"course FIFO, 1 trial at a time on {cpus} CPUs ({cpus} torch threads); project random "
        f"search + ASHA (grace {defaults.grace_period}, reduction {defaults.reduction_factor}, "
        f"max_t = the epoch budget), 1 CPU (1 thread) per trial, up to {cpus} at once; other "
        "harness sides as project with their one change; Optuna sides: TPE (seed x 100 + "
        f"worker), {cpus} worker processes (1 thread each) on one SQLite study, HyperbandPruner "
        "(min 1, max the epoch budget, reduction 3) or MedianPruner (defaults)"
    )


def seeds(seed: int, repeats: int) -> str:
    last = seed + repeats - 1
    which = f"{seed}" if repeats == 1 else f"{seed}..{last}"
    return (
        f"search_efficiency seed + repeat ({which}), the same for every side within a repeat "
        "(course and project draw the same configurations)"
    )


def main(argv: list[str] | None = None) -> int:
    """The shared options, plus the budget and the sides (item: choose the default by measuring)."""
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, help="trials per side (default 20; --quick 8)")
    p.add_argument("--epochs", type=int, help="epoch budget per trial (default 5; --quick 3)")
    p.add_argument("--sides", nargs="+", choices=list(SIDES), help="the sides, in run order")
    args = p.parse_args(argv)

    def build(args) -> common.Outcome:
        size = sizes(args.quick)
        if args.samples is not None:
            size["samples"] = args.samples
        if args.epochs is not None:
            size["max_epochs"] = args.epochs
        if args.sides:
            size["sides"] = tuple(args.sides)
        if size["samples"] < 1 or size["max_epochs"] < 1:
            raise UserError("--samples and --epochs must be at least 1")
        folder, extra = common.prepare(args)
        plot = common.plot_path(args, PLOT)
        rows = run(folder, args.preset, **size, repeats=args.repeats, seed=args.seed, plot=plot)
        extra.append(f"plot: `{plot}`")
        settings = f"preset {args.preset}, data {folder}; {describe(common.ray_cpus(), **size)}"
        return common.Outcome(rows, settings, seeds(args.seed, args.repeats), extra)

    return common.run_main(build, args, "Search efficiency")


if __name__ == "__main__":
    sys.exit(main())
