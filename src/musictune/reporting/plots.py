"""Report figures with matplotlib's Agg backend (no display needed): one PNG per function,
drawn from saved results and the report's own trial tables only."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from musictune.tuning.experiments import LAYER_KEYS  # noqa: E402
from musictune.tuning.importance import AnytimeCurve, Importance  # noqa: E402

LOG_KEYS = {"lr", "weight_decay"}  # sampled log-uniformly (as are loss weights): log axis
MARKERS = "os^Dv<>P*X"
DPI = 100
TOP = 3  # trials highlighted in the parallel coordinates
POINT = {"cmap": "viridis", "edgecolors": "k", "linewidths": 0.4}  # a trial in a scatter
TOP_LINE = {"linewidth": 2.6, "alpha": 1.0, "zorder": 3}  # parallel coordinates: the TOP best
LINE = {"linewidth": 1.0, "alpha": 0.6, "zorder": 2}  # and the others
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1}  # over the lines


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def panels(rows: int, cols: int, size: tuple[float, float]):
    return plt.subplots(rows, cols, figsize=size, squeeze=False, layout="constrained")


def categories(values: pd.Series) -> list | None:
    """Booleans, strings and few-valued integers (layers, sizes) as sorted categories, else None."""
    discrete = pd.api.types.is_integer_dtype(values) and values.nunique() <= 6
    if discrete or pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return sorted(values.unique(), key=lambda v: (str(type(v)), v))
    return None


def logarithmic(key: str, values: np.ndarray) -> bool:
    return (key in LOG_KEYS or key.startswith("loss_weight_")) and bool((values > 0).all())


def _positions(values: pd.Series) -> tuple[np.ndarray, list[str] | None]:
    """Numbers stay numbers; categories become evenly spaced positions with labels."""
    keys = categories(values)
    if keys is None:
        return values.to_numpy(float), None
    index = {k: i for i, k in enumerate(keys)}
    return values.map(index).to_numpy(float), [str(k) for k in keys]


def hyperparameter_scatter(
    trials: pd.DataFrame, hparams: list[str], value: str, path: Path, title: str
) -> Path:
    """The validation metric against each hyperparameter: colour = dropout, marker = layers."""
    n = len(hparams)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = panels(rows, cols, (4.2 * cols, 3.4 * rows))
    colour = trials["dropout"].to_numpy(float) if "dropout" in trials else None
    layer_key = next((k for k in LAYER_KEYS if k in trials and trials[k].nunique() > 1), None)
    groups = sorted(trials[layer_key].unique()) if layer_key else [None]
    lo, hi = (None, None) if colour is None else (np.nanmin(colour), np.nanmax(colour))
    y = trials[value].to_numpy(float)
    rng = np.random.default_rng(0)
    scatter = None
    for ax, key in zip(axes.flat, hparams):
        x, labels = _positions(trials[key])
        if labels is not None:
            x = x + rng.uniform(-0.12, 0.12, len(x))  # jitter categories so points separate
        for marker, group in zip(MARKERS, groups):
            mask = np.full(len(y), True) if group is None else trials[layer_key].eq(group).values
            c = None if colour is None else colour[mask]
            label = None if group is None else f"{layer_key}={group}"
            scatter = ax.scatter(
                x[mask], y[mask], c=c, vmin=lo, vmax=hi, marker=marker, label=label, **POINT
            )
        if labels is not None:
            ax.set_xticks(range(len(labels)), labels)
        elif logarithmic(key, x):
            ax.set_xscale("log")
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
    fig, axes = panels(1, len(pairs), (4.3 * len(pairs), 3.8))
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
    fig, axes = panels(rows, cols, (2.6 * cols, 1.1 * rows + 0.7))
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


def importance_bars(imp: Importance, path: Path, title: str) -> Path:
    """Bootstrap mean ± sd of each hyperparameter's share (bars), all trials' value (dots)."""
    n = len(imp.params)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * n + 1.4), layout="constrained")
    y = np.arange(n)[::-1]
    ax.barh(y, imp.mean, xerr=np.nan_to_num(imp.sd), color="C0", alpha=0.7, capsize=3)
    ax.scatter(imp.importance, y, color="k", zorder=3, s=14, label="all trials")
    ax.set_yticks(y, imp.params)
    ax.set_xlim(0, 1)
    ax.set(xlabel="share of explained variance (fANOVA)", title=title)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return save(fig, path)


def axis_positions(values: pd.Series, key: str) -> tuple[np.ndarray, list[float], list[str]]:
    """A parallel axis: values scaled to [0, 1], its tick positions and labels."""
    keys = categories(values)
    if keys is not None:
        step = 1 / max(len(keys) - 1, 1)
        where = {k: (i * step if len(keys) > 1 else 0.5) for i, k in enumerate(keys)}
        return values.map(where).to_numpy(float), list(where.values()), [str(k) for k in keys]
    raw = values.to_numpy(float)
    log = logarithmic(key, raw)
    scaled = np.log10(raw) if log else raw
    low, high = float(np.nanmin(scaled)), float(np.nanmax(scaled))
    if not high > low:  # one value: mid-axis
        return np.full(len(raw), 0.5), [0.5], [f"{10**low if log else low:.3g}"]
    ticks = np.linspace(low, high, 3)
    labels = [f"{10**t if log else t:.3g}" for t in ticks]
    return (scaled - low) / (high - low), list((ticks - low) / (high - low)), labels


def parallel_coordinates(
    table: pd.DataFrame, hparams: list[str], value: str, mode: str, path: Path, title: str
) -> Path:
    """One line per trial across an axis per hyperparameter and the metric, coloured by the
    metric; the TOP best trials drawn thick on top. `table` is best first."""
    columns = [*hparams, value]
    fig, ax = plt.subplots(figsize=(1.7 * len(columns) + 2.5, 4.2), layout="constrained")
    scaled = []
    for i, key in enumerate(columns):
        y, ticks, labels = axis_positions(table[key], key)
        scaled.append(y)
        ax.axvline(i, color="grey", linewidth=0.8)
        for tick, label in zip(ticks, labels):
            ax.text(i + 0.04, tick, label, fontsize=7, va="center", zorder=5, bbox=LABEL_BOX)
    lines = np.column_stack(scaled)
    metric = table[value].to_numpy(float)
    norm = plt.Normalize(np.nanmin(metric), np.nanmax(metric))
    cmap = plt.get_cmap("viridis" if mode == "max" else "viridis_r")  # the best is yellow
    colours = cmap(norm(metric))
    x = np.arange(len(columns))
    for row in reversed(range(len(table))):  # the best last, on top
        top = row < TOP
        label = f"#{row + 1} {table['trial_id'].iloc[row]}" if top else None
        ax.plot(x, lines[row], color=colours[row], label=label, **(TOP_LINE if top else LINE))
    ax.set_xticks(x, columns, rotation=20)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(columns) - 0.4)
    ax.set_ylim(-0.05, 1.05)
    handles, labels = ax.get_legend_handles_labels()  # drawn worst first: list the best first
    where = {"loc": "upper left", "bbox_to_anchor": (1.0, 1.0)}
    ax.legend(handles[::-1], labels[::-1], fontsize=7, title=f"top {min(TOP, len(table))}", **where)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=ax, label=value, shrink=0.8, location="left")
    ax.set_title(title)
    return save(fig, path)


def anytime_plot(curves: dict[str, AnytimeCurve], metric: str, path: Path, title: str) -> Path:
    """Best validation so far against wall time (left) and epochs trained (right), one line per
    curve; a single curve also shows each epoch's value and the no-early-stopping budget."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    single = len(curves) == 1
    for i, (label, c) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        epochs = np.arange(1, len(c.best) + 1)
        if c.wall_s:
            left.step(c.wall_s, c.best, where="post", color=colour, label=label)
        right.step(epochs, c.best, where="post", color=colour, label=label)
        if single:
            if c.wall_s:
                left.scatter(c.wall_s, c.value, s=8, color="grey", alpha=0.5, label="each epoch")
            right.scatter(epochs, c.value, s=8, color="grey", alpha=0.5, label="each epoch")
            budget = (c.max_epochs or 0) * c.trials
            if budget > len(c.best):
                label = f"{c.trials} trials x {c.max_epochs} epochs, no early stop"
                right.axvline(budget, color="k", linestyle="--", linewidth=1, label=label)
    if not any(c.wall_s for c in curves.values()):
        left.text(0.5, 0.5, "no timestamps logged", ha="center", transform=left.transAxes)
    left.set(xlabel="wall time since the first trial began (s)", ylabel=f"best {metric} so far")
    left.set_xlim(left=0)
    right.set(xlabel="epochs trained (all trials)", ylabel=f"best {metric} so far")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return save(fig, path)


def views_plot(groups: dict[str, pd.DataFrame], path: Path, title: str) -> Path:
    """Test metric mean ± sd over seeds per experiment, one panel per comparable group."""
    fig, axes = panels(1, len(groups), (4.5 * len(groups) + 1, 3.8))
    for ax, (name, frame) in zip(axes.flat, groups.items()):
        x = np.arange(len(frame))
        sd = np.nan_to_num(frame["sd"].to_numpy(float))
        ax.errorbar(x, frame["mean"], yerr=sd, fmt="o", capsize=5, color="C0")
        ax.set_xticks(x, frame["label"], rotation=20, ha="right")
        ax.set_xlim(-0.6, len(frame) - 0.4)
        ax.set(ylabel=frame["metric"].iloc[0], title=name)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    return save(fig, path)
