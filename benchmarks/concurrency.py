"""Concurrency: trials per minute with 1 and with 2 trials at once, one CPU (and thread) each.

Both runs are `run_sweep` (random search, FIFO, patience 0) with the same trials and seed. The
architecture is pinned to one mid-sized model so every trial costs the same: with mixed sizes a
short run's throughput is decided by whichever big trial runs last, alone, which is a scheduling
effect (search efficiency measures that), not what two cores deliver. The 2-at-once run goes
first, so any cold-start cost falls on the side whose claim is being tested.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.errors import UserError  # noqa: E402
from musictune.tuning.options import SweepOptions  # noqa: E402
from musictune.tuning.presets import get_preset  # noqa: E402
from musictune.tuning.runner import run_sweep  # noqa: E402

TARGET = 1.8


def trials_per_minute(options: SweepOptions, log: Path) -> float:
    started = time.perf_counter()
    with common.quiet(log):
        grid = run_sweep(options)
    elapsed = time.perf_counter() - started
    errors = [r.error for r in grid if r.error]
    if errors:
        raise RuntimeError(f"a trial failed: {errors[0]}")
    return 60.0 * len(grid) / elapsed


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    trials: int = 4,
    epochs: int = 3,
    seed: int = 0,
) -> list[common.Row]:
    import ray

    cpus = ray.cluster_resources().get("CPU", 0)
    if cpus < 2:
        raise UserError(f"the concurrency benchmark needs 2 CPUs, Ray has {cpus:g}: pass --cpus 2")
    pinned = common.MID_MODEL.get(get_preset(preset).model, {})
    tpm = {}
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as storage:
        for at_once in (2, 1):
            options = SweepOptions(
                preset=preset,
                samples=trials,
                scheduler="fifo",
                max_epochs=epochs,
                max_concurrent=at_once,
                patience=0,
                seed=seed,
                cpus_per_trial=1,
                data_dir=str(data_dir),
                storage=storage,
                name=f"concurrent-{at_once}",
                extra=pinned,
            )
            tpm[at_once] = trials_per_minute(options, Path(storage) / "sweeps.log")
    speedup = tpm[2] / tpm[1]
    met = common.at_least(speedup, TARGET)
    model = ", ".join(f"{k}={v}" for k, v in pinned.items())
    note = f"{trials} trials x {epochs} epochs each run; {model}"
    if not met:
        note += f"; {TARGET - speedup:.2f} short of the target ({speedup / 2:.0%} of perfect)"
    return [
        common.Row("concurrency", "trials per minute, 1 at a time", tpm[1]),
        common.Row("concurrency", "trials per minute, 2 at a time", tpm[2]),
        common.Row(
            "concurrency",
            "throughput ratio 2 / 1 at a time",
            speedup,
            f">= {TARGET:g}",
            met,
            note,
        ),
    ]


def sizes(quick: bool) -> dict:
    return {"trials": 6, "epochs": 4} if quick else {"trials": 10, "epochs": 8}


def main(argv: list[str] | None = None) -> int:
    return common.script_main(run, sizes, "Concurrency", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
