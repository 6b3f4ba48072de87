"""--mlflow on sweep, lab and export: runs written to MLflow's default store (SQLite under the
storage folder) and read back with MLflow's own client; one line when MLflow is missing.

The sweep is the session's `genre_sweep` (conftest), run with --mlflow; nothing sweeps here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from musictune.commands.cli import main
from musictune.commands.lab import BUDGETS, LabOptions, lab_plan, step_options
from musictune.errors import UserError
from musictune.serving.predict import MODEL_FILE
from musictune.tuning.mlflow_tracking import INSTALL, store
from musictune.tuning.storage import SWEEP_FILE, TRIALS_FILE


def client_of(storage: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{storage / 'mlflow' / 'mlflow.db'}")


@pytest.mark.slow
def test_every_trial_is_one_run_with_its_params_and_epochs(genre_sweep):
    storage = genre_sweep["storage"]
    uri = f"sqlite:///{storage / 'mlflow' / 'mlflow.db'}"
    meta = json.loads((storage / "genre" / SWEEP_FILE).read_text())
    assert meta["mlflow"] == {"uri": uri, "experiment": "genre"}
    assert f"mlflow: every trial logged to {uri}, experiment genre" in genre_sweep["printed"]
    client = client_of(storage)
    experiment = client.get_experiment_by_name("genre")  # the sweep's name
    assert experiment.artifact_location == (storage / "mlflow" / "artifacts").as_uri()
    runs = [
        r for r in client.search_runs([experiment.experiment_id]) if "trial_name" in r.data.tags
    ]
    trials = pd.read_csv(storage / "genre" / TRIALS_FILE, dtype={"trial_id": str})
    assert len(runs) == len(trials) == 2
    epochs = []
    for _, trial in trials.iterrows():
        (run,) = [r for r in runs if r.data.tags["trial_name"].endswith(trial["trial_id"])]
        assert run.info.status == "FINISHED"
        assert run.data.tags["musictune.preset"] == "lstm_spectrogram"
        for key in ("lr", "dropout", "hidden_size"):
            assert float(run.data.params[key]) == pytest.approx(trial[key])
        # Every epoch, as Ray recorded it in the trial's progress.csv, with the epoch as step.
        history = client.get_metric_history(run.info.run_id, "val_macro_f1")
        progress = pd.read_csv(Path(trial["path"]) / "progress.csv")
        assert [m.step for m in history] == list(progress["training_iteration"])
        assert [m.value for m in history] == pytest.approx(list(progress["val_macro_f1"]))
        assert len(client.get_metric_history(run.info.run_id, "train_loss")) == len(history)
        epochs.append(len(history))
    assert max(epochs) == 2  # ASHA lets the first trial at its rung go on: a history of two


@pytest.mark.slow
def test_export_logs_the_model_with_its_figures(genre_sweep, tmp_path, capsys):
    storage, out = genre_sweep["storage"], tmp_path / "model"
    assert main(["export", str(storage / "genre"), "--out", str(out), "--mlflow"]) == 0
    printed = capsys.readouterr().out
    run_id = printed.split("mlflow: logged as run ", 1)[1].split()[0]
    client = client_of(storage)
    run = client.get_run(run_id)
    assert run.info.experiment_id == client.get_experiment_by_name("genre").experiment_id
    info = json.loads((out / MODEL_FILE).read_text())
    figures, source = info["provenance"]["figures"], info["provenance"]["source"]
    for split in ("validation", "test"):
        for metric in ("accuracy", "macro_f1"):
            assert run.data.metrics[f"{split}_{metric}"] == pytest.approx(figures[split][metric])
    assert float(run.data.params["lr"]) == pytest.approx(info["provenance"]["config"]["lr"])
    assert run.data.params["family"] == "lstm" and run.data.params["view"] == "mel"
    assert run.data.tags["musictune.source.trial"] == source["trial"]
    assert run.data.tags["musictune.serving.export"] == str(out)
    logged = sorted(a.path for a in client.list_artifacts(run_id, "model"))
    assert logged == sorted(f"model/{p.name}" for p in out.iterdir())
    copy = Path(client.download_artifacts(run_id, f"model/{MODEL_FILE}", str(tmp_path)))
    assert copy.read_bytes() == (out / MODEL_FILE).read_bytes()


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "lstm_spectrogram", "--smoke-test", "--storage", "{tmp}/results", "--mlflow"],
        ["lab", "--budget", "smoke", "--storage", "{tmp}/results", "--mlflow", "http://h:5000"],
        ["export", "{tmp}/results/genre", "--out", "{tmp}/model", "--mlflow"],
    ],
    ids=["sweep", "lab", "export"],
)
def test_without_mlflow_the_flag_is_one_line_before_anything_runs(
    argv, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # Python's mark of a module not importable
    status = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"musictune {argv[0]}: error: --mlflow needs MLflow") and INSTALL in err
    assert not list(tmp_path.iterdir())  # no storage, demo data or model folder


def test_the_store_is_a_uri_or_a_sqlite_database_in_a_folder(tmp_path):
    assert store("", tmp_path) == (
        f"sqlite:///{tmp_path}/mlflow/mlflow.db",
        (tmp_path / "mlflow" / "artifacts").as_uri(),
    )
    assert store(str(tmp_path / "ml"), "/elsewhere")[0] == f"sqlite:///{tmp_path}/ml/mlflow.db"
    assert store("http://mlflow.internal:5000", tmp_path) == ("http://mlflow.internal:5000", None)
    with pytest.raises(UserError, match="not a local folder: pass --mlflow URI"):
        store("", "s3://bucket/results")


@pytest.mark.parametrize("given", ["", "http://mlflow.internal:5000"])
def test_the_lab_passes_mlflow_to_every_sweep(given):
    options = LabOptions(budget="smoke", mlflow=given)
    for step in lab_plan():
        assert step_options(step, options, BUDGETS["smoke"], "/tmp/r", "/tmp/d").mlflow == given
