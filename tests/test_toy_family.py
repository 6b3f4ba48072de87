"""A new model family is one file: tests/toy_family.py registers "toy", and a sweep (search
space and summary columns from its knobs), `musictune train` (its flag) and a report (reruns
and the untuned default) all work with it, with no other module changed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from musictune.tuning.runner import run_sweep
from musictune.tuning.storage import SWEEP_FILE, TRIALS_FILE

from .conftest import new_report, sweep_options


@pytest.fixture(scope="module")
def toy():
    from musictune.models import get_family

    from . import toy_family  # noqa: F401 - registering is importing

    return get_family("toy")


def test_the_registry_refuses_a_second_family_of_the_same_name(toy):
    from musictune.models import register_model

    with pytest.raises(ValueError, match="already registered"):

        @register_model()
        def toy(n_features: int):  # noqa: F811 - the clash is the point
            raise AssertionError("never built")


@pytest.mark.slow
def test_a_toy_family_sweeps_trains_and_reports(toy, ray_local, fake_root, tmp_path, capsys):
    from musictune.commands.cli import main

    results = tmp_path / "results"
    options = sweep_options(
        "lstm_spectrogram", "--model", "toy", "--data-dir", str(fake_root),
        "--samples", "2", "--max-epochs", "1", "--scheduler", "fifo",
        "--storage", str(results), "--name", "toy-sweep", "--no-baseline-train",
    )  # fmt: skip
    run_sweep(options)
    summary = capsys.readouterr().out
    meta = json.loads((results / "toy-sweep" / SWEEP_FILE).read_text())
    table = pd.read_csv(results / "toy-sweep" / TRIALS_FILE)
    assert meta["model"] == "toy" and meta["status"] == "finished"
    assert (table["status"] == "TERMINATED").all()
    assert set(table["width"]) <= {4, 8}  # the family's own sweep choices
    assert "width" in summary.split("top 5 of 2 trials")[1].splitlines()[1]  # its column

    assert main(["train", "--model", "toy", "--toy-width", "4", "--epochs", "1",
                 "--data-dir", str(fake_root)]) == 0  # fmt: skip
    assert "test_accuracy" in capsys.readouterr().out.splitlines()[-1]

    report = new_report(
        "--storage", str(results), "--out", str(tmp_path / "reports"),
        "--seeds", "1", "--rerun-max-epochs", "1",
    )  # fmt: skip
    page = (report / "index.md").read_text()
    assert "toy-sweep" in page and "| toy " in page
    assert "width 8" in page  # the untuned default: the builder's own defaults
