"""`musictune report`, one way: `tuning.experiments` (finished sweeps) -> `evaluate` (reruns,
test metrics, baselines) -> `results` (saved by `saved`) -> `render` (pages); `build` runs them."""
