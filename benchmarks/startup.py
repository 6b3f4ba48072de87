"""Start-up: from the sweep command to the first trial's first line, in a fresh process that
starts its own Ray, as `musictune sweep` does on a laptop.

Each repeat runs this file again as a new Python process (`--probe`): it parses the options with
the sweep's own parser, then calls `run_sweep`, the code behind `musictune sweep`, which loads
the data, starts Ray (`ray.init`, timed on its own) and runs a one-trial, one-epoch sweep whose
trainable stamps its first line. The probe prints its stamps as JSON; nothing else differs from
the command (the process's own imports count, as they do for a user).
"""

from __future__ import annotations

import time

PROCESS_START = time.time()  # before any import below: the command's start

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 3.0  # ray.init's end to the first trial's first line


def probe(data_dir: str, storage: str, preset: str) -> dict:
    """One sweep in this process, as the command runs it; returns the stamps."""
    sys.path.insert(0, str(ROOT))
    from musictune.commands.cli import build_parser, sweep_options_from_args
    from musictune.tuning import runner
    from musictune.tuning.plan import make_plan
    from trainables import train_trial

    argv = ["sweep", preset, "--data-dir", data_dir, "--storage", storage, "--name", "startup"]
    argv += ["--samples", "1", "--max-epochs", "1", "--no-baseline-train", "--cpus-per-trial", "2"]
    options = sweep_options_from_args(build_parser().parse_args(argv))
    stamps: dict[str, float] = {}
    connect = runner.connect

    def timed_connect(resources) -> None:
        if "init_end" in stamps:  # the second sweep: Ray is running
            return connect(resources)
        stamps["init_start"] = time.time()
        connect(resources)
        stamps["init_end"] = time.time()

    runner.connect = timed_connect
    log = Path(storage) / "trial-times.txt"
    with common.quiet(Path(storage) / "sweep.log"):
        runner.run_sweep(make_plan(options), trainable=common.timed(train_trial, log))
    first_line = common.read_spans(log)[0][0]
    # A second sweep in the same driver, Ray running: what each further sweep of a test session
    # or a `musictune lab` run pays (Tune's actors live only as long as their Tuner).
    again = sweep_options_from_args(build_parser().parse_args([*argv, "--name", "again"]))
    again_log = Path(storage) / "trial-times-again.txt"
    with common.quiet(Path(storage) / "sweep-again.log"):
        start = time.time()
        runner.run_sweep(make_plan(again), trainable=common.timed(train_trial, again_log))
        returned = time.time()
    (span,) = common.read_spans(again_log)
    return {
        "command_to_first_line": first_line - PROCESS_START,
        "ray_init": stamps["init_end"] - stamps["init_start"],
        "after_init": first_line - stamps["init_end"],
        "before_init": stamps["init_start"] - PROCESS_START,
        "again_to_first_line": span[0] - start,
        "again_trial": span[1] - span[0],
        "again_tail": returned - span[1],
        "again_whole": returned - start,
    }


# Torch's optimizers import torch._dynamo on their first construction (`add_param_group` is
# wrapped in `torch._disable_dynamo`): every fresh trial process pays it in its first epoch.
DYNAMO_PROBE = "import time, torch; t = time.time(); import torch._dynamo; print(time.time() - t)"


def dynamo_import_s() -> float:
    """`import torch._dynamo` after `import torch`, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", DYNAMO_PROBE], capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def one_repeat(data_dir: Path, preset: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as storage:
        env = {**os.environ, "RAY_ADDRESS": "local"}  # its own Ray, as on a laptop
        done = subprocess.run(
            [sys.executable, __file__, "--probe", str(data_dir), storage, preset],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        if done.returncode:
            raise RuntimeError(f"the start-up probe failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1]) | {"dynamo": dynamo_import_s()}


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
) -> list[common.Row]:
    results = [one_repeat(data_dir, preset) for _ in range(repeats)]

    def values(key: str) -> list[float]:
        return common.per_repeat(results, key)

    after = common.median(values("after_init"))
    note = "Tune's start, the trial worker's start and imports (torch, Ray Tune), the data fetch"
    if after > TARGET_S:
        note += f"; {after - TARGET_S:.2f} s over the target"
    return [
        common.Row(
            "start-up",
            "command start to the first trial's first line (s)",
            values("command_to_first_line"),
            note="a fresh process: imports, data loading, ray.init, Tune, the trial worker",
        ),
        common.Row(
            "start-up",
            "command start to ray.init (s)",
            values("before_init"),
            note="the sweep's imports, option checks and data loading",
        ),
        common.Row(
            "start-up",
            "ray.init, local cluster, no dashboard (s)",
            values("ray_init"),
        ),
        common.Row(
            "start-up",
            "ray.init's end to the first trial's first line (s)",
            values("after_init"),
            f"<= {TARGET_S:g}",
            common.at_most(TARGET_S),
            note,
        ),
        *later_sweep_rows(values),
    ]


def later_sweep_rows(values: Callable[[str], list[float]]) -> list[common.Row]:
    """A second one-trial sweep in the same process, Ray running, split where its time goes."""
    name = "a second 1-trial, 1-epoch sweep in the same process, Ray running"
    return [
        common.Row("start-up", f"{name}: whole run_sweep (s)", values("again_whole")),
        common.Row(
            "start-up",
            f"{name}: run_sweep's start to its trial's first line (s)",
            values("again_to_first_line"),
            note="Tune's start and a fresh trial process with its imports (ray.tune, torch, "
            "trainables): each Tuner starts its own actors",
        ),
        common.Row(
            "start-up",
            f"{name}: its trial function, one epoch (s)",
            values("again_trial"),
            note="data fetch, model, one epoch, checkpoint; holds torch's lazy torch._dynamo "
            "import at the first optimizer (next row)",
        ),
        common.Row(
            "start-up",
            f"{name}: trial end to run_sweep's return (s)",
            values("again_tail"),
            note="Tune's end, trials.csv, sweep.json, summary, test-split check",
        ),
        common.Row(
            "start-up",
            "import torch._dynamo after torch, a fresh process (s)",
            values("dynamo"),
            note="what a fresh trial process's first optimizer adds",
        ),
    ]


def sizes(quick: bool) -> dict:
    return {}


def describe(cpus: int) -> str:
    return (
        "start-up: per repeat a fresh process runs one 1-epoch trial through run_sweep, starting "
        f"its own local Ray with the machine's cores, then a second such sweep in the same "
        f"process; the trial gets {cpus} CPUs"
    )


def seeds(seed: int, repeats: int) -> str:
    return "start-up: seed 0 (one trial)"


def main(argv: list[str] | None = None) -> int:
    return common.script_main(sys.modules[__name__], "Start-up", argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        print(json.dumps(probe(*sys.argv[2:5])))
        sys.exit(0)
    sys.exit(main())
