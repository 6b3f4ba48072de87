"""The evaluation step: reruns, test metrics and baselines, once per report, as `results`
(all that the pages are made from). Imports Ray, torch and scikit-learn."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from musictune.data.dataset import MULTITASK_TEST_FRACTION, Dataset, load_task
from musictune.layout import MANIFEST
from musictune.reporting.noise import judged, paired_difference
from musictune.reporting.options import ReportOptions
from musictune.reporting.results import (
    Comparison,
    DataFacts,
    ExperimentResult,
    FeatureMaps,
    History,
    Pair,
    ReportResults,
    RerunSummary,
    SeedTest,
    SeedTraining,
    TestedConfig,
)  # fmt: skip
from musictune.reporting.saved import VERSION
from musictune.training import baselines
from musictune.training.baselines import Figures
from musictune.training.evaluation import (
    TEST_METRIC,
    classification_details,
    evaluate_checkpoint,
    mean_sd,
    regression_pairs,
)  # fmt: skip
from musictune.training.featuremaps import CNN_FAMILIES, capture
from musictune.tuning.experiments import NOT_TUNED, TRIALS_FILE, Experiment, is_demo_data
from musictune.tuning.importance import anytime_curve, hyperparameter_importance
from musictune.tuning.rerun import DONE_FILE, Rerun, history, run_rerun, selection_of

DEFAULT_LABEL = "default"  # the untuned default's rerun and file names
TOP_CURVES = 5  # learning curves of this many best trials


def data_key(exp: Experiment, override: str | None) -> tuple:
    """What loads an experiment's data view: experiments that share it load it once."""
    m = exp.meta
    view = (m["task"], exp.data_dir(override), m["features"], m["beat"], m.get("target"))
    return (*view, m.get("test_fraction", MULTITASK_TEST_FRACTION))


def evaluate_report(
    experiments: list[Experiment],
    skipped: list[str],
    storage: Path,
    options: ReportOptions,
    folder: Path,
) -> ReportResults:
    """Evaluate every experiment; their trial tables are copied into the report `folder`."""
    loaded: dict[tuple, Dataset] = {}
    evaluated = []
    for exp in experiments:
        print(f"report: {exp.name} ({exp.label}, {len(exp.trials)} trials)", flush=True)
        key = data_key(exp, options.data_dir)
        if key not in loaded:
            loaded[key] = load_task(*key[:-1], test_fraction=key[-1])
        evaluated.append(evaluate_experiment(exp, loaded[key], options, folder))
    created = time.strftime("%Y-%m-%d %H:%M")
    return ReportResults(
        version=VERSION, created=created, storage=str(storage), skipped=list(skipped),
        rerun=options.rerun, settings=options.settings, experiments=evaluated,
    )  # fmt: skip


def evaluate_experiment(
    exp: Experiment, data: Dataset, options: ReportOptions, folder: Path
) -> ExperimentResult:
    """One experiment: its best configs rerun and tested, the baselines, its summary row."""
    (folder / exp.name).mkdir()
    trials = f"{exp.name}/{TRIALS_FILE}"
    shutil.copyfile(exp.path / TRIALS_FILE, folder / trials)
    data_dir = exp.data_dir(options.data_dir)
    facts = DataFacts(
        task=data.task, data_dir=data_dir, train=len(data.train), val=len(data.val),
        test=len(data.test), test_note=data.test_note, classes=list(data.classes),
        targets=list(data.targets), origin=data_origin(data_dir),
    )  # fmt: skip
    tested = [test_config(exp, t, data, options) for t in exp.best_trials(options.top)["trial_id"]]
    best = chosen(tested)
    comparison = compare_with_baselines(exp, data, best, options)
    histories = exp.histories()
    max_epochs = exp.meta.get("max_epochs")
    importance = hyperparameter_importance(
        exp.finished_trials, exp.meta.get("space"), exp.best_column, max_epochs
    )
    result = ExperimentResult(
        name=exp.name, path=str(exp.path), meta=exp.meta, trials=trials, data=facts,
        hyperparameters=exp.hyperparameters(), curves=top_curves(exp, histories), tested=tested,
        comparison=comparison, row={}, feature_maps=feature_maps(exp, best, data),
        importance=importance, anytime=anytime_curve(histories, exp.metric, exp.mode, max_epochs),
    )  # fmt: skip
    result.row = summary_row(exp, result, best)
    return result


def data_origin(data_dir: str) -> str:
    """demo | extracted | layout (see DataFacts.origin): the reference figures need it, and the
    data folder may be gone when the report is rendered again."""
    if is_demo_data(data_dir):
        return "demo"
    return "extracted" if (Path(data_dir) / MANIFEST).is_file() else "layout"


def feature_maps(exp: Experiment, best: TestedConfig, data: Dataset) -> FeatureMaps | None:
    """A CNN's first conv blocks on a few test clips, from the tested config's first seed."""
    if exp.meta.get("model") not in CNN_FAMILIES or not best.runs:
        return None
    captured = capture(best.runs[0].checkpoint, best.runs[0].seed, data)
    return None if captured is None else FeatureMaps(**captured)


def shown(config: dict) -> dict:
    """A config's hyperparameters (budget and plumbing dropped), as JSON values."""
    kept = {k: v for k, v in config.items() if k not in NOT_TUNED}
    return json.loads(json.dumps(kept, default=str))


def top_curves(exp: Experiment, histories: dict[str, pd.DataFrame]) -> dict[str, History]:
    top = [t for t in exp.finished_trials["trial_id"] if t in histories][:TOP_CURVES]
    return {t: history(histories[t], exp.metric) for t in top}


def test_config(
    exp: Experiment,
    trial_id: str,
    data: Dataset,
    options: ReportOptions,
    retrain: dict | None = None,
) -> TestedConfig:
    """Rerun a config with K seeds and test each seed's best checkpoint (`retrain`: this config
    in place of the trial's, no figures); or, without reruns, test the sweep's own checkpoint."""
    config = shown(exp.result_of(trial_id).config if retrain is None else retrain)
    rerun = None
    if options.rerun:
        rerun = run_rerun(exp, trial_id, data, options.settings, retrain)
        done = [(r.checkpoint, r.seed) for r in rerun.runs if r.checkpoint]
        source = f"rerun, {len(done)} seed(s)" + (" (reused)" if rerun.reused else "")
    else:
        result = exp.result_of(trial_id)
        checkpoint = result.get_best_checkpoint(*selection_of(exp.meta))
        done = (
            [(checkpoint.path, int(result.config.get("seed", 0)))] if checkpoint is not None else []
        )
        source = "sweep checkpoint (no rerun)"
    runs = [evaluate_checkpoint(path, data, seed, exp.task) for path, seed in done]
    tests = [SeedTest(seed=r.seed, checkpoint=r.checkpoint, metrics=r.metrics) for r in runs]
    tested = TestedConfig(trial_id=trial_id, source=source, config=config, runs=tests)
    if rerun is not None:
        tested.rerun = summarise_rerun(rerun)
    if retrain is not None or not runs:
        return tested
    if exp.task == "genre":
        details = classification_details(runs, data.classes)
        tested.report, tested.confusion = details["report"], details["confusion"]
    else:
        pairs = regression_pairs(runs, data.targets)
        tested.pairs = {t: Pair(true=y, predicted=p) for t, (y, p) in pairs.items()}
    return tested


def summarise_rerun(rerun: Rerun) -> RerunSummary:
    done = rerun.path / DONE_FILE
    took = json.loads(done.read_text()).get("wall_time_s", math.nan) if done.exists() else None
    return RerunSummary(
        path=str(rerun.path), reused=rerun.reused, errors=rerun.errors,
        seeds=[SeedTraining.model_validate(r, from_attributes=True) for r in rerun.runs],
        wall_time_s=took,
    )  # fmt: skip


def chosen(tested: list[TestedConfig]) -> TestedConfig:
    """The config the cross-sweep table reports: best mean validation over its seeds."""
    with_runs = [t for t in tested if t.runs] or tested
    return max(with_runs, key=lambda t: np.nan_to_num(t.val_mean, nan=-np.inf))


def figures(key: str, label: str, t: TestedConfig, note: str) -> Figures:
    return Figures(key, label, [r.metrics for r in t.runs], [r.seed for r in t.runs], note)


def compare_with_baselines(
    exp: Experiment, data: Dataset, best: TestedConfig, options: ReportOptions
) -> Comparison:
    """The tuned best beside the untuned default and chance on the test split. The default is
    retrained as a rerun (cached like any) with the tuned best's seeds, budget and patience,
    since it keeps the trial's seed; stratified guessing uses the same seeds."""
    trial_config = dict(exp.result_of(best.trial_id).config)
    base_seed = int(trial_config.get("seed", 0))
    trained = best.rerun.seeds if best.rerun else []
    seeds = [r.seed for r in trained] or [base_seed + i for i in range(options.settings.seeds)]
    tuned = figures("tuned", "tuned best", best, f"trial {best.trial_id}, {best.source}")
    config = baselines.default_config(trial_config, exp.meta)
    default = Figures("default", "untuned default", note="not retrained: --no-rerun")
    retrained, metric = None, TEST_METRIC[exp.metric]
    if options.rerun:
        retrained = test_config(exp, DEFAULT_LABEL, data, options, retrain=config)
        default = figures("default", "untuned default", retrained, retrained.source)
    paired = paired_difference(
        metric,
        {ev.seed: ev.metrics.get(metric) for ev in best.runs},
        {ev.seed: ev.metrics.get(metric) for ev in retrained.runs} if retrained else {},
        "" if options.rerun else "the untuned default is not retrained in a --no-rerun report",
    )
    rows = [tuned, default, *baselines.chance_baselines(data, seeds)]
    return Comparison(
        metrics=baselines.shown_metrics(data), seeds=seeds, rows=rows, default_config=shown(config),
        default_described=baselines.describe_default(exp.meta), default=retrained, paired=paired,
    )  # fmt: skip


def comparison_columns(comparison: Comparison, task: str) -> dict:
    """The baselines' summary columns: `<row>_test_<metric>` (mean), `_sd`, `_values`."""
    rows, p = comparison.rows, comparison.paired
    columns: dict = {
        "baseline_seeds": comparison.seeds,
        "default_retrained": bool(rows[1].runs),
        "default_config": comparison.default_config,
    }
    for f in rows:
        columns |= f.columns(comparison.metrics)
    if task == "genre":
        columns["majority_class"] = rows[2].note
    if p is not None:  # tuned - default, paired by seed
        columns |= {
            "paired_metric": f"test_{p.metric}", "paired_mean": p.mean, "paired_sd": p.sd,
            "paired_n": p.n, "paired_seeds": p.seeds, "paired_values": p.differences,
            "paired_verdict": judged(p),
        }  # fmt: skip
    return columns


def summary_row(exp: Experiment, result: ExperimentResult, best: TestedConfig) -> dict:
    """The experiment's line of the cross-sweep table, summary.csv and summary.json."""
    test_metric, m, finished = TEST_METRIC[exp.metric], exp.meta, exp.finished_trials
    values = [r.metrics[test_metric] for r in best.runs]
    mean, sd = mean_sd(values) if values else (float("nan"), float("nan"))
    row = {
        "experiment": exp.name, "task": exp.task, "model": m["model"],
        "features": m["features"], "beat": bool(m["beat"]), "target": m.get("target") or "",
        "metric": exp.metric, "best_val": float(finished[exp.best_column].iloc[0]),
        "best_trial": finished["trial_id"].iloc[0], "tested_trial": best.trial_id,
        "test_metric": f"test_{test_metric}", "test_mean": mean, "test_sd": sd,
        "test_values": values, "test_source": best.source, "seeds": len(values),
        "trials": len(exp.trials), "finished_trials": len(finished),
        "wall_time_s": float(m.get("wall_time_s", float("nan"))), "data_dir": m.get("data_dir"),
        "demo_data": is_demo_data(str(m.get("data_dir", ""))),
        "rerun_path": best.rerun.path if best.rerun else "",
        "rerun_reused": bool(best.rerun and best.rerun.reused),
        **comparison_columns(result.comparison, result.data.task),
    }  # fmt: skip
    return json.loads(json.dumps(row, default=str))  # as summary.json writes it
