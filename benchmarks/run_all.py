"""Run every benchmark side by side on one local Ray, print one table, append it to RESULTS.md.

    python benchmarks/run_all.py --quick     # small budgets: at most 10 minutes on 2 cores
    python benchmarks/run_all.py             # the full budgets (much longer)

Each benchmark is also a script of its own (search_efficiency.py, overhead.py, concurrency.py,
data_path.py) taking the same options.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import concurrency  # noqa: E402
import data_path  # noqa: E402
import overhead  # noqa: E402
import search_efficiency  # noqa: E402

BENCHMARKS = {
    "data_path": data_path,
    "overhead": overhead,
    "concurrency": concurrency,
    "search_efficiency": search_efficiency,
}


def build(args) -> tuple[list[common.Row], str]:
    chosen = args.only or list(BENCHMARKS)
    folder = common.data_dir(args.data_dir)
    started = time.perf_counter()
    common.start_ray(args.cpus)
    rows, settings = [], [f"preset {args.preset}", f"data {folder}", f"Ray CPUs {args.cpus}"]
    for name in chosen:
        module = BENCHMARKS[name]
        size = module.sizes(args.quick)
        print(f"running {name} {size} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        rows += module.run(folder, args.preset, **size)
        print(f"  {name} took {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        settings.append(f"{name} {size}")
    total = time.perf_counter() - started
    rows.append(common.Row("all", "benchmark run wall time (s)", total, note="incl. ray.init"))
    return rows, "; ".join(settings)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    args = p.parse_args(argv)
    title = "All benchmarks" + (" (--quick)" if args.quick else "")
    return common.run_main(build, args, title)


if __name__ == "__main__":
    sys.exit(main())
