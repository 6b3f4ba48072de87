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
from musictune import features
from musictune.checkpoints import load_checkpoint, model_from_checkpoint
from musictune.cli import main
from musictune.data import Split, load_task
from musictune.extract_index import INDEX
from musictune.predict import MODEL_FILE, WEIGHTS_FILE
from musictune.synth import draw_clip, render
from musictune.training import predict

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
    assert main(["extract", str(music), str(data), "--jobs", "1"]) == 0  # warm once, here
    train = ["train", "--data-dir", str(data), "--epochs", "25", "--hidden", "32", "--lr", "3e-3"]
    assert main([*train, "--checkpoint-dir", str(checkpoints)]) == 0
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
