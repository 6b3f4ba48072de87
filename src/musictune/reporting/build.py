"""Run the pipeline; a report is built in a hidden folder and renamed to a new dated one
(`reports/2026-11-26_120512`) only when complete, never over an earlier one."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from musictune import paths
from musictune.atomic import ensure_writable
from musictune.errors import UserError
from musictune.reporting import saved
from musictune.reporting.noise import top_lines
from musictune.reporting.options import ReportOptions
from musictune.reporting.results import ReportResults
from musictune.tuning.experiments import find_experiments

REPORT_NAME = re.compile(r"(\d{4}-\d{2}-\d{2}_\d{6})(?:-(\d+))?")  # what `publish` names them


def storage_of(options: ReportOptions) -> Path:
    """The storage folder, absolute (as the page records it; see `find_experiments`)."""
    if not options.storage:
        return paths.default_results_dir()
    storage = Path(options.storage).expanduser()
    return storage if "://" in options.storage else storage.absolute()


def default_root(options: ReportOptions) -> Path:
    """Where reports go: --out, or reports/ beside the storage folder."""
    if options.out:
        return Path(options.out).expanduser()
    return storage_of(options).resolve().parent / "reports"


def publish(tmp: Path, out: Path) -> Path:
    """Rename the finished temporary folder to a new dated name; never onto an existing one."""
    stamp = time.strftime("%Y-%m-%d_%H%M%S")
    for n in range(1, 1000):
        final = out / (stamp if n == 1 else f"{stamp}-{n}")
        if final.exists():
            continue
        try:
            os.rename(tmp, final)  # fails if a non-empty folder of that name appeared meanwhile
            return final
        except OSError:
            continue
    raise UserError(f"cannot find a free report name in {out}: tidy it up")


def in_new_report(out: Path, fill: Callable[[Path], ReportResults]) -> Path:
    """Run `fill` on a temporary folder in `out` and publish it (on any failure remove it)."""
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".tmp-report-"))
    try:
        results = fill(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report is meant to be shared
        final = publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for line in top_lines(results):
        print(f"report: {line}")
    print(f"report: {final / 'index.html'}")
    print(f"        {final / 'index.md'}")
    return final


def build_report(options: ReportOptions) -> Path:
    """Write the report for every selected experiment and return its folder."""
    options.validate()
    if options.render_only is not None:
        return render_saved_report(options)
    storage = storage_of(options)
    experiments, skipped = find_experiments(storage, options.sweeps)
    out = default_root(options)
    ensure_writable(out, "report folder", "pass --out")
    from musictune.reporting.evaluate import evaluate_report  # Ray, torch, sklearn
    from musictune.reporting.render import render_report  # matplotlib

    def fill(tmp: Path) -> ReportResults:
        results = evaluate_report(experiments, skipped, storage, options, tmp)
        saved.save(results, tmp)
        results = saved.load(tmp)  # as --render-only will see them
        render_report(results, tmp)
        return results

    return in_new_report(out, fill)


def newest_report(root: Path) -> Path:
    """The newest dated report folder under `root` that holds saved results."""
    named = {p: REPORT_NAME.fullmatch(p.name) for p in (root.iterdir() if root.is_dir() else [])}
    found = {p: m.groups() for p, m in named.items() if m and (p / saved.RESULTS_FILE).is_file()}
    if not found:
        raise UserError(
            f"no report with {saved.RESULTS_FILE} in {root}: build one with musictune report "
            "(without --render-only), or pass the report folder or --out"
        )
    return max(found, key=lambda p: (found[p][0], int(found[p][1] or 1)))


def render_saved_report(options: ReportOptions) -> Path:
    """A report's pages again from its saved results, into a new dated folder (in --out, else
    beside the source); no Ray, no data, no training."""
    if options.render_only:
        source = Path(options.render_only).expanduser()
        if not source.is_dir():
            raise UserError(f"report folder {source} does not exist: pass a report's folder")
    else:
        source = newest_report(default_root(options))
    results = saved.load(source)
    out = default_root(options) if options.out else source.parent
    ensure_writable(out, "report folder", "pass --out")
    from musictune.reporting.render import render_report  # matplotlib

    def fill(tmp: Path) -> ReportResults:
        for path in saved.saved_files(results, source):
            copy = tmp / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
        render_report(results, tmp)
        return results

    print(f"report: rendering {source / saved.RESULTS_FILE} (no reruns, no training)", flush=True)
    return in_new_report(out, fill)
