"""Turn every finished sweep into one report: plots, best-config reruns, test metrics.

The same command as `musictune report` (musictune.commands.report), which works from any
folder and any install; this script is kept for checkouts.

    python sweeps/lstm_spectrogram.py --samples 8 --smoke-test
    python analysis/report.py                                   # every finished experiment
    python analysis/report.py --sweep lstm_spectrogram-20261126-120501 --seeds 5
    python analysis/report.py --no-rerun                        # no training: sweep checkpoints
    python analysis/report.py --render-only                     # pages again, from saved results

Writes `reports/<date>_<time>/index.html` (self-contained), `index.md`, `summary.csv` and one
folder per experiment (trials.csv, PNGs, per-seed test metrics). Reruns are stored inside their
experiment (`<experiment>/reruns/`), so the next report reuses them. The evaluation is saved as
`results.json` (+ `results.npz`); --render-only rebuilds a report's pages and PNGs from it into a
new dated folder (the source report is left as it was), in seconds, without Ray or training.
"""

from __future__ import annotations

import sys

from musictune.commands.report import DESCRIPTION, INTERRUPTED, report
from musictune.options import parser_for, run_main
from musictune.reporting.options import ReportOptions

PROG = "analysis/report.py"


def build_parser():
    return parser_for(ReportOptions, PROG, DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    return run_main(PROG, report, build_parser().parse_args(argv), INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
