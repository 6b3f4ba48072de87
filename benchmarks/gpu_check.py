"""GPU check: the lab's smoke budget on a GPU, fractional packing, a full-length course-CNN epoch.

    python benchmarks/gpu_check.py                   # all three parts, about 8 minutes on one GPU
    python benchmarks/gpu_check.py --parts epoch     # one part (lab, packing, epoch)
    python benchmarks/gpu_check.py --cpu-timing      # the epoch timing on the CPU, a few batches

On a machine with an NVIDIA GPU (and a CUDA build of torch) it runs, in this order:

(c) epoch: one training step (forward, backward, Adam: the training loop's own `_train_epoch`)
    of `course_cnn` and `course_lstm` on batches of 64 full-length mel clips (1293 frames x 128
    bins, random values: the cost does not depend on them), AMP off and on; seconds per batch,
    and per epoch of the real data set's train split (`--train-clips`, an assumption: see
    ASSUMED_TRAIN_CLIPS). AMP must keep the loss finite.
(a) lab: `musictune lab --budget smoke --gpus-per-trial 1` in a subprocess, with its own storage
    in a temp dir (its own Ray): wall time, experiments finished, devices the trials reported.
(b) packing: the same 4 trial configurations (one seed, FIFO, no early stopping) at 1 GPU per
    trial and at 0.25 (4 at once), side by side, in rotating order; each sweep's once-per-sweep
    start apart from its training throughput, GPU utilisation sampled every 0.5 s (pynvml, else
    nvidia-smi). Repeats run while the whole check stays within `--budget-s` (8 minutes); at
    least one always runs, and the table says how many did.

The tables are printed and, with the date, command, commit and machine, appended to
benchmarks/RESULTS.md. With no GPU it prints one line saying what it would run and exits 0;
`--cpu-timing` then measures part (c) on the CPU with a few batches (AMP off).
"""

from __future__ import annotations

import argparse
import json
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

TITLE = "GPU check: lab smoke, fractional GPUs per trial, full-length epoch"
CPU_TITLE = "Full-length course model epoch on the CPU"
PARTS = ("epoch", "lab", "packing")
SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=utilization.gpu,memory.used",
    "--format=csv,noheader,nounits",
]
SAMPLE_EVERY_S = 0.5
FULL_FRAMES = 1293  # a full 30 s clip's mel frames (22050 Hz, hop 512)
MEL_BINS = 128
# The real genre set's train file size is not recorded in this repository: the course states
# only its 575 test clips. Assumed: train ~ 4x test (an 80/20 split, 2300 clips), less the 20 %
# the loader holds out for validation (data.dataset.VAL_FRACTION): 1840 clips a training epoch.
ASSUMED_TRAIN_CLIPS = 1840
TIMED_MODELS = {"course_cnn": {}, "course_lstm": {"num_layers": 2}}  # lstm: the larger of 1, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = common.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default=",".join(PARTS), help="which parts, comma-separated")
    p.add_argument("--cpu-timing", action="store_true", help="part (c) only, on the CPU")
    p.add_argument("--budget-s", type=float, default=480, help="the whole check's time budget")
    p.add_argument("--preset", default=common.DEFAULT_PRESET, help="packing sweeps' preset")
    p.add_argument("--fractions", default="1,0.25", help="GPUs per trial, comma-separated")
    p.add_argument("--samples", type=int, default=4, help="trials per packing sweep")
    p.add_argument("--max-epochs", type=int, default=6, help="epochs per packing trial")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument(
        "--repeats",
        type=int,
        default=common.DEFAULT_REPEATS,
        help=f"packing repeats at most (default {common.DEFAULT_REPEATS}; 1 only for smoke tests)",
    )
    p.add_argument("--amp", action="store_true", help="mixed precision in the packing sweeps")
    p.add_argument("--train-clips", type=int, default=ASSUMED_TRAIN_CLIPS, help="clips an epoch")
    p.add_argument("--batch-size", type=int, default=64, help="the lab's batch (64)")
    p.add_argument("--frames", type=int, default=FULL_FRAMES, help="frames per timed clip")
    p.add_argument("--models", default=",".join(TIMED_MODELS), help="timed models")
    p.add_argument("--batches", type=int, help="timed batches (GPU: 20 x 3 repeats; CPU: 2)")
    p.add_argument("--data-dir", help="patreco3-layout data (default: the small demo data)")
    p.add_argument("--storage", help="keep the sweeps and their logs here (default: a temp dir)")
    p.add_argument("--results", default=str(common.RESULTS), help="markdown file to append to")
    p.add_argument("--no-save", action="store_true", help="print the tables only")
    args = p.parse_args(argv)
    try:
        args.fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
    except ValueError:
        p.error(f"--fractions {args.fractions!r}: give numbers such as 1,0.25")
    if not args.fractions or any(not 0 < f <= 1 for f in args.fractions):
        p.error("--fractions must lie in (0, 1], e.g. 1,0.25")
    args.parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    if not args.parts or any(x not in PARTS for x in args.parts):
        p.error(f"--parts {','.join(args.parts)!r}: choose from {', '.join(PARTS)}")
    args.models = [x.strip() for x in args.models.split(",") if x.strip()]
    if not args.models or any(x not in TIMED_MODELS for x in args.models):
        p.error(f"--models: choose from {', '.join(TIMED_MODELS)}")
    small = {"--samples": args.samples, "--max-epochs": args.max_epochs, "--frames": args.frames}
    small |= {"--train-clips": args.train_clips, "--batch-size": args.batch_size}
    for flag, value in [*small.items(), ("--batches", args.batches or 1)]:
        if value < 1:
            p.error(f"{flag} must be at least 1")
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


# --------------------------------------------------------------------------- (c) epoch timing


def step_seconds(
    model_name: str,
    device: str,
    amp: bool,
    batches: int,
    repeats: int,
    warmup: int,
    frames: int = FULL_FRAMES,
    batch_size: int = 64,
    n_features: int = MEL_BINS,
) -> dict:
    """Seconds per training step (forward, backward, Adam) on one batch of random clips:
    `repeats` timings of `batches` steps each, after `warmup` untimed steps. The step is the
    training loop's own, so AMP, the scaler and the loss are what a trial runs."""
    import torch

    from musictune.models import create_model
    from musictune.training.loop import _train_epoch

    torch.manual_seed(0)
    dev = torch.device(device)
    kwargs = TIMED_MODELS[model_name] | ({"frames": frames} if model_name == "course_cnn" else {})
    model = create_model(model_name, n_features, head="classifier", n_outputs=10, **kwargs)
    model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    use_amp = amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    x = torch.randn(batch_size, frames, n_features, device=dev)
    batch = (x, torch.full((batch_size,), frames), torch.randint(0, 10, (batch_size,), device=dev))
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    losses = []
    if warmup:
        losses.append(_train_epoch(model, optimizer, scaler, [batch] * warmup, dev, use_amp))
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        # _train_epoch reads its summed loss back once at the end: the device has finished.
        losses.append(_train_epoch(model, optimizer, scaler, [batch] * batches, dev, use_amp))
        seconds.append((time.perf_counter() - started) / batches)
    if not all(math.isfinite(v) for v in losses):
        raise RuntimeError(f"{model_name} on {device} (AMP {use_amp}): train loss {losses}")
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else rss_gib()
    return {"per_batch": seconds, "losses": losses, "peak_gib": peak}


def rss_gib() -> float:
    """This process's peak resident memory so far, GiB."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (2**30 if sys.platform == "darwin" else 2**20)


def epoch_rows(args: argparse.Namespace, device: str) -> list[dict]:
    """Every timed model with AMP off (and on, on a GPU): one row of figures each."""
    gpu = device == "cuda"
    batches, repeats = (args.batches or 20, 3) if gpu else (1, args.batches or 2)
    rows = []
    for name in args.models:
        for amp in (False, True) if gpu else (False,):
            timing = step_seconds(
                name, device, amp, batches, repeats, 3 if gpu else 1, args.frames, args.batch_size
            )
            rows.append({"model": name, "device": device, "amp": amp, **timing})
            print(
                f"{name} on {device}, AMP {'on' if amp else 'off'}: "
                f"{common.median(timing['per_batch']):.3f} s per batch",
                flush=True,
            )
    return rows


def epoch_table(rows: list[dict], train_clips: int, batch_size: int) -> str:
    """Seconds per batch (median, min – max over the timings) and per epoch of `train_clips`."""
    per_epoch = math.ceil(train_clips / batch_size)
    lines = [
        f"| model | device | AMP | s per batch of {batch_size} (fwd + bwd + Adam) | "
        f"s per epoch ({per_epoch} batches = {train_clips} clips) | peak memory GiB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        epoch = [s * per_epoch for s in r["per_batch"]]
        cells = [r["model"], r["device"], "on" if r["amp"] else "off"]
        cells += [common.median_range(r["per_batch"]), common.median_range(epoch)]
        lines.append("| " + " | ".join([*cells, f"{r['peak_gib']:.1f}"]) + " |")
    return "\n".join(lines) + "\n"


def epoch_settings(args: argparse.Namespace, device: str, rows: list[dict]) -> str:
    import torch

    gpu = device == "cuda"
    timed = "3 timings of 20 batches after 3 warm-up" if gpu else "single batches after 1 warm-up"
    if args.batches:
        timed = f"{'3 timings of ' if gpu else ''}{args.batches} batch(es), after warm-up"
    models = ", ".join(f"{r['model']}" for r in rows if not r["amp"])
    return (
        f"{models}; random clips of {args.frames} frames x {MEL_BINS} mel bins, batch "
        f"{args.batch_size}, 10 classes; {timed}; torch threads {torch.get_num_threads()}; "
        f"epoch = per-batch time x ceil({args.train_clips} / {args.batch_size}) "
        f"({'given' if args.train_clips != ASSUMED_TRAIN_CLIPS else 'assumed'} train clips, "
        "validation pass not included); peak memory: "
        + ("torch's CUDA peak of each row" if gpu else "the process's peak so far (ru_maxrss)")
    )


# --------------------------------------------------------------------------- (a) lab smoke


def lab_outcome(results: Path) -> dict:
    """What a lab run left in its storage: experiments, how many finished, trials, and the
    devices and nodes the trials reported."""
    metas = [json.loads(p.read_text()) for p in sorted(results.glob("*/sweep.json"))]
    devices, nodes, trials = set(), set(), 0
    for result in sorted(results.glob("*/*/result.json")):
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        trials += 1
        devices |= {r["device"] for r in rows if "device" in r}
        nodes |= {r["node_id"] for r in rows if "node_id" in r}
    return {
        "experiments": len(metas),
        "finished": sum(m.get("status") == "finished" for m in metas),
        "trials": trials,
        "devices": sorted(devices),
        "nodes": sorted(nodes),
    }


def lab_smoke(scratch: Path, data_dir: Path, gpus_per_trial: float = 1.0) -> dict:
    """`musictune lab --budget smoke` in its own process (its own Ray), storage in `scratch`."""
    results = scratch / "lab-results"
    argv = [
        sys.executable, "-m", "musictune", "lab", "--budget", "smoke", "--data-dir", str(data_dir),
        "--storage", str(results), "--out", str(scratch / "lab-reports"),
        "--gpus-per-trial", f"{gpus_per_trial:g}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a Ray of its own
    log = scratch / "lab.log"
    started = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=420)
    wall = time.perf_counter() - started
    if code.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"the lab smoke exited {code.returncode} ({log}): {tail[0]}")
    return {"wall_s": wall, **lab_outcome(results), "command": " ".join(argv[2:])}


def lab_table(lab: dict) -> str:
    rows = {
        "wall time, s (its own Ray start included)": f"{lab['wall_s']:.0f}",
        "experiments finished": f"{lab['finished']} of {lab['experiments']}",
        "trials": str(lab["trials"]),
        "devices the trials reported": ", ".join(lab["devices"]) or "none",
    }
    lines = ["| lab smoke | value |", "|---|---|"]
    return "\n".join([*lines, *(f"| {k} | {v} |" for k, v in rows.items())]) + "\n"


# --------------------------------------------------------------------------- (b) packing


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


def require_gpu() -> str:
    import torch

    if not torch.cuda.is_available():
        raise UserError(
            f"no CUDA GPU visible to torch {torch.__version__}: run this on a machine with an "
            "NVIDIA GPU and a CUDA build of torch"
        )
    return torch.cuda.get_device_name(0)


def no_gpu_line(args: argparse.Namespace) -> str:
    """What the check would run on a GPU machine, in one line."""
    import torch

    plans = {
        "epoch": f"a full-length ({args.frames}-frame) {'/'.join(args.models)} epoch timing "
        "with AMP off and on",
        "lab": "the lab's smoke budget at 1 GPU per trial",
        "packing": f"{args.samples} trials at "
        + " against ".join(f"{f:g} GPU" for f in sorted(args.fractions))
        + f" per trial (up to {args.repeats} repeats)",
    }
    return (
        f"gpu_check.py: no GPU (torch {torch.__version__} sees no CUDA device): nothing run; on "
        f"a GPU machine it runs {'; '.join(plans[p] for p in PARTS if p in args.parts)}, within "
        f"{args.budget_s:g} s (--cpu-timing times the epoch on this CPU)"
    )


def packing(args: argparse.Namespace, data_dir: Path, storage: str, started: float):
    """The packing sweeps, repeats while the budget lasts; (runs, orders, sampler name)."""
    import ray
    import torch

    sampler_name, query = default_query()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(
        address="local",
        num_cpus=os.cpu_count() or 1,
        num_gpus=torch.cuda.device_count(),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    runs, orders, took = [], [], 0.0
    try:
        for repeat in range(args.repeats):
            if repeat and time.perf_counter() - started + took > args.budget_s:
                break  # the next repeat would pass the budget
            begun = time.perf_counter()
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
            took = time.perf_counter() - begun
    finally:
        ray.shutdown()
    return runs, orders, sampler_name if query is not None else None


def run(args: argparse.Namespace) -> tuple[str, list[str], str, int]:
    """The chosen parts on the GPU: (tables, header lines, settings, packing repeats done)."""
    from musictune.data.demo import ensure_demo

    started = time.perf_counter()
    require_gpu()
    tables, extra, settings, done = {}, [], [], 1
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        storage = Path(args.storage).resolve() if args.storage else Path(scratch)
        storage.mkdir(parents=True, exist_ok=True)
        if "epoch" in args.parts:
            rows = epoch_rows(args, "cuda")
            tables["(c) full-length epoch"] = epoch_table(rows, args.train_clips, args.batch_size)
            settings.append("(c) " + epoch_settings(args, "cuda", rows))
        if "lab" in args.parts:
            lab_data = Path(args.data_dir) if args.data_dir else ensure_demo("tiny", progress=False)
            lab = lab_smoke(storage, lab_data)
            tables["(a) lab smoke budget, 1 GPU per trial"] = lab_table(lab)
            settings.append(f"(a) `musictune {lab['command']}`")
        if "packing" in args.parts:
            data_dir = common.data_dir(args.data_dir)
            runs, orders, sampler = packing(args, data_dir, str(storage), started)
            done = len(orders)
            tables["(b) fractional packing"] = table(args.fractions, runs)
            extra += [
                f"packing repeats: {done} of {args.repeats} (budget {args.budget_s:g} s); order "
                f"of the fractions per repeat: {', '.join(orders)}",
                f"GPU utilisation sampled every {SAMPLE_EVERY_S:g} s with "
                + (sampler or "nothing (neither pynvml nor nvidia-smi answered)"),
            ]
            settings.append(
                f"(b) preset {args.preset}, data {data_dir}, {args.samples} trials x "
                f"{args.max_epochs} epochs per sweep (FIFO, patience 0, seed 0: the same configs "
                f"in every column and repeat), {args.cpus_per_trial:g} CPU per trial, "
                f"{'mixed precision' if args.amp else 'float32'}; every trial reported cuda"
            )
    extra.append(f"whole check: {time.perf_counter() - started:.0f} s of {args.budget_s:g}")
    text = "\n".join(f"**{name}**\n\n{body}" for name, body in sorted(tables.items()))
    return text, extra, "; ".join(settings), done


def cpu_timing(args: argparse.Namespace) -> tuple[str, list[str], str, int]:
    """Part (c) on the CPU, AMP off: a few single batches."""
    rows = epoch_rows(args, "cpu")
    text = epoch_table(rows, args.train_clips, args.batch_size)
    return text, [], epoch_settings(args, "cpu", rows), args.batches or 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    try:
        common.check_repeats(args.repeats)
        if not args.cpu_timing and not torch.cuda.is_available():
            print(no_gpu_line(args))
            return 0
        work = cpu_timing if args.cpu_timing else run
        before, (text, extra, settings, repeats), wall, load_after = common.measured(
            lambda: work(args)
        )
    except UserError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    section = common.section(
        [],
        CPU_TITLE if args.cpu_timing else TITLE + (" (--amp)" if args.amp else ""),
        settings,
        before,
        repeats,
        seeds="seed 0 everywhere (the same configurations and batches)",
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
