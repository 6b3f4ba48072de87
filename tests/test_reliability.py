"""Reliability: a killed driver, a crashed or diverging trial, Ctrl-C, bad input to every
command, interrupted writes and unsafe pickles, with real Ray, real processes and real files."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from musictune import layout
from musictune.audio import features
from musictune.commands.cli import main as musictune_main
from musictune.data.dataset import load_dataset
from musictune.data.demo import generate_demo
from musictune.data.files import _cache_path, _save_npz_atomic, read_split
from musictune.errors import UserError
from musictune.models import create_model
from musictune.training.checkpoints import load_checkpoint, save_checkpoint
from musictune.training.loop import TrainState
from musictune.tuning.runner import resume_command, run_sweep
from musictune.tuning.storage import (
    SWEEP_FILE,
    TRIALS_FILE,
    write_experiment_file,
    write_json_atomic,
)

from .conftest import report_cli, sweep_options, write_layout

ROOT = Path(__file__).resolve().parents[1]
GENRE_DIR = layout.dataset_dirname(layout.GENRE_TASK, False)
MULTI_DIR = layout.dataset_dirname(layout.MULTITASK_TASK, False)

# A trial here: 24 epochs of the LSTM on `slow_root`, a checkpoint every epoch, one trial at a
# time, so that a driver can be stopped while one trial has finished and the next is halfway.
# A trial must outlast Ray's one-second experiment snapshots several times over, even on a fast
# machine: ~4-5 s each here (at 14 epochs of 120 frames, ~1 s, CI once finished all three
# before a snapshot showed one done and one halfway).
SLOW_SWEEP = [
    "--samples", "3", "--max-epochs", "24", "--patience", "0", "--checkpoint-every", "1",
    "--scheduler", "fifo", "--max-concurrent", "1",
]  # fmt: skip
EPOCHS = 24


# --------------------------------------------------------------------------- helpers


def experiment_state(experiment: Path) -> list[dict]:
    """The trials as the driver last saved them: id, status and last training iteration."""
    files = sorted(experiment.glob("experiment_state-*.json"))
    if not files:
        return []
    try:
        state = json.loads(files[-1].read_text())
    except (OSError, ValueError):
        return []  # being replaced this very moment: read it again
    trials = []
    for raw, runtime in state.get("trial_data", []):
        trial, runtime = json.loads(raw), json.loads(runtime)
        last = runtime.get("last_result") or {}
        trials.append(
            {
                "id": trial["trial_id"],
                "status": trial["status"],
                "iteration": last.get("training_iteration", 0),
            }
        )
    return trials


def one_finished_one_halfway(experiment: Path) -> list[dict] | None:
    trials = experiment_state(experiment)
    done = any(t["status"] == "TERMINATED" for t in trials)
    halfway = any(t["status"] == "RUNNING" and t["iteration"] >= 2 for t in trials)
    return trials if done and halfway else None


def kill_session(pid: int) -> None:
    """SIGKILL a driver started with start_new_session and every process of its session: the
    Ray head it started (GCS, raylet, agents, workers) would otherwise outlive it."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == pid:  # the session id: processes that left the group as well
            try:
                os.kill(int(stat.parent.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def driver(argv: list[str], logs: Path, env: dict[str, str | None] | None = None):
    """A sweep driver as a user starts it, in its own session; killed with its Ray on exit.

    `env` adds to this process's environment; a None value removes that variable.
    """
    logs.mkdir(parents=True, exist_ok=True)
    # Its own Ray head, even while a `ray start` cluster runs on this machine.
    environment = {**os.environ, "RAY_ADDRESS": "local", **(env or {})}
    with open(logs / "stdout", "w") as out, open(logs / "stderr", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            start_new_session=True,
            env={k: v for k, v in environment.items() if v is not None},
        )
        try:
            yield proc
        finally:
            kill_session(proc.pid)
            proc.wait()


def wait_for(condition: Callable[[], object], proc: subprocess.Popen, logs: Path, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the driver ended early ({proc.returncode}):\n{read_log(logs, 'stderr')}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting; driver stderr:\n{read_log(logs, 'stderr')}")


def read_log(logs: Path, name: str) -> str:
    return (logs / name).read_text(errors="replace")


def progress(trial_dir: Path) -> pd.DataFrame:
    return pd.read_csv(trial_dir / "progress.csv")


def trial_dirs(experiment: Path) -> dict[str, Path]:
    """trial id -> trial folder."""
    return {str(progress(d)["trial_id"].iloc[0]): d for d in _dirs(experiment)}


def _dirs(experiment: Path) -> list[Path]:
    return [d for d in experiment.iterdir() if d.is_dir() and (d / "progress.csv").exists()]


# --------------------------------------------------------------------------- 1. killed driver


@pytest.fixture(scope="module")
def slow_root(tmp_path_factory) -> Path:
    """Clips of 400 frames instead of 40: epochs long enough to stop a driver mid-trial."""
    return write_layout(tmp_path_factory.mktemp("slow") / "data", frames=400)


@pytest.mark.slow
def test_ctrl_c_then_a_killed_driver_each_resume_without_losing_or_rerunning_a_trial(
    ray_local, slow_root, tmp_path
):
    """One sweep stopped twice, as a user might: Ctrl-C first (a clean stop that prints the
    resume command), then that command run and SIGKILLed mid-trial (nothing saved on the way
    out), then resumed to the end. Every finished trial is kept as it was; every cut trial goes
    on from its last checkpoint."""
    argv = ["--data-dir", str(slow_root), "--storage", str(tmp_path), "--name", "stopped"]
    experiment = tmp_path / "stopped"
    logs = tmp_path / "logs"
    with driver(["sweeps/lstm_spectrogram.py", *argv, *SLOW_SWEEP], logs) as proc:
        wait_for(lambda: one_finished_one_halfway(experiment), proc, logs)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        code = proc.wait(timeout=60)
    err = read_log(logs, "stderr")
    assert code == 130, err
    assert not our_tracebacks(err) and "Tuner.restore" not in err, err
    # One line says so (Ray may still flush a worker's log line after it).
    (note,) = [line for line in err.splitlines() if "interrupted" in line and "tune.py" not in line]
    assert note.startswith("python sweeps/lstm_spectrogram.py: interrupted: "), note
    assert "of 3 trials ended and are kept in" in note
    command = shlex.split(note.split("resume with: ", 1)[1])
    assert command[:2] == ["python", "sweeps/lstm_spectrogram.py"]
    table = pd.read_csv(experiment / TRIALS_FILE)
    finished = table[table["status"] == "TERMINATED"]
    assert 1 <= len(finished) < 3, table[["trial_id", "status", "epochs"]]
    assert (finished["epochs"] == EPOCHS).all()
    assert (table["status"] != "TERMINATED").any()  # the trial Ctrl-C stopped, not "finished"
    assert json.loads((experiment / SWEEP_FILE).read_text())["status"] == "interrupted"
    at_ctrl_c = {t["id"]: t["iteration"] for t in experiment_state(experiment)}

    # The printed command resumes it; SIGKILL it once a trial has gone 2 epochs further.
    def moved_on() -> list[dict] | None:
        trials = experiment_state(experiment)
        return (
            trials
            if any(
                t["status"] == "RUNNING" and t["iteration"] >= at_ctrl_c.get(t["id"], 0) + 2
                for t in trials
            )
            else None
        )

    with driver(command[1:], tmp_path / "logs2") as proc:
        wait_for(moved_on, proc, tmp_path / "logs2")
        kill_session(proc.pid)  # SIGKILL: no handler runs, nothing is saved on the way out
    at_kill = experiment_state(experiment)  # the driver's last snapshot, a second old at most
    done = {t["id"] for t in at_kill if t["status"] == "TERMINATED"}
    cut = [t for t in at_kill if t["status"] == "RUNNING" and t["iteration"] >= 2]
    assert done >= set(finished["trial_id"]) and cut, at_kill
    dirs = trial_dirs(experiment)
    logs_before = {i: (dirs[i] / "progress.csv").read_text() for i in done}
    rows_before = {t["id"]: len(progress(dirs[t["id"]])) for t in cut}

    results = run_sweep(sweep_options("lstm_spectrogram", *command[2:]))

    assert len(results) == 3 and not results.errors
    assert all(r.metrics["training_iteration"] == EPOCHS for r in results)
    # No finished trial was lost or run again: its log is exactly as it was.
    for trial_id, text in logs_before.items():
        assert (dirs[trial_id] / "progress.csv").read_text() == text
    # The trial cut halfway went on from its last checkpoint: after the rows it had logged,
    # its epochs restart past 1 (at the checkpointed epoch + 1) and run on to the end, and the
    # model's own epoch count (restored from the checkpoint) agrees with Ray's.
    for trial_id, n_before in rows_before.items():
        log = progress(dirs[trial_id])
        after = log["training_iteration"].tolist()[n_before:]
        assert 1 < after[0] <= n_before + 1, log["training_iteration"].tolist()
        assert after == list(range(after[0], EPOCHS + 1))
        assert (log["epoch"] == log["training_iteration"]).all()
        assert (dirs[trial_id] / f"checkpoint_{after[0] - 2:06d}").is_dir()
    table = pd.read_csv(experiment / TRIALS_FILE)
    assert len(table) == 3 and (table["status"] == "TERMINATED").all()
    assert json.loads((experiment / SWEEP_FILE).read_text())["status"] == "finished"


# --------------------------------------------------------------------------- 2. trial crash


def crash_at(epoch: int, markers: Path):
    """train_trial whose process dies (os._exit, as an OOM kill would) when it is about to
    report `epoch`: trial 0 on its first attempt only, trial 1 on every attempt. Marker files
    count the crashes, so a retry knows whether to crash again."""

    def crashing(config: dict, data, settings) -> None:
        from ray import tune

        from trainables import supervised

        real_report = tune.report
        trial_id = tune.get_context().get_trial_id()
        crashes = 1 if trial_id.endswith("_00000") else 99

        def report(metrics, checkpoint=None):
            done = len(list(markers.glob(f"{trial_id}-*")))
            if metrics["epoch"] == epoch and done < crashes:
                (markers / f"{trial_id}-{done}").write_text(str(os.getpid()))
                os._exit(1)  # before the epoch is reported or its checkpoint saved
            real_report(metrics, checkpoint=checkpoint)

        supervised.tune.report = report
        try:
            supervised.train_trial(config, data, settings)
        finally:
            supervised.tune.report = real_report

    return crashing


@pytest.mark.slow
def test_crashed_trials_are_retried_from_their_last_checkpoint(
    ray_local, fake_root, tmp_path, capsys
):
    markers = tmp_path / "markers"
    markers.mkdir()
    options = sweep_options(
        "lstm_spectrogram_beat",
        *("--data-dir", str(fake_root), "--storage", str(tmp_path), "--name", "crash"),
        *("--samples", "2", "--max-epochs", "4", "--patience", "0", "--scheduler", "fifo"),
        *("--checkpoint-every", "2", "--max-failures", "1"),
    )
    results = run_sweep(options, trainable=crash_at(3, markers))

    # The sweep completed: one trial recovered, the one that kept crashing failed alone.
    assert len(results) == 2 and len(results.errors) == 1
    assert len(list(markers.iterdir())) == 3  # the processes really died: 1 + 2 times
    table = pd.read_csv(tmp_path / "crash" / TRIALS_FILE).set_index("trial_id").sort_index()
    assert table["status"].tolist() == ["TERMINATED", "ERROR"]
    assert table["crashes"].tolist() == [1, 2] and table["epochs"].tolist() == [4, 2]
    assert table["error"].str.contains("actor died").all()  # the crash stays on record
    # Epoch 3 ran and the process died before reporting it; the retry restored epoch 2's
    # checkpoint and went on with epoch 3 (not epoch 1); the failing trial died there again.
    recovered, failed = (progress(Path(p)) for p in table["path"])
    assert recovered["epoch"].tolist() == [1, 2, 3, 4]
    assert failed["epoch"].tolist() == [1, 2]
    assert json.loads((tmp_path / "crash" / SWEEP_FILE).read_text())["status"] == "finished"
    out = capsys.readouterr().out
    assert "2 trial(s) crashed (3 crash(es)) and were retried from their last checkpoint" in out
    assert "1 trial(s) failed after all retries" in out


# --------------------------------------------------------------------------- 3. NaN loss


@pytest.mark.slow
def test_diverging_trial_stops_at_once_and_the_sweep_goes_on(
    ray_local, fake_root, tmp_path, capsys
):
    # Adam shrugs off a merely high lr; from about 1e12 the CNN's activations overflow.
    options = sweep_options(
        "cnn_spectrogram_beat",
        *("--data-dir", str(fake_root), "--storage", str(tmp_path), "--name", "nan"),
        *("--samples", "3", "--max-epochs", "2", "--patience", "0", "--scheduler", "fifo"),
        *("--lr-min", "1e-3", "--lr-max", "1e30"),
    )
    results = run_sweep(options)

    assert len(results) == 3 and not results.errors
    table = pd.read_csv(tmp_path / "nan" / TRIALS_FILE)
    diverged, healthy = table[table["diverged"] == 1], table[table["diverged"] == 0]
    assert len(diverged) and len(healthy), table[["lr", "diverged", "epochs"]]
    # Each diverged trial stopped at the first epoch whose loss was not finite, with the worst
    # metric value reported for that epoch.
    for _, row in diverged.iterrows():
        log = progress(Path(row["path"]))
        assert log["diverged"].tolist() == [0] * (len(log) - 1) + [1]
        assert (
            len(log) == row["epochs"] and log["train_loss"].iloc[-1] != log["train_loss"].iloc[-1]
        )
    assert (diverged["last_val_macro_f1"] == 0.0).all()
    assert (healthy["epochs"] == 2).all() and healthy["last_train_loss"].notna().all()
    assert (table["status"] == "TERMINATED").all()
    assert json.loads((tmp_path / "nan" / SWEEP_FILE).read_text())["status"] == "finished"
    assert f"{len(diverged)} trial(s) diverged (NaN/inf loss)" in capsys.readouterr().out


# --------------------------------------------------------------------------- 4. Ctrl-C


def our_tracebacks(err: str) -> list[str]:
    """The tracebacks in a driver's stderr, less Ray's own: a trial worker that Tune stops at
    Ctrl-C may print one from Ray's SIGTERM handler as it exits ("Exception ignored in ...")."""
    blocks = re.split(r"(?=Traceback \(most recent call last\):)", err)[1:]
    return [b for b in blocks if "sigterm_handler" not in b]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["sweeps/lstm_chroma.py", "--data-dir", "d", "--name=old", "--samples", "4"],
            "python sweeps/lstm_chroma.py --data-dir d --samples 4",
        ),
        (
            ["/venv/bin/musictune", "sweep", "lstm_chroma", "--resume", "--storage", "x y"],
            "musictune sweep lstm_chroma",
        ),
        (["pytest", "-k", "x"], "python sweeps/lstm_chroma.py --data-dir 'my data'"),
    ],
)
def test_resume_command_is_the_users_command_with_resume(argv, expected, monkeypatch):
    monkeypatch.setattr(sys, "argv", argv)
    options = sweep_options("lstm_chroma", "--data-dir", "my data")
    tail = " --resume --name run-1 --storage '/r s'"
    assert resume_command(options, "run-1", "/r s") == expected + tail


# --------------------------------------------------------------------------- 5. bad input


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A small layout that every command accepts; each bad-input case breaks its own copy."""
    return write_layout(tmp_path_factory.mktemp("pristine") / "data", n_train=20, n_test=10)


def first_array(root: Path, dataset: str = GENRE_DIR) -> Path:
    return sorted((root / dataset / "train").glob("*.npy"))[0]


def edit_labels(root: Path, edit: Callable[[list[str]], list[str]], dataset=GENRE_DIR) -> None:
    path = root / dataset / "train_labels.txt"
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")


def lstm_checkpoint_for_chroma(root: Path, tmp: Path) -> None:
    """A valid checkpoint of a model for another feature view (12 inputs, not 128)."""
    model = create_model("lstm", 12, head="classifier", n_outputs=10)
    save_checkpoint(tmp / "chroma.pt", model, None, TrainState(), {})


def torch_file_without_model(root: Path, tmp: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, tmp / "other.pt")


def existing_folder(root: Path, tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "keep.txt").write_text("mine")


def make_extract_input(root: Path, tmp: Path) -> None:
    (tmp / "audio" / "Rock").mkdir(parents=True)
    (tmp / "audio" / "Rock" / "song.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (tmp / "empty").mkdir()
    (tmp / "labels.csv").write_text("file,label\nRock/song.wav,Rock\n")
    (tmp / "map.json").write_text("{'Rock': 'rock'")


def make_report_input(root: Path, tmp: Path) -> None:
    broken = tmp / "results" / "broken"
    broken.mkdir(parents=True)
    (broken / SWEEP_FILE).write_text('{"preset": "lstm_spectrogram", "status": ')
    (tmp / "no-sweeps").mkdir()


BREAK: dict[str, Callable[[Path, Path], None]] = {
    "empty_dir": lambda root, tmp: (tmp / "empty").mkdir(),
    "a_file": lambda root, tmp: (tmp / "a_file").write_text("not a folder"),
    "no_genre_folder": lambda root, tmp: shutil.rmtree(root / GENRE_DIR),
    "no_labels": lambda root, tmp: (root / GENRE_DIR / "train_labels.txt").unlink(),
    "empty_labels": lambda root, tmp: (root / GENRE_DIR / "train_labels.txt").write_text(""),
    "header_only": lambda root, tmp: edit_labels(root, lambda lines: lines[:1]),
    "csv_header": lambda root, tmp: edit_labels(root, lambda lines: ["id,genre", *lines[1:]]),
    "short_row": lambda root, tmp: edit_labels(root, lambda lines: [*lines, "4242.fused.full"]),
    "binary_labels": lambda root, tmp: (root / GENRE_DIR / "train_labels.txt").write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\xff\xfe\xfa"
    ),
    "unknown_genre": lambda root, tmp: edit_labels(
        root, lambda lines: [lines[0], lines[1].split("\t")[0] + "\tPolka", *lines[2:]]
    ),
    "one_class": lambda root, tmp: edit_labels(
        root, lambda lines: [lines[0], *(line.split("\t")[0] + "\tRock" for line in lines[1:])]
    ),
    "dropped_test_genres": lambda root, tmp: (root / GENRE_DIR / "test_labels.txt").write_text(
        "Id\tGenre\n"
        + "".join(
            f"{p.stem.split('.')[0]}.full.fused.npy.gz\tOld-Time\n"
            for p in (root / GENRE_DIR / "test").glob("*.npy")
        )
    ),
    "missing_array": lambda root, tmp: first_array(root).unlink(),
    "truncated_array": lambda root, tmp: first_array(root).write_bytes(
        first_array(root).read_bytes()[:90]
    ),
    "wrong_shape": lambda root, tmp: np.save(first_array(root), np.zeros((12, 40), np.float32)),
    "nan_array": lambda root, tmp: np.save(first_array(root), np.full((140, 40), np.nan)),
    "pickled_array": lambda root, tmp: np.save(
        first_array(root), np.array([{"a": 1}], dtype=object), allow_pickle=True
    ),
    "target_text": lambda root, tmp: edit_labels(
        root, lambda lines: [lines[0], lines[1].rsplit(",", 1)[0] + ",high", *lines[2:]], MULTI_DIR
    ),
    "target_range": lambda root, tmp: edit_labels(
        root, lambda lines: [lines[0], lines[1].rsplit(",", 1)[0] + ",1.7", *lines[2:]], MULTI_DIR
    ),
    "bad_manifest": lambda root, tmp: (root / layout.MANIFEST).write_text("{class_mapping: "),
    "manifest_list": lambda root, tmp: (root / layout.MANIFEST).write_text(
        json.dumps({"class_mapping": ["Rock", "Pop"]})
    ),
    "chroma_checkpoint": lstm_checkpoint_for_chroma,
    "not_a_checkpoint": torch_file_without_model,
    "garbage_checkpoint": lambda root, tmp: (tmp / "garbage.pt").write_text("not torch"),
    "existing_out": existing_folder,
    "extract_input": make_extract_input,
    "report_input": make_report_input,
}


@dataclass(frozen=True)
class Case:
    """argv of one command; {data} is a broken copy of the layout, {tmp} the test's folder.

    runner: "musictune" (cli.main in this process), "report" (analysis/report.py's main in this
    process) or "process" (a real `python ...` process: import-time problems show there too).
    """

    argv: tuple[str, ...]
    needles: tuple[str, ...]
    breakage: str | None = None
    runner: str = "musictune"


MUSICTUNE = Case((), ())  # for calls outside the table
T = ("train", "--data-dir", "{data}", "--epochs", "1")
TM = ("train", "--data-dir", "{data}", "--epochs", "1", "--task", "multitask")
S = ("sweep", "lstm_spectrogram", "--data-dir", "{data}", "--storage", "{tmp}/results")
X = ("extract",)
R = ("--storage", "{tmp}/results")

BAD_INPUT = {
    # ---- train: paths and data
    "train-empty-data-dir": Case(
        ("train", "--data-dir", "{tmp}/empty"), ("is empty", "demo-data"), "empty_dir"
    ),
    "train-data-dir-is-a-file": Case(
        ("train", "--data-dir", "{tmp}/a_file"), ("not a folder", "--data-dir"), "a_file"
    ),
    "train-no-genre-folder": Case(T, (GENRE_DIR, "not found", "--data-dir"), "no_genre_folder"),
    "train-missing-labels": Case(T, ("train_labels.txt", "not found"), "no_labels"),
    "train-empty-labels": Case(T, ("is empty", "header"), "empty_labels"),
    "train-zero-clips": Case(T, ("lists no clips",), "header_only"),
    "train-malformed-header": Case(T, ("header", "fix the header"), "csv_header"),
    "train-short-row": Case(T, ("line 22", "tab-separated"), "short_row"),
    "train-binary-labels": Case(T, ("train_labels.txt", "not a text"), "binary_labels"),
    "train-unknown-genre": Case(T, ("'Polka'", "class mapping"), "unknown_genre"),
    "train-one-class": Case(T, ("fewer than 2 classes",), "one_class"),
    "train-test-split-all-dropped": Case(T, ("test_labels.txt", "no clip"), "dropped_test_genres"),
    "train-missing-array": Case(T, ("is missing", "remove the row"), "missing_array"),
    "train-truncated-array": Case(T, ("not a readable .npy",), "truncated_array"),
    "train-wrong-shape-array": Case(T, ("(12, 40)", "(140, T)"), "wrong_shape"),
    "train-nan-array": Case(T, ("non-finite",), "nan_array"),
    "train-pickled-array": Case(T, ("not a readable .npy",), "pickled_array"),
    "train-target-not-a-number": Case(TM, ("not a number",), "target_text"),
    "train-target-out-of-range": Case(TM, ("[0, 1]",), "target_range"),
    "train-malformed-manifest": Case(T, (layout.MANIFEST, "JSON"), "bad_manifest"),
    "train-manifest-mapping-not-an-object": Case(T, ("class_mapping",), "manifest_list"),
    # ---- train: options
    "train-unknown-features": Case((*T, "--features", "spectro"), ("invalid choice", "'spectro'")),
    "train-unknown-target": Case(
        (*T, "--task", "regression", "--target", "tempo"), ("invalid choice", "'tempo'")
    ),
    "train-negative-lr": Case((*T, "--lr", "-1"), ("--lr", "> 0")),
    "train-dropout-above-1": Case((*T, "--dropout", "1.5"), ("--dropout", "[0, 1)")),
    "train-zero-batch": Case((*T, "--batch-size", "0"), ("--batch-size",)),
    "train-negative-weight-decay": Case((*T, "--weight-decay", "-1"), ("weight_decay",)),
    "train-abbreviated-option": Case((*T, "--epoch", "3"), ("unrecognized arguments: --epoch",)),
    "train-epochs-not-a-number": Case(("train", "--epochs", "many"), ("--epochs", "'many'")),
    "train-unknown-device": Case((*T, "--device", "tpu9"), ("--device", "tpu9")),
    "train-too-many-conv-blocks": Case((*T, "--model", "cnn", "--conv-blocks", "9"), ("cnn",)),
    # ---- train: checkpoints and outputs
    "train-resume-missing": Case((*T, "--resume", "{tmp}/nope.pt"), ("nope.pt", "not found")),
    "train-resume-garbage": Case(
        (*T, "--resume", "{tmp}/garbage.pt"), ("cannot be read",), "garbage_checkpoint"
    ),
    "train-resume-not-a-checkpoint": Case(
        (*T, "--resume", "{tmp}/other.pt"), ("not a musictune checkpoint",), "not_a_checkpoint"
    ),
    "train-resume-other-model": Case(
        (*T, "--resume", "{tmp}/chroma.pt"), ("does not fit", "--features"), "chroma_checkpoint"
    ),
    "train-unwritable-checkpoint-dir": Case(
        (*T, "--checkpoint-dir", "/proc/musictune-ckpt"), ("/proc/musictune-ckpt", "writable")
    ),
    # ---- sweep (through the same reader, before Ray starts)
    "sweep-wrong-shape-array": Case(S, ("(12, 40)", "(140, T)"), "wrong_shape"),
    "sweep-unknown-genre": Case(S, ("'Polka'",), "unknown_genre"),
    "sweep-zero-max-epochs": Case((*S, "--max-epochs", "0"), ("--max-epochs",)),
    "sweep-zero-grace-period": Case((*S, "--grace-period", "0"), ("--grace-period",)),
    "sweep-reduction-factor-one": Case((*S, "--reduction-factor", "1"), ("--reduction-factor",)),
    "sweep-inverted-dropout": Case(
        (*S, "--dropout-min", "0.9", "--dropout-max", "0.1"), ("--dropout-min",)
    ),
    "sweep-negative-samples": Case((*S, "--samples", "-3"), ("--samples",)),
    "sweep-negative-max-failures": Case((*S, "--max-failures", "-1"), ("--max-failures",)),
    "sweep-zero-cpus": Case((*S, "--cpus-per-trial", "0"), ("--cpus-per-trial",)),
    "sweep-fractional-gpus-above-1": Case((*S, "--gpus-per-trial", "1.5"), ("whole number",)),
    "sweep-zero-max-concurrent": Case((*S, "--max-concurrent", "0"), ("--max-concurrent",)),
    "sweep-zero-checkpoint-every": Case((*S, "--checkpoint-every", "0"), ("--checkpoint-every",)),
    "sweep-unknown-search": Case((*S, "--search", "grid"), ("invalid choice", "'grid'")),
    "sweep-samples-not-a-number": Case((*S, "--samples", "ten"), ("--samples", "'ten'")),
    "sweep-resume-nothing": Case((*S, "--resume"), ("no experiment of preset", "without --resume")),
    "sweep-mlflow-store-on-object-storage": Case(
        ("sweep", "lstm_spectrogram", "--storage", "s3://bucket/results", "--mlflow"),
        ("--mlflow URI", "not a local folder"),
    ),
    "sweep-storage-is-a-file": Case(
        ("sweep", "lstm_spectrogram", "--storage", "{tmp}/a_file"), ("not writable",), "a_file"
    ),
    # ---- preset scripts: real processes
    "preset-corrupt-array": Case(
        ("sweeps/cnn_spectrogram.py", "--data-dir", "{data}", "--storage", "{tmp}/results"),
        ("python sweeps/cnn_spectrogram.py: error:", "not a readable .npy"),
        "truncated_array",
        "process",
    ),
    # ---- demo-data
    "demo-unknown-size": Case(("demo-data", "--size", "huge"), ("invalid choice", "'huge'")),
    "demo-negative-seed": Case(("demo-data", "--out", "{tmp}/d", "--seed", "-1"), ("seed",)),
    "demo-existing-out": Case(
        ("demo-data", "--out", "{tmp}/out"), ("already exists", "--out"), "existing_out"
    ),
    "demo-unwritable-out": Case(("demo-data", "--out", "/proc/musictune-demo"), ("/proc", "--out")),
    # ---- extract
    "extract-missing-audio-root": Case((*X, "{tmp}/nowhere", "{tmp}/x"), ("nowhere",)),
    "extract-empty-audio-root": Case((*X, "{tmp}/empty", "{tmp}/x"), ("empty",), "extract_input"),
    "extract-csv-without-path-column": Case(
        (*X, "{tmp}/audio", "{tmp}/x", "--csv", "{tmp}/labels.csv"), ("path",), "extract_input"
    ),
    "extract-malformed-mapping": Case(
        (*X, "{tmp}/audio", "{tmp}/x", "--mapping", "{tmp}/map.json"), ("JSON",), "extract_input"
    ),
    "extract-test-fraction-above-1": Case(
        (*X, "{tmp}/audio", "{tmp}/x", "--test-fraction", "1.5"),
        ("--test-fraction",),
        "extract_input",
    ),
    "extract-negative-duration": Case(
        (*X, "{tmp}/audio", "{tmp}/x", "--duration", "-2"), ("--duration",), "extract_input"
    ),
    "extract-unwritable-out": Case(
        (*X, "{tmp}/audio", "/proc/musictune-extract"),
        ("/proc/musictune-extract",),
        "extract_input",
    ),
    "extract-unknown-option": Case(
        (*X, "{tmp}/audio", "{tmp}/x", "--colour", "red"), ("unrecognized arguments",)
    ),
    # ---- analysis/report.py
    "report-missing-storage": Case(("--storage", "{tmp}/nowhere"), ("nowhere",), runner="report"),
    "report-no-experiments": Case(
        ("--storage", "{tmp}/no-sweeps"), ("no-sweeps",), "report_input", "report"
    ),
    "report-unknown-sweep": Case(
        (*R, "--sweep", "never-ran"), ("never-ran",), "report_input", "report"
    ),
    "report-corrupt-sweep-json": Case(R, (SWEEP_FILE, "broken"), "report_input", "report"),
    "report-zero-seeds": Case((*R, "--seeds", "0"), ("--seeds",), runner="report"),
    "report-unknown-option": Case(("--colour",), ("unrecognized arguments",), runner="report"),
    "report-subcommand-unknown-sweep": Case(
        ("report", *R, "--sweep", "never-ran"),
        ("musictune report: error:", "never-ran"),
        "report_input",
    ),
    "report-process-unknown-sweep": Case(
        ("analysis/report.py", *R, "--sweep", "never-ran"),
        ("never-ran",),
        "report_input",
        "process",
    ),
}


def call(case: Case, argv: list[str]) -> tuple[int, str]:
    """Exit status and stderr of one command."""
    if case.runner == "process":
        proc = subprocess.run(
            [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        return proc.returncode, proc.stderr
    entry = report_cli().main if case.runner == "report" else musictune_main
    err = StringIO()
    with redirect_stderr(err), redirect_stdout(StringIO()):
        try:
            code = entry(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
    return code, err.getvalue()


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_input_gets_one_line_naming_the_problem_and_exit_2(name, pristine, tmp_path):
    case = BAD_INPUT[name]
    data = tmp_path / "data"
    shutil.copytree(pristine, data)
    if case.breakage:
        BREAK[case.breakage](data, tmp_path)
    argv = [a.replace("{data}", str(data)).replace("{tmp}", str(tmp_path)) for a in case.argv]
    code, err = call(case, argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    for needle in case.needles:
        assert needle in lines[0], lines[0]


def test_the_unbroken_layout_trains(pristine, tmp_path):
    """The control for the table: every case fails because of its own breakage."""
    data = tmp_path / "data"
    shutil.copytree(pristine, data)
    for task in ("genre", "multitask"):
        code, err = call(
            MUSICTUNE, ["train", "--data-dir", str(data), "--epochs", "1", "--task", task]
        )
        assert code == 0, err


# --------------------------------------------------------------------------- 6. half-written


@pytest.mark.slow
def test_killed_demo_generation_leaves_nothing_a_later_command_trusts(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    logs = tmp_path / "logs"
    argv = ["-m", "musictune", "demo-data", "--out", str(out), "--size", "tiny"]
    # Also where the musictune cache cannot be made (/proc takes no folders, even from root):
    # that only turns off librosa's filter cache, which lives there; arrays are still written.
    no_cache = {"MUSICTUNE_CACHE": "/proc/musictune-cache", "LIBROSA_CACHE_DIR": None}
    with driver(argv, logs, no_cache if sys.platform == "linux" else {}) as proc:
        wait_for(lambda: next(tmp_path.glob(".tmp-demo-*/*/*/*.npy"), None), proc, logs, 120)
        kill_session(proc.pid)
    assert not out.exists()  # only the temporary sibling, which no command reads
    code, err = call(MUSICTUNE, ["train", "--data-dir", str(out), "--epochs", "1"])
    assert code == 2 and "does not exist" in err
    # The next generation removes the dead one's leftovers, though it is stopped itself.
    (stale,) = tmp_path.glob(".tmp-demo-*")
    monkeypatch.setattr(features, "extract_features", stop_at_once)
    with pytest.raises(KeyboardInterrupt):
        generate_demo(out, "tiny", jobs=1, progress=False)
    assert not stale.exists() and not list(tmp_path.glob(".tmp-*"))


def stop_at_once(*args, **kwargs):
    raise KeyboardInterrupt


class Interrupt:
    """Serialising this raises KeyboardInterrupt: a Ctrl-C in the middle of a write."""

    def __reduce__(self):
        raise KeyboardInterrupt

    def __str__(self):
        raise KeyboardInterrupt


def checkpoint_writer(path: Path, good: bool) -> None:
    model = create_model("lstm", 12, head="classifier", n_outputs=3)
    save_checkpoint(path, model, None, TrainState(epoch=7), {} if good else {"x": Interrupt()})


def cache_writer(path: Path, good: bool) -> None:
    arrays = {"x": np.ones((64, 1000), np.float32)}
    _save_npz_atomic(path, arrays if good else {**arrays, "bad": np.array([Interrupt()])})


WRITERS = {
    "checkpoint": (checkpoint_writer, lambda p: load_checkpoint(p)["state"]["epoch"] == 7),
    "split cache": (
        cache_writer,
        lambda p: np.load(p, allow_pickle=False)["x"].shape == (64, 1000),
    ),
    "data array": (
        lambda p, good: layout.save_array_atomic(
            p, np.ones((140, 5)) if good else np.array([Interrupt()], dtype=object)
        ),
        lambda p: np.load(p, allow_pickle=False).shape == (140, 5),
    ),
    "sweep.json": (
        lambda p, good: write_json_atomic(p, {"status": "finished" if good else Interrupt()}),
        lambda p: json.loads(p.read_text()) == {"status": "finished"},
    ),
    "trials.csv": (
        lambda p, good: write_experiment_file(
            p.parent,
            p.name,
            pd.DataFrame({"a": [1, 2 if good else Interrupt()]}).to_csv(index=False),
        ),
        lambda p: pd.read_csv(p)["a"].tolist() == [1, 2],
    ),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_write_interrupted_midway_keeps_the_old_file_and_leaves_no_temp(kind, tmp_path):
    write, check = WRITERS[kind]
    path = tmp_path / f"target-{kind.replace(' ', '-')}"
    write(path, True)
    with pytest.raises((KeyboardInterrupt, ValueError)):  # numpy refuses objects up front
        write(path, False)
    assert check(path)  # the previous version, whole
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_a_damaged_split_cache_is_rebuilt_not_trusted(fake_root):
    directory = fake_root / GENRE_DIR
    fresh = read_split(directory, "genre", "train")
    cache = _cache_path(directory, "train")
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])  # as a crash could leave
    again = read_split(directory, "genre", "train")
    assert np.array_equal(again["frames"], fresh["frames"])
    assert list(again["ids"]) == list(fresh["ids"])
    np.load(cache, allow_pickle=False)["frames"]  # rewritten whole


# --------------------------------------------------------------------------- 7. safe loading


class Payload:
    """Unpickling this creates a file: what a malicious checkpoint or array could do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_carrying_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    model = create_model("lstm", 128, head="classifier", n_outputs=10)
    torch.save({"model": model.state_dict(), "state": {}, "extra": Payload(marker)}, evil)
    with pytest.raises(UserError, match="cannot be read"):
        load_checkpoint(evil)
    code, err = call(MUSICTUNE, ["train", "--resume", str(evil), "--epochs", "1"])
    assert code == 2 and "cannot be read" in err
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the control: an unsafe load does run it
    assert marker.exists()


def test_a_data_array_carrying_code_is_refused_and_never_run(fake_root, tmp_path):
    marker = tmp_path / "pwned"
    array = first_array(fake_root)
    np.save(array, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match=array.name):
        load_dataset(fake_root)
    assert not marker.exists()
    np.load(array, allow_pickle=True)  # the control
    assert marker.exists()


def test_a_split_cache_carrying_code_is_rebuilt_and_never_run(fake_root, tmp_path):
    marker = tmp_path / "pwned"
    directory = fake_root / GENRE_DIR
    fresh = read_split(directory, "genre", "train")
    cache = _cache_path(directory, "train")
    np.savez(cache, x=np.array([Payload(marker)], dtype=object))
    again = read_split(directory, "genre", "train")
    assert np.array_equal(again["frames"], fresh["frames"])
    assert not marker.exists()
