"""Report figures with matplotlib's Agg backend (no display needed): one PNG per function."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from musictune.reporting.experiments import LAYER_KEYS  # noqa: E402

LOG_KEYS = {"lr", "weight_decay"}  # sampled log-uniformly (as are loss weights): log axis
MARKERS = "os^Dv<>P*X"
DPI = 100


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Continuous values stay numbers; booleans, strings and few-valued integers (layers, sizes)
    become evenly spaced categories with labels."""
    discrete = pd.api.types.is_integer_dtype(values) and values.nunique() <= 6
    if discrete or pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        keys = sorted(values.unique(), key=lambda v: (str(type(v)), v))
        index = {k: i for i, k in enumerate(keys)}
        return values.map(index).to_numpy(float), [str(k) for k in keys]
    return values.to_numpy(float), None


def hyperparameter_scatter(
    trials: pd.DataFrame, hparams: list[str], value: str, path: Path, title: str
) -> Path:
    """The validation metric against each hyperparameter: colour = dropout, marker = layers."""
    n = len(hparams)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False, layout="constrained"
    )
    colour = trials["dropout"].to_numpy(float) if "dropout" in trials else None
    layer_key = next((k for k in LAYER_KEYS if k in trials and trials[k].nunique() > 1), None)
    groups = sorted(trials[layer_key].unique()) if layer_key else [None]
    rng = np.random.default_rng(0)
    scatter = None
    for ax, key in zip(axes.flat, hparams):
        x, labels = _positions(trials[key])
        if labels is not None:
            x = x + rng.uniform(-0.12, 0.12, len(x))  # jitter categories so points separate
        for marker, group in zip(MARKERS, groups):
            mask = np.ones(len(trials), bool) if group is None else trials[layer_key] == group
            mask = np.asarray(mask)
            scatter = ax.scatter(
                x[mask],
                trials[value].to_numpy(float)[mask],
                c=None if colour is None else colour[mask],
                cmap="viridis",
                vmin=None if colour is None else np.nanmin(colour),
                vmax=None if colour is None else np.nanmax(colour),
                marker=marker,
                edgecolors="k",
                linewidths=0.4,
                label=None if group is None else f"{layer_key}={group}",
            )
        logarithmic = key in LOG_KEYS or key.startswith("loss_weight_")
        if logarithmic and labels is None and (trials[key] > 0).all():
            ax.set_xscale("log")
        if labels is not None:
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(key)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel(value)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if layer_key:
        axes.flat[0].legend(fontsize=8)
    if colour is not None and scatter is not None:
        fig.colorbar(scatter, ax=axes, label="dropout", shrink=0.8)
    fig.suptitle(title)
    return save(fig, path)


def learning_curves(
    histories: dict[str, pd.DataFrame], metric: str, path: Path, title: str
) -> Path:
    """Validation metric and train/validation loss per epoch, one line per trial or seed."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for i, (label, frame) in enumerate(histories.items()):
        colour = f"C{i % 10}"
        epochs = frame["training_iteration"]
        if metric in frame:
            left.plot(epochs, frame[metric], color=colour, marker=".", label=label)
        if "train_loss" in frame:
            right.plot(epochs, frame["train_loss"], color=colour, label=f"{label} train")
        if "val_loss" in frame:
            right.plot(epochs, frame["val_loss"], color=colour, linestyle="--")
    left.set(xlabel="epoch", ylabel=metric, title=metric)
    right.set(xlabel="epoch", ylabel="loss", title="train (solid) and validation (dashed) loss")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.suptitle(title)
    return save(fig, path)


def confusion_matrix_plot(matrix: np.ndarray, classes: tuple[str, ...], path: Path, title: str):
    """Row-normalised confusion matrix: each row (true class) sums to 1."""
    size = 1.0 + 0.55 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), layout="constrained")
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for (i, j), v in np.ndenumerate(matrix):
        colour = "white" if v > 0.5 else "black"
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return save(fig, path)


def predicted_vs_true(
    pairs: dict[str, tuple[np.ndarray, np.ndarray]], rhos: dict, path: Path, title: str
) -> Path:
    """One scatter per affect target with the identity line and Spearman's rho."""
    fig, axes = plt.subplots(
        1, len(pairs), figsize=(4.3 * len(pairs), 3.8), squeeze=False, layout="constrained"
    )
    for ax, (target, (true, pred)) in zip(axes.flat, pairs.items()):
        ax.scatter(true, pred, s=12, alpha=0.6, edgecolors="none")
        ax.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--")
        rho = rhos.get(target, float("nan"))
        ax.set(xlabel=f"true {target}", ylabel=f"predicted {target}")
        ax.set_title(f"{target}: Spearman {rho:.3f} (seed mean)")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, path)


def feature_map_grid(
    columns: list[str], clips: list[str], maps: list[list[np.ndarray]], path: Path, title: str
) -> Path:
    """Rows: clips; columns: the input and each conv block's channel-mean map (features up,
    time across), every panel scaled to its own range."""
    rows, cols = len(clips), len(columns)
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.6 * cols, 1.1 * rows + 0.7), squeeze=False, layout="constrained"
    )
    for r, (label, row) in enumerate(zip(clips, maps)):
        for c, image in enumerate(row):
            ax = axes[r, c]
            image = np.asarray(image, np.float32)
            ax.imshow(image, origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=9)
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title)
    return save(fig, path)
