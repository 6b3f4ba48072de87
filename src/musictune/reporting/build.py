"""Assemble one report over finished experiments: tables, plots, reruns, test metrics.

The report is built in a hidden temporary folder beside its destination and renamed to a new
dated folder (`reports/2026-11-26_120512`) only when complete, so a report folder is always
whole and an earlier one is never overwritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from musictune import paths
from musictune.atomic import ensure_writable
from musictune.errors import UserError
from musictune.reporting.experiments import find_experiments
from musictune.reporting.options import ReportOptions

# --------------------------------------------------------------------------- folders


def report_root(options: ReportOptions, storage: Path) -> Path:
    out = Path(options.out).expanduser() if options.out else storage.resolve().parent / "reports"
    ensure_writable(out, "report folder", "pass --out")
    return out


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


def build_report(options: ReportOptions) -> Path:
    """Write the report for every selected experiment and return its folder."""
    options.validate()
    storage = Path(options.storage).expanduser() if options.storage else paths.default_results_dir()
    experiments, skipped = find_experiments(storage, options.sweeps)
    out = report_root(options, storage)
    from musictune.reporting.sections import write_report  # Ray, torch, sklearn, matplotlib

    tmp = Path(tempfile.mkdtemp(dir=out, prefix=".tmp-report-"))
    try:
        write_report(tmp, experiments, skipped, storage, options)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report is meant to be shared
        final = publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"report: {final / 'index.html'}")
    print(f"        {final / 'index.md'}")
    return final
