"""GPU check: one short sweep at 1, 0.5 and 0.25 GPUs per trial, trials per hour side by side.

    python benchmarks/gpu_check.py                       # small demo data, 8 trials x 10 epochs
    python benchmarks/gpu_check.py --fractions 1,0.25 --amp --no-save

Every fraction runs the same trial configurations (one seed, FIFO, no early stopping), so the
only difference is how many trials share the GPU at once. Each repeat runs every fraction, and
the order rotates from one repeat to the next (with two fractions: alternates), so no fraction
always runs first on a cold machine. Each sweep's once-per-sweep start (from the sweep's start
to the first trial's first line: data loading, Tune and worker start-up) is reported apart from
its training throughput (trials per hour from the first trial's first line to the last trial's
end). GPU utilisation and memory are sampled every 0.5 s while each sweep runs (pynvml when
installed, else nvidia-smi). Each trial must report that it trained on CUDA, and a direct
mixed-precision check (autocast + GradScaler through the packed LSTM and the CNN) runs first.
The table is printed and, with the date, command, commit and machine, appended to
benchmarks/RESULTS.md. Needs an NVIDIA GPU and a CUDA build of torch: without one it exits with
one line and status 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from musictune.errors import EXIT_USAGE, UserError  # noqa: E402

TITLE = "GPU check: fractional GPUs per trial"
SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=utilization.gpu,memory.used",
    "--format=csv,noheader,nounits",
]
SAMPLE_EVERY_S = 0.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = common.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default=common.DEFAULT_PRESET, help="sweep preset")
    p.add_argument("--fractions", default="1,0.5,0.25", help="GPUs per trial, comma-separated")
    p.add_argument("--samples", type=int, default=8, help="trials per sweep")
    p.add_argument("--max-epochs", type=int, default=10, help="epochs per trial")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument(
        "--repeats",
        type=int,
        default=common.DEFAULT_REPEATS,
        help=f"sweeps per fraction (default {common.DEFAULT_REPEATS}; 1 only for smoke tests)",
    )
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


def run_order(sides: Sequence, repeat: int) -> list:
    """The order of the sides in one repeat: rotated by one place per repeat, so each side runs
    first equally often (two sides: they alternate)."""
    k = repeat % len(sides) if sides else 0
    return list(sides[k:]) + list(sides[:k])


# --------------------------------------------------------------------------- GPU utilisation


def parse_smi(text: str) -> list[tuple[float, float]]:
    """`nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits`
    output: one (utilisation %, memory MiB) per GPU line; lines it cannot read ([N/A]) skipped."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2:
            continue
        try:
            found.append((float(parts[0]), float(parts[1])))
        except ValueError:
            continue
    return found


def smi_query() -> list[tuple[float, float]]:
    done = subprocess.run(SMI_QUERY, capture_output=True, text=True, timeout=5, check=True)
    return parse_smi(done.stdout)


def nvml_query() -> Callable[[], list[tuple[float, float]]] | None:
    """A pynvml reader, when pynvml is installed and finds the driver; else None."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # not installed, or no driver
        return None

    def query() -> list[tuple[float, float]]:
        return [
            (
                float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu),
                pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**20,
            )
            for h in handles
        ]

    return query


def default_query() -> tuple[str, Callable[[], list[tuple[float, float]]] | None]:
    query = nvml_query()
    if query is not None:
        return "pynvml", query
    try:
        smi_query()
    except (OSError, subprocess.SubprocessError):
        return "none", None
    return "nvidia-smi", smi_query


class UtilisationSampler:
    """Samples GPU utilisation and memory in a background thread until stopped.

    `query` returns one (utilisation %, memory MiB) per GPU; a sample is their mean utilisation
    and summed memory. Failed reads are counted, not raised.
    """

    def __init__(
        self, query: Callable[[], list[tuple[float, float]]] | None, every_s: float = SAMPLE_EVERY_S
    ):
        self.query, self.every_s = query, every_s
        self.samples: list[tuple[float, float]] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        try:
            gpus = self.query()
        except Exception:
            self.failures += 1
            return
        if gpus:
            util = sum(u for u, _ in gpus) / len(gpus)
            self.samples.append((util, sum(m for _, m in gpus)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every_s)

    def __enter__(self) -> UtilisationSampler:
        if self.query is not None:
            self._thread = threading.Thread(target=self._loop, name="gpu-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def stats(self) -> dict[str, float]:
        """Mean and max utilisation (%) and max memory used (MiB); NaN with no samples."""
        if not self.samples:
            return {"util_mean": math.nan, "util_max": math.nan, "mem_max": math.nan}
        utils = [u for u, _ in self.samples]
        return {
            "util_mean": sum(utils) / len(utils),
            "util_max": max(utils),
            "mem_max": max(m for _, m in self.samples),
        }


# --------------------------------------------------------------------------- checks and sweeps


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
    from musictune.training.loop import TrainConfig, build_model, fit

    losses = {}
    for name in ("lstm", "cnn"):
        model = build_model(data, name, seed=0)
        state = fit(model, data, TrainConfig(max_epochs=1, amp=True, device="cuda", patience=0))
        loss = state.history[-1]["train_loss"]
        if not math.isfinite(loss):
            raise RuntimeError(f"--amp: {name} train loss is {loss} after one epoch")
        losses[name] = loss
    return losses


def sweep_figures(
    started: float,
    ended: float,
    spans: list[tuple[float, float]],
    trial_times: list[float],
    best: list[float],
) -> dict[str, float]:
    """One sweep's figures, its once-per-sweep start kept apart from its training throughput."""
    first, last = spans[0][0], max(end for _, end in spans)
    training = last - first
    return {
        "start_s": first - started,
        "training_s": training,
        "trials_per_hour_training": len(spans) * 3600 / training if training > 0 else math.inf,
        "trials_per_hour_all": len(spans) * 3600 / (ended - started),
        "sweep_s": ended - started,
        # Trial-seconds over training seconds: how many trials trained at once, on average.
        "mean_running": sum(e - s for s, e in spans) / training if training > 0 else math.nan,
        "mean_trial_s": sum(trial_times) / len(trial_times),
        "mean_best_f1": sum(best) / len(best),
    }


def sweep(
    args: argparse.Namespace, fraction: float, data_dir: Path, storage: str, repeat: int, query
) -> dict:
    from musictune.commands.cli import build_parser, sweep_options_from_args
    from musictune.tuning.runner import run_sweep
    from trainables import train_trial

    name = f"gpu-{fraction:g}-r{repeat}" + ("-amp" if args.amp else "")
    argv = [
        "sweep", args.preset, "--data-dir", str(data_dir), "--storage", storage,
        "--name", name, "--samples", str(args.samples), "--max-epochs", str(args.max_epochs),
        "--scheduler", "fifo", "--patience", "0", "--seed", "0",
        "--gpus-per-trial", f"{fraction:g}", "--cpus-per-trial", f"{args.cpus_per_trial:g}",
        "--no-baseline-train",  # no extra training run after the timed trials
    ] + (["--amp"] if args.amp else [])  # fmt: skip
    options = sweep_options_from_args(build_parser().parse_args(argv))
    log = Path(storage) / f"{name}.spans"
    started = time.time()
    with UtilisationSampler(query) as sampler, common.quiet(Path(storage) / f"{name}.log"):
        results = run_sweep(options, trainable=common.timed(train_trial, log))
    ended = time.time()
    devices = {d for r in results for d in r.metrics_dataframe["device"]}
    if results.errors or devices != {"cuda"}:
        raise RuntimeError(f"{name}: {len(results.errors)} failed trial(s), devices {devices}")
    figures = sweep_figures(
        started,
        ended,
        common.read_spans(log),
        [r.metrics["time_total_s"] for r in results],
        [r.metrics_dataframe["val_macro_f1"].max() for r in results],
    )
    return {**figures, **sampler.stats(), "fraction": fraction}


FIGURES = {
    "sweep start to first trial's first line, s (once per sweep)": "start_s",
    "trials per hour, training (first trial start to last trial end)": "trials_per_hour_training",
    "trials per hour, whole sweep": "trials_per_hour_all",
    "mean trials running while training": "mean_running",
    "mean trial s": "mean_trial_s",
    "GPU utilisation mean %": "util_mean",
    "GPU utilisation max %": "util_max",
    "GPU memory used max MiB": "mem_max",
    "mean best val F1": "mean_best_f1",
}


def table(fractions: list[float], runs: list[dict]) -> str:
    """Fractions side by side, one column each; every cell the median (min – max) over repeats."""
    lines = ["| gpus per trial | " + " | ".join(f"{f:g}" for f in fractions) + " |"]
    lines.append("|" + "---|" * (len(fractions) + 1))
    for label, key in FIGURES.items():
        cells = [
            common.median_range([r[key] for r in runs if r["fraction"] == f]) for f in fractions
        ]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> tuple[str, list[str], str]:
    """All sweeps; returns the table, header lines and settings."""
    import ray
    import torch

    require_gpu()
    from musictune.data.dataset import load_task
    from musictune.tuning.presets import get_preset

    data_dir = common.data_dir(args.data_dir)
    preset = get_preset(args.preset)
    started = time.perf_counter()
    amp_losses = amp_check(load_task(preset.task, data_dir, preset.features, preset.beat))
    amp_s = time.perf_counter() - started
    sampler_name, query = default_query()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(
        num_cpus=os.cpu_count() or 1,
        num_gpus=torch.cuda.device_count(),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    runs, orders = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
            storage = str(Path(args.storage).resolve()) if args.storage else scratch
            for repeat in range(args.repeats):
                order = run_order(args.fractions, repeat)
                orders.append("/".join(f"{f:g}" for f in order))
                for fraction in order:
                    runs.append(sweep(args, fraction, data_dir, storage, repeat, query))
                    print(
                        f"repeat {repeat + 1}, {fraction:g} GPU per trial: "
                        f"{runs[-1]['trials_per_hour_training']:.0f} trials/h training, "
                        f"start {runs[-1]['start_s']:.1f} s",
                        flush=True,
                    )
    finally:
        ray.shutdown()
    extra = [
        f"order of the fractions per repeat: {', '.join(orders)}",
        f"GPU utilisation sampled every {SAMPLE_EVERY_S:g} s with {sampler_name}"
        + (" (not measured: neither pynvml nor nvidia-smi answered)" if query is None else ""),
        f"mixed-precision check (`--amp`, one epoch each, {amp_s:.0f} s): train loss "
        + ", ".join(f"{k} {v:.3f}" for k, v in amp_losses.items())
        + " (finite)",
    ]
    settings = (
        f"preset {args.preset}, data {data_dir}, {args.samples} trials x {args.max_epochs} epochs "
        "per sweep (FIFO, patience 0, seed 0: the same configs in every column and repeat), "
        f"{args.cpus_per_trial:g} CPU per trial, {'mixed precision' if args.amp else 'float32'}; "
        "every trial reported device cuda"
    )
    return table(args.fractions, runs), extra, settings


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        common.check_repeats(args.repeats)
        require_gpu()  # before the load is read and anything is loaded: one line, status 2
        before, (text, extra, settings), wall, load_after = common.measured(lambda: run(args))
    except UserError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    section = common.section(
        [],
        TITLE + (" (--amp)" if args.amp else ""),
        settings,
        before,
        args.repeats,
        seeds="seed 0 in every sweep (the same configurations)",
        wall_s=wall,
        load_after=load_after,
        extra=extra,
        table=text,
    )
    print(section)
    if not args.no_save:
        print(f"appended to {common.append_results(section, Path(args.results))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
