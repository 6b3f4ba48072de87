"""Data-set exploration: spectrograms and chromagrams of two genres, class and length histograms.

    python analysis/explore.py                          # the demo data set
    python analysis/explore.py --data-dir DIR --genres Rock Classical --out figs/

Writes clips.png, classes.png and lengths.png into a new folder (default
reports/explore-<date>_<time>, beside the results folder).
"""

from __future__ import annotations

import sys

from musictune.commands.cli import ArgumentParser
from musictune.errors import EXIT_USAGE, UserError

PROG = "analysis/explore.py"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="patreco3-layout data (default: $MUSICTUNE_DATA, else demo)")
    p.add_argument("--out", help="new output folder (default: reports/explore-<date>_<time>)")
    p.add_argument(
        "--genres",
        nargs=2,
        metavar="GENRE",
        help="two genres or classes to compare (default: the two most frequent classes)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from musictune.reporting.explore import explore

        explore(args.data_dir, args.out, args.genres)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (nothing written)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
