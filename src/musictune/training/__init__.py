"""One model trained and scored: `loop` (fit, K-fold fit, predict), `checkpoints`, `selection`
(the metric and tie-break that choose a model), `metrics`, `evaluation`, `baselines`, `affect`
(the multitask targets) and `trial` (a trial config -> a model and its training settings)."""
