"""`musictune report`, one way: `experiments` (Ray's result API) -> `evaluate` (reruns, test
metrics, baselines) -> `results` (saved by `saved`) -> `render` (pages); `build` runs them."""
