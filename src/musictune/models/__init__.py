"""Model families: `create_model(name, n_features, head, n_outputs, **kwargs)`.

A family is one module of this package: a builder decorated with `@register_model(...)`, which
declares its knobs (train flags, sweep choices, summary columns) beside it (see registry.py).
Heads (classifier, regressor, multitask) are shared and chosen by the task.

Families outside this package (a lab's own model) register the same way; list their modules in
$MUSICTUNE_MODELS (comma-separated, importable) so every command and every Ray worker loads them.
"""

from __future__ import annotations

from musictune.models.heads import HEADS, MusicModel
from musictune.models.registry import (
    PLUGINS_ENV,  # noqa: F401
    SHARED_DEFAULTS,
    Knob,
    ModelFamily,
    create_model,
    default_hyperparameters,
    families,
    get_family,
    list_models,
    model_kwargs,
    register_model,
)

__all__ = [
    "HEADS",
    "SHARED_DEFAULTS",
    "Knob",
    "ModelFamily",
    "MusicModel",
    "create_model",
    "default_hyperparameters",
    "families",
    "get_family",
    "list_models",
    "model_kwargs",
    "register_model",
]


# Importing the families registers them.
from musictune.models import cnn, course_cnn, course_lstm, lstm  # noqa: E402,F401
