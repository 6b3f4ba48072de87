"""GPU check: one short sweep at 1, 0.5 and 0.25 GPUs per trial, trials per hour side by side.

    python benchmarks/gpu_check.py                       # small demo data, 8 trials x 10 epochs
    python benchmarks/gpu_check.py --fractions 1,0.25 --amp --no-save

Every fraction runs the same trial configurations (one seed, FIFO, no early stopping), so the
only difference is how many trials share the GPU at once. Each trial must report that it
trained on CUDA, and a direct mixed-precision check (`--amp`: autocast + GradScaler through
the packed LSTM and the CNN) runs first. The table is printed and, with the date, command and
machine, appended to benchmarks/RESULTS.md. Needs an NVIDIA GPU and a CUDA build of torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.errors import EXIT_USAGE, UserError  # noqa: E402

TITLE = "GPU check: fractional GPUs per trial"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = common.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default=common.DEFAULT_PRESET, help="sweep preset")
    p.add_argument("--fractions", default="1,0.5,0.25", help="GPUs per trial, comma-separated")
    p.add_argument("--samples", type=int, default=8, help="trials per sweep")
    p.add_argument("--max-epochs", type=int, default=10, help="epochs per trial")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--amp", action="store_true", help="mixed precision in the sweeps too")
    p.add_argument("--data-dir", help="patreco3-layout data (default: the small demo data)")
    p.add_argument("--storage", help="keep the sweeps and their logs here (default: a temp dir)")
    p.add_argument("--results", default=str(common.RESULTS), help="markdown file to append to")
    p.add_argument("--no-save", action="store_true", help="print the table only")
    args = p.parse_args(argv)
    try:
        args.fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
    except ValueError:
        p.error(f"--fractions {args.fractions!r}: give numbers such as 1,0.5,0.25")
    if not args.fractions or any(not 0 < f <= 1 for f in args.fractions):
        p.error("--fractions must lie in (0, 1], e.g. 1,0.5,0.25")
    if args.samples < 1 or args.max_epochs < 1:
        p.error("--samples and --max-epochs must be at least 1")
    return args


def require_gpu() -> str:
    import torch

    if not torch.cuda.is_available():
        raise UserError(
            f"no CUDA GPU visible to torch {torch.__version__}: run this on a machine with an "
            "NVIDIA GPU and a CUDA build of torch"
        )
    return torch.cuda.get_device_name(0)


def amp_check(data) -> dict[str, float]:
    """One epoch of each model family with autocast + GradScaler: the loss must stay finite."""
    from musictune.training import TrainConfig, build_model, fit

    losses = {}
    for name in ("lstm", "cnn"):
        model = build_model(data, name, seed=0)
        state = fit(model, data, TrainConfig(max_epochs=1, amp=True, device="cuda", patience=0))
        loss = state.history[-1]["train_loss"]
        if not math.isfinite(loss):
            raise RuntimeError(f"--amp: {name} train loss is {loss} after one epoch")
        losses[name] = loss
    return losses


def sweep(args: argparse.Namespace, fraction: float, data_dir: Path, storage: str) -> dict:
    from musictune.cli import build_parser
    from musictune.tuning.options import options_from_args
    from musictune.tuning.runner import SWEEP_FILE, run_sweep

    name = f"gpu-{fraction:g}" + ("-amp" if args.amp else "")
    argv = [
        "sweep", args.preset, "--data-dir", str(data_dir), "--storage", storage,
        "--name", name, "--samples", str(args.samples), "--max-epochs", str(args.max_epochs),
        "--scheduler", "fifo", "--patience", "0", "--seed", "0",
        "--gpus-per-trial", f"{fraction:g}", "--cpus-per-trial", f"{args.cpus_per_trial:g}",
    ] + (["--amp"] if args.amp else [])  # fmt: skip
    options = options_from_args(args.preset, build_parser().parse_args(argv))
    with common.quiet(Path(storage) / f"{name}.log"):
        results = run_sweep(options)
    meta = json.loads((Path(storage) / name / SWEEP_FILE).read_text())
    devices = {d for r in results for d in r.metrics_dataframe["device"]}
    if results.errors or devices != {"cuda"}:
        raise RuntimeError(f"{name}: {len(results.errors)} failed trial(s), devices {devices}")
    wall = meta["wall_time_s"]
    times = [r.metrics["time_total_s"] for r in results]
    best = [r.metrics_dataframe["val_macro_f1"].max() for r in results]
    return {
        "gpus per trial": f"{fraction:g}",
        # Trial-seconds over sweep seconds: how many trials trained at once, on average.
        "mean trials running": sum(times) / wall,
        "sweep wall s": wall,
        "trials per hour": len(results) * 3600 / wall,
        "mean trial s": sum(times) / len(times),
        "mean best val F1": sum(best) / len(best),
    }


def table(rows: list[dict]) -> str:
    """Fractions side by side: one column each."""
    keys = list(rows[0])
    lines = ["| " + " | ".join([keys[0], *(r[keys[0]] for r in rows)]) + " |"]
    lines.append("|" + "---|" * (len(rows) + 1))
    for key in keys[1:]:
        cells = [common.fmt(float(r[key])) if isinstance(r[key], float) else str(r[key])
                 for r in rows]  # fmt: skip
        lines.append("| " + " | ".join([key, *cells]) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> str:
    import ray
    import torch

    gpu = require_gpu()
    from musictune.data import load_task
    from musictune.tuning.presets import get_preset

    data_dir = common.data_dir(args.data_dir)
    preset = get_preset(args.preset)
    started = time.perf_counter()
    amp_losses = amp_check(load_task(preset.task, data_dir, preset.features, preset.beat))
    amp_s = time.perf_counter() - started
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    cpus = os.cpu_count() or 1
    ray.init(
        num_cpus=cpus,
        num_gpus=torch.cuda.device_count(),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        storage = str(Path(args.storage).resolve()) if args.storage else scratch
        for fraction in args.fractions:
            rows.append(sweep(args, fraction, data_dir, storage))
            print(f"{fraction:g} GPU per trial: {rows[-1]['trials per hour']:.0f} trials/h",
                  flush=True)  # fmt: skip
    ray.shutdown()
    m = common.machine()
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    command = "python " + " ".join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])
    return (
        f"\n## {TITLE} ({when})\n\n"
        f"- command: `{command}`\n"
        f"- machine: {gpu} x{torch.cuda.device_count()}, {m['cores']} cores ({m['cpu']}); "
        f"python {m['python']}, torch {m['torch']}, ray {m['ray']}\n"
        f"- settings: preset {args.preset}, data {data_dir.name}, {args.samples} trials x "
        f"{args.max_epochs} epochs per sweep (FIFO, patience 0, seed 0: the same configs in "
        f"every column), {args.cpus_per_trial:g} CPU per trial, "
        f"{'mixed precision' if args.amp else 'float32'}; every trial reported device cuda\n"
        f"- mixed-precision check (`--amp`, one epoch each, {amp_s:.0f} s): train loss "
        + ", ".join(f"{k} {v:.3f}" for k, v in amp_losses.items())
        + " (finite)\n\n"
        + table(rows)
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        text = run(args)
    except UserError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(text)
    if not args.no_save:
        print(f"appended to {common.append_results(text, Path(args.results))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
