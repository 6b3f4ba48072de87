"""`musictune lab`: the course lab's plan as named sweeps, then one report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from musictune.commands.lab import BUDGETS, RECIPES, LabOptions, lab_plan, step_options
from musictune.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def sweep_options(step, recipe: str, budget: str = "full"):
    options = LabOptions(budget=budget, recipe=recipe)
    return step_options(step, options, BUDGETS[budget], "/tmp/results", "/tmp/data")


def test_the_plan_runs_the_course_models_with_the_course_settings():
    steps = {s.name: s for s in lab_plan()}
    assert len(steps) == len(lab_plan())  # one experiment per name
    for step in steps.values():
        sweep = sweep_options(step, "course")
        assert sweep.select_by == "loss" and "batch_size=64" in sweep.sets
        assert (sweep.preset, sweep.name, sweep.baseline_train) == (step.preset, step.name, False)
        if step.preset != "transfer_energy":
            assert sweep.model.startswith("course_")
    assert "lr=0.0001" in steps["lab-genre-cnn-mel-beat"].settings["sets"]
    # The transfer's source runs before it, in the same storage folder.
    names = [s.name for s in lab_plan()]
    assert names.index("lab-genre-cnn-mel-beat") < names.index("lab-transfer-finetuned")
    assert BUDGETS["full"].rerun_max_epochs == 1000 and BUDGETS["full"].max_epochs == 50


def test_the_tuned_recipe_searches_every_experiment_on_the_course_splits():
    course = {s.name: sweep_options(s, "course") for s in lab_plan("course")}
    tuned = {s.name: sweep_options(s, "tuned") for s in lab_plan("tuned")}
    assert list(course) == list(tuned)  # the same experiments, by name
    for name, sweep in tuned.items():
        assert sweep.samples == BUDGETS["full"].samples and sweep.max_epochs == 50
        assert "lr=0.0001" not in (sweep.sets or []) or "-genre-cnn-" in name
        assert sweep.test_fraction == course[name].test_fraction  # the same splits
    # The course's affect protocol at the full budget: 80/20, 30 epochs, no early stopping.
    for name, sweep in course.items():
        affect = not name.startswith("lab-genre-")
        assert sweep.test_fraction == (0.2 if affect else 0.15), name
        assert (sweep.max_epochs, sweep.patience) == ((30, 0) if affect else (50, 10)), name
    with pytest.raises(ValueError, match="course, tuned"):
        lab_plan("mine")


# --------------------------------------------------------------------------- the smoke lab

# One run of each recipe serves every lab test below: a head and a worker node of one CPU each
# (ray.cluster_utils), the lab through its command line with two experiments at a time, each
# sweep in a Ray task. Its own process: the session's `ray_local` may own this one's Ray. The
# tuned recipe runs part of its plan (--experiments): a searched LSTM beside the genre CNN with
# its fixed lr (two families at once: each must train its own model); the plan of every
# experiment is checked without running it above, and the course run covers every kind.
TUNED_ONLY = ("lab-genre-lstm-mel", "lab-genre-cnn-mel-beat")
CLUSTER_LAB_SCRIPT = r"""
import json, subprocess, sys, time
from pathlib import Path

from ray.cluster_utils import Cluster

data_dir, root, out, tuned_only = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
worker = cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
report = {"head": cluster.head_node.node_id, "worker": worker.node_id}
try:
    for recipe in ("course", "tuned"):
        started = time.time()
        lab = subprocess.run(
            [sys.executable, "-m", "musictune", "lab", "--budget", "smoke", "--recipe", recipe,
             "--data-dir", data_dir, "--storage", f"{root}/results-{recipe}",
             "--out", f"{root}/reports-{recipe}", "--address", cluster.address,
             "--concurrent-experiments", "2",
             *(["--experiments", *tuned_only] if recipe == "tuned" else [])],
            capture_output=True, text=True, timeout=600,
        )
        report[recipe] = {"code": lab.returncode, "stderr": lab.stderr[-3000:],
                          "seconds": time.time() - started}
finally:
    Path(out).write_text(json.dumps(report))
    cluster.shutdown()
"""


@pytest.fixture(scope="module")
def lab_runs(tmp_path_factory, demo_tiny) -> dict:
    """The smoke lab of each recipe on two nodes: exit codes, node ids, folders."""
    root = tmp_path_factory.mktemp("lab")
    out = root / "cluster.json"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-c", CLUSTER_LAB_SCRIPT, str(demo_tiny), str(root), str(out),
         *TUNED_ONLY],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1300,
    )  # fmt: skip
    assert proc.returncode == 0 and out.exists(), proc.stderr[-3000:]
    runs = json.loads(out.read_text())
    for recipe in RECIPES:
        assert runs[recipe]["code"] == 0, runs[recipe]["stderr"]
        runs[recipe] |= {
            "results": root / f"results-{recipe}",
            "reports": root / f"reports-{recipe}",
        }
    return runs


def trial_rows(results: Path) -> dict[str, list[dict]]:
    """Every trial's reported rows (its result.json), by experiment/trial folder."""
    return {
        str(path.parent.relative_to(results)): [
            json.loads(line) for line in path.read_text().splitlines() if line.strip()
        ]
        for path in sorted(results.glob("*/*/result.json"))
    }


def metas(results: Path, recipe: str) -> dict[str, dict]:
    """Every experiment's sweep.json, of those of the plan that ran."""
    return {
        s.name: json.loads((results / s.name / "sweep.json").read_text())
        for s in lab_plan(recipe)
        if (results / s.name).exists()
    }


@pytest.mark.slow
def test_lab_smoke_runs_the_course_recipe_two_experiments_at_a_time(lab_runs):
    results = lab_runs["course"]["results"]
    found = metas(results, "course")
    spans = sorted((m["started"], m["finished"]) for m in found.values())
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "no two experiments overlapped"
    for step in lab_plan():
        meta = found[step.name]
        if step.after:  # a transfer starts from its genre sweep's best checkpoint: after it
            assert meta["started"] > found[step.after]["finished"], step.name
            assert meta["transfer"]["source_sweep"] == step.after
        # The caller's command, not the Ray worker's that ran the sweep.
        assert " lab --budget smoke --recipe course " in meta["command"], meta["command"]
        assert meta["status"] == "finished" and meta["select_by"] == "loss"
        space, name = meta["space"], step.name
        assert space["batch_size"] == 64
        if "-cnn" in name or "transfer" in name or "multitask" in name:  # one model, fixed
            assert meta["samples"] == 1 and space["lr"] == 0.0001 and space["dropout"] == 0
        if name.startswith("lab-genre-lstm"):  # the course's own random search
            assert isinstance(space["lr"], dict) and "loguniform" in space["lr"]
        elif "-lstm" in name:  # on the course's best genre LSTM's config
            assert (space["lr"], space["dropout"], space["num_layers"]) == (9.1e-05, 0.196, 2)
        affect = not name.startswith("lab-genre-")
        assert meta["test_fraction"] == (0.2 if affect else 0.15)  # affect: the 80/20 split
        assert meta["patience"] == (0 if affect else 10)
    trials = trial_rows(results)
    assert {key.split("/")[0] for key in trials} == set(found)  # every experiment trained
    assert all(rows and rows[-1]["epoch"] == 1 for rows in trials.values()), trials  # smoke: 1


@pytest.mark.slow
def test_lab_trials_run_on_both_nodes(lab_runs):
    rows = [
        row
        for recipe in RECIPES
        for trial in trial_rows(lab_runs[recipe]["results"]).values()
        for row in trial
    ]
    assert {row["node_id"] for row in rows} == {lab_runs["head"], lab_runs["worker"]}
    assert {row["device"] for row in rows} == {"cpu"}  # no GPU on either node


@pytest.mark.slow
def test_experiments_side_by_side_each_train_their_own_model_on_their_own_features(lab_runs):
    """Two sweeps at once in one Ray job once shared Tune's trainable registry: the genre CNN
    sweep trained the LSTM sweep's model on its data, and the transfer from it failed."""
    from musictune.training.checkpoints import CHECKPOINT_FILE, load_checkpoint

    n_features = {"mel": 128, "chroma": 12, "fused": 140}
    for recipe in RECIPES:
        results = lab_runs[recipe]["results"]
        for name, meta in metas(results, recipe).items():
            files = list((results / name).glob(f"*/checkpoint_*/{CHECKPOINT_FILE}"))
            assert files, name
            for file in files:
                spec = load_checkpoint(file)["model_spec"]
                got = (spec["name"], spec["n_features"], spec["head"] == "classifier")
                wanted = (meta["model"], n_features[meta["features"]], meta["task"] == "genre")
                assert got == wanted, (recipe, name, spec)


@pytest.mark.slow
def test_lab_smoke_runs_the_tuned_recipe_on_the_same_splits(lab_runs):
    course, tuned = (
        metas(lab_runs["course"]["results"], "course"),
        metas(lab_runs["tuned"]["results"], "tuned"),
    )
    assert sorted(tuned) == sorted(TUNED_ONLY)  # --experiments: those, and no other
    for name, meta in tuned.items():
        assert (
            meta["status"] == "finished" and meta["test_fraction"] == course[name]["test_fraction"]
        )
        searched = isinstance(meta["space"]["lr"], dict)
        assert searched == ("-genre-cnn-" not in name), name  # the genre CNNs keep lr 1e-4
    (report,) = lab_runs["tuned"]["reports"].iterdir()
    page = (report / "index.md").read_text()
    assert all(name in page for name in tuned)
    assert "lab-genre-lstm-chroma" not in page  # not run: not reported


@pytest.mark.slow
def test_lab_report_sets_every_course_figure_beside_a_measured_one(lab_runs):
    from musictune.reporting.reference import REFERENCES

    (report,) = lab_runs["course"]["reports"].iterdir()
    page = (report / "index.md").read_text()
    assert all(step.name in page for step in lab_plan())
    # Every published course figure stands beside its measured one, labelled as demo data.
    figures = page.split("## Course reference figures", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in figures.splitlines() if r.startswith("| ") and "lab-" in r]
    assert len(rows) == len(REFERENCES)
    assert all("demo data (synthetic)" in r for r in rows)
    # The course's first steps: exploration figures with shapes, and overfit one batch.
    assert "## Lab: data exploration" in page and "beat-synced (140," in page
    assert "20 genres before the mapping, 10 classes" in page
    assert page.count(": passed") == 2, page.split("## Lab: overfit one batch")[-1]
    html = (report / "index.html").read_text()  # the same sections, images embedded
    assert "<h2>Lab: data exploration</h2>" in html and html.count(": passed") == 2
    assert html.count("data:image/png;base64") > 2 and html.endswith("</body></html>\n")
    for png in ("explore-clips.png", "explore-classes.png", "overfit.png"):
        assert (report / png).stat().st_size > 0
    # Each course figure names its own split: 575 test clips for genre only.
    for row in rows:
        genre = row.startswith("| genre ")
        assert ("575 clips" in row) == genre and ("held-out 20 %" in row) != genre, row
        assert ("20% of train held out as test" in row) != genre, row
    measured = [r.split(" | ")[6] for r in rows]  # the "measured here" column
    assert all(re.match(r"-?\d+\.\d+", m.strip()) for m in measured), measured  # a number


@pytest.mark.slow
def test_lab_again_keeps_finished_experiments_and_resumes_a_cut_one(lab_runs, demo_tiny, ray_local):
    from musictune.commands.lab import run_steps

    results = lab_runs["course"]["results"]
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
    # With --experiments, finished ones are kept too (the tuned lab above ran only those named).
    only = replace(again, experiments=["lab-multitask", "lab-valence-cnn"])
    assert run_steps(only) == []


def test_experiments_outside_the_plan_or_without_their_source_are_refused(tmp_path, demo_tiny):
    from musictune.commands.cli import main
    from musictune.commands.lab import run_steps

    with pytest.raises(UserError, match="no experiment lab-genre-lstm-melody in the lab's plan"):
        LabOptions(experiments=["lab-genre-lstm-melody"]).validate()
    storage = tmp_path / "results"
    transfer = LabOptions(
        budget="smoke", data_dir=str(demo_tiny), storage=str(storage),
        experiments=["lab-transfer-frozen"],
    )  # fmt: skip
    with pytest.raises(UserError, match="add lab-genre-cnn-mel-beat to --experiments"):
        run_steps(transfer)
    assert not any(storage.iterdir())  # refused before anything is written there
    argv = ["lab", "--budget", "smoke", "--experiments", "lab-genre-lstm-melody"]
    assert main([*argv, "--storage", str(storage)]) == 2


@pytest.mark.slow
def test_another_recipe_or_budget_in_the_same_storage_is_refused(lab_runs, demo_tiny, capsys):
    """Their experiments carry the same names: kept as finished, they would pass for this lab's."""
    from musictune.commands.cli import main

    results = lab_runs["course"]["results"]
    before = {p: p.read_bytes() for p in results.glob("*/sweep.json")}
    for other in (["--recipe", "tuned"], ["--budget", "quick"]):
        argv = ["lab", "--budget", "smoke", *other, "--data-dir", str(demo_tiny)]
        assert main([*argv, "--storage", str(results)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "lab.json" in err and "--storage" in err, err
    assert before == {p: p.read_bytes() for p in results.glob("*/sweep.json")}


def test_lab_passes_resources_and_cluster_options_to_every_sweep():
    options = LabOptions(
        budget="smoke", gpus_per_trial=0.25, max_concurrent=3, address="127.0.0.1:6379", amp=True,
        cpus_per_trial=2, crop=3, folds=4,
    )  # fmt: skip
    for step in lab_plan():
        sweep = step_options(step, options, BUDGETS["smoke"], "/tmp/results", "/tmp/data")
        assert (sweep.gpus_per_trial, sweep.cpus_per_trial, sweep.max_concurrent) == (0.25, 2, 3)
        assert sweep.address == "127.0.0.1:6379" and sweep.amp
        assert (sweep.crop, sweep.folds) == (3, 4)


@pytest.mark.slow
def test_concurrent_experiments_end_on_the_sweeps_own_error(ray_local, tmp_path, capsys):
    """A sweep that fails in its Ray task ends the batch with the sweep's own error (one line
    at the command line, not Ray's wrapper); a job waiting for it never starts."""
    from musictune.errors import UserError
    from musictune.tuning.concurrent import Job, run_concurrently
    from musictune.tuning.options import SweepOptions

    bad = SweepOptions(preset="lstm_spectrogram", samples=0, storage=str(tmp_path), name="bad")
    waiting = Job("later", "later", lambda: pytest.fail("started after its source failed"), "bad")
    with pytest.raises(UserError) as info:
        run_concurrently([Job("bad", "lab 1/2: bad", lambda: bad), waiting], at_once=2)
    assert type(info.value) is UserError and str(info.value).startswith("--samples must be")
    assert "lab 1/2: bad: started" in capsys.readouterr().out
