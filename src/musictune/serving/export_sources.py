"""Where `musictune export` finds a trained model: a sweep's trial, a report's rerun seed, or a
`musictune train --checkpoint-dir` run, each with the way its data set was loaded and where the
model came from (its provenance).

    sweep   <storage>/<name>/sweep.json: the best trial by the sweep's own tie-break
            (`tuning.summary.best_checkpoint`), or --trial ID; its best-epoch checkpoint
    rerun   <storage>/<name>/reruns/<trial>-seeds.../rerun.json: the best-epoch checkpoint Ray
            kept of --seed N
    train   <dir>/best.pt and <dir>/run.json (written by `record_train_run`)
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from musictune.atomic import write_text_atomic
from musictune.errors import UserError

RUN_FILE = "run.json"  # what `musictune train --checkpoint-dir` records beside best.pt
RUN_KINDS = (
    "a sweep folder (with sweep.json), a report's rerun folder (<sweep>/reruns/...) or a "
    "`musictune train --checkpoint-dir` folder"
)


@dataclass
class Source:
    """What a run gives to export: its checkpoint, how its data was loaded, where it came from."""

    checkpoint: dict
    task: str
    features: str
    beat: bool
    target: str | None
    data_dir: str
    classes: tuple[str, ...] = ()  # what the run trained on, where it recorded them
    provenance: dict = field(default_factory=dict)


def find_source(run: Path, trial: str | None, seed: int | None) -> Source:
    if (run / "sweep.json").is_file():
        if seed is not None:
            raise UserError(
                f"--seed picks a seed of a report's rerun, and {run} is a sweep: pass its rerun "
                f"folder ({run}/reruns/...) or drop --seed"
            )
        return sweep_source(run, trial)
    if trial is not None:
        raise UserError(f"--trial picks a trial of a sweep, and {run} is not one: drop --trial")
    if (run / "rerun.json").is_file() or run.parent.name == "reruns":
        return rerun_source(run, seed)
    if seed is not None:
        raise UserError(f"--seed picks a seed of a report's rerun, and {run} is not one: drop it")
    if (run / "best.pt").is_file() or (run / RUN_FILE).is_file():
        return train_source(run)
    if (run.parent / "sweep.json").is_file() and any(run.glob("checkpoint_*")):
        raise UserError(
            f"{run} is a trial folder: pass its sweep, {run.parent}, with --trial ID "
            "(the trial_id column of its trials.csv)"
        )
    sweeps = sorted(p.parent.name for p in run.glob("*/sweep.json"))
    if sweeps:
        shown = ", ".join(sweeps[:6]) + (f" and {len(sweeps) - 6} more" if sweeps[6:] else "")
        raise UserError(f"{run} holds sweeps, not one run: pass one of its folders ({shown})")
    what = "does not exist" if not run.exists() else "holds no checkpoint"
    raise UserError(f"RUN {run} {what}: pass {RUN_KINDS}")


def _experiment(path: Path):
    from musictune.tuning.experiments import read_experiment

    exp = read_experiment(path)
    if exp.meta.get("status") != "finished":
        raise UserError(
            f"sweep {path} has not finished (status {exp.meta.get('status')!r}): let it finish, "
            f"or resume it (musictune sweep {exp.meta.get('preset', 'PRESET')} --resume "
            f"--name {exp.name} --storage {path.parent})"
        )
    return exp


def _from_meta(meta: dict, checkpoint: dict, provenance: dict) -> Source:
    return Source(
        checkpoint,
        meta["task"],
        meta["features"],
        bool(meta["beat"]),
        meta.get("target"),
        str(meta.get("data_dir") or ""),
        tuple(meta.get("classes") or ()),
        provenance,
    )


def sweep_source(path: Path, trial: str | None) -> Source:
    """The best trial's best-epoch checkpoint (or `trial`'s), as the sweep tested it."""
    from musictune.training.checkpoints import load_checkpoint
    from musictune.training.selection import selection
    from musictune.tuning.summary import best_checkpoint, result_trial_id

    exp = _experiment(path.absolute())
    if exp.meta.get("folds"):
        raise UserError(
            f"sweep {path} is K-fold (--folds {exp.meta['folds']}): each checkpoint holds fold "
            "0's model, trained on part of the data; export a report's rerun, trained on the whole "
            f"train/validation split: musictune report --storage {path.parent} --sweep "
            f"{exp.name}, then musictune export {path}/reruns/<trial>-seeds... --seed N"
        )
    metric, select_by = exp.metric, exp.select_by
    if trial is None:
        found = best_checkpoint(exp.results, metric, select_by)
        if found is None:
            raise UserError(f"no trial of sweep {path} saved a checkpoint: run the sweep again")
        result, checkpoint, _ = found
    else:
        known = [result_trial_id(r) for r in exp.results]
        if trial not in known:
            raise UserError(
                f"sweep {path} has no trial {trial!r}: choose one of {', '.join(known)}"
            )
        result = exp.results[known.index(trial)]
        checkpoint = result.get_best_checkpoint(*selection(metric, select_by))
        if checkpoint is None:
            raise UserError(f"trial {trial} of sweep {path} saved no checkpoint: choose another")
    trial_id = result_trial_id(result)
    saved = load_checkpoint(Path(checkpoint.path))
    tuned = (exp.meta.get("test") or {}).get("tuned") or {}
    provenance = {
        "kind": "sweep",
        "sweep": str(exp.path),
        "preset": exp.meta.get("preset"),
        "trial": trial_id,
        "best_trial": trial_id == _best_trial_id(exp),
        "checkpoint": str(checkpoint.path),
        "checkpoint_epoch": int(saved["state"]["epoch"]),
        "metric": metric,
        "select_by": select_by,
        "sweep_test": tuned if tuned.get("trial") == trial_id else None,
    }
    return _from_meta(exp.meta, saved, provenance)


def _best_trial_id(exp) -> str | None:
    best = exp.best_trials(1)
    return None if best.empty else str(best.iloc[0]["trial_id"])


def rerun_source(path: Path, seed: int | None) -> Source:
    """A report's rerun: the best-epoch checkpoint Ray kept of seed `seed`."""
    from musictune.training.checkpoints import load_checkpoint
    from musictune.tuning.rerun import DONE_FILE, read_rerun

    path = path.absolute()
    if not (path / DONE_FILE).is_file():
        raise UserError(
            f"rerun {path} has not finished (no {DONE_FILE}): run the report again to finish it"
        )
    exp = read_sweep_of(path.parent.parent)
    done = json.loads((path / DONE_FILE).read_text())
    rerun = read_rerun(path, exp.meta, str(done.get("trial_id")), done.get("config") or {})
    runs = {r.seed: r for r in rerun.runs if r.checkpoint}
    seeds = ", ".join(f"{s} ({exp.metric} {r.best_val:.3f})" for s, r in sorted(runs.items()))
    if not runs:
        raise UserError(f"rerun {path} kept no checkpoint: run the report again")
    if seed is None and len(runs) > 1:
        raise UserError(f"rerun {path} holds seeds {seeds}: pick one with --seed N")
    if seed is not None and seed not in runs:
        raise UserError(f"rerun {path} has no seed {seed}: choose one of {seeds}")
    chosen = runs[seed if seed is not None else next(iter(runs))]
    saved = load_checkpoint(Path(chosen.checkpoint))
    provenance = {
        "kind": "rerun",
        "sweep": str(exp.path),
        "preset": exp.meta.get("preset"),
        "rerun": str(path),
        "trial": done.get("trial_id"),
        "seed": chosen.seed,
        "checkpoint": chosen.checkpoint,
        "checkpoint_epoch": int(saved["state"]["epoch"]),
        "metric": exp.metric,
        "select_by": exp.select_by,
        "rerun_budget": {"max_epochs": done.get("max_epochs"), "patience": done.get("patience")},
    }
    return _from_meta(exp.meta, saved, provenance)


def read_sweep_of(path: Path):
    """The sweep a rerun folder belongs to (`<sweep>/reruns/<rerun>`)."""
    from musictune.tuning.experiments import read_experiment

    if not (path / "sweep.json").is_file():
        raise UserError(f"{path} holds no sweep.json: pass a rerun folder inside its sweep folder")
    return read_experiment(path)


def train_source(path: Path) -> Source:
    from musictune.training.checkpoints import load_checkpoint

    best = path / "best.pt"
    if not best.is_file():
        raise UserError(
            f"{path} holds no best.pt: pass a `musictune train --checkpoint-dir` folder"
        )
    try:
        run = json.loads((path / RUN_FILE).read_text())
    except (OSError, ValueError):
        raise UserError(
            f"{path}/{RUN_FILE} is missing or damaged (musictune train writes it beside best.pt, "
            "naming the data and options): train again with --checkpoint-dir"
        ) from None
    saved = load_checkpoint(best)
    provenance = {
        "kind": "train",
        "run": str(path.absolute()),
        "checkpoint": str(best.absolute()),
        "checkpoint_epoch": int(saved["state"]["epoch"]),
        "options": run.get("options"),
        "command": run.get("command"),
    }
    return _from_meta(run, saved, provenance)


def record_train_run(options) -> None:
    """run.json beside best.pt: what `export` needs to load the run's data set again."""
    from musictune.data.files import resolve_data_dir

    data_dir = str(resolve_data_dir(options.data_dir).absolute())
    run = {
        "task": options.task,
        "features": options.features,
        "beat": options.beat,
        "target": options.target,
        "data_dir": data_dir,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "command": " ".join(sys.argv),
    }
    write_text_atomic(options.checkpoint_dir / RUN_FILE, json.dumps(run, indent=1) + "\n")
