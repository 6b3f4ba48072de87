"""Turn finished sweeps into a report: plots, best-config reruns, test metrics, one HTML page.

    musictune report                      # every finished experiment in ./results
    musictune report --sweep NAME --seeds 5   # = python analysis/report.py --sweep NAME ...

Modules, in the order the data flows: `experiments` (read sweeps through Ray's result API),
`rerun` (best configs retrained with several seeds as Ray Tune trials), `evaluate` (reruns and
test metrics -> `results`, the typed results; `featuremaps`: what a CNN's first blocks see;
`importance`: Optuna's fANOVA over the trials; `anytime`: best validation so far), `saved`
(results.json, results.npz), `render`/`sections`/`seeds`/`comparison` (the pages, from saved
results alone; `mattered`: importance, parallel coordinates and anytime sections; `views`: the
head's cross-experiment comparisons), `plots`/`sweep_plots`, `reference` (the course's published
figures and what each is set beside), `html` (index.md/index.html), `build` (evaluate -> save ->
render, folders and the atomic publish; `headlines`: the top lines it prints; `options` its
settings) and `explore` (data-set figures).
"""
