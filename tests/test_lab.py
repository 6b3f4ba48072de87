"""`musictune lab`: the course lab's plan as named sweeps, then one report."""

from __future__ import annotations

import json
import re

import pytest

from musictune.lab import BUDGETS, lab_plan


def test_the_plan_runs_the_course_models_with_the_course_settings():
    steps = {s.name: s for s in lab_plan()}
    assert len(steps) == len(lab_plan())  # one experiment per name
    for step in steps.values():
        argv = " ".join(step.argv)
        assert "--select-by loss" in argv and "batch_size=64" in argv
        if step.preset != "transfer_energy":
            assert "--model course_" in argv
    assert "lr=0.0001" in " ".join(steps["lab-genre-cnn-mel-beat"].argv)
    # The transfer's source runs before it, in the same storage folder.
    names = [s.name for s in lab_plan()]
    assert names.index("lab-genre-cnn-mel-beat") < names.index("lab-transfer-finetuned")
    assert BUDGETS["full"].rerun_max_epochs == 1000 and BUDGETS["full"].max_epochs == 50


@pytest.mark.slow
def test_lab_smoke_runs_every_experiment_and_writes_one_report(ray_local, demo_tiny, tmp_path):
    from musictune.cli import main

    results, reports = tmp_path / "results", tmp_path / "reports"
    argv = ["lab", "--budget", "smoke", "--data-dir", str(demo_tiny), "--storage", str(results)]
    assert main([*argv, "--out", str(reports)]) == 0
    for step in lab_plan():
        meta = json.loads((results / step.name / "sweep.json").read_text())
        assert meta["status"] == "finished" and meta["select_by"] == "loss"
    (report,) = reports.iterdir()
    page = (report / "index.md").read_text()
    assert all(step.name in page for step in lab_plan())
    # Every published course figure stands beside its measured one, labelled as demo data.
    from musictune.reporting.reference import REFERENCES

    figures = page.split("## Course reference figures", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in figures.splitlines() if r.startswith("| ") and "lab-" in r]
    assert len(rows) == len(REFERENCES)
    assert all("demo data (synthetic)" in r for r in rows)
    measured = [r.split(" | ")[6] for r in rows]  # the "measured here" column
    assert all(re.match(r"-?\d+\.\d+", m.strip()) for m in measured), measured  # a number
    # Run again: every experiment is kept, none trained again (the report is not rebuilt here:
    # that would repeat the part above).
    from musictune.lab import LabOptions, run_steps

    before = {p: p.stat().st_mtime for p in results.glob("*/sweep.json")}
    again = LabOptions(budget="smoke", data_dir=str(demo_tiny), storage=str(results))
    assert run_steps(again) == []
    assert before == {p: p.stat().st_mtime for p in results.glob("*/sweep.json")}
    # A cut experiment is resumed: a step whose sweep.json says "interrupted" runs again.
    meta_file = results / "lab-multitask" / "sweep.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps(meta | {"status": "interrupted"}))
    assert run_steps(again) == ["lab-multitask"]
    assert json.loads(meta_file.read_text())["status"] == "finished"


def test_lab_passes_resources_and_cluster_options_to_every_sweep():
    from musictune.cli import build_parser, sweep_options_from_args
    from musictune.lab import LabOptions, step_argv

    options = LabOptions(
        budget="smoke", gpus_per_trial=0.25, max_concurrent=3, address="127.0.0.1:6379", amp=True,
        cpus_per_trial=2, crop=3, folds=4,
    )  # fmt: skip
    for step in lab_plan():
        argv = step_argv(step, options, BUDGETS["smoke"], "/tmp/results", "/tmp/data")
        sweep = sweep_options_from_args(build_parser().parse_args(["sweep", *argv]))
        assert (sweep.gpus_per_trial, sweep.cpus_per_trial, sweep.max_concurrent) == (0.25, 2, 3)
        assert sweep.address == "127.0.0.1:6379" and sweep.amp
        assert (sweep.crop, sweep.folds) == (3, 4)
