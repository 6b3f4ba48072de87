"""The main job, old against new: `python sweeps/lstm_spectrogram.py --samples N` run from a
checkout of an earlier commit and from this one, side by side in one run.

The earlier commit (BASELINE below: the last commit before the "Throughput" issue's first
change) is exported with `git archive` into a temporary folder. Each side runs the sweep script
as a user would, in a fresh process that starts its own Ray, with its own `src` first on the
path and its own split cache ($MUSICTUNE_CACHE); both read the same demo data folder. One
untimed 1-trial sweep per side fills that side's cache first. Each repeat runs both sides, the
new one first (cold-start costs fall on the side making the claim). The whole command is timed,
the untuned-default training at its end included, since that is what a user waits for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.errors import UserError  # noqa: E402
from musictune.training.metrics import PRIMARY_METRIC  # noqa: E402
from musictune.tuning.presets import get_preset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "81c5653"  # the last commit before the Throughput issue's first change (647630b)
TARGET = 1.5
SCRIPT = "sweeps/{preset}.py"


def export(commit: str, into: Path, constant: str = "BASELINE in benchmarks/main_job.py") -> Path:
    """The tree of `commit`, without its history, in `into`; `constant` names where the
    benchmark fixes the commit, for the error."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
        capture_output=True,
    )
    if archive.returncode:
        raise UserError(
            f"cannot export commit {commit!r}: run from a clone whose `git log` has it, "
            f"or change {constant}"
        )
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def side_env(checkout: Path, cache: Path) -> dict[str, str]:
    """The environment of one side: its own `src` and `trainables` first on the path (before
    any editable install of another checkout), its own split cache."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(checkout / "src"), str(checkout)]),
        "MUSICTUNE_CACHE": str(cache),
        "RAY_ADDRESS": "local",  # its own Ray, as on a laptop
    }


def sweep(checkout: Path, cache: Path, data_dir: Path, preset: str, storage: Path, argv: list):
    """One sweep command from `checkout`; its wall time (s) and trials.csv."""
    import pandas as pd

    env = side_env(checkout, cache)
    command = [sys.executable, SCRIPT.format(preset=preset), "--data-dir", str(data_dir)]
    command += ["--storage", str(storage), "--name", "main", *argv]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"the sweep in {checkout} failed:\n{done.stderr[-2000:]}")
    return wall, pd.read_csv(storage / "main" / "trials.csv")


def run(
    data_dir: Path,
    preset: str = common.DEFAULT_PRESET,
    samples: int = 100,
    repeats: int = common.DEFAULT_REPEATS,
    seed: int = 0,
) -> list[common.Row]:
    best = f"best_{PRIMARY_METRIC[get_preset(preset).task]}"  # the sweep's metric in trials.csv
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-main-job-") as tmp:
        tmp = Path(tmp)
        sides = {"new": ROOT, "old": export(BASELINE, tmp / "old")}
        for side, checkout in sides.items():  # fill each side's split cache, untimed
            warm = ["--samples", "1", "--max-epochs", "1", "--no-baseline-train"]
            sweep(checkout, tmp / f"cache-{side}", data_dir, preset, tmp / f"warm-{side}", warm)
        for r in range(repeats):
            figures = {}
            for side, checkout in sides.items():
                storage = tmp / f"{side}-{r}"
                argv = ["--samples", str(samples), "--seed", str(seed)]
                wall, table = sweep(
                    checkout, tmp / f"cache-{side}", data_dir, preset, storage, argv
                )
                figures[side] = wall
                figures[f"{side}_epochs"] = float(table["epochs"].sum())
                figures[f"{side}_best"] = float(table[best].max())
            figures["speedup"] = figures["old"] / figures["new"]
            results.append(figures)

    def values(key: str) -> list[float]:
        return common.per_repeat(results, key)

    speedup = common.median(values("speedup"))
    command = f"python {SCRIPT.format(preset=preset)} --samples {samples}"
    note = f"`{command}`, each side in its own process and Ray, whole command timed"
    if speedup < TARGET:
        epochs = common.median(values("old_epochs")) / common.median(values("new_epochs"))
        note += (
            f"; {TARGET - speedup:.2f} short of the target. Old / new epochs trained: "
            f"{epochs:.2f}; the sweep is compute-bound (both slots train LSTM epochs nearly all "
            "the time), so the rest would have to come from cheaper epochs or fewer of them"
        )
    return [
        common.Row("main job", f"commit {BASELINE}: wall time (s)", values("old")),
        common.Row("main job", "this commit: wall time (s)", values("new")),
        common.Row(
            "main job",
            f"speed-up, commit {BASELINE} / this commit",
            values("speedup"),
            f">= {TARGET:g}",
            common.at_least(TARGET),
            note,
        ),
        common.Row("main job", f"commit {BASELINE}: epochs trained", values("old_epochs")),
        common.Row("main job", "this commit: epochs trained", values("new_epochs")),
        common.Row("main job", f"commit {BASELINE}: best val metric", values("old_best")),
        common.Row("main job", "this commit: best val metric", values("new_best")),
    ]


def sizes(quick: bool) -> dict:
    return {"samples": 20} if quick else {"samples": 100}


def describe(cpus: int, samples: int) -> str:
    return (
        f"main job: per repeat `--samples {samples}` from this checkout, then from commit "
        f"{BASELINE} (git archive), each a fresh process with its own local Ray on all cores and "
        "its own split cache (filled by an untimed 1-trial sweep), the same demo data"
    )


def seeds(seed: int, repeats: int) -> str:
    return f"main job seed {seed} every repeat, both sides"


def main(argv: list[str] | None = None) -> int:
    return common.script_main(sys.modules[__name__], "Main job", argv)


if __name__ == "__main__":
    sys.exit(main())
