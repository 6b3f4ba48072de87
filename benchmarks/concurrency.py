"""Concurrency: trials per minute with 2 trials at once (one CPU and torch thread each) against
1 trial at a time given both CPUs (2 torch threads): the same cores on both sides.

(With --cpus N: N trials at once against 1 trial with N threads.)

All runs are `run_sweep` (random search, FIFO, patience 0) with the same trials and seed. A
third run, 1 at a time with 1 CPU and 1 thread (a core idle), separates what two cores deliver
from what a second torch thread gives one trial: 2-at-once / 1-at-a-time = (2-at-once /
1-thread) / (2-thread speed-up). The architecture is pinned to one mid-sized model so every
trial costs the same: with mixed sizes a short run's throughput is decided by whichever big
trial runs last, alone, which is a scheduling effect (search efficiency measures that), not
what two cores deliver. The 2-at-once run goes first in every repeat, so any cold-start cost
falls on the side whose claim is being tested; every repeat uses the same seed.

A fourth measurement, without Ray, gives the ceiling for this machine and model: the same
training epochs in two plain processes at once (1 thread each) against one process with 2
threads. The ceiling is the two processes' combined throughput (the sum of their epochs per
second) over the one process's, not the slower process's pace counted twice: two processes rarely
finish together, and the faster one's epochs count. No scheduler can beat what the cores give two
independent processes, so the target is a share of this ceiling.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.errors import UserError  # noqa: E402
from musictune.tuning.options import SweepOptions  # noqa: E402
from musictune.tuning.plan import make_plan  # noqa: E402
from musictune.tuning.presets import get_preset  # noqa: E402
from musictune.tuning.runner import run_sweep  # noqa: E402

TARGET = 0.9  # share of the ceiling: Ray's 2-at-once / 1-at-a-time over the plain processes'
PLAIN_EPOCHS = 6


def plain_epochs(data_dir: str, preset: str, threads: int, epochs: int, start_at: float) -> float:
    """Seconds per training epoch of the pinned model in this process, no Ray: timed from
    `start_at` (a wall-clock time shared by processes started together), after a warm-up."""
    import numpy as np
    import torch

    from musictune.data.batches import iterate_batches
    from musictune.data.dataset import load_task
    from musictune.training.loop import _train_epoch, build_model

    torch.set_num_threads(threads)
    spec = get_preset(preset)
    data = load_task(spec.task, data_dir, spec.features, spec.beat)
    model = build_model(data, spec.model, **common.MID_MODEL.get(spec.model, {}), dropout=0.3)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    rng = np.random.default_rng(0)

    def epoch() -> None:
        batches = iterate_batches(data.train, 32, rng.permutation(len(data.train)))
        _train_epoch(model, optimizer, scaler, batches, torch.device("cpu"), False)

    epoch()  # warm-up
    time.sleep(max(0.0, start_at - time.time()))
    started = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return (time.perf_counter() - started) / epochs


def plain_ceiling(data_dir: Path, preset: str, cpus: int) -> float:
    """Epochs per second of `cpus` plain processes at once (1 thread each), summed, over one
    process with `cpus` threads: the best ratio this machine gives the model, with no Ray."""

    def start(threads: int, n: int) -> list[float]:
        start_at = time.time() + 8.0  # after every process has imported and warmed up
        argv = [sys.executable, __file__, "--plain", str(data_dir), preset, str(threads)]
        procs = [
            subprocess.Popen([*argv, str(PLAIN_EPOCHS), str(start_at)], stdout=subprocess.PIPE)
            for _ in range(n)
        ]
        outs = [p.communicate()[0] for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError("a plain training process failed")
        return [json.loads(o) for o in outs]

    (one,) = start(cpus, 1)
    many = start(1, cpus)
    return combined(one, many)


def combined(one: float, many: list[float]) -> float:
    """Combined throughput of processes at once (`many`: seconds per epoch of each) over one
    process's (`one`): the sum of their epoch rates, each counted at its own pace."""
    return sum(one / m for m in many)


def trials_per_minute(options: SweepOptions, pinned: dict, log: Path) -> float:
    """Trials a minute of one sweep whose architecture is pinned (every trial costs the same)."""
    started = time.perf_counter()
    with common.quiet(log):
        plan = make_plan(options)
        plan.space |= pinned
        grid = run_sweep(plan)
    elapsed = time.perf_counter() - started
    errors = [r.error for r in grid if r.error]
    if errors:
        raise RuntimeError(f"a trial failed: {errors[0]}")
    return 60.0 * len(grid) / elapsed


def run_options(base: dict, cpus: int) -> dict[str, SweepOptions]:
    """The three sweeps of one repeat, in the order they run: `cpus` trials at once with 1 CPU
    each, 1 at a time with all `cpus` CPUs, and the 1-CPU reference (a core idle)."""
    runs = {"many": (cpus, 1), "one_all": (1, cpus), "one_1": (1, 1)}
    return {
        role: common.sweep_options(
            **base,
            scheduler="fifo",
            max_concurrent=at_once,
            patience=0,
            cpus_per_trial=float(per_trial),
            name=f"{role}-{at_once}-at-once-{per_trial}-cpu",
        )
        for role, (at_once, per_trial) in runs.items()
    }


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    trials: int = 4,
    epochs: int = 3,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
) -> list[common.Row]:
    cpus = common.ray_cpus()
    if cpus < 2:
        raise UserError(f"the concurrency benchmark needs 2 CPUs, Ray has {cpus:g}: pass --cpus 2")
    pinned = common.MID_MODEL.get(get_preset(preset).model, {})
    results = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as storage:
            base = {
                "preset": preset,
                "samples": trials,
                "max_epochs": epochs,
                "seed": seed,
                "data_dir": str(data_dir),
                "storage": storage,
            }
            log = Path(storage) / "sweeps.log"
            runs = run_options(base, cpus).items()
            tpm = {k: trials_per_minute(o, pinned, log) for k, o in runs}
        results.append(
            {
                **tpm,
                "ceiling": plain_ceiling(data_dir, preset, cpus),
                "fair": tpm["many"] / tpm["one_all"],
                "scaling": tpm["many"] / tpm["one_1"],
                "threads": tpm["one_all"] / tpm["one_1"],
            }
        )

    def values(key: str) -> list[float]:
        return common.per_repeat(results, key)

    fair = common.median(values("fair"))
    model = ", ".join(f"{k}={v}" for k, v in pinned.items())
    ceiling = common.median(values("ceiling"))
    shares = [r["fair"] / r["ceiling"] for r in results]
    share = common.median(shares)
    note = f"{trials} trials x {epochs} epochs each run; {model}"
    if not common.at_least(TARGET)(share):
        note = (
            f"{TARGET - share:.2f} short of the target: Ray's ratio {fair:.2f} against the "
            f"plain processes' {ceiling:.2f}; {cpus} cores give "
            f"{common.median(values('scaling')) / cpus:.0%} of perfect scaling, and {cpus} torch "
            f"threads make one trial {common.median(values('threads')):.2f}x as fast as 1"
        )
    return [
        common.Row(
            "concurrency", f"trials per minute, {cpus} at once (1 thread each)", values("many")
        ),
        common.Row(
            "concurrency", f"trials per minute, 1 at a time ({cpus} threads)", values("one_all")
        ),
        common.Row(
            "concurrency",
            "trials per minute, 1 at a time (1 thread, cores idle)",
            values("one_1"),
            note="reference only, not a fair baseline",
        ),
        common.Row(
            "concurrency",
            f"throughput ratio {cpus} at once / 1 at a time ({cpus} threads)",
            values("fair"),
            note=f"{trials} trials x {epochs} epochs each run; {model}",
        ),
        common.Row(
            "concurrency",
            f"ceiling without Ray: {cpus} plain processes (1 thread), combined / 1 with {cpus} "
            "threads",
            values("ceiling"),
            note=f"the sum of the processes' epochs per second, same model, {PLAIN_EPOCHS} timed "
            "epochs per process after a warm-up, started together: what the cores and torch allow",
        ),
        common.Row(
            "concurrency",
            "share of that ceiling reached through Ray",
            shares,
            f">= {TARGET:g}",
            common.at_least(TARGET),
            note,
        ),
        common.Row(
            "concurrency",
            f"core scaling: {cpus} at once / 1 at a time with 1 thread",
            values("scaling"),
            note=f"what {cpus} cores deliver to {cpus} trials ({cpus} = perfect)",
        ),
        common.Row(
            "concurrency",
            f"one trial, {cpus} threads / 1 thread",
            values("threads"),
            note="what the extra threads give a single trial",
        ),
    ]


def sizes(quick: bool) -> dict:
    return {"trials": 8, "epochs": 2} if quick else {"trials": 20, "epochs": 3}


def describe(cpus: int, trials: int, epochs: int) -> str:
    return (
        f"concurrency: {trials} trials x {epochs} epochs per run and repeat, patience 0, "
        f"mid-sized model pinned; runs: {cpus} at once with 1 CPU (1 thread) each, 1 at a time "
        f"with {cpus} CPUs ({cpus} threads), 1 at a time with 1 CPU (reference), in that order; "
        f"then the ceiling without Ray ({PLAIN_EPOCHS} epochs per plain process)"
    )


def seeds(seed: int, repeats: int) -> str:
    return f"concurrency seed {seed} every repeat"


def main(argv: list[str] | None = None) -> int:
    return common.script_main(sys.modules[__name__], "Concurrency", argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--plain"]:
        data, preset, threads, epochs, start_at = sys.argv[2:7]
        print(json.dumps(plain_epochs(data, preset, int(threads), int(epochs), float(start_at))))
        sys.exit(0)
    sys.exit(main())
