"""Where an experiment lives and its files: names, storage roots (local or s3:// / gs://),
sweep.json and trials.csv, each written whole."""

from __future__ import annotations

import json
import time
from pathlib import Path

from musictune import paths
from musictune.atomic import ensure_writable, write_text_atomic
from musictune.errors import UserError

SWEEP_FILE = "sweep.json"
TRIALS_FILE = "trials.csv"


def is_uri(storage: str) -> bool:
    return "://" in storage and not storage.startswith("file://")


def storage_root(storage: str | None) -> str:
    """A writable absolute folder, or a URI Ray's storage layer accepts (s3://, gs://)."""
    if storage and is_uri(storage):
        return storage
    path = Path(storage.removeprefix("file://")).expanduser() if storage else None
    path = (path or paths.default_results_dir()).resolve()
    ensure_writable(path, "storage", "pass --storage to a folder you can write")
    return str(path)


def experiment_path(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def can_restore(path: str) -> bool:
    """Whether Ray Tune can restore the experiment at `path` (Ray imported only here, so that
    commands that never sweep, such as `musictune train`, start without it)."""
    from ray import tune

    return tune.Tuner.can_restore(path)


def choose_name(preset: str, name: str | None, resume: bool, root: str) -> str:
    """A new timestamped name, or with --resume the named (or latest) restorable experiment."""
    if resume:
        if name:
            if not can_restore(experiment_path(root, name)):
                raise UserError(
                    f"no experiment {name!r} to resume in {root}: check --name and "
                    "--storage (run without --resume to start it)"
                )
            return name
        if is_uri(root):
            raise UserError("--resume with a URI --storage needs --name")
        candidates = sorted(p.name for p in Path(root).glob(f"{preset}-*") if can_restore(str(p)))
        if not candidates:
            raise UserError(
                f"no experiment of preset {preset} to resume in {root}: "
                "run it without --resume first"
            )
        return candidates[-1]
    name = name or f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not is_uri(root) and (Path(root) / name).exists():
        raise UserError(
            f"experiment {name!r} already exists in {root}: pass --resume to continue it, "
            "or choose another --name"
        )
    return name


def json_text(payload: dict) -> str:
    return json.dumps(payload, indent=2, default=str)


def write_json_atomic(path: Path, payload: dict) -> None:
    write_experiment_file(path.parent, path.name, json_text(payload))


def write_experiment_file(folder: str | Path, name: str, text: str) -> None:
    """Write one whole file into an experiment folder, local or a URI (s3://, gs://).

    Locally through a temporary file and a rename; to object storage as one upload through
    pyarrow (Ray's own storage layer), where an object appears whole or not at all. Either way
    a reader never sees half a file.
    """
    folder = str(folder)
    if is_uri(folder):
        from pyarrow import fs

        filesystem, base = fs.FileSystem.from_uri(folder)
        with filesystem.open_output_stream(f"{base.rstrip('/')}/{name}") as stream:
            stream.write(text.encode())
        return
    write_text_atomic(Path(folder) / name, text)


def read_experiment_file(folder: str | Path, name: str) -> str | None:
    """The text of `folder/name`, local or a URI; None when it is not there."""
    folder = str(folder)
    try:
        if is_uri(folder):
            from pyarrow import fs

            filesystem, base = fs.FileSystem.from_uri(folder)
            with filesystem.open_input_stream(f"{base.rstrip('/')}/{name}") as stream:
                return stream.read().decode()
        return (Path(folder) / name).read_text()
    except (OSError, UnicodeDecodeError):  # pyarrow raises FileNotFoundError / OSError
        return None


def write_sweep_meta(folder: str | Path, meta: dict) -> None:
    write_experiment_file(folder, SWEEP_FILE, json_text(meta))


def read_json_file(folder: str | Path, name: str) -> dict:
    """The JSON object in `folder/name`, local or a URI; {} when absent or damaged."""
    try:
        payload = json.loads(read_experiment_file(folder, name) or "")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def read_sweep_meta(folder: str | Path) -> dict:
    """An experiment's sweep.json, or {} when absent or damaged (a resume rewrites it)."""
    return read_json_file(folder, SWEEP_FILE)
