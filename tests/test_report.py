"""analysis/report.py on real finished sweeps: tables against trials.csv, reruns, HTML, errors.

One module-scoped fixture runs the issue's smoke sweep (`lstm_spectrogram --samples 8
--smoke-test`, on small random data in the real layout), a one-trial fused-view genre sweep
(`lstm_fused`: the same task and data in another feature view) and a one-trial multitask sweep,
then reports: the two genre sweeps with 2 seeds and a 3-epoch rerun budget, the smoke sweep again
(it must reuse its reruns), and all sweeps with --no-rerun (no training: the sweeps' checkpoints),
that one given a relative --storage; and a --no-rerun report on a `musictune extract` data set.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import f1_score

from musictune import layout
from musictune.data.dataset import load_task
from musictune.genres import FMA_CLASS_MAPPING
from musictune.reporting.html import format_mean_sd
from musictune.reporting.reference import REFERENCES
from musictune.training.checkpoints import load_checkpoint, model_from_checkpoint
from musictune.training.scoring import predict
from musictune.tuning.experiments import RERUN_DIR, SWEEP_FILE, TRIALS_FILE
from musictune.tuning.presets import PRESETS, Preset
from musictune.tuning.rerun import DONE_FILE
from musictune.tuning.runner import run_sweep

from .conftest import ROOT, new_report, report_cli, sweep_options, write_layout

SCRIPT = ROOT / "analysis" / "report.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reported(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    data = write_layout(tmp / "data")
    storage, out = tmp / "results", tmp / "reports"
    common = ["--data-dir", str(data), "--storage", str(storage)]
    run_sweep(
        sweep_options(
            "lstm_spectrogram", "--samples", "8", "--smoke-test", *common, "--name", "lstm"
        )
    )
    one_epoch = ["--samples", "1", "--max-epochs", "1", "--smoke-test", *common]
    run_sweep(sweep_options("lstm_fused", *one_epoch, "--name", "fused"))
    with pytest.MonkeyPatch.context() as mp:
        # A multitask experiment whatever the affect presets are called.
        mp.setitem(
            PRESETS,
            "report_multitask",
            Preset(
                name="report_multitask",
                task="multitask",
                model="cnn",
                features="mel",
                beat=True,
                doc="test",
            ),
        )
        run_sweep(
            sweep_options(
                "report_multitask",
                "--samples",
                "1",
                "--max-epochs",
                "1",
                "--smoke-test",
                *common,
                "--name",
                "multi",
            )
        )
    # A data set made by `musictune extract` (its manifest), folded into the course's ten
    # classes as the course folded FMA: only the manifest tells it is not the course's data.
    extracted = write_layout(tmp / "extracted", seed=1)
    manifest = {"class_mapping": FMA_CLASS_MAPPING, "made_by": "musictune extract"}
    (extracted / layout.MANIFEST).write_text(json.dumps(manifest))
    theirs = tmp / "extracted-results"
    mine = ["--data-dir", str(extracted), "--storage", str(theirs), "--name", "mine"]
    run_sweep(
        sweep_options(
            "cnn_spectrogram_beat", "--samples", "1", "--max-epochs", "1", "--smoke-test", *mine
        )
    )
    on_extracted = new_report(
        "--storage", str(theirs), "--out", str(tmp / "extracted-reports"), "--no-rerun"
    )  # fmt: skip
    args = ["--storage", str(storage), "--out", str(out)]
    rerun = [*args, "--sweep", "lstm", "--seeds", "2", "--rerun-max-epochs", "3"]
    first = new_report(*rerun, "--sweep", "fused")
    snapshot = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    reruns = {p: p.stat().st_mtime_ns for p in storage.glob(f"*/{RERUN_DIR}/**/*") if p.is_file()}
    second = new_report(*rerun)
    # An experiment still running is skipped, with a note, when no --sweep names it.
    copy_experiment(storage / "lstm", storage / "busy", status="running")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(storage.parent)  # a relative --storage (pyarrow once refused it)
        no_rerun = new_report("--storage", storage.name, "--out", str(out), "--no-rerun")
    return {
        "data": data,
        "storage": storage,
        "out": out,
        "first": first,
        "second": second,
        "no_rerun": no_rerun,
        "extracted": on_extracted,
        "snapshot": snapshot,
        "reruns": reruns,
    }


def summary(folder: Path) -> dict[str, dict]:
    rows = json.loads((folder / "summary.json").read_text())["experiments"]
    return {r["experiment"]: r for r in rows}


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    "which, names", [("first", ["fused", "lstm"]), ("no_rerun", ["fused", "lstm", "multi"])]
)
def test_cross_sweep_table_agrees_with_the_trial_csv(reported, which, names):
    storage, folder = reported["storage"], reported[which]
    table = pd.read_csv(folder / "summary.csv").set_index("experiment")
    assert sorted(table.index) == names
    markdown = (folder / "index.md").read_text()
    metrics = {"lstm": "val_macro_f1", "fused": "val_macro_f1", "multi": "val_spearman_mean"}
    for name in names:
        metric = metrics[name]
        trials = pd.read_csv(storage / name / TRIALS_FILE, dtype={"trial_id": str})
        copied = pd.read_csv(folder / name / TRIALS_FILE, dtype={"trial_id": str})
        pd.testing.assert_frame_equal(copied, trials)
        best = trials[f"best_{metric}"].max()
        row = table.loc[name]
        assert row["metric"] == metric
        assert row["best_val"] == pytest.approx(best, abs=1e-12)
        assert row["best_trial"] == trials.loc[trials[f"best_{metric}"].idxmax(), "trial_id"]
        assert row["trials"] == len(trials)
        assert row["finished_trials"] == int((trials["status"] == "TERMINATED").sum())
        meta = json.loads((storage / name / SWEEP_FILE).read_text())
        assert row["wall_time_s"] == pytest.approx(meta["wall_time_s"])
        # The rendered cross-sweep row carries the same numbers.
        assert f"| {name} | {meta['model']} | {meta['features']} |" in markdown
        assert f"{metric} {best:.4f}" in markdown
        assert f"{(trials['status'] == 'TERMINATED').sum()}/{len(trials)}" in markdown
    assert len(pd.read_csv(storage / "lstm" / TRIALS_FILE)) == 8


def test_ray_histories_agree_with_the_trial_csv(reported):
    """The scatter/curve data (Ray's result API) and trials.csv hold the same numbers."""
    from musictune.tuning.experiments import find_experiments

    (exp,), _ = find_experiments(reported["storage"], ["lstm"])
    histories = exp.histories()
    trials = exp.trials.set_index("trial_id")
    assert set(histories) == set(trials.index)
    for trial_id, frame in histories.items():
        assert frame["val_macro_f1"].max() == pytest.approx(
            trials.loc[trial_id, "best_val_macro_f1"]
        )
        assert len(frame) == trials.loc[trial_id, "epochs"]
    assert {"lr", "dropout"} <= set(exp.hyperparameters())


# --------------------------------------------------------------------------- reruns and tests


def test_reruns_give_k_test_results_and_their_mean_and_sd(reported):
    rows = summary(reported["first"])
    row = rows["lstm"]
    values = row["test_values"]
    assert row["seeds"] == 2 and len(values) == 2
    assert row["test_mean"] == pytest.approx(np.mean(values))
    assert row["test_sd"] == pytest.approx(np.std(values, ddof=1))
    rerun = Path(row["rerun_path"])
    assert rerun.parent == reported["storage"] / "lstm" / RERUN_DIR
    assert json.loads((rerun / DONE_FILE).read_text())["seeds"] == [0, 1]
    per_seed = pd.read_csv(reported["first"] / "lstm" / f"{row['tested_trial']}-test.csv")
    assert per_seed["macro_f1"].tolist() == pytest.approx(values)
    # Recompute each seed's test macro F1 from the best-epoch checkpoint Ray kept, by hand.
    data = load_task("genre", reported["data"], "mel", False)
    trial_dirs = sorted(p for p in rerun.iterdir() if p.is_dir())
    assert len(trial_dirs) == 2
    for trial_dir in trial_dirs:
        lines = (trial_dir / "result.json").read_text().splitlines()
        history = {r["training_iteration"]: r["val_macro_f1"] for r in map(json.loads, lines)}
        assert len(history) == 3  # the rerun budget, patience 10 never triggered
        checkpoints = {}
        for folder in trial_dir.glob("checkpoint_*"):
            checkpoint = load_checkpoint(folder)
            checkpoints[checkpoint["state"]["epoch"]] = checkpoint
        seed = checkpoints[max(checkpoints)]["config"]["seed"]
        row = per_seed.set_index("seed").loc[seed]
        best = max(history.values())
        assert row["best_val_macro_f1"] == pytest.approx(best)
        assert row["best_epoch"] == min(e for e, v in history.items() if v == best)
        assert history[row["tested_epoch"]] == pytest.approx(best)
        logits = predict(model_from_checkpoint(checkpoints[row["tested_epoch"]]), data.test)
        score = f1_score(data.test.y, logits.argmax(1), average="macro", zero_division=0)
        assert score == pytest.approx(row["macro_f1"])


def test_second_report_reuses_reruns_and_keeps_the_first(reported):
    first, second = reported["first"], reported["second"]
    assert first != second and first.parent == second.parent
    assert not [p for p in reported["out"].iterdir() if p.name.startswith(".tmp")]
    # The first report is untouched.
    for path, content in reported["snapshot"].items():
        assert path.read_bytes() == content
    one, two = summary(first), summary(second)
    assert list(one) == ["lstm", "fused"] and list(two) == ["lstm"]  # in --sweep order
    for name in two:
        assert not one[name]["rerun_reused"] and two[name]["rerun_reused"]
        assert two[name]["test_values"] == pytest.approx(one[name]["test_values"])
        assert two[name]["rerun_path"] == one[name]["rerun_path"]
        trials = [p for p in Path(two[name]["rerun_path"]).iterdir() if p.is_dir()]
        assert len(trials) == 2  # no third trial: nothing retrained
    # Nothing in the rerun folders was written again, and nothing was added.
    storage = reported["storage"]
    now = {p: p.stat().st_mtime_ns for p in storage.glob(f"*/{RERUN_DIR}/**/*") if p.is_file()}
    assert now == reported["reruns"]


def test_multitask_report_gives_spearman_per_target(reported):
    folder = reported["no_rerun"]
    row = summary(folder)["multi"]
    assert row["test_metric"] == "test_spearman_mean" and row["seeds"] == 1
    per_seed = pd.read_csv(folder / "multi" / f"{row['tested_trial']}-test.csv")
    targets = ["valence", "energy", "danceability"]
    means = per_seed[[f"spearman_{t}" for t in targets]].mean(axis=1)
    assert per_seed["spearman_mean"].tolist() == pytest.approx(means.tolist())
    assert per_seed["spearman_mean"].tolist() == pytest.approx(row["test_values"])
    # Again by hand with scipy, from the sweep checkpoint Ray reports as the trial's best.
    from musictune.tuning.experiments import find_experiments

    (exp,), _ = find_experiments(reported["storage"], ["multi"])
    best = exp.result_of(row["tested_trial"]).get_best_checkpoint(exp.metric, "max")
    data = load_task("multitask", reported["data"], "mel", True)
    outputs = predict(model_from_checkpoint(load_checkpoint(best.path)), data.test)
    for i, target in enumerate(targets):
        rho = spearmanr(data.test.y[:, i], outputs[:, i]).statistic
        assert per_seed.loc[0, f"spearman_{target}"] == pytest.approx(rho)
    markdown = (folder / "index.md").read_text()
    assert "held out as test" in markdown  # the multitask test split has no labels
    # Beside the course's multitask figures, Spearman per target from the same per-seed metrics.
    for target, figure in zip([*targets, "mean"], ["0.519", "0.754", "0.543", "0.6054"]):
        value = per_seed[f"spearman_{target}"].iloc[0]
        line = (
            f"| multitask | CNN | mel, beat-synced | {target} | Spearman | {figure} | {value:.3f}"
        )
        assert line + " (n=1) | multi (cnn) |" in markdown
    assert "multi/" + row["tested_trial"] + "-scatter-test.png" in markdown
    assert "No hyperparameter varied" in markdown  # one trial: no scatter plot


def test_no_rerun_tests_the_sweep_checkpoint(reported):
    row = summary(reported["no_rerun"])["lstm"]
    assert row["seeds"] == 1 and row["test_source"].startswith("sweep checkpoint")
    assert 0 <= row["test_mean"] <= 1 and np.isnan(row["test_sd"])
    assert not row["rerun_path"]
    assert (
        "Skipped: experiment busy is still running"
        in (reported["no_rerun"] / "index.md").read_text()
    )


# --------------------------------------------------------------------------- is it real


def test_tuned_minus_default_is_paired_by_seed_and_judged_by_the_stated_rule(reported):
    folder = reported["first"]
    baselines = pd.read_csv(folder / "lstm" / "baselines.csv")
    tuned = baselines[baselines["row"] == "tuned"].set_index("seed")["macro_f1"]
    default = baselines[baselines["row"] == "default"].set_index("seed")["macro_f1"]
    assert list(tuned.index) == list(default.index) == [0, 1]  # the same seeds, both retrained
    differences = (tuned - default).tolist()
    mean, sd = np.mean(differences), np.std(differences, ddof=1)
    row = summary(folder)["lstm"]
    assert row["paired_metric"] == "test_macro_f1" and row["paired_n"] == 2
    assert row["paired_seeds"] == [0, 1] and row["paired_values"] == pytest.approx(differences)
    assert row["paired_mean"] == pytest.approx(mean) and row["paired_sd"] == pytest.approx(sd)
    if abs(mean) <= sd:
        said = "within noise"
    else:
        said = "tuned best ahead" if mean > 0 else "default ahead"
    assert row["paired_verdict"].startswith(said)
    markdown = (folder / "index.md").read_text()
    cell = f"{mean:+.3f} ± {sd:.3f} (n=2), {said}"
    assert cell in section(markdown, "All experiments")  # the cross-sweep table
    assert "|mean| ≤ sd" in section(markdown, "All experiments")  # the rule, stated
    part = section(markdown, "lstm: ")
    assert f"paired by seed (both retrained with seeds [0, 1]): {mean:+.3f} ± {sd:.3f}" in part
    assert f"seed 0: {differences[0]:+.3f}, seed 1: {differences[1]:+.3f}" in part
    assert f"**{said}" in part and "The rule: a difference is within noise when" in part
    # No rerun, no retrained default: nothing to pair, and the page says so.
    row = summary(reported["no_rerun"])["lstm"]
    assert row["paired_n"] == 0 and row["paired_verdict"] == "not measured"
    part = section((reported["no_rerun"] / "index.md").read_text(), "lstm: ")
    assert "paired by seed: not measured: the untuned default is not retrained" in part


def test_few_validation_clips_are_warned_of(reported):
    from musictune.reporting import saved
    from musictune.reporting.noise import val_warning

    folder = reported["first"]
    (lstm,) = [e for e in saved.load(folder).experiments if e.name == "lstm"]
    clips = len(load_task("genre", reported["data"], "mel", False).val)
    assert lstm.data.val == lstm.meta.get("val_clips", clips) == clips < 50
    said = f"Few validation clips: the validation split holds {clips} clips (fewer than 50)"
    part = section((folder / "index.md").read_text(), "lstm: ")
    assert said in part and f"moves validation accuracy by {1 / clips:.3f}" in part
    # What sweep.json records (val_clips, folds) counts; without it the report counts the split
    # it loaded, unless the sweep used K-fold (then nothing is known).
    meta = {k: v for k, v in lstm.meta.items() if k not in ("val_clips", "folds")}
    assert said in val_warning(meta, lstm.data)
    assert val_warning(meta | {"folds": 5}, lstm.data) == ""
    assert val_warning(meta | {"val_clips": 50, "folds": 0}, lstm.data) == ""
    folds = val_warning(meta | {"val_clips": 30, "folds": 5}, lstm.data)
    assert "the smallest of the 5 folds holds 30 validation clips (fewer than 50)" in folds


def test_results_saved_before_the_paired_difference_say_so(reported, tmp_path):
    """A rerun report's section (rendered in full by the older-results test below)."""
    from musictune.reporting import saved
    from musictune.reporting.html import Document
    from musictune.reporting.sections import describe_comparison, experiment_view

    folder = reported["first"]
    results = saved.load(folder)
    (lstm,) = [e for e in results.experiments if e.name == "lstm"]
    lstm.comparison.paired = None
    doc = Document("lstm")
    (tmp_path / "lstm").mkdir()
    describe_comparison(experiment_view(lstm, folder), lstm, results, doc, tmp_path / "lstm")
    text = " ".join(str(payload) for _, payload in doc.blocks)
    assert "predate the paired difference" in text and "paired by seed" not in text


# --------------------------------------------------------------------------- figures and HTML


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs.get("src", ""))
        for key in ("href", "src"):
            value = attrs.get(key) or ""
            if value and not value.startswith("data:"):
                self.external.append(value)


@pytest.mark.parametrize(
    "which, kinds",
    [
        (
            "first",
            [
                "scatter.png",
                "curves.png",
                "-rerun-curves.png",
                "-confusion.png",
                "importance.png",
                "parallel.png",
                "anytime.png",
                "anytime-genre-val_macro_f1.png",
                "views.png",
            ],
        ),
        (
            "no_rerun",
            [
                "scatter.png",
                "curves.png",
                "-confusion.png",
                "-scatter-test.png",
                "feature-maps.png",
                "importance.png",
                "parallel.png",
                "anytime.png",
                "anytime-multitask-val_spearman_mean.png",
            ],
        ),
        ("extracted", ["curves.png", "-confusion.png", "feature-maps.png", "anytime.png"]),
    ],
)
def test_pngs_are_real_and_the_html_embeds_every_one(reported, which, kinds):
    import matplotlib.image

    folder = reported[which]
    pngs = sorted(folder.rglob("*.png"))
    for kind in kinds:
        assert any(p.name.endswith(kind) for p in pngs), kind
    parser = Images()
    parser.feed((folder / "index.html").read_text())
    assert not parser.external, "the page must not load anything from outside"
    embedded = []
    for src in parser.sources:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw.startswith(PNG_MAGIC)
        pixels = matplotlib.image.imread(io.BytesIO(raw))
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 0
        embedded.append(raw)
    assert sorted(embedded) == sorted(p.read_bytes() for p in pngs)
    markdown = (folder / "index.md").read_text()
    for png in pngs:
        assert f"]({png.relative_to(folder).as_posix()})" in markdown


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def images_loaded(browser: str, page: Path, profile: Path) -> str:
    """'total:loaded' images as reported by the browser itself after the load event."""
    html = page.read_text()
    probe = (
        "<script>window.addEventListener('load', () => { const all = [...document.images];"
        " const ok = all.filter(i => i.complete && i.naturalWidth > 0);"
        " document.body.setAttribute('data-images', all.length + ':' + ok.length); });</script>"
    )
    page.write_text(html.replace("</body>", probe + "</body>"))
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # needed as root (CI); the page is our own file
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",  # a fresh profile for every run
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = 'data-images="'
    assert marker in done.stdout, done.stderr[-2000:]
    return done.stdout.split(marker, 1)[1].split('"', 1)[0]


@pytest.mark.skipif(
    chromium() is None,
    reason="no Chromium/Chrome on PATH; install it (as .ci/run does): "
    "apt-get update && apt-get install -y --no-install-recommends chromium",
)
def test_html_renders_every_image_in_headless_chromium(reported, tmp_path):
    page = tmp_path / "index.html"
    shutil.copyfile(reported["first"] / "index.html", page)
    n = (reported["first"] / "index.html").read_text().count("<img ")
    assert n >= 4  # scatter, curves, rerun curves, confusion matrix
    assert images_loaded(chromium(), page, tmp_path / "profile") == f"{n}:{n}"
    # The check can fail: a damaged image is seen as not loaded.
    broken = tmp_path / "broken.html"
    html = (reported["first"] / "index.html").read_text()
    broken.write_text(html.replace("base64,iVBOR", "base64,AAAA", 1))
    assert images_loaded(chromium(), broken, tmp_path / "profile2") == f"{n}:{n - 1}"


# --------------------------------------------------------------------------- course figures


def section(markdown: str, heading: str) -> str:
    """The part of a page from a `## heading` to the next `## `."""
    start = markdown.index(f"\n## {heading}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end > 0 else None]


def figure_rows(markdown: str) -> list[list[str]]:
    """The course figures table, one list of cells per line."""
    lines = section(markdown, "Course reference figures").splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| task")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in rows]


def test_course_figures_stand_beside_the_matching_experiment_only(reported):
    folder = reported["no_rerun"]
    markdown = (folder / "index.md").read_text()
    assert "575 clips" in section(markdown, "Course reference figures")
    rows = figure_rows(markdown)
    assert len(rows) == len(REFERENCES)  # every figure, once: no experiment here matches twice
    beside: dict[str, list[list[str]]] = {}
    for row in rows:
        beside.setdefault(row[7], []).append(row)
    assert sorted(beside) == ["-", "fused (lstm)", "lstm (lstm)", "multi (cnn)"]
    assert {r[1] for r in beside["lstm (lstm)"]} == {"LSTM"}  # never beside a CNN figure
    assert {r[1] for r in beside["multi (cnn)"]} == {"CNN"}
    # The LSTM genre sweep (full-length mel) beside the course's 0.35 / 0.23, same metrics.
    row = summary(folder)["lstm"]
    per_seed = pd.read_csv(folder / "lstm" / f"{row['tested_trial']}-test.csv")
    got = [(r[2], r[4], r[5], r[6]) for r in beside["lstm (lstm)"]]
    assert got == [
        ("mel, full-length", "accuracy", "0.35", f"{per_seed['accuracy'][0]:.3f} (n=1)"),
        ("mel, full-length", "macro F1", "0.23", f"{per_seed['macro_f1'][0]:.3f} (n=1)"),
    ]
    test_clips = len(load_task("genre", reported["data"], "mel", False).test)
    assert beside["lstm (lstm)"][0][8] == f"{reported['data']}, {test_clips} test clips"


def test_a_report_on_extracted_data_shows_no_course_figures(reported):
    folder = reported["extracted"]
    markdown = (folder / "index.md").read_text()
    part = section(markdown, "Course reference figures")
    assert "No course figures" in part and "musictune extract" in part
    assert not figure_rows(markdown) and "course (real FMA)" not in markdown
    # Its classes are the course's ten folded ones: the manifest alone told.
    results = json.loads((folder / "results.json").read_text())
    (mine,) = results["experiments"]
    assert sorted(mine["data"]["classes"]) == sorted(set(FMA_CLASS_MAPPING.values()) - {None})
    assert mine["data"]["origin"] == "extracted"


def changed_copy(source: Path, tmp_path: Path, change) -> Path:
    """A copy of a report whose results.json `change(results)` edited, rendered again."""
    copy = tmp_path / "source" / source.name
    shutil.copytree(source, copy)
    results = json.loads((copy / "results.json").read_text())
    change(results)
    (copy / "results.json").write_text(json.dumps(results))
    return new_report("--render-only", str(copy), "--out", str(tmp_path / "out"))


def test_other_genre_classes_or_no_recorded_space_leave_that_experiment_out(reported, tmp_path):
    def change(results: dict) -> None:
        (lstm,) = [e for e in results["experiments"] if e["name"] == "lstm"]
        lstm["data"]["classes"] = [f"style{i}" for i in range(len(lstm["data"]["classes"]))]
        del lstm["meta"]["space"]  # a sweep from before sweep.json recorded its space

    markdown = (changed_copy(reported["no_rerun"], tmp_path, change) / "index.md").read_text()
    part = section(markdown, "Course reference figures")
    assert "Not set beside course figures" in part and "style0" in part
    assert {r[7] for r in figure_rows(markdown)} == {"-", "fused (lstm)", "multi (cnn)"}
    assert "Search space" not in section(markdown, "lstm: ")
    space = section(markdown, "multi: ")
    assert (
        "| lr | log-uniform 3.981e-05 .. 0.01 |" in space and "| batch_size | fixed 32 |" in space
    )


def test_results_saved_before_origin_and_feature_maps_still_render(reported, tmp_path):
    def change(results: dict) -> None:
        for e in results["experiments"]:
            del e["data"]["origin"], e["feature_maps"], e["importance"], e["anytime"]
            del e["comparison"]["paired"]
            e["row"] = {k: v for k, v in e["row"].items() if not k.startswith("paired_")}
            e["meta"]["val_clips"] = 400  # a sweep.json that records a large validation split

    folder = changed_copy(reported["no_rerun"], tmp_path, change)
    markdown = (folder / "index.md").read_text()
    assert "Few validation clips" not in markdown and "paired by seed" not in markdown
    assert "paired_mean" not in (folder / "summary.csv").read_text()
    assert "predate the record" in markdown and len(figure_rows(markdown)) == len(REFERENCES)
    assert not list(folder.rglob("feature-maps.png")) and "What the CNN sees" not in markdown
    # Importance and the anytime curve were computed by the evaluation: older results say so.
    lstm = section(markdown, "lstm: ")
    assert lstm.count("These results predate this section") == 2
    assert not list(folder.rglob("importance*")) and not list(folder.rglob("anytime*"))
    assert (folder / "lstm" / "parallel.png").is_file()  # drawn from the trial table alone


# --------------------------------------------------------------------------- what the CNN sees


def test_feature_maps_of_cnn_experiments_only(reported):
    from musictune.reporting import saved
    from musictune.training.featuremaps import MAP_SHAPE, shrink

    folder = reported["no_rerun"]
    markdown = (folder / "index.md").read_text()
    assert (folder / "multi" / "feature-maps.png").is_file()
    assert "What the CNN sees" in section(markdown, "multi: ")
    assert "What the CNN sees" not in section(markdown, "lstm: ")
    assert not list(folder.glob("lstm/feature-maps*")) and not list(
        reported["first"].rglob("feature-maps*")
    )
    assert (folder / "results.npz").stat().st_size < 500_000
    (multi,) = [e for e in saved.load(folder).experiments if e.name == "multi"]
    maps = multi.feature_maps
    assert maps.columns == ["input", "block 1 (32 ch)", "block 2 (64 ch)"]
    assert len(maps.clips) == len(maps.maps) == 4  # affect: four clips over the target range
    # The hooks' maps, recomputed by hand from the tested checkpoint for the first clip.
    data = load_task("multitask", reported["data"], "mel", True)
    model = model_from_checkpoint(load_checkpoint(maps.checkpoint)).eval()
    i = list(data.test.ids).index(maps.clips[0].split(":")[0])
    x = torch.from_numpy(data.test.clip(i).copy())[None, None]
    with torch.no_grad():
        one = model.backbone.blocks[0](x)
        two = model.backbone.blocks[1](one)
    expected = [x[0, 0], one[0].mean(0), two[0].mean(0)]
    for got, want in zip(maps.maps[0], expected):
        assert got.dtype == np.float16 and got.shape[0] <= MAP_SHAPE[0]
        np.testing.assert_allclose(got, shrink(want.numpy().T), rtol=2e-3, atol=2e-3)
    # A genre CNN: one clip per class.
    (mine,) = saved.load(reported["extracted"]).experiments
    assert [c.split(": ")[1] for c in mine.feature_maps.clips] == mine.data.classes


# --------------------------------------------------------------------------- what mattered

MATTERED = (
    "### Hyperparameter importance",
    "### Parallel coordinates of the trials",
    "### Anytime curve: best validation so far",
)


def trial_csv(reported, name: str) -> pd.DataFrame:
    return pd.read_csv(reported["storage"] / name / TRIALS_FILE, dtype={"trial_id": str})


def searched(reported, name: str) -> dict:
    """The experiment's sweep.json space, distributions only (a fixed value is not searched)."""
    space = json.loads((reported["storage"] / name / SWEEP_FILE).read_text())["space"]
    return {k: v for k, v in space.items() if isinstance(v, dict)}


@pytest.mark.parametrize("which", ["first", "no_rerun"])
def test_every_experiment_says_what_mattered_and_the_head_compares(reported, which):
    folder = reported[which]
    markdown = (folder / "index.md").read_text()
    for name in summary(folder):
        part = section(markdown, f"{name}: ")
        assert all(heading in part for heading in MATTERED), name
    lstm = section(markdown, "lstm: ")
    assert "COMPLETE" in lstm and "PRUNED" in lstm  # how early-stopped trials count
    for png in ("importance", "parallel", "anytime"):
        assert f"](lstm/{png}.png)" in lstm
    # One finished trial: no importance and no parallel axes, and the page says why.
    fused = section(markdown, "fused: ")
    assert "No importance for this sweep: 1 finished trial(s) in the search space" in fused
    assert "No hyperparameter varied between trials: no parallel coordinates" in fused
    assert not list(folder.glob("fused/importance*")) and not list(folder.glob("fused/parallel*"))
    head = section(markdown, "Best validation so far, per task")
    assert "](anytime-genre-val_macro_f1.png)" in head
    assert "## Feature views and models compared (test split)" in markdown


def test_parallel_coordinates_draw_the_trial_table(reported):
    drawn = pd.read_csv(reported["first"] / "lstm" / "parallel.csv", dtype={"trial_id": str})
    trials = trial_csv(reported, "lstm")
    value = "best_val_macro_f1"
    assert list(drawn.columns) == ["trial_id", *searched(reported, "lstm"), value]
    assert drawn[value].is_monotonic_decreasing  # best first: the top trials are highlighted
    finished = trials[trials["status"] == "TERMINATED"][list(drawn.columns)]
    pd.testing.assert_frame_equal(
        drawn.sort_values("trial_id").reset_index(drop=True),
        finished.sort_values("trial_id").reset_index(drop=True),
    )


@pytest.mark.parametrize("name", ["lstm", "fused"])
def test_anytime_curve_pools_every_epoch_and_ends_at_the_best_trial(reported, name):
    from musictune.reporting import saved

    folder = reported["first"]
    curve = pd.read_csv(folder / name / "anytime.csv")
    trials = trial_csv(reported, name)
    assert curve["best_so_far"].iloc[-1] == pytest.approx(trials["best_val_macro_f1"].max())
    assert len(curve) == trials["epochs"].sum()  # every epoch of every trial, once
    assert curve["epochs_trained"].tolist() == list(range(1, len(curve) + 1))
    running = np.maximum.accumulate(curve["value"].to_numpy())
    assert curve["best_so_far"].tolist() == pytest.approx(running.tolist())
    assert (curve["wall_s"] >= 0).all() and curve["wall_s"].is_monotonic_increasing
    (result,) = [e for e in saved.load(folder).experiments if e.name == name]
    assert result.anytime.best == pytest.approx(curve["best_so_far"].tolist())
    budget = json.loads((reported["storage"] / name / SWEEP_FILE).read_text())["max_epochs"]
    markdown = section((folder / "index.md").read_text(), f"{name}: ")
    assert f"would have been {len(trials) * budget} epochs" in markdown


def test_importance_shares_are_fractions_summing_to_one_as_optuna_finds(reported):
    import optuna

    from musictune.reporting import saved
    from musictune.tuning.importance import SEED, distributions

    folder = reported["first"]
    table = pd.read_csv(folder / "lstm" / "importance.csv")
    assert set(table["hyperparameter"]) <= set(searched(reported, "lstm")) and len(table) >= 2
    for column in ("importance (all trials)", "bootstrap mean"):
        assert table[column].between(0, 1).all()
        assert table[column].sum() == pytest.approx(1)
    assert (table["bootstrap sd"] >= 0).all()
    (lstm,) = [e for e in saved.load(folder).experiments if e.name == "lstm"]
    trials = trial_csv(reported, "lstm")
    budget = json.loads((reported["storage"] / "lstm" / SWEEP_FILE).read_text())["max_epochs"]
    assert lstm.importance.trials == len(trials) and lstm.importance.resamples >= 10
    assert lstm.importance.stopped_early == int((trials["epochs"] < budget).sum())
    # Optuna itself, on a study built here from trials.csv, gives the all-trials column.
    space = searched(reported, "lstm")
    dists = distributions(space)
    study = optuna.create_study(direction="maximize")
    for _, row in trials.iterrows():
        params = {k: str(row[k]) if "choice" in space[k] else float(row[k]) for k in dists}
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=dists, value=row["best_val_macro_f1"]
            )
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=SEED)
    expected = optuna.importance.get_param_importances(
        study, evaluator=evaluator, params=list(table["hyperparameter"])
    )
    got = dict(zip(table["hyperparameter"], table["importance (all trials)"]))
    assert got == pytest.approx(expected)


def test_importance_says_why_it_is_absent(reported):
    from musictune.tuning.importance import hyperparameter_importance

    trials, space = trial_csv(reported, "lstm"), searched(reported, "lstm")
    value = "best_val_macro_f1"

    def why(table: pd.DataFrame, space) -> str:
        found = hyperparameter_importance(table, space, value, 2)
        assert found.params == [] and found.importance == []
        return found.absent

    assert why(trials, None).startswith("sweep.json records no search space")
    assert why(trials, {"batch_size": 32}).startswith("the search space has no distribution")
    assert why(trials.head(2), space).startswith("2 finished trial(s)")
    same = trials.assign(**{k: trials[k].iloc[0] for k in space})
    assert why(same, space) == "no hyperparameter took more than one value"
    assert why(trials.assign(**{value: 0.5}), space).startswith("every trial has the same")


def test_views_table_holds_each_experiments_test_mean_and_sd(reported):
    folder = reported["first"]
    views = pd.read_csv(folder / "views.csv").set_index("experiment")
    assert list(views.index) == ["lstm", "fused"]
    assert views["features"].tolist() == ["mel", "fused"]
    rows = summary(folder)
    for name in views.index:
        per_seed = pd.read_csv(folder / name / f"{rows[name]['tested_trial']}-test.csv")
        assert views.loc[name, "metric"] == "test_macro_f1"
        assert views.loc[name, "n"] == len(per_seed) == 2
        assert views.loc[name, "mean"] == pytest.approx(per_seed["macro_f1"].mean())
        assert views.loc[name, "sd"] == pytest.approx(per_seed["macro_f1"].std(ddof=1))
    a, b = views.loc["lstm"], views.loc["fused"]
    overlap = abs(a["mean"] - b["mean"]) <= a["sd"] + b["sd"]
    said = "overlap" if overlap else "do not overlap"
    part = section((folder / "index.md").read_text(), "Feature views and models compared")
    assert f"lstm and fused: the intervals (mean ± sd) {said}" in part
    # --no-rerun: one seed each, so no interval; the multitask sweep has no counterpart.
    one_seed = pd.read_csv(reported["no_rerun"] / "views.csv")
    assert one_seed["experiment"].tolist() == ["fused", "lstm"] and one_seed["sd"].isna().all()
    markdown = (reported["no_rerun"] / "index.md").read_text()
    assert "fused and lstm: one seed, no sd: overlap not judged" in markdown


def test_a_relative_storage_is_read_as_absolute(reported, monkeypatch):
    from musictune.tuning.experiments import find_experiments

    storage = reported["storage"]
    results = json.loads((reported["no_rerun"] / "results.json").read_text())  # --storage results
    assert results["storage"] == str(storage)
    assert {e["path"] for e in results["experiments"]} == {
        str(storage / n) for n in ("fused", "lstm", "multi")
    }
    monkeypatch.chdir(storage.parent)
    (exp,), _ = find_experiments(storage.name, ["fused"])
    assert exp.path == storage / "fused" and len(exp.results) == 1  # Ray's result API reads it


# --------------------------------------------------------------------------- --render-only

RENDER_PROBE = """
import runpy, sys, time
sys.argv = ["analysis/report.py", *sys.argv[1:]]
started = time.perf_counter()
try:
    runpy.run_path("analysis/report.py", run_name="__main__")
except SystemExit as exc:
    code = exc.code
took = time.perf_counter() - started
heavy = ("ray", "torch", "sklearn", "musictune.training.loop", "musictune.tuning.rerun")
loaded = [m for m in heavy if m in sys.modules]
print(f"probe: {took:.2f} s, loaded {loaded}")
sys.exit(code)
"""


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def without_timestamp(page: bytes) -> str:
    """A page with its title's timestamp (`musictune report, 2026-11-26 12:05`) taken out."""
    return re.sub(r"musictune report, [0-9: -]+", "musictune report", page.decode())


@pytest.mark.parametrize("which", ["first", "no_rerun", "extracted"])
def test_render_only_rebuilds_the_same_report_without_ray_or_training(reported, tmp_path, which):
    source, storage = reported[which], reported["storage"]
    before = files(source)
    reruns = {p: p.stat().st_mtime_ns for p in storage.glob(f"*/{RERUN_DIR}/**/*")}
    out = tmp_path / "rebuilt"
    # A fresh interpreter, to see what the rebuild imported: no Ray, no training code.
    env = {**os.environ, "MUSICTUNE_RESULTS": str(tmp_path / "no-storage")}
    argv = ["--render-only", str(source), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", RENDER_PROBE, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = done.stdout.splitlines()[-1]
    print(probe)  # the rebuild's wall time
    assert probe.endswith("loaded []"), probe
    (rebuilt,) = out.iterdir()
    again = files(rebuilt)
    pages = ("index.md", "index.html")
    # Same files; the same bytes in all but the pages, and the pages apart from the title line.
    assert sorted(again) == sorted(before)
    assert {k: v for k, v in again.items() if k not in pages} == {
        k: v for k, v in before.items() if k not in pages
    }
    for page in pages:
        assert without_timestamp(again[page]) == without_timestamp(before[page])
    assert "results.json" in before and files(source) == before  # the source is untouched
    if which == "no_rerun":  # the CNN's feature maps, redrawn from results.npz without torch
        assert "multi/feature-maps.png" in again
    if which == "first":  # what mattered, redrawn from results.json and the trial tables
        new = ["importance", "parallel", "anytime"]
        assert {f"lstm/{n}.{ext}" for n in new for ext in ("png", "csv")} <= set(again)
        assert {"anytime-genre-val_macro_f1.png", "views.png", "views.csv"} <= set(again)
    # The command's top lines: per experiment its best validation and test mean ± sd, and
    # where the page is.
    for name, r in summary(source).items():
        test = format_mean_sd(r["test_mean"], r["test_sd"])
        line = (
            f"report: {name}: best {r['metric']} {r['best_val']:.4f} (trial {r['best_trial']}), "
            f"{r['test_metric']} {test} (n={r['seeds']})"
        )
        assert line in done.stdout.splitlines()
        # Then tuned - default, paired by seed, and a warning on few validation clips.
        if r["paired_n"] >= 2:
            paired = (
                f"report: {name}: tuned - default {r['paired_metric']} {r['paired_mean']:+.3f} "
                f"± {r['paired_sd']:.3f} (n={r['paired_n']}, paired seeds {r['paired_seeds']}): "
                f"{r['paired_verdict']}"
            )
            assert any(s.startswith(paired) for s in done.stdout.splitlines()), paired
        else:
            paired = f"report: {name}: tuned - default {r['test_metric']}: not measured"
            assert any(s.startswith(paired) for s in done.stdout.splitlines()), paired
        assert f"report: {name}: warning: the validation split holds" in done.stdout
    assert f"report: {rebuilt / 'index.html'}" in done.stdout.splitlines()
    assert {p: p.stat().st_mtime_ns for p in storage.glob(f"*/{RERUN_DIR}/**/*")} == reruns


def test_musictune_report_is_the_script_from_any_folder(reported, tmp_path, monkeypatch):
    """`musictune report` (installed with the package; analysis/ is not) takes exactly the
    options of analysis/report.py and runs the same code, here from a folder outside the
    repository."""
    from musictune.commands.cli import build_parser, main, subcommands

    def flags(parser) -> list[str]:
        return sorted(flag for action in parser._actions for flag in action.option_strings)

    assert flags(subcommands(build_parser())["report"]) == flags(report_cli().build_parser())
    monkeypatch.chdir(tmp_path)
    source, out = reported["extracted"], tmp_path / "out"  # one experiment: the quickest
    assert main(["report", "--render-only", str(source), "--out", str(out)]) == 0
    (rebuilt,) = out.iterdir()
    again, before = files(rebuilt), files(source)
    assert sorted(again) == sorted(before)
    pages = ("index.md", "index.html")
    assert {k: v for k, v in again.items() if k not in pages} == {
        k: v for k, v in before.items() if k not in pages
    }


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda text: text[: len(text) // 2], "cannot be read"),
        (lambda text: text.replace('"version": 1', '"version": 99', 1), "version 99"),
        (lambda text: text.replace('"tested":', '"untested":', 1), "malformed"),
    ],
    ids=["truncated", "other-version", "field-missing"],
)
def test_render_only_of_damaged_results_is_one_line_and_loses_nothing(
    reported, tmp_path, capsys, damage, says
):
    reports = tmp_path / "reports"
    copy = reports / reported["first"].name
    shutil.copytree(reported["first"], copy)
    results = copy / "results.json"
    results.write_text(damage(results.read_text()))
    before = files(copy)
    # The newest report under --out is the default.
    err = one_line_error(capsys, "--render-only", "--out", str(reports))
    assert str(results) in err and says in err and "--render-only" in err
    assert files(copy) == before
    assert [p.name for p in reports.iterdir()] == [copy.name]  # no new or temporary folder


# --------------------------------------------------------------------------- bad input


def one_line_error(capsys, *argv: str) -> str:
    assert report_cli().main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def copy_experiment(src: Path, dst: Path, **meta) -> None:
    dst.mkdir(parents=True)
    shutil.copyfile(src / TRIALS_FILE, dst / TRIALS_FILE)
    data = json.loads((src / SWEEP_FILE).read_text()) | meta
    (dst / SWEEP_FILE).write_text(json.dumps(data))


def test_bad_input_is_one_line_with_exit_status_2(reported, tmp_path, capsys):
    out = ["--out", str(tmp_path / "reports")]
    err = one_line_error(capsys, "--storage", str(tmp_path / "missing"), *out)
    assert "does not exist" in err and "--storage" in err
    (tmp_path / "empty").mkdir()
    assert "no experiment" in one_line_error(capsys, "--storage", str(tmp_path / "empty"), *out)
    err = one_line_error(capsys, "--storage", str(reported["storage"]), "--sweep", "nope", *out)
    assert "'nope'" in err and "lstm" in err and "multi" in err  # lists the known ones

    running = tmp_path / "running"
    copy_experiment(reported["storage"] / "lstm", running / "busy", status="running")
    err = one_line_error(capsys, "--storage", str(running), *out)
    assert "busy is still running" in err and "--resume" in err

    failed = tmp_path / "failed"
    copy_experiment(reported["storage"] / "lstm", failed / "broken")
    trials = pd.read_csv(failed / "broken" / TRIALS_FILE)
    trials["status"] = "ERROR"
    trials.to_csv(failed / "broken" / TRIALS_FILE, index=False)
    err = one_line_error(capsys, "--storage", str(failed), "--sweep", "broken", *out)
    assert "no finished trial" in err
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


def test_script_reports_bad_input_without_traceback(tmp_path):
    env = {**os.environ, "MUSICTUNE_RESULTS": str(tmp_path / "nothing")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--seeds", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "nothing does not exist" in done.stderr
    assert not (tmp_path / "reports").exists()
