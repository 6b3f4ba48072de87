"""The command line as a user meets it: real subprocesses, exit codes and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from musictune.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("model", ["lstm", "cnn"])
def test_train_prints_progress_and_macro_f1(model, demo_tiny):
    proc = run(
        "-m",
        "musictune.cli",
        "train",
        "--model",
        model,
        "--features",
        "mel",
        "--epochs",
        "2",
        "--data-dir",
        str(demo_tiny),
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch   2" in proc.stdout
    assert "val_macro_f1" in proc.stdout and "test_macro_f1" in proc.stdout


@pytest.mark.parametrize(
    "extra", [["--beat"], ["--features", "chroma"], ["--features", "fused", "--beat"]]
)
def test_train_feature_views(extra, demo_tiny, capsys):
    assert main(["train", "--epochs", "1", "--data-dir", str(demo_tiny), *extra]) == 0
    assert "final val_loss" in capsys.readouterr().out


def test_train_overfit_mode(fake_root):
    proc = run(
        "-m",
        "musictune.cli",
        "train",
        "--data-dir",
        str(fake_root),
        "--overfit",
        "2",
        "--epochs",
        "30",
        "--lr",
        "0.01",
        "--batch-size",
        "8",
        "--dropout",
        "0",
    )
    assert proc.returncode == 0, proc.stderr
    last = [line for line in proc.stdout.splitlines() if line.startswith("epoch")][-1]
    assert float(last.split("train_loss")[1].split()[0]) < 0.05


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["train", "--data-dir", "/nonexistent/data"], ["does not exist", "--data-dir"]),
        (["train", "--model", "transformer"], ["unknown model", "cnn, lstm"]),
        (["train", "--epochs", "0"], ["--epochs"]),
        (["train", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["train", "--task", "regression"], ["--target"]),
        (["sweep", "nope"], ["unknown preset", "lstm_spectrogram"]),
        (["sweep", "lstm_spectrogram", "--samples", "0"], ["--samples"]),
        (["sweep", "lstm_spectrogram", "--lr-min", "-1"], ["--lr-min"]),
        (["sweep", "lstm_spectrogram", "--lr-min", "0.1", "--lr-max", "0.01"], ["below"]),
        (
            ["sweep", "lstm_spectrogram", "--grace-period", "9", "--max-epochs", "3"],
            ["--grace-period"],
        ),
        (["sweep", "lstm_spectrogram", "--unknown-option"], ["unrecognized arguments"]),
        (["sweep", "lstm_spectrogram", "--storage", "/proc/musictune"], ["not writable"]),
        (
            ["sweep", "lstm_spectrogram", "--resume", "--name", "never-ran", "--storage", "{tmp}"],
            ["no experiment", "never-ran"],
        ),
        (
            [
                "sweep",
                "lstm_spectrogram",
                "--smoke-test",
                "--gpus-per-trial",
                "4",
                "--storage",
                "{tmp}",
            ],
            ["--gpus-per-trial", "GPU"],
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needles, tmp_path, demo_tiny, capsys):
    """In-process through the same `main` as the console script (subprocesses cost seconds)."""
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(main(argv))
    err = capsys.readouterr().err
    assert_one_line_error(
        subprocess.CompletedProcess(argv, exit_info.value.code, "", err), *needles
    )


def test_preset_script_rejects_unknown_option_without_traceback():
    proc = run("sweeps/lstm_spectrogram.py", "--sample", "3")
    assert_one_line_error(proc, "--sample")


def test_existing_experiment_is_not_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("precious")
    proc = run(
        "-m",
        "musictune.cli",
        "sweep",
        "lstm_spectrogram",
        "--storage",
        str(tmp_path),
        "--name",
        "mine",
        "--smoke-test",
    )
    assert_one_line_error(proc, "already exists", "--resume")
    assert (tmp_path / "mine" / "keep.txt").read_text() == "precious"
