"""Model registry: `create_model(name, n_features, head, n_outputs, **kwargs)`.

Each backbone family lives in its own module and registers a builder with `@register_model`;
heads (classifier, regressor, multitask) are shared and chosen by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from musictune.errors import UserError
from musictune.models.heads import HEADS, MusicModel

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    _REGISTRY[fn.__name__] = fn
    return fn


def model_kwargs(name: str, options: dict) -> dict:
    """The subset of `options` that model `name` takes (a sweep config carries every knob)."""
    params = inspect.signature(_REGISTRY[name]).parameters
    return {k: v for k, v in options.items() if k in params and k != "n_features"}


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(
    name: str,
    n_features: int,
    head: str = "classifier",
    n_outputs: int = 10,
    head_dropout: float = 0.0,
    **kwargs,
) -> MusicModel:
    """Build backbone `name` with a head; unknown names or options fail with the known ones."""
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}: choose one of {', '.join(list_models())}")
    if head not in HEADS:
        raise UserError(f"unknown head {head!r}: choose one of {', '.join(HEADS)}")
    try:
        backbone = _REGISTRY[name](n_features=n_features, **kwargs)
    except TypeError as exc:
        raise UserError(f"model {name!r}: {exc}") from None
    model = MusicModel(backbone, HEADS[head](backbone.out_features, n_outputs, head_dropout))
    # Everything needed to rebuild the model from a checkpoint, as plain values.
    model.spec = {
        "name": name,
        "n_features": n_features,
        "head": head,
        "n_outputs": n_outputs,
        "head_dropout": head_dropout,
        **kwargs,
    }
    return model


# Importing the families registers them.
from musictune.models import cnn, lstm  # noqa: E402,F401
