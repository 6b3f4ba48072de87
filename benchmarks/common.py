"""Helpers every benchmark shares: repeated figures with targets, what produced them (commit,
versions, machine, the load before the run), Ray start-up, RESULTS.md.

Absolute times vary between machines, so each benchmark reports ratios measured side by side
in one run; every figure is the median of its repeats with their min - max, and every table
records the command, commit, machine and load average that produced it. Only this code
writes RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from musictune.atomic import write_text_atomic
from musictune.commands.cli import ArgumentParser
from musictune.errors import EXIT_USAGE, UserError

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Written only by `benchmarks/*.py`: each section gives the command, commit, versions, "
    "machine and the load average read before the run. Every figure is the median of its "
    "repeats, with their min - max. Earlier results, measured before both sides of every "
    "comparison got the same cores, threads and patience, are in this file's git history.\n"
)
DEFAULT_PRESET = "lstm_spectrogram"  # the main job's preset
DEFAULT_REPEATS = 3
BUSY_LOAD = 1.5  # a 1-minute load average above this before a run: its figures are not clean
# One mid-sized model per family, where a benchmark needs every trial to cost the same.
MID_MODEL = {
    "lstm": {"num_layers": 1, "hidden_size": 64, "bidirectional": False},
    "cnn": {"conv_blocks": 3},
}
NO_SPREAD = "1 repeat: no spread"


# --------------------------------------------------------------------------- figures


def fmt(value: float | str | None) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "never" if value > 0 else "-inf"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def median(values: Sequence[float]) -> float:
    """The median of the values that are numbers (NaN skipped; inf counts as 'never')."""
    kept = [float(v) for v in values if not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(kept) if kept else math.nan


def spread(values: Sequence[float]) -> str:
    """'min - max' of several repeats; '' for one."""
    kept = [float(v) for v in values if not (isinstance(v, float) and math.isnan(v))]
    if len(kept) < 2:
        return ""
    return f"{fmt(min(kept))} – {fmt(max(kept))}"


def median_range(values: Sequence[float]) -> str:
    """'median (min – max)', or the one value."""
    low_high = spread(values)
    return fmt(median(values)) + (f" ({low_high})" if low_high else "")


@dataclass
class Row:
    """One reported figure: one value per repeat (or a single value for the whole run).

    `check` decides `met` from the median; figures without a target leave it None.
    """

    benchmark: str
    figure: str
    values: list[float] | float | str
    target: str = ""
    check: Callable[[float], bool] | None = None
    note: str = ""
    met: bool | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.values, (int, float)):
            self.values = [float(self.values)]
        if self.check is not None and not isinstance(self.values, str):
            self.met = bool(self.check(self.value))

    @property
    def value(self) -> float | str:
        """The median over the repeats."""
        return self.values if isinstance(self.values, str) else median(self.values)

    def cells(self) -> list[str]:
        verdict = {True: "yes", False: "**no**", None: ""}[self.met]
        low_high = "" if isinstance(self.values, str) else spread(self.values)
        return [
            self.benchmark,
            self.figure,
            fmt(self.value),
            low_high,
            self.target,
            verdict,
            self.note,
        ]


COLUMNS = ["benchmark", "figure", "median", "min – max", "target", "met", "note"]


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: math.isfinite(value) and value <= limit


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: math.isfinite(value) and value >= limit


def below(limit: float) -> Callable[[float], bool]:
    return lambda value: math.isfinite(value) and value < limit


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; inf when the numerator never happened (inf) or denominator 0."""
    if not math.isfinite(numerator) or denominator <= 0:
        return math.inf
    return numerator / denominator


def per_repeat(results: list[dict], key: str) -> list[float]:
    """One figure out of each repeat's dict of figures."""
    return [r[key] for r in results]


# --------------------------------------------------------------------------- what produced it


def read_load() -> tuple[float, float, float] | None:
    """The 1, 5 and 15-minute load averages, or None where the OS has none."""
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def git_commit(folder: Path = BENCH_DIR) -> str:
    """`git rev-parse --short HEAD`, plus '+dirty' when tracked files have uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        # The benchmarks' own outputs (RESULTS.md, plots) are not code: an earlier run's
        # uncommitted table does not make this run's figures come from other code.
        outputs = [f":(exclude){p.relative_to(folder)}" for p in folder.glob("*.md")]
        outputs += [f":(exclude){p.relative_to(folder)}" for p in folder.glob("*.png")]
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ":/", *outputs)
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")


def versions() -> dict[str, str]:
    import importlib.metadata as md

    found = {"python": platform.python_version()}
    for name in ("musictune", "torch", "ray", "optuna", "numpy", "pandas"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, str]:
    """What produced the figures: cores, CPU, memory, GPU (or none), OS."""
    import torch

    cpu = platform.processor() or platform.machine()
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    gpu = "none"
    if torch.cuda.is_available():
        gpu = f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "gpu": gpu,
        "os": platform.platform(),
    }


@dataclass
class Before:
    """Everything read before a run's timed part: when, the load, the commit, the machine."""

    when: dt.datetime
    load: tuple[float, float, float] | None
    commit: str
    machine: dict[str, str]
    versions: dict[str, str]

    @property
    def busy(self) -> bool:
        return self.load is not None and self.load[0] > BUSY_LOAD


RUN_COMMIT: str | None = None  # the commit read before this process's run (plots show it)


def before_run(load_reader: Callable[[], tuple | None] | None = None) -> Before:
    """Read the load average first, then the rest; nothing of the benchmark has run yet."""
    global RUN_COMMIT
    load = (load_reader or read_load)()
    before = Before(
        when=dt.datetime.now().astimezone(),
        load=tuple(load) if load is not None else None,
        commit=git_commit(),
        machine=machine(),
        versions=versions(),
    )
    RUN_COMMIT = before.commit
    return before


def measured(
    fn: Callable[[], object],
    load_reader: Callable[[], tuple | None] | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[Before, object, float, tuple | None]:
    """Run `fn` with the load average read before it starts (and again after it, labelled so).

    Returns (what was read before, fn's result, fn's wall time, the load after it).
    """
    load_reader, clock = load_reader or read_load, clock or time.perf_counter
    before = before_run(load_reader)
    if before.busy:
        print(
            f"warning: 1-minute load average {before.load[0]:.2f} before the run (above "
            f"{BUSY_LOAD:g}): other work inflates every time measured here",
            file=sys.stderr,
        )
    started = clock()
    result = fn()
    wall = clock() - started
    return before, result, wall, load_reader()


def _loads(load: tuple | None) -> str:
    return ", ".join(f"{x:.2f}" for x in load) if load is not None else "not available"


def section(
    rows: list[Row],
    title: str,
    settings: str,
    before: Before,
    repeats: int,
    *,
    seeds: str = "",
    wall_s: float | None = None,
    load_after: tuple | None = None,
    extra: Sequence[str] = (),
    command: str | None = None,
    table: str | None = None,
) -> str:
    """A RESULTS.md section: heading, busy warning, command, commit, machine, load, settings,
    then the table (rows as a markdown table, unless `table` gives one ready-made)."""
    when = before.when.strftime("%Y-%m-%d %H:%M %Z")
    command = command or "python " + " ".join(
        [os.path.relpath(sys.argv[0]) if sys.argv and sys.argv[0] else "-", *sys.argv[1:]]
    )
    m, v = before.machine, before.versions
    marks = []
    if before.busy:
        marks.append("BUSY MACHINE")
    if repeats < 2:
        marks.append(NO_SPREAD)
    heading = f"\n## {title} ({when})" + "".join(f" — {mark}" for mark in marks) + "\n\n"
    if before.busy:
        heading += (
            f"**Busy machine: the 1-minute load average was {before.load[0]:.2f} before this "
            f"run started (above {BUSY_LOAD:g} on {m['cores']} cores). Other work inflated "
            "these times: do not compare them with an idle run's.**\n\n"
        )
    if repeats < 2:
        repeat_line = f"**{NO_SPREAD}**: one repeat, a smoke test; recorded runs use at least 3"
    else:
        repeat_line = f"{repeats}; each figure is the median, with the min – max over the repeats"
    lines = [
        f"command: `{command}`",
        f"commit: {before.commit}",
        f"machine: {m['cores']} cores ({m['cpu']}), {m['memory']} memory, GPU: {m['gpu']}; "
        f"{m['os']}",
        "versions: " + ", ".join(f"{k} {x}" for k, x in v.items()),
        f"load average (1, 5, 15 min) before the run: {_loads(before.load)}"
        + (" (busy)" if before.busy else f" (idle enough: 1-min at most {BUSY_LOAD:g})")
        + (f"; after it: {_loads(load_after)}, this run's own work included" if load_after else ""),
        f"repeats: {repeat_line}" + (f"; seeds: {seeds}" if seeds else ""),
    ]
    if wall_s is not None:
        lines.append(f"wall time: {wall_s:.0f} s")
    lines += [*extra, f"settings: {settings}"]
    body = table if table is not None else markdown_table(rows)
    return heading + "".join(f"- {line}\n" for line in lines) + "\n" + body


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [c.replace("|", "\\|").replace("\n", " ") for c in row.cells()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
        write_text_atomic(path, old.rstrip("\n") + "\n" + text)
    return path


# --------------------------------------------------------------------------- running


RAY_START_S: float | None = None  # how long this process's ray.init took (None: not ours)


def start_ray(cpus: int) -> float | None:
    """A local Ray with `cpus` CPUs (reused if one is running); returns its start time."""
    global RAY_START_S
    import ray

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


def sweep_options(**kwargs):
    """SweepOptions for a timed sweep. `run_sweep` trains the untuned default after the trials
    (for its test-split comparison) unless told not to: off here, since it would add a whole extra
    training run to the timed part, on one side only where the other side is not a sweep."""
    from musictune.tuning.options import SweepOptions

    kwargs.setdefault("baseline_train", False)
    return SweepOptions(**kwargs)


def ray_cpus() -> int:
    """CPUs of the running Ray: what 'all the cores' means for one trial."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def timed(trainable, log: Path):
    """The trainable, unchanged, with each call's wall-clock span appended to `log`.

    A local function, so Ray ships it by value to its workers (same machine: same file).
    """

    def trial(config: dict, **shared) -> None:
        start = time.time()
        try:
            trainable(config, **shared)
        finally:
            with open(log, "a") as f:
                f.write(f"{start} {time.time()}\n")

    return trial


def read_spans(log: Path) -> list[tuple[float, float]]:
    """The (start, end) spans `timed` wrote, in start order."""
    if not Path(log).exists():
        return []
    return sorted(tuple(map(float, line.split())) for line in Path(log).read_text().splitlines())


def check_cpus(cpus: int) -> int:
    if cpus < 1:
        raise UserError(f"--cpus must be at least 1, got {cpus}")
    have = os.cpu_count() or 1
    if cpus > have:
        raise UserError(f"--cpus {cpus} but this machine has {have} cores: lower --cpus")
    return cpus


def check_repeats(repeats: int) -> int:
    """At least 3 repeats for recorded figures; 1 is allowed for smoke tests (marked so)."""
    if repeats == 1 or repeats >= 3:
        return repeats
    raise UserError(
        f"--repeats {repeats}: use at least 3 (1 only for a smoke test, marked '{NO_SPREAD}')"
    )


def data_dir(given: str | None) -> Path:
    """--data-dir, else the small demo data set (generated once into the user cache)."""
    from musictune.data.demo import ensure_demo
    from musictune.data.files import resolve_data_dir

    if given:
        return resolve_data_dir(given)
    return ensure_demo("small")


def plot_path(args: argparse.Namespace, name: str) -> Path:
    """A figure beside the results file (`<name>-quick.png` for --quick, so a quick run never
    replaces a full run's figure); with --no-save in a temp folder."""
    if getattr(args, "quick", False):
        name = name.replace(".png", "-quick.png")
    if args.no_save:
        return Path(tempfile.gettempdir()) / "musictune-benchmarks" / name
    return Path(args.results).resolve().parent / name


@contextlib.contextmanager
def quiet(log: Path) -> Iterator[None]:
    """Send a sweep's console output (progress bar, summary) to a log file, not the table."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        yield


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script (and run_all) takes."""
    p = ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small budgets")
    p.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"repeats of every figure (default {DEFAULT_REPEATS}; 1 only for smoke tests)",
    )
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--data-dir", help="patreco3-layout data (default: the small demo data)")
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"sweep preset ({DEFAULT_PRESET})")
    p.add_argument("--cpus", type=int, default=2, help="CPUs Ray may use (default 2)")
    p.add_argument("--results", default=str(RESULTS), help="markdown file to append to")
    p.add_argument("--no-save", action="store_true", help="print the table only")
    return p


@dataclass
class Outcome:
    """What a benchmark run built: its rows, settings, and any extra header lines."""

    rows: list[Row]
    settings: str
    seeds: str = ""
    extra: list[str] = field(default_factory=list)


def run_main(
    build: Callable[[argparse.Namespace], Outcome],
    args: argparse.Namespace,
    title: str,
) -> int:
    """Run a benchmark (load read first), print its table, append it to RESULTS.md; bad input
    exits 2 with one line."""
    try:
        check_cpus(args.cpus)
        check_repeats(args.repeats)
        before, outcome, wall, load_after = measured(lambda: build(args))
    except UserError as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    text = section(
        outcome.rows,
        title + (" (--quick)" if args.quick else ""),
        outcome.settings,
        before,
        args.repeats,
        seeds=outcome.seeds,
        wall_s=wall,
        load_after=load_after,
        extra=outcome.extra,
    )
    print(text)
    if not args.no_save:
        print(f"appended to {append_results(text, Path(args.results))}")
    return 0


def prepare(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """The data folder and a local Ray, before any timed part; header lines saying what it took."""
    started = time.perf_counter()
    folder = data_dir(args.data_dir)
    took = time.perf_counter() - started
    extra = [f"data prepared in {took:.0f} s before the timed part"] if took > 5 else []
    start_ray(args.cpus)
    if RAY_START_S is not None:
        extra.append(f"ray.init: {RAY_START_S:.1f} s")
    return folder, extra


def run_module(module, args: argparse.Namespace, folder: Path) -> tuple[list[Row], str, str]:
    """One benchmark module at the chosen budget: its rows, settings text and seeds text."""
    size = module.sizes(args.quick)
    kwargs = dict(size, repeats=args.repeats, seed=args.seed)
    if getattr(module, "PLOT", None):
        kwargs["plot"] = plot_path(args, module.PLOT)
    rows = module.run(folder, args.preset, **kwargs)
    return rows, module.describe(ray_cpus(), **size), module.seeds(args.seed, args.repeats)


def script_main(module, title: str, argv: list[str] | None = None) -> int:
    """The whole of one benchmark script: shared options, its budget, its table."""
    args = parser(module.__doc__.splitlines()[0]).parse_args(argv)

    def build(args: argparse.Namespace) -> Outcome:
        folder, extra = prepare(args)
        rows, settings, seeds = run_module(module, args, folder)
        if getattr(module, "PLOT", None):
            extra.append(f"plot: `{plot_path(args, module.PLOT)}`")
        return Outcome(rows, f"preset {args.preset}, data {folder}; {settings}", seeds, extra)

    return run_main(build, args, title)
