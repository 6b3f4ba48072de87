"""What mattered in a finished sweep: hyperparameter importance (Optuna's fANOVA over the trial
table, with bootstrap resamples for its spread) and the anytime curve. Plain records, so a report
keeps them in its results."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from musictune.training.evaluation import mean_sd

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

RESAMPLES = 20  # bootstrap resamples of the trials
SEED = 0  # of the resampling and of every forest
MIN_TRIALS = 3  # fewer: no importance (a forest on two points says nothing)
EVALUATOR = "Optuna FanovaImportanceEvaluator (64 trees)"
TIME_COLUMNS = ("timestamp", "time_total_s")


@dataclass
class Importance:
    """fANOVA share of each hyperparameter, with its bootstrap spread; `absent`: why none."""

    params: list[str]  # most important first
    importance: list[float]
    mean: list[float]
    sd: list[float]
    trials: int
    stopped_early: int
    resamples: int
    evaluator: str
    absent: str = ""


@dataclass
class AnytimeCurve:
    """The sweep's best validation so far after each reported epoch, all trials pooled."""

    wall_s: list[float]  # empty: no timestamps logged
    value: list[float]
    best: list[float]
    trials: int
    max_epochs: int | None


def distributions(space: dict) -> dict[str, BaseDistribution]:
    """sweep.json's space as Optuna distributions; choices labelled by their text."""
    from optuna.distributions import CategoricalDistribution as Choice
    from optuna.distributions import FloatDistribution as Float
    from optuna.distributions import IntDistribution as Int

    make = {
        "loguniform": lambda a: Float(a[0], a[1], log=True),
        "uniform": lambda a: Float(a[0], a[1]),
        "randint": lambda a: Int(int(a[0]), int(a[1]) - 1),  # [low, high): Optuna's is inclusive
        "choice": lambda a: Choice(list(dict.fromkeys(str(x) for x in a))),
    }
    single = {
        k: next(iter(v.items())) for k, v in space.items() if isinstance(v, dict) and len(v) == 1
    }
    return {k: make[kind](args) for k, (kind, args) in single.items() if kind in make}


def choice_label(value, choices: tuple) -> str | None:
    """The choice a trial-table value is (pandas reads `True`, `64`, `0.5` back as such)."""
    text = str(value.item() if isinstance(value, np.generic) else value)
    if text in choices:
        return text
    for choice in choices:
        try:
            if float(choice) == float(text):
                return choice
        except ValueError:
            continue
    return None


def as_trial(row: pd.Series, dists: dict[str, BaseDistribution], value: str) -> FrozenTrial | None:
    """One trial-table row as a COMPLETE Optuna trial; None if a value is outside the space."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    params = {}
    for key, dist in dists.items():
        raw = row[key]
        if isinstance(dist, CategoricalDistribution):
            params[key] = choice_label(raw, dist.choices)
        else:
            params[key] = None if pd.isna(raw) else float(raw)
        if params[key] is None:
            return None
    try:
        return create_trial(params=params, distributions=dists, value=float(row[value]))
    except ValueError:  # outside the bounds: a space changed after these trials ran
        return None


def fit(trials: list[FrozenTrial], params: list[str], seed: int) -> dict[str, float]:
    """fANOVA importances (normalised to sum 1) of `params` over `trials`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    study.add_trials(trials)
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    found = optuna.importance.get_param_importances(study, evaluator=evaluator, params=params)
    return {k: float(v) for k, v in found.items()}


def absent(reason: str, trials: int = 0, stopped_early: int = 0) -> Importance:
    return Importance(
        params=[], importance=[], mean=[], sd=[], trials=trials, stopped_early=stopped_early,
        resamples=0, evaluator=EVALUATOR, absent=reason,
    )  # fmt: skip


def hyperparameter_importance(
    finished: pd.DataFrame, space: dict | None, value: str, max_epochs: int | None
) -> Importance:
    """Importance of each searched hyperparameter for `value` (the best-metric column) over the
    finished trials, with its bootstrap mean and sd; `absent` says why when undefined."""
    if not isinstance(space, dict) or not space:
        return absent("sweep.json records no search space (a sweep from before it did)")
    dists = {k: d for k, d in distributions(space).items() if k in finished}
    if not dists:
        return absent("the search space has no distribution, only fixed values")
    rows = [(r, as_trial(r, dists, value)) for _, r in finished.iterrows()]
    used = [t for _, t in rows if t is not None]
    epochs = [r.get("epochs") for r, t in rows if t is not None]
    stopped = sum(1 for e in epochs if max_epochs and pd.notna(e) and e < max_epochs)
    varying = [k for k in dists if len({t.params[k] for t in used}) > 1]
    if len(used) < MIN_TRIALS:
        why = f"{len(used)} finished trial(s) in the search space; importance needs at least "
        return absent(why + str(MIN_TRIALS), len(used), stopped)
    if not varying or len({t.value for t in used}) < 2:
        why = "no hyperparameter took more than one value" if not varying else ""
        why = why or "every trial has the same best value: no variance"
        return absent(why, len(used), stopped)
    whole = fit(used, varying, SEED)
    order = sorted(varying, key=lambda k: -whole[k])
    draws = bootstrap(used, varying)
    spread = [mean_sd([d[k] for d in draws]) if draws else (math.nan, math.nan) for k in order]
    return Importance(
        params=order, importance=[whole[k] for k in order], mean=[m for m, _ in spread],
        sd=[sd for _, sd in spread], trials=len(used), stopped_early=stopped,
        resamples=len(draws), evaluator=EVALUATOR,
    )  # fmt: skip


def bootstrap(trials: list[FrozenTrial], params: list[str]) -> list[dict[str, float]]:
    """Importances over RESAMPLES resamples of the trials (those with no variance left out)."""
    rng = np.random.default_rng(SEED)
    draws = []
    for i in range(RESAMPLES):
        sample = [trials[j] for j in rng.integers(0, len(trials), len(trials))]
        if len({t.value for t in sample}) < 2:
            continue
        try:
            draws.append(fit(sample, params, SEED + i))
        except RuntimeError:  # fANOVA: zero variance in every tree
            continue
    return draws


def report_times(frame: pd.DataFrame) -> tuple[np.ndarray, float] | None:
    """Each report's wall-clock time and the trial's start: Ray's `timestamp` is whole
    seconds, so the start is the latest `timestamp - time_total_s` (each a lower bound) and a
    report sits at start + time_total_s, the trial's precise clock. None without them."""
    if not all(c in frame for c in TIME_COLUMNS):
        return None
    total = frame["time_total_s"].to_numpy(float)
    start = float(np.nanmax(frame["timestamp"].to_numpy(float) - total))
    return start + total, start


def pooled_reports(histories: dict[str, pd.DataFrame], metric: str) -> tuple[pd.DataFrame, bool]:
    """Every report of every trial in the order made (by time; else by epoch, then trial)."""
    parts, starts, timed = [], [], True
    for trial_id, frame in histories.items():
        if metric not in frame or not len(frame):
            continue
        times = report_times(frame)
        timed = timed and times is not None
        epoch, value = frame["training_iteration"].to_numpy(), frame[metric].to_numpy(float)
        part = pd.DataFrame({"trial": trial_id, "epoch": epoch, "value": value})
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
