"""Overhead: the same trials through Ray Tune and through a plain Optuna loop in one process.

The Ray side is `run_sweep` (random search, FIFO, one trial at a time, patience 0), i.e. the
project's trainable in Ray workers with checkpoints, loggers and the trial table. The Optuna side
replays exactly those configurations (`enqueue_trial`, then ask/tell) and trains each with
`musictune.training.fit` in this process, with the trainable's own config translation and one
torch thread, as a trial gets. Loading the data counts on both sides. One untimed epoch
warms this process up first, a cost a fresh Optuna script would pay: the comparison leans
towards Optuna.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.data import load_task  # noqa: E402
from musictune.models import model_kwargs  # noqa: E402
from musictune.training import build_model, fit  # noqa: E402
from musictune.tuning.options import SweepOptions  # noqa: E402
from musictune.tuning.presets import get_preset  # noqa: E402
from musictune.tuning.runner import run_sweep  # noqa: E402
from musictune.tuning.space import search_space  # noqa: E402
from trainables.supervised import train_config, train_supervised  # noqa: E402

TARGET = 1.10


def train_one(config: dict, data) -> float:
    """What the trainable does for a config, minus Ray: build the model, fit, best metric."""
    model = build_model(
        data, config["model"], seed=config.get("seed", 0), **model_kwargs(config["model"], config)
    )
    return fit(model, data, train_config(config)).best_metric


def optuna_loop(configs: list[dict], data_dir: Path, preset: str, seed: int) -> float:
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
    torch.set_num_threads(max(1, int(fixed.get("threads", 1))))
    try:
        started = time.perf_counter()
        data = load_task(spec.task, data_dir, spec.features, spec.beat)
        load_s = time.perf_counter() - started
        train_one({**configs[0], "max_epochs": 1}, data)  # warm-up, untimed
        started = time.perf_counter()
        for _ in configs:
            trial = study.ask(distributions)
            study.tell(trial, train_one({**fixed, **trial.params}, data))
        return load_s + time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)


def timed(trainable, log: Path):
    """The trainable, unchanged, with each call's wall-clock span appended to `log`.

    A local function, so Ray ships it by value to its workers (same machine: same file).
    """

    def trial(config: dict, data) -> None:
        start = time.time()
        try:
            trainable(config, data)
        finally:
            with open(log, "a") as f:
                f.write(f"{start} {time.time()}\n")

    return trial


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    trials: int = 4,
    epochs: int = 3,
    seed: int = 0,
) -> list[common.Row]:
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as storage:
        options = SweepOptions(
            preset=preset,
            samples=trials,
            scheduler="fifo",
            max_epochs=epochs,
            max_concurrent=1,
            patience=0,
            seed=seed,
            data_dir=str(data_dir),
            storage=storage,
            name="ray",
        )
        log = Path(storage) / "trial-times.txt"
        started = time.time()
        with common.quiet(Path(storage) / "sweep.log"):
            grid = run_sweep(options, trainable=timed(train_supervised, log))
        ended = time.time()
        ray_s = ended - started
        errors = [r.error for r in grid if r.error]
        if errors:
            raise RuntimeError(f"a Ray trial failed: {errors[0]}")
        configs = [dict(r.config) for r in grid]
        spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    optuna_s = optuna_loop(configs, data_dir, preset, seed)
    steady = ray_s / optuna_s
    budget = f"{trials} trials x {epochs} epochs, 1 at a time, 1 thread"
    inside = sum(end - start for start, end in spans)
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    rows = [
        common.Row("overhead", "Ray Tune sweep, Ray already running (s)", ray_s, note=budget),
        common.Row("overhead", "plain Optuna loop, one process (s)", optuna_s, note=budget),
        common.Row(
            "overhead",
            "Ray: inside the trial functions (s)",
            inside,
            note="training, reports and checkpoints; the Optuna loop's figure above also "
            "holds these, less one warm-up epoch",
        ),
        common.Row(
            "overhead",
            "Ray: sweep start to the first trial's first line (s)",
            spans[0][0] - started,
            note="Tune's start, the trial worker's start and its imports (torch, Ray Tune, "
            "scikit-learn): once per sweep and concurrent slot, actors are reused",
        ),
        common.Row(
            "overhead",
            "Ray: between one trial's end and the next one's start, mean (s)",
            sum(gaps) / len(gaps) if gaps else "n/a",
            note=f"{len(gaps)} gaps; the per-trial cost",
        ),
        common.Row(
            "overhead",
            "Ray: last trial's end to the sweep's return (s)",
            ended - spans[-1][1],
            note="results, trial table and summary",
        ),
        common.Row(
            "overhead",
            "time ratio Ray Tune / Optuna, Ray running",
            steady,
            f"<= {TARGET:g}",
            common.at_most(steady, TARGET),
            _miss(steady, ray_s - optuna_s, trials),
        ),
    ]
    if common.RAY_START_S is not None:
        total = (ray_s + common.RAY_START_S) / optuna_s
        rows.append(
            common.Row(
                "overhead",
                "time ratio Ray Tune / Optuna, incl. ray.init",
                total,
                f"<= {TARGET:g}",
                common.at_most(total, TARGET),
                f"ray.init took {common.RAY_START_S:.1f} s once per session; "
                + _miss(total, ray_s + common.RAY_START_S - optuna_s, trials),
            )
        )
    return rows


def _miss(value: float, extra_s: float, trials: int) -> str:
    note = f"{extra_s:+.1f} s in all ({extra_s / trials:+.2f} s per trial of this sweep)"
    if value > TARGET:
        note += f"; {value - TARGET:.2f} over the target"
    return note


def sizes(quick: bool) -> dict:
    return {"trials": 4, "epochs": 4} if quick else {"trials": 8, "epochs": 10}


def main(argv: list[str] | None = None) -> int:
    return common.script_main(run, sizes, "Overhead", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
