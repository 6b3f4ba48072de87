"""Run every benchmark side by side on one local Ray, print one table, append it to RESULTS.md.

    python benchmarks/run_all.py --quick     # small budgets
    python benchmarks/run_all.py             # the full budgets: 2649 s on 2 cores (2026-11-30)
    python benchmarks/run_all.py --quick --repeats 1 --no-save   # a smoke test

Each benchmark is also a script of its own (startup.py, data_path.py, overhead.py,
concurrency.py, search_efficiency.py, main_job.py, whole_tracks.py, extraction.py) taking the
same options.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import concurrency  # noqa: E402
import data_path  # noqa: E402
import extraction  # noqa: E402
import main_job  # noqa: E402
import overhead  # noqa: E402
import search_efficiency  # noqa: E402
import startup  # noqa: E402
import whole_tracks  # noqa: E402

BENCHMARKS = {
    "startup": startup,
    "data_path": data_path,
    "overhead": overhead,
    "concurrency": concurrency,
    "search_efficiency": search_efficiency,
    "main_job": main_job,
    "extraction": extraction,
    "whole_tracks": whole_tracks,
}


def gpu_row() -> common.Row:
    """The GPU figure is gpu_check.py's (it needs an NVIDIA GPU); here it says where it stands."""
    import torch

    where = (
        "run `python benchmarks/gpu_check.py` for it (this run measures the CPU path)"
        if torch.cuda.is_available()
        else "not measured: no GPU on this machine; `python benchmarks/gpu_check.py` on one"
    )
    return common.Row(
        "GPU", "trials per hour, 4 trials at 0.25 GPU / 1 trial per GPU", where, ">= 2.5"
    )


def build(args) -> common.Outcome:
    chosen = args.only or list(BENCHMARKS)
    folder, extra = common.prepare(args)
    settings = [f"preset {args.preset}", f"data {folder}", f"Ray CPUs {args.cpus}"]
    rows, seeds, took = [], [], []
    for name in chosen:
        module = BENCHMARKS[name]
        print(
            f"running {name} {module.sizes(args.quick)} x {args.repeats} ...",
            file=sys.stderr,
            flush=True,
        )
        t = time.perf_counter()
        more, described, seeded = common.run_module(module, args, folder)
        took.append(f"{name} {time.perf_counter() - t:.0f} s")
        print(f"  {took[-1]}", file=sys.stderr, flush=True)
        rows += more
        settings.append(described)
        seeds.append(seeded)
        if getattr(module, "PLOT", None):
            extra.append(f"plot: `{common.plot_path(args, module.PLOT)}`")
    rows.append(gpu_row())
    extra.append("time per benchmark: " + ", ".join(took))
    return common.Outcome(rows, "; ".join(settings), "; ".join(seeds), extra)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    args = p.parse_args(argv)
    return common.run_main(build, args, "All benchmarks")


if __name__ == "__main__":
    sys.exit(main())
