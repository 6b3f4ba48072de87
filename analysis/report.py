"""Turn every finished sweep into one report: plots, best-config reruns, test metrics.

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

import argparse
import sys

from musictune.errors import EXIT_USAGE, UserError
from musictune.options import ArgumentParser, non_negative_int, positive_float, positive_int

PROG = "analysis/report.py"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--storage", help="sweep results folder (default ./results or $MUSICTUNE_RESULTS)"
    )
    p.add_argument(
        "--sweep", action="append", metavar="NAME", help="only this experiment (repeatable)"
    )
    p.add_argument("--out", help="report parent folder (default: reports/ beside the storage)")
    p.add_argument("--no-rerun", action="store_true", help="test the sweep checkpoints instead")
    p.add_argument("--seeds", type=positive_int, default=3, help="rerun seeds K (default 3)")
    p.add_argument("--top", type=positive_int, default=1, help="best configs to rerun (default 1)")
    p.add_argument(
        "--rerun-max-epochs", type=positive_int, default=1000, help="rerun budget (default 1000)"
    )
    p.add_argument(
        "--rerun-patience", type=non_negative_int, default=10, help="early stopping (default 10)"
    )
    p.add_argument("--data-dir", help="data folder (default: the one recorded in sweep.json)")
    p.add_argument("--cpus-per-trial", type=positive_float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--address", help="existing Ray cluster for the reruns (default: local)")
    p.add_argument(
        "--render-only",
        nargs="?",
        const="",
        metavar="REPORT_DIR",
        help="rebuild REPORT_DIR (default: the newest report in --out, or reports/ beside the "
        "storage) from its saved results into a new dated folder: no reruns, no training",
    )
    return p


def options_from_args(args: argparse.Namespace):
    from musictune.reporting.options import ReportOptions, RerunSettings

    return ReportOptions(
        storage=args.storage,
        sweeps=args.sweep,
        out=args.out,
        rerun=not args.no_rerun,
        top=args.top,
        data_dir=args.data_dir,
        settings=RerunSettings(
            seeds=args.seeds,
            max_epochs=args.rerun_max_epochs,
            patience=args.rerun_patience,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            address=args.address,
        ),
        render_only=args.render_only,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from musictune.reporting.build import build_report

        build_report(options_from_args(args))
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted: no report written; finished reruns are kept and an "
            "unfinished one resumes on the next run",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
