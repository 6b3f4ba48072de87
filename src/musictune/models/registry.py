"""The model registry: a family is one builder plus what a sweep, `musictune train` and the
summaries need to know of it, declared beside the builder with `@register_model(...)`.

Ray-free on purpose (data -> models -> training): a family's search space is plain values
(`Knob.sweep`: the choices a sweep draws from) that `musictune.tuning.space` turns into Tune
domains.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from musictune.errors import UserError
from musictune.models.heads import HEADS, MusicModel

# Every family takes these; a sweep tunes them within the course's ranges (see tuning/space.py).
SHARED_DEFAULTS: dict[str, object] = {"lr": 1e-3, "dropout": 0.2}


@dataclass(frozen=True)
class Knob:
    """One architecture option of a family: a keyword of its builder."""

    name: str  # builder keyword, trial-config key and summary column
    flag: str  # its `musictune train` option, e.g. "--layers"
    help: str
    sweep: tuple | None = None  # the values a sweep draws from (None: kept at the default)
    kind: type | None = None  # the flag's type, where the default (None) does not say


@dataclass(frozen=True)
class ModelFamily:
    name: str
    build: Callable[..., nn.Module]
    knobs: tuple[Knob, ...] = ()
    layers: str | None = None  # the knob that counts layers (reports' "layers" axis)
    doc: str = ""
    defaults: dict = field(default_factory=dict)  # the builder's: the untuned default

    @property
    def columns(self) -> list[str]:
        """What the sweep summary shows of a trial of this family, besides lr and dropout."""
        return [k.name for k in self.knobs]

    @property
    def arguments(self) -> dict[str, object]:
        """Every keyword of the builder (knobs or not) with its default: what a config may set."""
        params = inspect.signature(self.build).parameters
        return {k: p.default for k, p in params.items() if k != "n_features"}

    def kwargs(self, options: dict) -> dict:
        """The subset of `options` (e.g. a trial config) that the builder takes."""
        arguments = self.arguments
        return {k: v for k, v in options.items() if k in arguments}


_REGISTRY: dict[str, ModelFamily] = {}
PLUGINS_ENV = "MUSICTUNE_MODELS"  # modules of families outside this package, comma-separated
_plugins_loaded = False


def _load_plugins() -> None:
    """Import the $MUSICTUNE_MODELS modules once, on first use (never at import time)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UserError(
                f"${PLUGINS_ENV} names {module!r}, which cannot be imported ({exc}): "
                "fix the module name or your PYTHONPATH"
            ) from None


def register_model(
    *knobs: Knob, layers: str | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register the decorated builder as family `<function name>`; a taken name is an error."""

    def register(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = build.__name__
        taken = _REGISTRY.get(name)
        if taken is not None and taken.build.__qualname__ != build.__qualname__:
            raise ValueError(f"model {name!r} is already registered (by {taken.build.__module__})")
        params = inspect.signature(build).parameters
        unknown = [k.name for k in knobs if k.name not in params]
        if unknown:
            raise ValueError(f"model {name!r}: knobs {unknown} are not arguments of its builder")
        defaults = {k.name: params[k.name].default for k in knobs}
        doc = (inspect.getdoc(build) or "").split("\n")[0]
        _REGISTRY[name] = ModelFamily(name, build, knobs, layers, doc, defaults)
        return build

    return register


def list_models() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def get_family(name: str) -> ModelFamily:
    _load_plugins()
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}: choose one of {', '.join(list_models())}")
    return _REGISTRY[name]


def families() -> list[ModelFamily]:
    return [_REGISTRY[n] for n in list_models()]


def model_kwargs(name: str, options: dict) -> dict:
    """The subset of `options` that model `name` takes (a trial config carries every knob)."""
    return get_family(name).kwargs(options)


def default_hyperparameters(name: str) -> dict[str, object]:
    """The untuned default of a family: `musictune train`'s values, which baselines compare."""
    return {**SHARED_DEFAULTS, **get_family(name).defaults}


def create_model(
    name: str,
    n_features: int,
    head: str = "classifier",
    n_outputs: int = 10,
    head_dropout: float = 0.0,
    **kwargs,
) -> MusicModel:
    """Build backbone `name` with a head; unknown names or options fail with the known ones."""
    family = get_family(name)
    if head not in HEADS:
        raise UserError(f"unknown head {head!r}: choose one of {', '.join(HEADS)}")
    try:
        backbone = family.build(n_features=n_features, **kwargs)
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
