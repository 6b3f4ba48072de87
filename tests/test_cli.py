"""The command line as a user meets it: real subprocesses, exit codes and one-line errors."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from musictune.commands.cli import build_parser, main
from musictune.data.dataset import load_task
from musictune.training.checkpoints import load_checkpoint, model_from_checkpoint
from musictune.training.scoring import evaluate

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
        "musictune",
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


def train_in_process(argv: list[str], capsys) -> tuple[dict, str]:
    """`musictune train ARGV` through the CLI's own parser and handler: its result and output."""
    args = build_parser().parse_args(["train", *argv])
    result = args.handler(args)
    return result, capsys.readouterr().out


def printed_test_metrics(out: str) -> dict[str, float]:
    line = next(x for x in out.splitlines() if x.startswith("final test_"))
    words = line.split("(")[0].split()[1:]
    return {k.removeprefix("test_"): float(v) for k, v in zip(words[::2], words[1::2])}


def test_train_tests_the_best_epoch_not_the_last(demo_tiny, tmp_path, capsys):
    """`musictune train` tests the best epoch's weights (kept in memory, no --checkpoint-dir
    needed) on a run whose last epoch is worse, and says which epoch it tested.

    A real configuration, not a faked history: a beat-synced mel LSTM at lr 0.01 with patience
    5 peaks early and declines. On the tiny demo set (v2) its validation macro F1 peaks at epoch
    2 of 7 (0.19, last 0.15); the best weights score test accuracy 0.30, the last ones 0.20.
    The reference is independent of the in-memory copy: best.pt and last.pt written by a second,
    identical run with --checkpoint-dir. Resuming that finished run from last.pt (no epochs
    left) tests best.pt from beside it.
    """
    data_args = ["--model", "lstm", "--features", "mel", "--beat", "--data-dir", str(demo_tiny)]
    argv = [*data_args, "--hidden", "32", "--lr", "0.01", "--patience", "5", "--batch-size", "16"]
    result, out = train_in_process([*argv, "--epochs", "30"], capsys)
    best, epochs = result["best_epoch"], result["epochs"]
    assert best < epochs, "the run should stop early after its best epoch; pick another config"
    assert result["tested_epoch"] == best
    assert f"tested the best epoch ({best} of {epochs}; weights kept in memory)" in out

    ckpt = tmp_path / "ckpt"
    again, _ = train_in_process([*argv, "--epochs", "30", "--checkpoint-dir", str(ckpt)], capsys)
    assert again["test"] == result["test"]
    data = load_task("genre", demo_tiny, "mel", beat=True)
    best_ckpt, last_ckpt = load_checkpoint(ckpt / "best.pt"), load_checkpoint(ckpt / "last.pt")
    assert best_ckpt["state"]["epoch"] == best and last_ckpt["state"]["epoch"] == epochs
    history = last_ckpt["state"]["history"]
    assert history[-1]["val_macro_f1"] < history[best - 1]["val_macro_f1"]  # the last is worse

    of_best = evaluate(model_from_checkpoint(best_ckpt), data.test)
    of_last = evaluate(model_from_checkpoint(last_ckpt), data.test)
    assert result["test"] == pytest.approx(of_best, abs=1e-6)
    assert printed_test_metrics(out) == pytest.approx(of_best, abs=6e-5)  # printed to 4 places
    assert max(abs(of_best[k] - of_last[k]) for k in of_best) > 1e-3, "same as the last epoch"
    assert printed_test_metrics(out) != pytest.approx(of_last, abs=6e-5)

    resumed, out = train_in_process(
        [*argv, "--epochs", str(epochs), "--resume", str(ckpt / "last.pt")], capsys
    )
    assert f"tested the best epoch ({best} of {epochs}; weights from {ckpt / 'best.pt'})" in out
    assert resumed["test"] == pytest.approx(of_best, abs=1e-6)


@pytest.mark.parametrize(
    "extra", [["--beat"], ["--features", "chroma"], ["--features", "fused", "--beat"]]
)
def test_train_feature_views(extra, demo_tiny, capsys):
    assert main(["train", "--epochs", "1", "--data-dir", str(demo_tiny), *extra]) == 0
    assert "final val_loss" in capsys.readouterr().out


def test_train_overfit_mode(fake_root):
    proc = run(
        "-m",
        "musictune",
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
        (
            ["train", "--model", "transformer"],
            ["unknown model", "cnn, course_cnn, course_lstm, lstm"],
        ),
        (["train", "--epochs", "0"], ["--epochs"]),
        (["train", "--bogus"], ["musictune train: error: unrecognized arguments: --bogus"]),
        (["train", "--task", "regression"], ["--target"]),
        (["sweep", "nope"], ["unknown preset", "lstm_spectrogram"]),
        (["sweep", "lstm_spectrogram", "--samples", "0"], ["--samples"]),
        (["sweep", "lstm_spectrogram", "--lr-min", "-1"], ["--lr-min"]),
        (["sweep", "lstm_spectrogram", "--lr-min", "0.1", "--lr-max", "0.01"], ["below"]),
        (
            ["sweep", "lstm_spectrogram", "--grace-period", "9", "--max-epochs", "3"],
            ["--grace-period"],
        ),
        (
            ["sweep", "lstm_spectrogram", "--unknown-option"],
            ["musictune sweep: error: unrecognized arguments", "see musictune sweep --help"],
        ),
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
        (
            ["sweep", "lstm_spectrogram", "--set", "hidden=128", "--storage", "{tmp}"],
            ["unknown key 'hidden'", "hidden_size", "num_layers"],
        ),
        (
            ["sweep", "lstm_spectrogram", "--space", "{tmp}/space.yaml", "--storage", "{tmp}"],
            ["--space", "lr: {'normal': [0, 1]} is not a distribution", "loguniform"],
        ),
        (
            ["sweep", "cnn_regression", "--beat", "--full", "--storage", "{tmp}"],
            ["--beat and --full"],
        ),
        (
            ["sweep", "cnn_spectrogram", "--smoke-test", "--folds", "1", "--storage", "{tmp}"],
            ["--folds 1", "--folds 2 or more"],
        ),
        (
            ["sweep", "cnn_spectrogram", "--smoke-test", "--folds", "9", "--storage", "{tmp}"],
            ["--folds 9", "rarest class", "or fewer"],
        ),
        (
            ["sweep", "cnn_spectrogram", "--smoke-test", "--crop", "30", "--storage", "{tmp}"],
            ["--crop 30 s", "longer than every training clip", "choose at most"],
        ),
        (
            ["sweep", "cnn_spectrogram", "--smoke-test", "--set", "crop=30", "--storage", "{tmp}"],
            ["--crop 30 s", "longer than every training clip"],
        ),
        (["train", "--data-dir", "{tiny}", "--crop", "30"], ["--crop 30 s", "at most"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needles, tmp_path, demo_tiny, capsys):
    """In-process through the same `main` as the console script (subprocesses cost seconds)."""
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{tiny}", str(demo_tiny)) for a in argv]
    (tmp_path / "space.yaml").write_text("lr: {normal: [0, 1]}\n")
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(main(argv))
    err = capsys.readouterr().err
    assert_one_line_error(
        subprocess.CompletedProcess(argv, exit_info.value.code, "", err), *needles
    )


def test_preset_script_rejects_unknown_option_without_traceback():
    proc = run("sweeps/lstm_spectrogram.py", "--sample", "3")
    assert_one_line_error(proc, "python sweeps/lstm_spectrogram.py: error:", "--sample", "--help)")


def test_preset_script_help_names_the_script_and_takes_no_preset():
    proc = run("sweeps/cnn_regression.py", "--help")
    assert proc.returncode == 0, proc.stderr
    usage = proc.stdout.split("\n\n")[0]
    assert usage.startswith("usage: python sweeps/cnn_regression.py [-h]")
    assert "preset" not in usage and "--target" in usage


def test_existing_experiment_is_not_overwritten(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("precious")
    proc = run(
        "-m",
        "musictune",
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


def test_every_package_of_the_library_is_installed():
    """A plain `pip install` (not editable) copies only the packages pyproject.toml lists: a
    folder of src/musictune left out would break `musictune` outside a checkout."""
    import re

    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^packages = \[(.*?)\]", text, re.M | re.S)[1]
    listed = set(re.findall(r'"([\w.]+)"', block))
    src = ROOT / "src"
    inits = src.glob("musictune/**/__init__.py")
    found = {".".join(init.parent.relative_to(src).parts) for init in inits}
    assert found and found | {"trainables"} == listed


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser a user meets: `musictune`, each subcommand, each sweeps/ preset script."""
    from musictune.commands.cli import preset_parser, subcommands
    from musictune.tuning.presets import PRESETS

    top = build_parser()
    found = {"musictune": top, **{f"musictune {n}": p for n, p in subcommands(top).items()}}
    return found | {f"sweeps/{name}.py": preset_parser(name) for name in PRESETS}


def test_help_shows_every_default():
    """Every option whose default is a value says it in --help (parse only, no run)."""
    from musictune.options import shown_default

    checked = 0
    for name, parser in parsers().items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            default = action.default
            if default is None or default is False or default is argparse.SUPPRESS:
                continue
            if default == []:  # none given, as None: the help says what happens without it
                assert "(default: )" not in formatter._expand_help(action), action.dest
                continue
            if action.nargs == 0 or isinstance(action, argparse._SubParsersAction):
                continue  # a switch (its default is off), or the subcommand choice
            text, shown = formatter._expand_help(action), shown_default(default)
            said = len(re.findall(rf"\bdefault:? {re.escape(shown)}(?![\w.])", text))
            assert said == 1, (name, action.dest, text)  # said once: not missing, not twice
            checked += 1
    assert checked > 100  # sweep alone has ~30; the preset scripts repeat them
    page = " ".join(parsers()["musictune sweep"].format_help().split())
    assert "--samples SAMPLES trials (default 20; smoke test 4)" in page  # said once, not twice
    assert "--reduction-factor REDUCTION_FACTOR ASHA: about 1 in N trials" in page
    assert "goes on at each rung (default: 3)" in page
    assert "lowest learning rate (default: 3.98107e-05)" in page  # short, not 17 digits


def test_long_commands_group_their_options_by_topic():
    from dataclasses import fields

    from musictune.commands.lab import LabOptions
    from musictune.commands.train import TrainOptions
    from musictune.tuning.options import SweepOptions

    for cls, skip in ((SweepOptions, {"preset"}), (LabOptions, set()), (TrainOptions, set())):
        grouped = [n for names in cls.OPTION_GROUPS.values() for n in names]
        options = {f.name for f in fields(cls) if "cli" in f.metadata} - skip
        assert sorted(grouped) == sorted(options), cls  # each option in exactly one group
    sweep = parsers()["musictune sweep"].format_help()
    assert "resources and cluster:\n  --cpus-per-trial" in sweep
    assert "data and results:\n  --data-dir" in sweep
    assert "the plan:\n  --budget" in parsers()["musictune lab"].format_help()
    assert "model knobs (from the model registry):" in parsers()["musictune train"].format_help()


def test_version_is_the_installed_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"musictune {version('musictune')}\n"


def test_each_sweep_script_shows_its_command_and_what_it_overrides():
    """sweeps/<preset>.py is `musictune sweep <preset>` under its own name; its docstring says
    so and names what the preset fixes (kept in step with tuning/presets.py)."""
    import ast

    from musictune.tuning.presets import PRESETS

    scripts = {p.stem for p in (ROOT / "sweeps").glob("*.py")}
    assert scripts == {*PRESETS, "lab"}
    for name, preset in PRESETS.items():
        code = (ROOT / "sweeps" / f"{name}.py").read_text()
        doc = " ".join(ast.get_docstring(ast.parse(code)).split())
        assert f"python sweeps/{name}.py" in doc and f"= `musictune sweep {name}`" in doc, name
        assert f"overrides only the preset: {preset.summary}." in doc, name
        assert f'sweep_main("{name}")' in code, name
    assert 'main(["lab", *sys.argv[1:]])' in (ROOT / "sweeps" / "lab.py").read_text()
