"""Search spaces: the course's ranges, widened only where a model has more knobs."""

from __future__ import annotations

from ray import tune

LR_RANGE = (10**-4.4, 1e-2)  # the course: lr = 10 ** U(-4.4, -2)
DROPOUT_RANGE = (0.1, 0.8)  # the course: dropout ~ U(0.1, 0.8)
LSTM_LAYERS = [1, 2]
LSTM_HIDDEN = [32, 64]  # larger sizes cost minutes per epoch on a CPU
CNN_BLOCKS = [2, 3, 4]


def search_space(
    model: str,
    lr_range: tuple[float, float] = LR_RANGE,
    dropout_range: tuple[float, float] = DROPOUT_RANGE,
) -> dict:
    """Tunable values; fixed values (epochs, seed, threads) are added by the sweep."""
    space = {
        "lr": tune.loguniform(*lr_range),
        "dropout": tune.uniform(*dropout_range),
    }
    if model == "lstm":
        space |= {
            "num_layers": tune.choice(LSTM_LAYERS),
            "hidden_size": tune.choice(LSTM_HIDDEN),
            "bidirectional": tune.choice([False, True]),
        }
    elif model == "cnn":
        space["conv_blocks"] = tune.choice(CNN_BLOCKS)
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
