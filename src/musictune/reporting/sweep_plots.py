"""Figures of what a sweep found: hyperparameter importance, parallel coordinates of the trials,
anytime curves and feature views compared. Drawn from saved results and the report's own trial
tables only (matplotlib's Agg backend, via `plots`), so `--render-only` redraws them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from musictune.reporting.plots import LOG_KEYS, plt, save  # plots selects the Agg backend
from musictune.reporting.results import AnytimeCurve, Importance

TOP = 3  # trials highlighted in the parallel coordinates
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1}  # over the lines


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
    """A parallel axis: values scaled to [0, 1] and its tick positions and labels. Booleans,
    strings and few-valued integers are evenly spaced categories; lr-like keys are on a log
    scale."""
    discrete = pd.api.types.is_integer_dtype(values) and values.nunique() <= 6
    if discrete or pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        keys = sorted(values.unique(), key=lambda v: (str(type(v)), v))
        step = 1 / max(len(keys) - 1, 1)
        where = {k: (i * step if len(keys) > 1 else 0.5) for i, k in enumerate(keys)}
        return values.map(where).to_numpy(float), list(where.values()), [str(k) for k in keys]
    raw = values.to_numpy(float)
    log = (key in LOG_KEYS or key.startswith("loss_weight_")) and bool((raw > 0).all())
    scaled = np.log10(raw) if log else raw
    low, high = float(np.nanmin(scaled)), float(np.nanmax(scaled))
    span = high - low or 1.0
    ticks = np.linspace(low, high, 3) if high > low else np.array([low])
    labels = [f"{10**t if log else t:.3g}" for t in ticks]
    positions = (ticks - low) / span if high > low else [0.5]
    return (
        ((scaled - low) / span if high > low else np.full(len(raw), 0.5)),
        list(positions),
        labels,
    )


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
        ax.plot(
            x,
            lines[row],
            color=colours[row],
            linewidth=2.6 if top else 1.0,
            alpha=1.0 if top else 0.6,
            zorder=3 if top else 2,
            label=f"#{row + 1} {table['trial_id'].iloc[row]}" if top else None,
        )
    ax.set_xticks(x, columns, rotation=20)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(columns) - 0.4)
    ax.set_ylim(-0.05, 1.05)
    handles, labels = ax.get_legend_handles_labels()  # drawn worst first: list the best first
    ax.legend(
        handles[::-1],
        labels[::-1],
        fontsize=7,
        title=f"top {min(TOP, len(table))}",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )
    fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=value, shrink=0.8, location="left"
    )
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
                right.axvline(
                    budget,
                    color="k",
                    linestyle="--",
                    linewidth=1,
                    label=f"{c.trials} trials x {c.max_epochs} epochs, no early stop",
                )
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
    """Test metric mean ± sd over seeds per experiment, one panel per comparable group
    (`label`, `mean`, `sd`, `metric` columns)."""
    fig, axes = plt.subplots(
        1, len(groups), figsize=(4.5 * len(groups) + 1, 3.8), squeeze=False, layout="constrained"
    )
    for ax, (name, frame) in zip(axes.flat, groups.items()):
        x = np.arange(len(frame))
        ax.errorbar(
            x,
            frame["mean"],
            yerr=np.nan_to_num(frame["sd"].to_numpy(float)),
            fmt="o",
            capsize=5,
            color="C0",
        )
        ax.set_xticks(x, frame["label"], rotation=20, ha="right")
        ax.set_xlim(-0.6, len(frame) - 0.4)
        ax.set(ylabel=frame["metric"].iloc[0], title=name)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    return save(fig, path)
