"""Optional MLflow logging (`pip install "musictune[mlflow]"`): `--mlflow [URI]` on `musictune
sweep`, `musictune lab` and `musictune export`.

    musictune sweep lstm_spectrogram --mlflow                # a store under the storage folder
    musictune sweep lstm_spectrogram --mlflow http://mlflow.internal:5000
    musictune export results/NAME --out models/genre --mlflow

A sweep logs each trial as one MLflow run through Ray Tune's `MLflowLoggerCallback` (on the
driver): the trial's config as params, every epoch's metrics with the epoch as step. The MLflow
experiment is the sweep's name; `musictune export` logs the exported model (its folder as
artifacts, its validation and test figures as metrics) into the experiment of its sweep.

URI: an MLflow tracking URI (http://, sqlite:///, databricks, ...), or a folder. Without one,
the folder is `<storage>/mlflow`. A folder holds a SQLite store, `mlflow.db`, with artifacts in
`artifacts/`: MLflow 3 refuses its file store (./mlruns) unless MLFLOW_ALLOW_FILE_STORE is set
and prefers a database. `mlflow ui --backend-store-uri sqlite:///<folder>/mlflow.db` shows it
(the UI comes with the full `pip install mlflow`).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

from musictune.errors import UserError

INSTALL = 'pip install "musictune[mlflow]"'
FOLDER = "mlflow"  # the default store's folder under the storage folder
DATABASE = "mlflow.db"


def require_mlflow(flag: str = "--mlflow") -> None:
    """Refuse `flag` in one line when MLflow is not installed, before anything runs."""
    if importlib.util.find_spec("mlflow") is None:
        raise UserError(f"{flag} needs MLflow, which is not installed: {INSTALL}")


def store(given: str, folder: str | Path) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment) of `--mlflow given`; an empty
    `given` means the store in `folder` (a local folder)/mlflow."""
    if given and ("://" in given or given.startswith("databricks")):
        return given, None  # the server or database decides where artifacts go
    base = Path(given) if given else Path(folder) / FOLDER
    if not given and "://" in str(folder).removeprefix("file://"):
        raise UserError(
            f"--mlflow without a URI keeps its store under the storage folder, and {folder} "
            "is not a local folder: pass --mlflow URI (e.g. http://host:5000, or a folder)"
        )
    base = Path(str(base).removeprefix("file://")).expanduser().absolute()
    return f"sqlite:///{base / DATABASE}", (base / "artifacts").as_uri()


def quiet() -> None:
    """MLflow's and Alembic's INFO lines (creating the database tables) stay out of the output."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def ensure_experiment(uri: str, name: str, artifacts: str | None) -> str:
    """The id of MLflow experiment `name` at `uri`, created (with `artifacts`) if new."""
    from mlflow.tracking import MlflowClient

    quiet()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        return client.create_experiment(name, artifact_location=artifacts)
    except Exception as exc:  # MLflow raises its own, requests' and SQLAlchemy's errors
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"--mlflow {uri}: the MLflow store cannot be used ({reason})") from None


def numbers(values: dict) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def sweep_logger(uri: str, name: str, tags: dict):
    """Ray Tune's `MLflowLoggerCallback` for the sweep `name`, each epoch's metrics written in
    one batch."""
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class EpochBatchLogger(MLflowLoggerCallback):
        """One `log_batch` per epoch: on SQLite one transaction instead of one per metric
        (0.05 s against 0.8 s for 30 metrics here, on the driver, every epoch of every trial).
        Logs the trial's numbers (not Ray's copy of the config, which the params hold)."""

        def log_trial_result(self, iteration: int, trial, result: dict) -> None:
            from mlflow.entities import Metric
            from mlflow.tracking import MlflowClient

            step, now = int(result["training_iteration"]), int(time.time() * 1000)
            metrics = [Metric(k, v, now, step) for k, v in numbers(result).items()]
            client = MlflowClient(tracking_uri=self.tracking_uri)  # MLflow caches the store
            client.log_batch(self._trial_runs[trial], metrics=metrics)

    quiet()
    return EpochBatchLogger(tracking_uri=uri, experiment_name=name, tags=tags)


def log_export(given: str, info: dict, out: Path) -> tuple[str, str, str]:
    """Log an exported model folder `out` (model.json `info`) as one MLflow run in the
    experiment of its sweep (a `train` run: the experiment named after its folder), in the
    store beside it; returns (tracking URI, experiment name, run id)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    source, figures = info["provenance"]["source"], info["provenance"]["figures"]
    home = Path(source.get("sweep") or source["run"])
    uri, artifacts = store(given, home.parent)
    experiment = ensure_experiment(uri, home.name, artifacts)
    tags = {
        f"musictune.source.{k}": str(v)
        for k, v in source.items()
        if v is not None and not isinstance(v, dict)
    }
    tags["musictune.serving.export"] = str(out.absolute())
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(experiment, run_name=f"export {out.name}", tags=tags)
    params = {
        "task": info["task"],
        "family": info["model"]["family"],
        "view": info["features"]["view"],
        "beat": info["features"]["beat"],
        "clip_seconds": info["features"]["clip_seconds"],
        **(info["provenance"].get("config") or {}),
    }
    now, step = int(time.time() * 1000), int(source.get("checkpoint_epoch") or 0)
    metrics = [
        Metric(f"{split}_{k}", v, now, step)
        for split in ("validation", "test")
        for k, v in numbers(figures[split]).items()
    ]
    run_id = run.info.run_id
    client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()])
    client.log_artifacts(run_id, str(out), artifact_path="model")
    client.set_terminated(run_id)
    return uri, home.name, run_id
