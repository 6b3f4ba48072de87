"""Turn finished sweeps into a report (`musictune report`): `experiments` (Ray's result API)
-> `evaluate` (reruns, test metrics, baselines) -> `results` (saved by `saved`) -> `render`
(the pages, from saved results alone); `build` runs them and publishes the folder.
"""
