"""Helpers every benchmark shares: rows with targets, the machine, Ray start-up, RESULTS.md.

Absolute times vary between machines, so each benchmark reports ratios measured side by side
in one run, and every table records the machine and command that produced it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from musictune.cli import ArgumentParser
from musictune.errors import EXIT_USAGE, UserError

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
HEADER = "# Benchmark results\n"
DEFAULT_PRESET = "lstm_spectrogram"  # the main job's preset
BUSY_LOAD = 1.5  # a 1-minute load average above this means the figures are not clean
# One mid-sized model per family, where a benchmark needs every trial to cost the same.
MID_MODEL = {
    "lstm": {"num_layers": 1, "hidden_size": 64, "bidirectional": False},
    "cnn": {"conv_blocks": 3},
}


@dataclass
class Row:
    """One reported figure; `met` is None for figures without a target."""

    benchmark: str
    figure: str
    value: float | str
    target: str = ""
    met: bool | None = None
    note: str = ""

    def cells(self) -> list[str]:
        verdict = {True: "yes", False: "**no**", None: ""}[self.met]
        return [self.benchmark, self.figure, fmt(self.value), self.target, verdict, self.note]


COLUMNS = ["benchmark", "figure", "value", "target", "met", "note"]


def fmt(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "never"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def at_most(value: float, limit: float) -> bool:
    return math.isfinite(value) and value <= limit


def at_least(value: float, limit: float) -> bool:
    return math.isfinite(value) and value >= limit


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; inf when the numerator never happened (inf) or denominator 0."""
    if not math.isfinite(numerator) or denominator <= 0:
        return math.inf
    return numerator / denominator


# --------------------------------------------------------------------------- table and file


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [c.replace("|", "\\|").replace("\n", " ") for c in row.cells()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def machine() -> dict[str, str]:
    """What produced the figures: cores, CPU, GPU (or none), versions."""
    import ray
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "os": platform.platform(),
    }


def section(rows: list[Row], title: str, settings: str, command: str | None = None) -> str:
    """A RESULTS.md section: heading, command, date, machine, settings, table."""
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = command or "python " + " ".join(
        [os.path.relpath(sys.argv[0]) if sys.argv and sys.argv[0] else "-", *sys.argv[1:]]
    )
    m = machine()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"\n## {title} ({when})\n\n"
        f"- command: `{command}`\n"
        f"- machine: {m['cores']} cores ({m['cpu']}), GPU: {m['gpu']}; python {m['python']}, "
        f"torch {m['torch']}, ray {m['ray']}; {m['os']}\n"
        f"- load average before the run: {load}\n"
        f"- settings: {settings}\n\n" + markdown_table(rows)
    )


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the folder, so two writers appending at once both land."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the atomic replace alone
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def append_results(text: str, path: Path = RESULTS) -> Path:
    """Append a section, never rewriting what others wrote; the file is replaced atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        old = path.read_text() if path.exists() else HEADER
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".md")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(old.rstrip("\n") + "\n" + text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


# --------------------------------------------------------------------------- running


RAY_START_S: float | None = None  # how long this process's ray.init took (None: not ours)


def start_ray(cpus: int) -> float | None:
    """A local Ray with `cpus` CPUs (reused if one is running); returns its start time."""
    global RAY_START_S
    import ray

    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if busy > BUSY_LOAD:
        print(
            f"warning: load average {busy:.1f}: other work inflates every time measured here",
            file=sys.stderr,
        )

    if ray.is_initialized():
        available = ray.cluster_resources().get("CPU", 0)
        if available < cpus:
            raise UserError(
                f"the running Ray has {available:g} CPUs but the benchmark needs {cpus}: "
                "lower --cpus or stop that Ray"
            )
        return RAY_START_S
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR
    )
    started = time.perf_counter()
    # Trial logs stay in Ray's log folder: the console is for the table.
    ray.init(
        address="local",  # our own Ray, even if `ray start` left one running here
        num_cpus=cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    RAY_START_S = time.perf_counter() - started
    return RAY_START_S


def check_cpus(cpus: int) -> int:
    if cpus < 1:
        raise UserError(f"--cpus must be at least 1, got {cpus}")
    have = os.cpu_count() or 1
    if cpus > have:
        raise UserError(f"--cpus {cpus} but this machine has {have} cores: lower --cpus")
    return cpus


def data_dir(given: str | None) -> Path:
    """--data-dir, else the small demo data set (generated once into the user cache)."""
    from musictune.data import resolve_data_dir
    from musictune.demo import ensure_demo

    if given:
        return resolve_data_dir(given)
    return ensure_demo("small")


@contextlib.contextmanager
def quiet(log: Path) -> Iterator[None]:
    """Send a sweep's console output (progress bar, summary) to a log file, not the table."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        yield


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script (and run_all) takes."""
    p = ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small budgets (<= 10 min on 2 cores)")
    p.add_argument("--data-dir", help="patreco3-layout data (default: the small demo data)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"sweep preset ({DEFAULT_PRESET})")
    p.add_argument("--cpus", type=int, default=2, help="CPUs Ray may use (default 2)")
    p.add_argument("--results", default=str(RESULTS), help="markdown file to append to")
    p.add_argument("--no-save", action="store_true", help="print the table only")
    return p


def run_main(
    build: Callable[[argparse.Namespace], tuple[list[Row], str]],
    args: argparse.Namespace,
    title: str,
) -> int:
    """Run a benchmark, print its table, append it to RESULTS.md; bad input exits 2."""
    try:
        check_cpus(args.cpus)
        rows, settings = build(args)
    except UserError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    text = section(rows, title, settings)
    print(text)
    if not args.no_save:
        print(f"appended to {append_results(text, Path(args.results))}")
    return 0


def script_main(
    run: Callable[..., list[Row]],
    sizes: Callable[[bool], dict],
    title: str,
    doc: str,
    argv: list[str] | None = None,
) -> int:
    """The whole of one benchmark script: shared options, its budget, its table."""
    args = parser(doc.splitlines()[0]).parse_args(argv)

    def build(args: argparse.Namespace) -> tuple[list[Row], str]:
        folder = data_dir(args.data_dir)
        start_ray(args.cpus)
        size = sizes(args.quick)
        return run(folder, args.preset, **size), f"preset {args.preset}, data {folder}, {size}"

    return run_main(build, args, title)
