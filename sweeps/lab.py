"""The course lab reproduced: every experiment of its plan, then one report (see `musictune lab`).

python sweeps/lab.py --budget quick
python sweeps/lab.py --budget smoke          # tiny demo data, one trial each (CI)
python sweeps/lab.py --budget full --data-dir ~/data/patreco3
python sweeps/lab.py --budget full --address auto --concurrent-experiments 4   # on a cluster

= `musictune lab`; it overrides nothing (--help lists the options and their defaults).
"""

import sys

from musictune.commands.cli import main

if __name__ == "__main__":
    sys.exit(main(["lab", *sys.argv[1:]]))
