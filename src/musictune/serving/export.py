"""`musictune export`: a trained model as one self-contained folder that `musictune predict` (and
`musictune.load_model`) use on audio.

    musictune export results/lstm_spectrogram --out models/genre-lstm            # best trial
    musictune export results/lstm_spectrogram --trial 3aee8_00004 --out models/t4
    musictune export results/lstm_spectrogram/reruns/3aee8_00004-seeds3-epochs1000-patience10 \\
        --seed 1 --out models/genre-lstm-seed1
    musictune export runs/mel --out models/mel    # a `musictune train --checkpoint-dir` folder

RUN is a sweep folder (its best trial's best-epoch checkpoint, by the sweep's own tie-break,
or `--trial`'s), a report's rerun folder (the checkpoint of `--seed`) or a `musictune train
--checkpoint-dir` folder (its best.pt, and the run.json `train` writes beside it). The run's data
set is loaded as the run loaded it, for the standardisation and the class names, and the model
is scored on its validation and test splits (the figures go into the model's provenance). The
folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musictune import layout
from musictune.audio import features
from musictune.errors import UserError
from musictune.options import add_options, from_args, option
from musictune.serving.export_sources import RUN_KINDS, Source, find_source
from musictune.serving.predict import FORMAT, FORMAT_VERSION, MODEL_FILE, WEIGHTS_FILE, sha256

DOCUMENTED_CLIP = 30.0  # seconds: the course's FMA clips
VERSIONS = ("musictune", "torch", "numpy", "librosa", "soundfile", "scikit-learn", "ray")


# --------------------------------------------------------------------------- the model


def load_data(source: Source, override: str | None):
    """The run's data set, loaded as the run loaded it: (its folder, the Dataset)."""
    from musictune.data.dataset import load_task

    chosen = str(override or source.data_dir)
    if not chosen or not Path(chosen).expanduser().is_dir():
        raise UserError(
            f"the data the run trained on ({chosen or 'not recorded'}) is not here: pass "
            "--data-dir to that folder, where it is now"
        )
    root = Path(chosen).expanduser().absolute()
    return root, load_task(source.task, root, source.features, source.beat, source.target)


def check_fits(model, data, source: Source, root: Path) -> None:
    spec = model.spec
    outputs = data.n_classes if data.task == "genre" else len(data.targets)
    classes = source.classes
    if (spec["n_features"], spec["n_outputs"]) != (data.n_features, outputs) or (
        classes and tuple(classes) != data.classes
    ):
        raise UserError(
            f"the checkpoint ({spec['n_features']} features, {spec['n_outputs']} outputs) does not "
            f"fit the data in {root} ({data.n_features} features, {outputs} outputs"
            f"{', other classes' if classes and tuple(classes) != data.classes else ''}): pass "
            "--data-dir to the data the run trained on"
        )


def clip_settings(root: Path, data) -> dict:
    """How long a clip of the data set is, and where the feature settings come from."""
    manifest = layout.read_manifest(root)
    if manifest.get("made_by") == "musictune extract":
        theirs = [manifest.get(k) for k in ("sample_rate", "n_fft", "hop_length")]
        if theirs != [features.SAMPLE_RATE, features.N_FFT, features.HOP_LENGTH]:
            raise UserError(
                f"{root} was extracted with sample rate, n_fft, hop {theirs}; this musictune "
                "extracts audio otherwise: extract the data again and retrain"
            )
        seconds = float(manifest.get("duration") or 0.0)
        clip = f"the middle {seconds:g} s of each file" if seconds else "whole files"
        return {
            "clip_seconds": seconds,
            "settings": "musictune extract",
            "note": f"made by musictune extract from audio ({clip}), with these settings",
        }
    seconds, how = measured_clip(root, data)
    return {
        "clip_seconds": seconds,
        "settings": "course",
        "note": "arrays without audio (the course's layout): the course's documented feature "
        "settings are assumed (sr 22050, n_fft 2048, hop 512, 128 mel bands in dB and 12 "
        "chroma; beat-synced: the median between beats of the percussive part); clip length " + how,
    }


def measured_clip(root: Path, data) -> tuple[float, str]:
    """Seconds of the data set's median full-length clip (30 s for the course's data, 3 s for
    the demo data), or the documented 30 s when there are no full-length arrays to measure."""
    from musictune.data.files import dataset_dir, read_split

    if data.beat:
        task = layout.GENRE_TASK if data.task == "genre" else layout.MULTITASK_TASK
        try:
            lengths = read_split(dataset_dir(root, task, False), task, "train")["lengths"]
        except UserError:
            return DOCUMENTED_CLIP, f"{DOCUMENTED_CLIP:g} s as documented (no full-length arrays)"
    else:
        lengths = np.concatenate([data.train.lengths, data.val.lengths, data.test.lengths])
    frames = float(np.median(lengths))
    seconds = max(0.1, round(frames * features.HOP_LENGTH / features.SAMPLE_RATE, 1))
    return seconds, f"{seconds:g} s, measured: the median full-length clip ({frames:g} frames)"


def feature_settings(root: Path, data, window: int) -> dict:
    from musictune.data.dataset import BEATS_PER_SECOND, FRAMES_PER_SECOND

    view = features.VIEWS[data.features]
    rate = BEATS_PER_SECOND if data.beat else FRAMES_PER_SECOND
    return {
        "sample_rate": features.SAMPLE_RATE,
        "n_fft": features.N_FFT,
        "hop_length": features.HOP_LENGTH,
        "n_mels": features.N_MELS,
        "n_chroma": features.N_CHROMA,
        "view": data.features,
        "rows": [view.start, view.stop],
        "beat": data.beat,
        **clip_settings(root, data),
        "clip_rule": "a file is cut into consecutive clips of clip_seconds (0: the whole file) "
        "from its start, plus one ending at its end; one at most 5 % longer than a clip is one "
        "clip; each clip's features are computed on its own and the clip scores are averaged",
        "window": {
            "frames": int(window),
            "unit": "beats" if data.beat else "frames",
            "seconds": round(window / rate, 3),
            "rule": "0: a clip is scored whole; else the model was trained on random crops of "
            "this many frames and scores a clip on its consecutive windows (plus one ending at "
            "its last frame), averaged",
        },
    }


def figures(model, data) -> dict:
    """The model's metrics on the run's validation and test splits, measured at export."""
    from musictune.training.metrics import evaluation_metrics
    from musictune.training.scoring import predict

    out = {}
    for name, split in (("validation", data.val), ("test", data.test)):
        metrics = evaluation_metrics(data.task, split.y, predict(model, split), data.targets)
        out[name] = {**metrics, "clips": len(split)}
    return out | {"test_note": data.test_note, "measured": "at export, on the run's data set"}


def commit() -> str | None:
    """The package's git commit (+dirty for uncommitted changes), None outside a checkout."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(here), *args], capture_output=True, text=True, timeout=20
        )
        if done.returncode:
            raise OSError(done.stderr)
        return done.stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def versions() -> dict[str, str]:
    import importlib.metadata as md
    import platform

    found = {"python": platform.python_version()}
    for name in VERSIONS:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = "not installed"
    return found


def model_info(model, data, source: Source, root: Path) -> dict:
    """model.json, less the weights' checksum."""
    labels = {"classes": list(data.classes)} if data.task == "genre" else {}
    manifest = layout.read_manifest(root)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "task": data.task,
        "labels": labels or {"targets": list(data.targets)},
        "model": {
            "family": model.spec["name"],
            "spec": model.spec,
            "window": int(model.window),
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "features": feature_settings(root, data, model.window),
        "standardisation": {
            "mean": data.mean.tolist(),
            "std": data.std.tolist(),
            "fitted_on": f"the training split ({len(data.train)} clips)",
        },
        "provenance": {
            "source": source.provenance,
            "config": source.checkpoint.get("config"),
            "data": {"dir": str(root), "manifest": manifest or None, "test_note": data.test_note},
            "figures": figures(model, data),
            "commit": commit(),
            "versions": versions(),
            "command": " ".join(sys.argv),
        },
    }


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def write_model(out: Path, model, info: dict) -> None:
    """The folder under a temporary name beside `out`, renamed when complete: `out` is either
    absent or whole, even after Ctrl-C or a crash."""
    import torch

    tmp = out.parent / f".tmp-{out.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(state, tmp / WEIGHTS_FILE)
        info["weights"] = {"file": WEIGHTS_FILE, "sha256": sha256(tmp / WEIGHTS_FILE)}
        (tmp / MODEL_FILE).write_text(json.dumps(info, indent=1, default=_plain) + "\n")
        if out.is_dir():
            out.rmdir()  # empty (checked before); fails if something filled it meanwhile
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_out(out: Path) -> None:
    from musictune.atomic import ensure_writable

    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise UserError(f"--out {out} already exists: remove it or choose another folder")
    ensure_writable(out.parent, "--out: the parent folder", "choose a folder you can write")


def export(
    run: str | os.PathLike,
    out: str | os.PathLike,
    trial: str | None = None,
    seed: int | None = None,
    data_dir: str | None = None,
) -> dict:
    """Write the model folder `out` from RUN (see the module docstring); returns model.json."""
    from musictune.training.checkpoints import model_from_checkpoint

    out = Path(out).expanduser()
    check_out(out)
    source = find_source(Path(run).expanduser(), trial, seed)
    if "folds" in source.checkpoint:
        raise UserError(f"{run} holds a K-fold checkpoint (fold 0's model): export a rerun")
    root, data = load_data(source, data_dir)
    model = model_from_checkpoint(source.checkpoint)
    check_fits(model, data, source, root)
    info = model_info(model, data, source, root)
    write_model(out, model, info)
    return info


# --------------------------------------------------------------------------- command


@dataclass
class ExportOptions:
    run: Path = option(None, RUN_KINDS, positional=True, type=Path, metavar="RUN")
    out: Path = option(None, "the new model folder", type=Path, required=True, metavar="MODEL")
    trial: str | None = option(
        None, "a sweep's trial to export instead of its best (an id of trials.csv)", metavar="ID"
    )
    seed: int | None = option(None, "the seed of a rerun folder to export", type=int, metavar="N")
    data_dir: str | None = option(
        None, "where the run's data set is now, if it moved (default: the folder it recorded)"
    )
    mlflow: str | None = option(
        None,
        "also log the model (its folder, figures and config) to MLflow: a tracking URI or a "
        "folder (default: the store beside the run, <storage>/mlflow; experiment = the sweep)",
        nargs="?",
        const="",
        metavar="URI",
    )

    def validate(self) -> None:
        if self.mlflow is not None:
            from musictune.tuning.mlflow_tracking import require_mlflow

            require_mlflow()  # before the export


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="write a trained model as a folder that predict uses")
    add_options(p, ExportOptions)
    p.set_defaults(handler=run_export)


def run_export(args) -> None:
    o = from_args(ExportOptions, args)
    info = export(o.run, o.out, o.trial, o.seed, o.data_dir)
    source, shown = info["provenance"]["source"], info["provenance"]["figures"]["test"]
    headline = ("accuracy", "macro_f1", "spearman", "spearman_mean", "mse")
    what = ", ".join(f"{k} {shown[k]:.3f}" for k in headline if k in shown)
    print(
        f"exported {source['kind']} {source.get('trial') or source.get('run')} (epoch "
        f"{source['checkpoint_epoch']}) to {o.out}: {info['model']['family']} on "
        f"{info['features']['view']}{' beat-synced' if info['features']['beat'] else ''}, "
        f"{info['features']['clip_seconds']:g}-s clips; test {what}"
    )
    print(f"use it: musictune predict {o.out} AUDIO...")
    if o.mlflow is not None:
        from musictune.tuning.mlflow_tracking import log_export

        uri, experiment, run_id = log_export(o.mlflow, info, o.out)
        print(f"mlflow: logged as run {run_id} of experiment {experiment} at {uri}")
