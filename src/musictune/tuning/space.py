"""Search spaces: the course's ranges for lr and dropout, plus each family's own knobs."""

from __future__ import annotations

from ray import tune

from musictune.models import get_family

LR_RANGE = (10**-4.4, 1e-2)  # the course: lr = 10 ** U(-4.4, -2)
DROPOUT_RANGE = (0.1, 0.8)  # the course: dropout ~ U(0.1, 0.8)


def search_space(
    model: str,
    lr_range: tuple[float, float] = LR_RANGE,
    dropout_range: tuple[float, float] = DROPOUT_RANGE,
) -> dict:
    """lr and dropout, then the knobs the family declares (`Knob.sweep`; the others keep their
    defaults). An unknown family is an error naming the known ones, never a partial space."""
    space = {
        "lr": tune.loguniform(*lr_range),
        "dropout": tune.uniform(*dropout_range),
    }
    for knob in get_family(model).knobs:
        if knob.sweep is not None:
            space[knob.name] = tune.choice(list(knob.sweep))
    return space


# Multitask loss weights: relative, so the sweep scales them to average 1 (see affect.py).
LOSS_WEIGHT_RANGE = (0.25, 4.0)


def loss_weight_space(
    targets: tuple[str, ...], weights: tuple[float, ...] | None = None, tuned: bool = False
) -> dict:
    """`loss_weight_<target>` per target: fixed (default equal) or log-uniform when tuned."""
    if tuned:
        return {f"loss_weight_{t}": tune.loguniform(*LOSS_WEIGHT_RANGE) for t in targets}
    weights = weights or (1.0,) * len(targets)
    return {f"loss_weight_{t}": float(w) for t, w in zip(targets, weights)}


def transfer_space() -> dict:
    """Transfer tunes whether the genre backbone is frozen; its conv blocks are the source's."""
    return {"freeze_backbone": tune.choice([True, False])}
