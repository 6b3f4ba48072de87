"""The one vocabulary for "task", shared by presets, data sets, model heads and metrics.

- genre: the 10 folded genre classes (a classifier head; macro F1 selects models)
- regression: one affect target in [0, 1] (a regressor head; Spearman's rho)
- multitask: valence, energy and danceability at once (one output each; mean rho)
"""

from __future__ import annotations

GENRE, REGRESSION, MULTITASK = "genre", "regression", "multitask"
TASKS = (GENRE, REGRESSION, MULTITASK)
