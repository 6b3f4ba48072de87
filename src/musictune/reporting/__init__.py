"""Turn finished sweeps into a report: plots, best-config reruns, test metrics, one HTML page.

    python analysis/report.py                      # every finished experiment in ./results
    python analysis/report.py --sweep NAME --seeds 5

Modules, in the order the data flows: `experiments` (read sweeps through Ray's result API),
`rerun` (best configs retrained with several seeds as Ray Tune trials), `testing` (test-split
metrics), `plots`, `reference` (the course's published figures), `html` (index.md/index.html),
`sections` (the report's content), `build` (folders and the atomic publish, `options` its
settings) and `explore` (data-set figures).
"""
