"""Overhead: the same trials through Ray Tune and through a plain Optuna loop in one process.

The Ray side is `run_sweep` (random search, FIFO, one trial at a time, patience 0), i.e. the
project's trainable in Ray workers with checkpoints, loggers and the trial table. The Optuna side
replays exactly those configurations (`enqueue_trial`, then ask/tell) and trains each with
`musictune.training.loop.fit` in this process, with the trainable's own config translation. Both
sides get every core Ray has: the one trial at a time runs with torch threads = CPUs, so Ray's
own processes (driver loop, raylet, result logging) compete with training for the cores as they
do in a real sweep, instead of running on an idle one. Loading the data counts on both sides.
One untimed epoch warms this process up first, a cost a fresh Optuna script would pay: the
comparison leans towards Optuna. Every repeat replays the same configurations (the same seed):
the repeats measure timing noise, not different trials.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.data.dataset import load_task  # noqa: E402
from musictune.training.loop import fit  # noqa: E402
from musictune.training.trial import TrialSettings, trial_model  # noqa: E402
from musictune.tuning.plan import make_plan  # noqa: E402
from musictune.tuning.presets import get_preset  # noqa: E402
from musictune.tuning.runner import run_sweep  # noqa: E402
from musictune.tuning.space import search_space  # noqa: E402
from trainables import train_trial  # noqa: E402

TARGET = 1.10


def train_one(config: dict, data, settings: TrialSettings) -> float:
    """What the trainable does for a config, minus Ray: build the model, fit, best metric."""
    model = trial_model(config, data, settings)
    return fit(model, data, settings.train_config(config)).best_metric


def optuna_loop(
    configs: list[dict], settings: TrialSettings, data_dir: Path, preset: str, seed: int
) -> float:
    """A plain Optuna study over the given configs, data loaded in-process as run_sweep does;
    returns its wall time in seconds (loading included, the warm-up epoch not)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = get_preset(preset)
    distributions = OptunaSearch.convert_search_space(search_space(spec.model))
    fixed = {k: v for k, v in configs[0].items() if k not in distributions}
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    for config in configs:
        study.enqueue_trial({k: config[k] for k in distributions})
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        started = time.perf_counter()
        data = load_task(spec.task, data_dir, spec.features, spec.beat)
        load_s = time.perf_counter() - started
        train_one(configs[0], data, settings.with_budget(1, 0))  # warm-up, untimed
        started = time.perf_counter()
        for _ in configs:
            trial = study.ask(distributions)
            study.tell(trial, train_one({**fixed, **trial.params}, data, settings))
        return load_s + time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)


def one_repeat(data_dir: Path, preset: str, trials: int, epochs: int, seed: int, cpus: int) -> dict:
    """One Ray sweep, then the Optuna loop over its configurations: the figures of one repeat."""
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as storage:
        options = common.sweep_options(
            preset=preset,
            samples=trials,
            scheduler="fifo",
            max_epochs=epochs,
            max_concurrent=1,
            patience=0,
            cpus_per_trial=float(cpus),
            seed=seed,
            data_dir=str(data_dir),
            storage=storage,
            name="ray",
        )
        log = Path(storage) / "trial-times.txt"
        started = time.time()
        plan = make_plan(options)
        with common.quiet(Path(storage) / "sweep.log"):
            grid = run_sweep(plan, trainable=common.timed(train_trial, log))
        ended = time.time()
        errors = [r.error for r in grid if r.error]
        if errors:
            raise RuntimeError(f"a Ray trial failed: {errors[0]}")
        configs = [dict(r.config) for r in grid]
        spans = common.read_spans(log)
    ray_s = ended - started
    optuna_s = optuna_loop(configs, plan.settings, data_dir, preset, seed)
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    figures = {
        "ray": ray_s,
        "optuna": optuna_s,
        "inside": sum(end - start for start, end in spans),
        "start": spans[0][0] - started,
        "gap": sum(gaps) / len(gaps) if gaps else float("nan"),
        "gaps": len(gaps),
        "tail": ended - spans[-1][1],
        "steady": ray_s / optuna_s,
        "threads": {plan.settings.threads},
    }
    if common.RAY_START_S is not None:
        figures["total"] = (ray_s + common.RAY_START_S) / optuna_s
    return figures


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    trials: int = 4,
    epochs: int = 3,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
    quick_too: bool = False,
) -> list[common.Row]:
    """The budget's rows; with `quick_too` also the ratios at the quick budget, since Ray's
    fixed costs weigh most on short sweeps."""
    rows = budget_rows(data_dir, preset, trials, epochs, repeats, seed)
    if quick_too:
        quick = sizes(True)
        label = f", quick budget ({quick['trials']} x {quick['epochs']})"
        more = budget_rows(data_dir, preset, quick["trials"], quick["epochs"], repeats, seed, label)
        rows += [r for r in more if r.figure.startswith("time ratio")]
    return rows


def budget_rows(
    data_dir: Path, preset: str, trials: int, epochs: int, repeats: int, seed: int, label=""
) -> list[common.Row]:
    cpus = common.ray_cpus()
    results = [one_repeat(data_dir, preset, trials, epochs, seed, cpus) for _ in range(repeats)]
    threads = set().union(*(r["threads"] for r in results))

    def values(key: str) -> list[float]:
        return common.per_repeat(results, key)

    ray_s, optuna_s = common.median(values("ray")), common.median(values("optuna"))
    steady = common.median(values("steady"))
    budget = (
        f"{trials} trials x {epochs} epochs, 1 at a time, {'/'.join(map(str, threads))} threads"
    )
    rows = [
        common.Row(
            "overhead", "Ray Tune sweep, Ray already running (s)", values("ray"), note=budget
        ),
        common.Row("overhead", "plain Optuna loop, one process (s)", values("optuna"), note=budget),
        common.Row(
            "overhead",
            "Ray: inside the trial functions (s)",
            values("inside"),
            note="training, reports and checkpoints; the Optuna loop's figure above also "
            "holds these, less one warm-up epoch",
        ),
        common.Row(
            "overhead",
            "Ray: sweep start to the first trial's first line (s)",
            values("start"),
            note="data loading, Tune's start, the trial worker's start and its imports (torch, "
            "Ray Tune): once per sweep and concurrent slot, actors are reused",
        ),
        common.Row(
            "overhead",
            "Ray: between one trial's end and the next one's start, mean (s)",
            values("gap"),
            note=f"{results[0]['gaps']} gaps per repeat; the per-trial cost",
        ),
        common.Row(
            "overhead",
            "Ray: last trial's end to the sweep's return (s)",
            values("tail"),
            note="results, trial table, summary and any test-split check run_sweep makes",
        ),
        common.Row(
            "overhead",
            "time ratio Ray Tune / Optuna, Ray running" + label,
            values("steady"),
            f"<= {TARGET:g}",
            common.at_most(TARGET),
            _miss(steady, ray_s - optuna_s, trials),
        ),
    ]
    if common.RAY_START_S is not None:
        total = common.median(values("total"))
        rows.append(
            common.Row(
                "overhead",
                "time ratio Ray Tune / Optuna, incl. ray.init" + label,
                values("total"),
                f"<= {TARGET:g}",
                common.at_most(TARGET),
                f"ray.init took {common.RAY_START_S:.1f} s once per session, counted in each "
                "repeat; " + _miss(total, ray_s + common.RAY_START_S - optuna_s, trials),
            )
        )
    return rows


def _miss(value: float, extra_s: float, trials: int) -> str:
    note = f"median {extra_s:+.1f} s in all ({extra_s / trials:+.2f} s per trial of this sweep)"
    if value > TARGET:
        note += f"; {value - TARGET:.2f} over the target"
    return note


def sizes(quick: bool) -> dict:
    return {"trials": 4, "epochs": 3} if quick else {"trials": 6, "epochs": 6, "quick_too": True}


def describe(cpus: int, trials: int, epochs: int, quick_too: bool = False) -> str:
    also = " (and the quick budget's 4 x 3 for its ratios)" if quick_too else ""
    return (
        f"overhead: {trials} trials x {epochs} epochs{also} per side and repeat, patience 0, "
        f"one trial at a time with {cpus} CPUs ({cpus} torch threads) on both sides; Ray "
        "first, the Optuna loop after one untimed warm-up epoch"
    )


def seeds(seed: int, repeats: int) -> str:
    return f"overhead seed {seed} every repeat (the same configurations)"


def main(argv: list[str] | None = None) -> int:
    return common.script_main(sys.modules[__name__], "Overhead", argv)


if __name__ == "__main__":
    sys.exit(main())
