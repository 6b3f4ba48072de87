"""Run every benchmark side by side on one local Ray, print one table, append it to RESULTS.md.

    python benchmarks/run_all.py --quick     # small budgets, the five in-process benchmarks
    python benchmarks/run_all.py             # the full budgets: 2649 s on 2 cores (2026-11-30)
    python benchmarks/run_all.py --quick --repeats 1 --no-save   # a smoke test

--quick leaves out the benchmarks that run whole commands of two commits side by side
(main_job, extraction, whole_tracks); name them with --only to run them. Before it starts, the
run says how long it should take, from the per-benchmark times of the latest recorded run of the
same kind in RESULTS.md, scaled to the repeats asked for.

Each benchmark is also a script of its own (startup.py, data_path.py, overhead.py,
concurrency.py, search_efficiency.py, main_job.py, whole_tracks.py, extraction.py) taking the
same options.
"""

from __future__ import annotations

import re
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


# Commands of two commits side by side: minutes each, so --quick leaves them out.
SLOW = ("main_job", "extraction", "whole_tracks")


def chosen(only: list[str] | None, quick: bool) -> list[str]:
    """The benchmarks this run runs: --only, else all (--quick: all but the SLOW ones)."""
    if only:
        return list(only)
    return [n for n in BENCHMARKS if not (quick and n in SLOW)]


def estimate(names: list[str], quick: bool, repeats: int, results: Path) -> str:
    """How long the run should take, from the latest recorded run of the same kind: its
    'time per benchmark' line scaled by repeats; or why there is no estimate."""
    text = results.read_text() if results.exists() else ""
    sections = [
        part
        for part in text.split("\n## ")
        if part.startswith("All benchmarks (")
        and part.startswith("All benchmarks (--quick)") == quick
    ]
    for section in reversed(sections):
        took = re.search(r"time per benchmark: (.*)", section)
        done = re.search(r"repeats: (\d+)", section)
        if not took:
            continue
        seconds = dict(re.findall(r"(\w+) (\d+) s", took.group(1)))
        if not all(n in seconds for n in names):
            continue
        scale = repeats / int(done.group(1)) if done else 1.0
        total = sum(int(seconds[n]) for n in names) * scale
        when = re.search(r"\((\d{4}-[^)]*)\)", section.splitlines()[0])
        when = when.group(1) if when else "an earlier date"
        return (
            f"expected: about {total / 60:.0f} min ({total:.0f} s), from the run of {when} "
            f"in {results.name} scaled to {repeats} repeat(s); longer on a busy machine"
        )
    return "expected: no recorded run of these benchmarks to go by in " + results.name


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
    names = chosen(args.only, args.quick)
    # Up front, once the options are known to be good: what runs and how long it should take.
    said = estimate(names, args.quick, args.repeats, Path(args.results))
    print(f"running {', '.join(names)}; {said}", file=sys.stderr, flush=True)
    folder, extra = common.prepare(args)
    settings = [f"preset {args.preset}", f"data {folder}", f"Ray CPUs {args.cpus}"]
    rows, seeds, took = [], [], []
    for name in names:
        module = BENCHMARKS[name]
        sizes = module.sizes(args.quick)
        print(f"running {name} {sizes or ''} x {args.repeats} ...", file=sys.stderr, flush=True)
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
