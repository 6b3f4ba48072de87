"""`musictune export` and `musictune predict`: a trained model as a folder, used on audio.

One module fixture renders demo clips of four genres to WAV files with the demo synthesiser,
extracts them (`musictune extract`), trains a small LSTM on that data (`musictune train
--checkpoint-dir`) and exports it: predicting on the audio must give the class probabilities of
the checkpoint on the extracted arrays. A second fixture runs a one-trial smoke sweep and a
report's one-seed rerun of it (Ray), and every kind of run is exported and used on the
repository's real recordings (tests/data/audio).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch

import musictune
from musictune.audio import features
from musictune.audio.extract_index import INDEX
from musictune.audio.synth import draw_clip, render
from musictune.commands.cli import main
from musictune.data.dataset import Split, load_task
from musictune.serving.predict import MODEL_FILE, WEIGHTS_FILE
from musictune.training.checkpoints import load_checkpoint, model_from_checkpoint
from musictune.training.scoring import predict

from .conftest import sweep_options, write_layout

AUDIO = Path(__file__).resolve().parent / "data" / "audio"
GENRES = ("Classical", "Electronic", "Hip-Hop", "Metal")  # demo genres that sound apart
CLIPS = 6  # per genre
SECONDS = 3.0  # the demo's clip length


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`musictune ARGV` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        status = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """Rendered clips -> musictune extract -> musictune train --checkpoint-dir -> export."""
    tmp = tmp_path_factory.mktemp("export")
    music = tmp / "music"
    for g, genre in enumerate(GENRES):
        (music / genre).mkdir(parents=True)
        for i in range(CLIPS):
            rng = np.random.default_rng([11, g, i])
            y = render(draw_clip(genre, rng), SECONDS, rng)
            soundfile.write(music / genre / f"{i}.wav", y, features.SAMPLE_RATE)
    data, checkpoints, model = tmp / "data", tmp / "run", tmp / "model"
    extract = ["extract", str(music), str(data), "--duration", "30", "--jobs", "1"]  # 1: warm once
    assert main(extract) == 0
    train = ["train", "--data-dir", str(data), "--epochs", "25", "--hidden", "32", "--lr", "3e-3"]
    train += ["--crop", "2", "--select-by", "loss"]  # crops: 86 of 130 frames, 2 windows a clip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a sweep's 1-CPU trial: a second thread crawls on busy cores
    try:
        assert main([*train, "--checkpoint-dir", str(checkpoints)]) == 0
    finally:
        torch.set_num_threads(threads)
    assert main(["export", str(checkpoints), "--out", str(model)]) == 0
    return {"tmp": tmp, "music": music, "data": data, "run": checkpoints, "model": model}


def reference_probabilities(trained: dict) -> dict[str, np.ndarray]:
    """The checkpoint (best.pt) on the arrays `extract` wrote, standardised as training was:
    file key -> class probabilities. Nothing of export or predict is used here."""
    data = load_task("genre", trained["data"], "mel")
    network = model_from_checkpoint(load_checkpoint(trained["run"] / "best.pt"))
    tracks = json.loads((trained["data"] / INDEX).read_text())["tracks"]
    folder = trained["data"] / "fma_genre_spectrograms"
    out = {}
    for key, (track, split) in tracks.items():
        array = np.load(folder / split / f"{track}.fused.full.npy")[features.VIEWS["mel"]].T
        frames = ((array - data.mean) / data.std).astype(np.float32)
        split = Split(frames, np.array([len(frames)]), None, np.array([key]))
        out[key] = torch.softmax(torch.from_numpy(predict(network, split)), -1).numpy()[0]
    return out


def probabilities(row, classes: list[str]) -> np.ndarray:
    """A predict row's class_r / probability_r columns as one probability per class."""
    values = {row[f"class_{r}"]: row[f"probability_{r}"] for r in range(1, len(classes) + 1)}
    return np.array([values[c] for c in classes])


def test_predict_on_audio_gives_the_models_probabilities_on_the_extracted_arrays(trained):
    model = musictune.load_model(trained["model"])
    assert model.classes == sorted(GENRES)
    assert model.info["features"]["settings"] == "musictune extract"
    frame = model.predict([trained["music"]], jobs=1)
    assert frame.attrs["skipped"] == []
    assert list(frame.columns[:4]) == ["path", "window", "start_s", "end_s"]
    assert len(frame) == len(GENRES) * CLIPS and (frame["window"] == 0).all()
    expected = reference_probabilities(trained)
    correct = 0
    for _, row in frame.iterrows():
        key = Path(row["path"]).relative_to(trained["music"]).as_posix()
        got = probabilities(row, model.classes)
        np.testing.assert_allclose(got, expected[key], atol=1e-5)
        correct += model.classes[int(got.argmax())] == key.split("/")[0]
    accuracy = correct / len(frame)
    assert accuracy >= 0.5, f"accuracy {accuracy:.2f} on {len(frame)} clips, chance 0.25"


def test_export_records_what_the_model_needs_and_where_it_came_from(trained):
    model_dir = trained["model"]
    info = json.loads((model_dir / MODEL_FILE).read_text())
    assert sorted(p.name for p in model_dir.iterdir()) == [MODEL_FILE, WEIGHTS_FILE]
    state = torch.load(model_dir / WEIGHTS_FILE, weights_only=True)
    best = load_checkpoint(trained["run"] / "best.pt")
    assert all(torch.equal(state[k], v) for k, v in best["model"].items())
    data = load_task("genre", trained["data"], "mel")
    np.testing.assert_array_equal(np.float32(info["standardisation"]["mean"]), data.mean)
    np.testing.assert_array_equal(np.float32(info["standardisation"]["std"]), data.std)
    settings = info["features"]
    assert [settings[k] for k in ("sample_rate", "n_fft", "hop_length")] == [22050, 2048, 512]
    assert (settings["view"], settings["beat"], settings["clip_seconds"]) == ("mel", False, 30.0)
    assert settings["window"]["frames"] == 86 and info["model"]["window"] == 86
    source = info["provenance"]["source"]
    assert source["kind"] == "train" and source["checkpoint_epoch"] == best["state"]["epoch"]
    assert info["provenance"]["data"]["manifest"]["made_by"] == "musictune extract"
    assert set(info["provenance"]["figures"]["test"]) >= {"accuracy", "macro_f1", "clips"}
    assert info["provenance"]["versions"]["torch"] == torch.__version__


# --------------------------------------------------------------------------- bad input


def test_bad_model_audio_and_options_end_in_one_line(trained, tmp_path, capsys):
    model = trained["model"]
    wav = next(trained["music"].rglob("*.wav"))
    cases = {"missing": tmp_path / "nope"}
    for name, edit in {
        "damaged": lambda d: (d / MODEL_FILE).write_text("{not json"),
        "newer": lambda d: (d / MODEL_FILE).write_text(
            json.dumps(json.loads((d / MODEL_FILE).read_text()) | {"format_version": 99})
        ),
        "truncated": lambda d: (d / WEIGHTS_FILE).write_bytes((d / WEIGHTS_FILE).read_bytes()[:99]),
    }.items():
        shutil.copytree(model, tmp_path / name)
        edit(tmp_path / name)
        cases[name] = tmp_path / name
    expected = {
        "missing": "not found",
        "damaged": "is damaged",
        "newer": "upgrade musictune",
        "truncated": "is damaged",
    }
    for name, folder in cases.items():
        status, out, err = run(capsys, "predict", folder, wav, "--csv", tmp_path / "p.csv")
        assert status == 2 and err.count("\n") == 1 and expected[name] in err, (name, err)
    empty = tmp_path / "empty"
    empty.mkdir()
    for argv, words in [
        (["predict", model, empty], "no audio files"),
        (["predict", model, wav, "--top", "0"], "--top"),
        (["export", empty, "--out", tmp_path / "m"], "holds no checkpoint"),
        (["export", trained["run"], "--out", model], "already exists"),
        (["export", trained["run"], "--trial", "x", "--out", tmp_path / "m"], "--trial"),
    ]:
        status, out, err = run(capsys, *argv)
        assert status == 2 and err.count("\n") == 1 and words in err, (argv, err)
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m").exists()
    assert not list(tmp_path.glob(".tmp-*")) and not list(trained["tmp"].glob(".tmp-*"))


def test_undecodable_and_silent_files_are_listed_and_skipped(trained, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = next(trained["music"].rglob("*.wav"))
    shutil.copy(good, folder / "good.wav")
    (folder / "broken.ogg").write_bytes(np.random.default_rng(0).bytes(5000))
    soundfile.write(folder / "silent.wav", np.zeros(features.SAMPLE_RATE), features.SAMPLE_RATE)
    (folder / "notes.txt").write_text("not audio\n")
    csv = tmp_path / "out.csv"
    status, out, err = run(capsys, "predict", trained["model"], folder, "--csv", csv, "--top", "2")
    assert status == 0, err
    table = pd.read_csv(csv)
    assert list(table["path"]) == [str(folder / "good.wav")]
    assert list(table.columns) == [
        *("path", "window", "start_s", "end_s"), "class_1", "probability_1", "class_2",
        "probability_2",
    ]  # fmt: skip
    assert "skipped 2 file(s)" in err and "broken.ogg: cannot decode" in err
    assert "silent.wav: silent" in err and "notes.txt" not in err


# --------------------------------------------------------------------------- sweeps and reruns


@pytest.fixture(scope="module")
def swept(ray_local, tmp_path_factory) -> dict:
    """A one-trial, one-epoch smoke sweep of beat-synced mel on random arrays of 3-s clips (the
    course's layout, no manifest) and a report's one-seed rerun of its best trial, made by the
    report's own `run_rerun`."""
    from musictune.tuning.experiments import RerunSettings, read_experiment
    from musictune.tuning.rerun import run_rerun
    from musictune.tuning.runner import run_sweep

    tmp = tmp_path_factory.mktemp("swept")
    data = write_layout(tmp / "data", frames=130)  # 130 frames: the demo's 3-s clips
    storage = tmp / "results"
    argv = ["--samples", "1", "--max-epochs", "1", "--smoke-test", "--no-baseline-train"]
    places = ["--data-dir", str(data), "--storage", str(storage), "--name", "genre"]
    run_sweep(sweep_options("lstm_spectrogram_beat", *argv, *places))
    exp = read_experiment(storage / "genre")
    trial = str(exp.best_trials(1).iloc[0]["trial_id"])
    settings = RerunSettings(seeds=1, max_epochs=1, patience=10)
    rerun = run_rerun(exp, trial, load_task("genre", data, "mel", beat=True), settings)
    return {"tmp": tmp, "sweep": storage / "genre", "trial": trial, "rerun": rerun.path}


@pytest.mark.slow
def test_a_sweep_a_rerun_and_a_train_run_export_and_predict_real_recordings(
    swept, trained, tmp_path, capsys
):
    models = {"sweep": tmp_path / "sweep", "rerun": tmp_path / "rerun"}
    assert run(capsys, "export", swept["sweep"], "--out", models["sweep"])[0] == 0
    assert run(capsys, "export", swept["rerun"], "--seed", "0", "--out", models["rerun"])[0] == 0
    models["train"] = trained["model"]
    meta = json.loads((swept["sweep"] / "sweep.json").read_text())
    for kind, folder in models.items():
        info = json.loads((folder / MODEL_FILE).read_text())
        source, figures = info["provenance"]["source"], info["provenance"]["figures"]
        assert source["kind"] == kind
        if kind == "train":
            continue
        assert source["trial"] == swept["trial"] and info["features"]["settings"] == "course"
        assert info["features"]["beat"] and info["features"]["clip_seconds"] == 3.0  # 130 frames
        assert info["labels"]["classes"] == meta["classes"]
        if kind == "sweep":  # the checkpoint the sweep tested, and the figures it printed
            assert source["checkpoint"] == meta["test"]["tuned"]["checkpoint"]
            assert figures["test"]["macro_f1"] == pytest.approx(
                meta["test"]["tuned"]["mean"]["macro_f1"]
            )
        else:
            assert source["seed"] == 0 and source["rerun"] == str(swept["rerun"])
    recordings = sorted(AUDIO.glob("*.ogg"))
    for kind, folder in models.items():
        csv = tmp_path / f"{kind}.csv"
        argv = ["predict", folder, AUDIO, "--csv", csv, "--windows", "--top", "20", "--jobs", "2"]
        status, out, err = run(capsys, *argv)
        assert status == 0, err
        table = pd.read_csv(csv)
        files = table[table["window"] == 0]
        assert sorted(files["path"]) == [str(p) for p in recordings], kind
        chances = table.filter(like="probability_").sum(axis=1)
        np.testing.assert_allclose(chances, 1.0, atol=1e-5)
        for path, rows in table.groupby("path"):
            windows = rows[rows["window"] > 0]
            # 5.3-6 s recordings: two 3-s windows for the sweep's models, one 30-s clip for the
            # model trained on extracted clips (its manifest's --duration).
            assert len(windows) == (1 if kind == "train" else 2), (kind, path)
            assert windows["end_s"].max() == rows[rows["window"] == 0]["end_s"].item()
        assert out.count("\n") == len(table) + 1  # a line per row, then where the CSV went


@pytest.mark.slow
def test_a_k_fold_sweep_points_to_its_reruns(swept, tmp_path, capsys):
    folds = tmp_path / "kfold"
    shutil.copytree(swept["sweep"], folds)
    meta = json.loads((folds / "sweep.json").read_text())
    (folds / "sweep.json").write_text(json.dumps(meta | {"folds": 3}))
    status, out, err = run(capsys, "export", folds, "--out", tmp_path / "m")
    assert status == 2 and err.count("\n") == 1
    assert "K-fold" in err and "reruns" in err and "--seed" in err
    status, out, err = run(capsys, "export", swept["sweep"].parent, "--out", tmp_path / "m")
    assert status == 2 and "holds sweeps" in err and "genre" in err
    assert not (tmp_path / "m").exists()
