"""A sweep's anytime curve: the best validation metric found so far, after each epoch any trial
reported, against wall time and against epochs trained (all trials pooled).

It shows what a scheduler's early stopping bought: how soon the sweep had its best value, and
how many epochs it trained against every trial running its full budget. Computed from Ray's
per-trial histories in the evaluation step; plain pandas/NumPy, no Ray import here.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from musictune.reporting.results import AnytimeCurve

TIME_COLUMNS = ("timestamp", "time_total_s")


def report_times(frame: pd.DataFrame) -> tuple[np.ndarray, float] | None:
    """Each report's wall-clock time and the trial's start (seconds since the Unix epoch).

    Ray's `timestamp` is whole seconds, too coarse for short epochs; `time_total_s` is the
    trial's own precise clock. The start is the latest `timestamp - time_total_s` over the
    trial's reports (each is a lower bound of it) and each report is placed at start +
    time_total_s: sub-second, and in order within the trial. None without those columns.
    """
    if not all(c in frame for c in TIME_COLUMNS):
        return None
    total = frame["time_total_s"].to_numpy(float)
    start = float(np.nanmax(frame["timestamp"].to_numpy(float) - total))
    return start + total, start


def pooled_reports(histories: dict[str, pd.DataFrame], metric: str) -> tuple[pd.DataFrame, bool]:
    """Every report of every trial, in the order they were made (by estimated time; by epoch
    then trial when a history has no timestamps). Returns (reports, timed)."""
    parts, starts, timed = [], [], True
    for trial_id, frame in histories.items():
        if metric not in frame or not len(frame):
            continue
        times = report_times(frame)
        timed = timed and times is not None
        part = pd.DataFrame(
            {
                "trial": trial_id,
                "epoch": frame["training_iteration"].to_numpy()
                if "training_iteration" in frame
                else np.arange(1, len(frame) + 1),
                "value": frame[metric].to_numpy(float),
            }
        )
        if times is not None:
            part["time"], start = times
            starts.append(start)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["trial", "epoch", "value", "wall_s"]), False
    reports = pd.concat(parts, ignore_index=True)
    if timed:
        reports["wall_s"] = reports["time"] - min(starts)
        reports = reports.sort_values(["time", "trial", "epoch"], kind="mergesort")
    else:
        reports = reports.sort_values(["epoch", "trial"], kind="mergesort")
    return reports.reset_index(drop=True), timed


def anytime_curve(
    histories: dict[str, pd.DataFrame], metric: str, mode: str, max_epochs: int | None
) -> AnytimeCurve:
    """The best `metric` so far (max, or min for mode `min`) after each pooled report."""
    reports, timed = pooled_reports(histories, metric)
    values = reports["value"].to_numpy(float)
    running = np.fmin if mode == "min" else np.fmax  # NaN (a diverged epoch) never wins
    best = running.accumulate(values) if len(values) else values
    return AnytimeCurve(
        wall_s=[float(t) for t in reports["wall_s"]] if timed else [],
        value=[float(v) for v in values],
        best=[float(v) for v in best],
        trials=int(reports["trial"].nunique()),
        max_epochs=int(max_epochs) if max_epochs and not math.isnan(max_epochs) else None,
    )
