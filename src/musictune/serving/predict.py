"""`musictune predict`: an exported model (`musictune export`) on audio files.

    musictune predict my-model song.mp3 ~/music/new --top 3 --csv predictions.csv
    python -c "import musictune; print(musictune.load_model('my-model').predict(['a.mp3']))"

A model folder holds `model.json` (format version, model family and arguments, feature settings,
standardisation, class or target names, provenance) and `weights.pt` (the weights alone, loaded
with `torch.load(weights_only=True)`; its SHA-256 is in model.json).

Each file is decoded and cut into windows of the model's clip length (`spans`); every window goes
through the one feature code (`features.load_audio`, `features.extract_features`, as `musictune
extract` and the demo data use them), is standardised as the training split was, and is scored
as the data set's clips were (`training.predict`: a model trained on crops averages its
consecutive crop windows). A file's row is the mean over its windows: class probabilities
(genre) or the affect values.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musictune.audio import features
from musictune.errors import UserError
from musictune.options import add_options, from_args, option, positive_int
from musictune.serving.predict_audio import Job, Window, audio_files, cores, file_windows

FORMAT = "musictune-model"
FORMAT_VERSION = 1  # bumped when a reader of the old version could not read the new
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"
EXPORT_FIX = "export the model again (musictune export RUN --out MODEL)"


# --------------------------------------------------------------------------- the model folder


def _damaged(path: Path, why: str) -> UserError:
    return UserError(f"model {path} is damaged ({why}): {EXPORT_FIX}")


def read_info(path: Path) -> dict:
    """model.json of a model folder, its format checked: one line for every problem."""
    if not path.exists():
        raise UserError(f"model {path} not found: pass the folder `musictune export --out` wrote")
    file = path / MODEL_FILE
    if not file.is_file():
        raise UserError(
            f"{path} is not a musictune model (no {MODEL_FILE}): pass the folder that "
            "`musictune export --out` wrote"
        )
    try:
        info = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"{MODEL_FILE} is not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise UserError(f"{path}/{MODEL_FILE} is not a musictune model file: {EXPORT_FIX}")
    version = info.get("format_version")
    if not isinstance(version, int):
        raise _damaged(path, "no format_version")
    if version > FORMAT_VERSION:
        raise UserError(
            f"model {path} has format version {version}, newer than this musictune reads "
            f"({FORMAT_VERSION}): upgrade musictune (pip install -U musictune)"
        )
    for key, kind in (("task", str), ("model", dict), ("labels", dict), ("features", dict)):
        if not isinstance(info.get(key), kind):
            raise _damaged(path, f"{MODEL_FILE} lacks {key!r}")
    return info


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _network(path: Path, info: dict):
    """The MusicModel of a model folder, weights checked against model.json's checksum."""
    import torch

    from musictune.models import create_model, get_family

    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise _damaged(path, f"{WEIGHTS_FILE} is missing")
    if sha256(weights) != info.get("weights", {}).get("sha256"):
        raise _damaged(path, f"{WEIGHTS_FILE} does not match the checksum in {MODEL_FILE}")
    spec = dict(info["model"].get("spec") or {})
    try:
        get_family(spec.get("name", ""))
    except UserError:
        raise UserError(
            f"model {path} is a {spec.get('name')!r} model, a family not registered here: "
            "list the module that registers it in $MUSICTUNE_MODELS"
        ) from None
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        network = create_model(**spec)
        network.load_state_dict(state)
    except Exception as exc:  # torch raises several types for files and shapes that do not fit
        raise _damaged(path, f"{WEIGHTS_FILE}: {type(exc).__name__}") from None
    network.window = int(info["model"].get("window", 0))
    return network.eval()


@dataclass
class Model:
    """An exported model: `predict(paths)` scores audio files (see the module docstring)."""

    path: Path
    info: dict
    network: object  # a musictune.models.MusicModel

    @property
    def task(self) -> str:
        return self.info["task"]

    @property
    def classes(self) -> list[str]:
        return list(self.info["labels"].get("classes", []))

    @property
    def targets(self) -> list[str]:
        return list(self.info["labels"].get("targets", []))

    @property
    def clip_seconds(self) -> float:
        return float(self.info["features"]["clip_seconds"])

    def score(self, arrays: list[np.ndarray]) -> np.ndarray:
        """Outputs for clips of the model's view ((T, F) each, as extracted, not standardised):
        class probabilities (N, classes), or affect values (N,) / (N, targets)."""
        from musictune.data.dataset import Split
        from musictune.training.scoring import predict

        standard = self.info["standardisation"]
        mean = np.asarray(standard["mean"], dtype=np.float32)
        std = np.asarray(standard["std"], dtype=np.float32)
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        frames = ((np.concatenate(arrays) - mean) / std).astype(np.float32)
        ids = np.arange(len(arrays)).astype(str)
        outputs = predict(self.network, Split(frames, lengths, None, ids))
        if self.task != "genre":
            return outputs
        exp = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def jobs_for(self, files: list[Path]) -> list[Job]:
        settings = self.info["features"]
        rows = features.VIEWS[settings["view"]]
        clip = int(round(self.clip_seconds * features.SAMPLE_RATE))
        beat = bool(settings["beat"])
        return [Job(i, str(f), clip, beat, (rows.start, rows.stop)) for i, f in enumerate(files)]

    def predict(
        self,
        paths,
        top: int | None = None,
        windows: bool = False,
        jobs: int | None = None,
        device: str = "auto",
        progress: bool | None = False,
    ):
        """A pandas DataFrame, one row per file (`window` 0: the mean over its windows) and with
        `windows` one per window too (`window` 1, 2, ...). Columns: path, window, start_s, end_s,
        then class_1, probability_1 ... class_K, probability_K (genre: the `top` K classes, all
        by default) or one column per affect target. Files that could not be used are skipped
        and listed in `frame.attrs["skipped"]` as (path, reason)."""
        import torch

        from musictune.audio.pool import run_pool
        from musictune.training.loop import pick_device

        if top is not None and top < 1:
            raise UserError(f"top must be 1 or more, not {top}")
        self.network.to(pick_device(device))
        files = audio_files(paths)
        k = len(self.classes) if top is None else min(top, len(self.classes))
        todo = self.jobs_for(files)
        workers = min(jobs or cores(), len(todo))

        def rows_of(result):  # in this process, as each file's features arrive
            index, found, seconds = result
            if isinstance(found, str):
                return index, found
            return index, self._rows(str(files[index]), found, seconds, k, windows)

        # One torch thread beside the decoding processes: on busy cores a second one made each
        # forward pass 30-100x slower (2 cores, 2026-12-06).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            done = run_pool(
                file_windows, todo, workers, "predict", "file", progress, True, on_result=rows_of
            )
        finally:
            torch.set_num_threads(threads)
        return _frame(self, sorted(done, key=lambda d: d[0]), files, k)

    def _rows(self, path: str, found: list[Window], seconds: float, k: int, each: bool) -> list:
        values = self.score([w.frames for w in found])
        rows = [self._row(path, 0, 0.0, seconds, values.mean(axis=0), k)]
        if each:
            each_window = enumerate(zip(found, values), 1)
            rows += [self._row(path, i, w.start, w.end, v, k) for i, (w, v) in each_window]
        return rows

    def _row(self, path: str, window: int, start: float, end: float, values, k: int) -> dict:
        row = {"path": path, "window": window, "start_s": round(start, 3), "end_s": round(end, 3)}
        values = np.atleast_1d(values)
        if self.task != "genre":
            return row | {t: float(v) for t, v in zip(self.targets, values)}
        for rank, c in enumerate(np.argsort(-values, kind="stable")[:k], 1):
            row |= {f"class_{rank}": self.classes[c], f"probability_{rank}": float(values[c])}
        return row


def load_model(path: str | os.PathLike) -> Model:
    """An exported model folder (`musictune export --out`), checked: one line for any problem."""
    path = Path(path).expanduser()
    info = read_info(path)
    return Model(path, info, _network(path, info))


def _frame(model: Model, done: list, files: list[Path], k: int):
    import pandas as pd

    rows = [row for _, found in done if not isinstance(found, str) for row in found]
    skipped = [(str(files[i]), found) for i, found in done if isinstance(found, str)]
    if not rows:
        path, reason = skipped[0]
        raise UserError(
            f"none of the {len(files)} audio file(s) could be used (e.g. {path}: {reason}); "
            "check they are audio files librosa reads (wav, ogg, flac, mp3)"
        )
    columns = ["path", "window", "start_s", "end_s"]
    if model.task == "genre":
        columns += [c for r in range(1, k + 1) for c in (f"class_{r}", f"probability_{r}")]
    else:
        columns += model.targets
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["skipped"] = skipped
    return frame


# --------------------------------------------------------------------------- command


@dataclass
class PredictOptions:
    model: Path = option(
        None, "a folder written by musictune export", positional=True, type=Path, metavar="MODEL"
    )
    audio: list = option(
        [], "audio files, or folders searched for them", positional=True, nargs="+", type=Path,
        metavar="AUDIO",
    )  # fmt: skip
    csv: Path | None = option(
        None, "also write the rows to this CSV file (columns: see README)", type=Path,
        metavar="OUT",
    )  # fmt: skip
    top: int = option(3, "classes shown per file (genre models)", type=positive_int, metavar="K")
    windows: bool = option(False, "a row per window of each file too, after the file's row")
    jobs: int | None = option(
        None, "parallel processes decoding audio (default: all cores)", type=positive_int,
        metavar="N",
    )  # fmt: skip
    device: str = option("auto", "where the model runs: auto, cpu, cuda, cuda:1 ...")


def add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="score audio files with an exported model")
    add_options(p, PredictOptions)
    p.set_defaults(handler=run_predict)


def run_predict(args) -> None:
    from musictune.atomic import atomic_path

    options = from_args(PredictOptions, args)
    model = load_model(options.model)
    frame = model.predict(
        options.audio, options.top, options.windows, options.jobs, options.device, progress=None
    )
    print_rows(model, frame)
    if options.csv:
        with atomic_path(options.csv, suffix=".csv") as tmp:
            frame.to_csv(tmp, index=False)
        print(f"{len(frame)} rows in {options.csv}")
    skipped = frame.attrs["skipped"]
    if skipped:
        print(f"skipped {len(skipped)} file(s) that could not be used:", file=sys.stderr)
        for path, reason in skipped:
            print(f"  {path}: {reason}", file=sys.stderr)


def print_rows(model: Model, frame) -> None:
    """One line per file (and per window, indented): classes with probabilities, or values."""
    outputs = [c for c in frame.columns if c not in ("path", "window", "start_s", "end_s")]
    for row in frame.itertuples(index=False):
        values = row._asdict()
        if model.task == "genre":
            pairs = zip(outputs[0::2], outputs[1::2])
            shown = "  ".join(f"{values[c]} {values[p]:.3f}" for c, p in pairs)
        else:
            shown = "  ".join(f"{t} {values[t]:.3f}" for t in outputs)
        if row.window:
            print(f"  window {row.window} ({row.start_s:.1f}-{row.end_s:.1f} s)  {shown}")
        else:
            print(f"{row.path}  {shown}")
