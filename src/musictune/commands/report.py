"""`musictune report` and `python analysis/report.py`: one command, two names.

    musictune report                                  # every finished experiment in ./results
    musictune report --storage results --sweep lstm_spectrogram-20261126-120501 --seeds 5
    musictune report --no-rerun                       # no training: test the sweep checkpoints
    musictune report --render-only                    # pages again, from saved results

Cheap to import (no Ray, torch or pandas): `--render-only` through analysis/report.py stays
free of them, and `musictune` builds its parser from this module.
"""

from __future__ import annotations

from musictune.options import add_options, from_args
from musictune.reporting.options import ReportOptions

DESCRIPTION = "Turn every finished sweep into one report: plots, best-config reruns, test metrics."
INTERRUPTED = (
    "no report written; finished reruns are kept and an unfinished one resumes on the next run"
)


def report(args) -> None:
    from musictune.reporting.build import build_report

    build_report(from_args(ReportOptions, args))


def add_report_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="every finished sweep into one report", description=DESCRIPTION
    )
    add_options(p, ReportOptions)
    p.set_defaults(handler=report, interrupted=INTERRUPTED)
