"""The benchmarks: the data-path and overhead benchmarks end to end at their smallest size on a
real local Ray, both sides of each comparison given the same cores, threads and patience, the
load read before the timed part, median and min - max over repeats, the commit recorded, the
search-efficiency plot, the GPU check's sampler and side order (no GPU needed), RESULTS.md
appends, and one-line errors. No speed targets here: timings on a shared test machine mean
nothing."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import write_layout

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import concurrency  # noqa: E402
import data_path  # noqa: E402
import extraction  # noqa: E402
import gpu_check  # noqa: E402
import main_job  # noqa: E402
import optuna_peer  # noqa: E402
import overhead  # noqa: E402
import run_all  # noqa: E402
import search_efficiency  # noqa: E402
import startup  # noqa: E402
import whole_tracks  # noqa: E402

from musictune.tuning.cluster import Resources  # noqa: E402


def torch_has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _before(load=(0.2, 0.3, 0.4), commit="abc1234") -> common.Before:
    import datetime as dt

    return common.Before(
        when=dt.datetime(2026, 1, 2, 3, 4).astimezone(),
        load=load,
        commit=commit,
        machine={"cores": "2", "cpu": "cpu", "memory": "8 GiB", "gpu": "none", "os": "linux"},
        versions={"python": "3", "torch": "2"},
    )


# --------------------------------------------------------------------------- end to end


def test_data_path_benchmark_runs_at_its_smallest_size(ray_local, tmp_path):
    root = write_layout(tmp_path / "data", n_train=40, n_test=10, frames=30)
    rows = data_path.run(root, "lstm_spectrogram", epochs=1, repeats=1)
    assert [r.benchmark for r in rows] == ["data path"] * 4
    values = [r.value for r in rows]
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in values)
    start, _, speedup, _ = rows
    assert start.target == "< 0.1" and start.met == (start.value < 0.1)
    assert speedup.target == ">= 10" and speedup.met == (speedup.value >= 10)
    assert "2 torch threads each" in speedup.note  # both sides: every CPU of the Ray (2)
    lines = common.markdown_table(rows).strip().splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line.count(" | ") == len(common.COLUMNS) - 1 for line in lines if "---" not in line)


def test_overhead_benchmark_splits_ray_time_into_a_timeline(ray_local, tmp_path):
    """The timed trainable reaches Ray's workers from an imported module, its spans add up, and
    both sides train with every CPU's thread."""
    root = write_layout(tmp_path / "data", n_train=40, n_test=10, frames=30)
    rows = {
        r.figure: r for r in overhead.run(root, "lstm_spectrogram", trials=3, epochs=1, repeats=1)
    }
    (ray_s,) = rows["Ray Tune sweep, Ray already running (s)"].values
    (inside,) = rows["Ray: inside the trial functions (s)"].values
    (start,) = rows["Ray: sweep start to the first trial's first line (s)"].values
    gap = rows["Ray: between one trial's end and the next one's start, mean (s)"]
    (tail,) = rows["Ray: last trial's end to the sweep's return (s)"].values
    assert gap.note.startswith("2 gaps")  # three trials, three spans
    assert 0 < inside and 0 < start and 0 <= gap.value and 0 <= tail
    assert start + inside + 2 * gap.value + tail == pytest.approx(ray_s, abs=1e-6)
    ratio = rows["time ratio Ray Tune / Optuna, Ray running"]
    assert ratio.value == pytest.approx(ray_s / rows["plain Optuna loop, one process (s)"].value)
    assert "1 at a time, 2 threads" in rows["plain Optuna loop, one process (s)"].note


def test_startup_probe_is_a_fresh_sweep_process_whose_stamps_add_up(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    root = write_layout(tmp_path / "data", n_train=40, n_test=10, frames=30)
    with ThreadPoolExecutor(1) as pool:  # a smoke test times nothing: the torch._dynamo
        dynamo = pool.submit(startup.dynamo_import_s)  # process runs beside the probe
        monkeypatch.setattr(startup, "dynamo_import_s", dynamo.result)
        rows = {r.figure: r for r in startup.run(root, "lstm_spectrogram", repeats=1)}
    (whole,) = rows["command start to the first trial's first line (s)"].values
    (before,) = rows["command start to ray.init (s)"].values
    (init,) = rows["ray.init, local cluster, no dashboard (s)"].values
    after = rows["ray.init's end to the first trial's first line (s)"]
    assert min(before, init, after.value) > 0
    assert before + init + after.value == pytest.approx(whole, abs=1e-6)
    assert after.target == "<= 3" and after.met == (after.value <= 3)
    # The second sweep in the same process: its parts add up to its whole run_sweep.
    again = "a second 1-trial, 1-epoch sweep in the same process, Ray running"
    parts = ["run_sweep's start to its trial's first line", "its trial function, one epoch"]
    parts = [rows[f"{again}: {p} (s)"].value for p in [*parts, "trial end to run_sweep's return"]]
    assert min(parts) > 0
    assert sum(parts) == pytest.approx(rows[f"{again}: whole run_sweep (s)"].value, abs=1e-6)
    assert 0 < rows["import torch._dynamo after torch, a fresh process (s)"].value < 60


def test_main_job_sides_run_their_own_code(tmp_path):
    """The old side imports musictune from its exported tree, not from the installed package."""
    old = main_job.export("HEAD", tmp_path / "old")
    assert (old / "sweeps" / "lstm_spectrogram.py").is_file()
    env = main_job.side_env(old, tmp_path / "cache")
    code = "import musictune, trainables; print(musictune.__file__); print(trainables.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=old / "sweeps", capture_output=True, text=True
    ).stdout.split()
    assert Path(where[0]).is_relative_to(old / "src") and Path(where[1]).is_relative_to(old)
    assert env["MUSICTUNE_CACHE"] == str(tmp_path / "cache")


def test_extraction_runs_each_side_s_worker_step_on_tracks_like_a_user_s(tmp_path):
    """The tracks are 44.1 kHz stereo Vorbis and 48 kHz stereo Opus; a side's worker step runs
    in its own process from its exported tree, times the files, reads its memory and saves the
    arrays compared; the rows judge the ratios and the differences."""
    import soundfile

    paths = extraction.audio_files(extraction.write_tracks(tmp_path / "audio", minutes=0.1))
    formats = [(soundfile.info(p).samplerate, soundfile.info(p).channels) for p in paths]
    assert formats == [(48000, 2), (44100, 2)]  # opus/, vorbis/
    old = main_job.export("HEAD", tmp_path / "old")
    warm = extraction.EXCERPTS / "sorohanro_-_solo-trumpet-06.ogg"
    seconds, floor, peak = extraction.side_process(old, paths, 3.0, warm, tmp_path / "out")
    assert seconds > 0 and 0 < floor <= peak
    assert [np.load(tmp_path / "out" / f"{i}.full.npy").shape for i in (0, 1)] == [(140, 130)] * 2
    assert extraction.max_difference(tmp_path / "out", tmp_path / "out", "beat") == 0
    figures = {"decode_whole": 2.0, "decode_middle": 0.5, "decode_ratio": 4.0}
    for mode in ("whole", "clip"):
        for side, value in (("old", 4.0), ("new", 1.0)):
            figures |= {f"{side}_{mode}{k}": value for k in ("", "_mib", "_floor", "_above")}
        figures |= {f"{mode}_ratio{k}": 4.0 for k in ("", "_mib", "_above")}
        figures |= {f"{mode}_diff_full": 0.0, f"{mode}_diff_beat": 1e-4}
    rows = extraction.rows([figures])
    met = {(r.benchmark, r.figure): r.met for r in rows if r.target}
    assert met[("extract, whole files", f"speed-up, {extraction.BEFORE} / this")]
    assert met[("extract, whole files", f"max |this commit - {extraction.BEFORE}|, full arrays")]
    beat = f"max |this commit - {extraction.BEFORE}|, beat-synced arrays"
    assert met[("extract, whole files", beat)] is False and met[("extract, 30-s clips", beat)]
    assert met[("decode 30 s of each file", "speed-up")]
    assert run_all.BENCHMARKS["extraction"] is extraction


def test_main_job_refuses_an_unknown_commit_in_one_line(tmp_path):
    with pytest.raises(common.UserError, match="'no-such-commit'.*change BASELINE in"):
        main_job.export("no-such-commit", tmp_path / "old")


def test_whole_tracks_quick_run_writes_every_row_with_numeric_ratios(tmp_path, monkeypatch):
    """Five real `musictune train` processes (this checkout: whole tracks with and without a
    crop, and clips; the commit before a12697e: whole tracks and clips) and the in-process
    K-fold pair, at --quick: every row lands in the results file with a positive number."""
    from concurrent.futures import ThreadPoolExecutor

    def all_at_once(jobs: dict) -> dict:  # a smoke test times nothing: the runs share the cores
        with ThreadPoolExecutor(len(jobs)) as pool:
            done = {key: pool.submit(whole_tracks.train_process, *job) for key, job in jobs.items()}
            return {key: future.result() for key, future in done.items()}

    monkeypatch.setattr(whole_tracks, "train_all", all_at_once)
    monkeypatch.setattr(common, "read_load", lambda: (0.1, 0.1, 0.1))
    results = tmp_path / "R.md"
    argv = ["--quick", "--repeats", "1", "--cpus", "1", "--results", str(results)]
    assert whole_tracks.main(argv) == 0
    text = results.read_text()
    assert "## Whole tracks (--quick) (" in text and "994799e no crop" in text
    cells = {
        line.split(" | ")[1]: line.split(" | ")[2:6]
        for line in text.splitlines()
        if line.startswith(("| whole tracks |", "| K-fold |"))
    }
    before = whole_tracks.BEFORE
    runs = ["this commit, 16 whole tracks, --crop 2 s", "this commit, 2-s clips"]
    runs += ["this commit, 16 whole tracks, no crop", f"commit {before}, 16 whole tracks"]
    runs += [f"commit {before}, 2-s clips"]
    figures = [
        f"{r}: {f}" for r in runs for f in ("s per epoch", "wall time (s)", "peak RSS (GiB)")
    ]
    ratios = [
        f"crop epoch on whole tracks / 2-s clip epoch at {before}",
        "crop epoch on whole tracks / 2-s clip epoch, both this commit",
        f"2-s clip epoch, this commit / {before}",
        f"whole tracks, no crop: peak RSS {before} / this commit",
        f"whole tracks, no crop: s per epoch {before} / this commit",
        "fit_folds, K = 3 (s)",
        "one fit (s)",
        "fit_folds K = 3 / one fit",
    ]
    assert list(cells) == figures + ratios
    for median, low_high, _, _ in cells.values():
        assert math.isfinite(float(median)) and float(median) > 0 and low_high == ""
    assert cells[ratios[0]][2:] in (["about 1 (<= 1.25)", "yes"], ["about 1 (<= 1.25)", "**no**"])
    assert cells[ratios[-1]][2:] in (["<= 3", "yes"], ["<= 3", "**no**"])
    assert "windows for 3 validation tracks" in text  # read from the crop run's own output


def test_concurrency_ceiling_trains_the_pinned_model_without_ray(tmp_path):
    root = write_layout(tmp_path / "data", n_train=40, n_test=10, frames=30)
    seconds = concurrency.plain_epochs(str(root), "lstm_spectrogram", 1, 1, start_at=0.0)
    assert 0 < seconds < 30


def test_concurrency_ceiling_is_the_processes_combined_throughput():
    """One process with 2 threads: 2 s an epoch; two 1-thread processes at 3 s and 4 s: together
    1/3 + 1/4 epochs a second, 7/6 of the one's 1/2, not 2 x 2 / 4 = 1 (the slower one twice)."""
    assert concurrency.combined(2.0, [3.0, 4.0]) == pytest.approx(7 / 6)
    assert concurrency.combined(2.0, [4.0, 4.0]) == pytest.approx(1.0)
    assert concurrency.TARGET == 0.9  # a share of that ceiling, not an absolute ratio


def test_all_benchmarks_say_where_the_gpu_figure_stands():
    row = run_all.gpu_row()
    assert row.target == ">= 2.5" and row.met is None and "gpu_check.py" in row.value
    assert list(run_all.BENCHMARKS)[0] == "startup" and "main_job" in run_all.BENCHMARKS
    assert run_all.BENCHMARKS["whole_tracks"] is whole_tracks


def test_all_benchmarks_quick_says_up_front_how_long_from_the_last_recorded_run(tmp_path):
    quick = run_all.chosen(None, quick=True)
    assert quick == ["startup", "data_path", "overhead", "concurrency", "search_efficiency"]
    assert run_all.chosen(["main_job"], quick=True) == ["main_job"]
    assert run_all.chosen(None, quick=False) == list(run_all.BENCHMARKS)
    results = tmp_path / "R.md"
    assert "no recorded run" in run_all.estimate(quick, True, 3, results)
    old = "- repeats: 3; each\n- time per benchmark: startup 30 s, data_path 12 s, overhead 60 s"
    results.write_text(
        "# R\n\n## All benchmarks (--quick) (2026-01-01 10:00 UTC)\n\n" + old + ", "
        "concurrency 90 s, search_efficiency 168 s\n\n## All benchmarks (2026-01-02 10:00 UTC)"
        "\n\n- repeats: 3\n- time per benchmark: startup 999 s\n"
    )
    said = run_all.estimate(quick, True, 1, results)
    assert "about 2 min (120 s), from the run of 2026-01-01 10:00 UTC" in said
    assert "about 50 min (2997 s)" in run_all.estimate(["startup"], False, 9, results)
    assert "no recorded run" in run_all.estimate(["startup", "overhead"], False, 3, results)


# --------------------------------------------------------------------------- fairness


def test_search_efficiency_sides_share_trials_seed_patience_and_all_cores():
    base = {"preset": "lstm_spectrogram", "samples": 6, "max_epochs": 4, "seed": 7}
    sides = search_efficiency.side_options(base, cpus=2, repeat=1)
    course, project = sides["course"], sides["project"]
    assert (course.scheduler, course.max_concurrent) == ("fifo", 1)
    assert (project.scheduler, project.max_concurrent) == ("asha", None)
    assert course.patience == project.patience == 10
    assert course.seed == project.seed == 7 and course.samples == project.samples == 6
    # No untuned-default training after the trials inside the timed sweep (where run_sweep has it).
    assert course.baseline_train is False
    assert project.baseline_train is False
    # Torch threads per trial x trials at once = the 2 CPUs on both sides.
    assert Resources(course.cpus_per_trial).threads == 2
    assert Resources(project.cpus_per_trial).threads == 1 and project.cpus_per_trial == 1
    assert "1, 2" not in search_efficiency.seeds(0, 3) and "0..2" in search_efficiency.seeds(0, 3)


def test_search_efficiency_optuna_peers_draw_from_the_harness_space_and_budget(tmp_path):
    """The plain-Optuna workers build the project's own plan from their options: the same
    searched keys and ranges, fixed values, epochs, patience, trials and one thread each."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from musictune.tuning.plan import make_plan
    from musictune.tuning.space import describe_space

    base = {"preset": "lstm_spectrogram", "samples": 6, "max_epochs": 4, "seed": 7}
    base |= {"storage": str(tmp_path), "data_dir": str(tmp_path)}
    sides = search_efficiency.side_options(base, cpus=2, repeat=0)
    project = make_plan(sides["project"])
    for name in search_efficiency.PEERS:
        job = optuna_peer.peer_job(sides[name])  # what each worker is handed
        space = {k: optuna.distributions.json_to_distribution(v) for k, v in job["space"].items()}
        fixed = job["fixed"]
        searched = {k: v for k, v in project.space.items() if k not in fixed}
        assert space == OptunaSearch.convert_search_space(searched) and space
        assert fixed == {k: v for k, v in project.space.items() if k not in space}
        assert fixed["seed"] == 7 and job["samples"] == project.options.samples == 6
        assert job["settings"] == project.settings  # epochs, patience, threads, family
    assert project.settings.threads == 1 and project.settings.max_epochs == 4
    # Every harness side is the project's sweep with its own change only, the same space too.
    harness = [n for n in sides if n not in search_efficiency.PEERS]
    assert {"tpe_asha", "hyperband", "bohb", "asha_r2", "course"} <= set(harness)
    fields = asdict(sides["project"]) | {"name": None}
    course = {"max_concurrent": 1, "cpus_per_trial": 2.0}
    for name in harness:
        side = search_efficiency.SIDES[name]
        changed = side.overrides | (course if name == "course" else {})
        assert asdict(sides[name]) | {"name": None} == fields | changed, name
        if name == "bohb" and not search_efficiency.bohb_installed():
            continue  # its packages are optional; run() skips it saying so
        plan = make_plan(sides[name])
        assert describe_space(plan.space) == describe_space(project.space), name
    # HyperBand and BOHB: the epoch budget as max_t; BOHB only with its own brackets.
    from ray.tune.schedulers import HyperBandScheduler

    from musictune.tuning.runner import build_scheduler

    hyperband = build_scheduler(sides["hyperband"])
    assert type(hyperband) is HyperBandScheduler and hyperband._max_t_attr == 4
    with pytest.raises(common.UserError, match="--search bohb needs --scheduler hyperband"):
        replace(sides["bohb"], scheduler="asha").validate()
    if search_efficiency.bohb_installed():
        from ray.tune.schedulers import HyperBandForBOHB

        assert type(build_scheduler(sides["bohb"])) is HyperBandForBOHB
    # BOHB's ConfigSpace suggests numpy scalars, which torch's layers refuse: trials get plain ones.
    from ray.tune.search import Searcher

    from musictune.tuning.runner import PlainValues

    class Numpy(Searcher):
        def suggest(self, trial_id):
            return {"hidden_size": np.int64(64), "bidirectional": np.bool_(True), "lr": 0.01}

    config = PlainValues(Numpy(metric="m", mode="max"), max_concurrent=2).suggest("t1")
    assert config == {"hidden_size": 64, "bidirectional": True, "lr": 0.01}
    assert [type(v) for v in config.values()] == [int, bool, float]
    hyperband = optuna_peer.make_pruner("hyperband", 4)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert (hyperband._min_resource, hyperband._max_resource) == (1, 4)


def test_search_efficiency_compares_every_side_with_the_default_repeat_by_repeat():
    inf = math.inf

    def repeat(project, tpe, course):  # (reach_all, reach_course) per side
        names = ("project", "tpe_asha", "course")
        return {
            "sides": {
                n: {"wall": 9.0, "reach_all": a, "reach_course": c}
                for n, (a, c) in zip(names, (project, tpe, course))
            }
        }

    # Three repeats: tpe_asha first twice to the best of all sides, never in the third.
    results = [
        repeat((6, 4), (3, 2), (20, 8)),
        repeat((inf, 5), (4, 5), (inf, 9)),
        repeat((5, 3), (inf, inf), (9, 6)),
    ]
    rows = {r.figure: r for r in search_efficiency.ratio_rows(results)}
    all_sides = rows["time to the best of all sides - 0.01, tpe_asha / project"]
    assert all_sides.values == [0.5, 0.0, inf]
    assert all_sides.note == "tpe_asha first in 2 of 3 repeat(s)"
    course = rows["time to the course's best - 0.01, tpe_asha / project"]
    assert course.values == [0.5, 1.0, inf]
    assert course.note == "tpe_asha first in 1 of 3 repeat(s)"
    assert rows["time to the course's best - 0.01, project / course"].values == [0.5, 5 / 9, 0.5]


def test_concurrency_compares_runs_using_the_same_cores():
    base = {"preset": "lstm_spectrogram", "samples": 4, "max_epochs": 2, "seed": 0}
    runs = concurrency.run_options(base, cpus=2)
    assert list(runs) == ["many", "one_all", "one_1"]  # the claim's side first
    threads = {k: Resources(o.cpus_per_trial).threads for k, o in runs.items()}
    assert runs["many"].max_concurrent * threads["many"] == 2
    assert runs["one_all"].max_concurrent * threads["one_all"] == 2
    assert {o.patience for o in runs.values()} == {0}
    assert not any(o.baseline_train for o in runs.values())
    assert len({o.name for o in runs.values()}) == 3


# --------------------------------------------------------------------------- what produced it


def test_load_is_read_before_the_timed_function_runs(capsys):
    events = []
    loads = iter([(0.4, 0.3, 0.2), (1.9, 1.0, 0.5)])
    ticks = iter([100.0, 107.5])

    def load_reader():
        events.append("load")
        return next(loads)

    def clock():
        events.append("clock")
        return next(ticks)

    def fn():
        events.append("run")
        return "rows"

    before, result, wall, after = common.measured(fn, load_reader, clock)
    assert events == ["load", "clock", "run", "clock", "load"]
    assert (before.load, result, wall, after) == ((0.4, 0.3, 0.2), "rows", 7.5, (1.9, 1.0, 0.5))
    assert not before.busy and capsys.readouterr().err == ""
    text = common.section([], "T", "s", before, 3, load_after=after, wall_s=wall, command="x")
    assert "before the run: 0.40, 0.30, 0.20 (idle enough" in text
    assert "after it: 1.90, 1.00, 0.50, this run's own work included" in text
    assert "BUSY" not in text and "Busy" not in text and "wall time: 8 s" in text


def test_run_main_reads_the_load_before_building_and_a_busy_run_says_so(monkeypatch, capsys):
    events = []

    def load():
        events.append("load")
        return (2.3, 1.1, 0.9)

    monkeypatch.setattr(common, "read_load", load)

    def build(args):
        events.append("build")
        return common.Outcome([common.Row("b", "f", [1.0, 2.0, 3.0])], "settings", "seed 0")

    args = common.parser("x").parse_args(["--no-save"])
    assert common.run_main(build, args, "Busy test") == 0
    assert events[:2] == ["load", "build"]
    out, err = capsys.readouterr()
    assert "load average 2.30 before the run" in err
    heading = next(line for line in out.splitlines() if line.startswith("## "))
    assert heading.startswith("## Busy test (") and heading.endswith("— BUSY MACHINE")
    assert "**Busy machine: the 1-minute load average was 2.30 before this run started" in out
    assert "repeats: 3; each figure is the median" in out and "seeds: seed 0" in out


def test_commit_is_recorded_with_a_dirty_mark(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    (repo / "a.txt").write_text("one")
    (repo / "RESULTS.md").write_text("# results")
    (repo / "plot.png").write_bytes(b"png")
    git("add", "a.txt", "RESULTS.md", "plot.png")
    git("commit", "-qm", "first")
    short = git("rev-parse", "--short", "HEAD")
    assert common.git_commit(repo) == short
    # A benchmark's own outputs (an appended table, a new plot) are not code changes.
    (repo / "RESULTS.md").write_text("# results\n\n## another run")
    (repo / "plot.png").write_bytes(b"png2")
    assert common.git_commit(repo) == short
    (repo / "untracked.txt").write_text("not part of the tree")
    assert common.git_commit(repo) == short
    (repo / "a.txt").write_text("two")
    assert common.git_commit(repo) == short + "+dirty"
    (tmp_path / "plain").mkdir()
    assert common.git_commit(tmp_path / "plain").startswith("unknown")
    # This checkout's own commit lands in every section.
    here = subprocess.run(
        ["git", "-C", str(BENCH), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    before = common.before_run(lambda: (0.1, 0.1, 0.1))
    assert here and before.commit.removesuffix("+dirty") == here
    assert f"- commit: {before.commit}\n" in common.section([], "T", "s", before, 3, command="x")
    assert "ray " in common.section([], "T", "s", before, 3, command="x")


# --------------------------------------------------------------------------- repeats


def test_figures_are_the_median_with_min_max_of_the_repeats():
    row = common.Row("b", "f", [3.0, 1.0, 2.0], "<= 2.5", common.at_most(2.5))
    assert row.value == 2.0 and row.met is True
    assert row.cells()[2:6] == ["2", "1 – 3", "<= 2.5", "yes"]
    never = common.Row("b", "f", [math.inf, math.inf, 0.1], "<= 0.25", common.at_most(0.25))
    assert never.value == math.inf and never.met is False and never.cells()[2] == "never"
    assert common.median([1.0, math.nan, 3.0]) == 2.0
    assert common.median_range([0.5, 0.7, 0.6]) == "0.6 (0.5 – 0.7)"
    assert common.median_range([0.5]) == "0.5"
    single = common.Row("b", "f", 4.0)
    assert single.values == [4.0] and single.cells()[2:4] == ["4", ""]
    text = common.section([row], "Smoke", "s", _before(), 1, command="x")
    assert "— 1 repeat: no spread" in text.splitlines()[1]
    assert "repeats: **1 repeat: no spread**" in text


@pytest.mark.parametrize("repeats, ok", [(1, True), (2, False), (0, False), (3, True), (5, True)])
def test_repeats_are_one_for_smoke_tests_or_at_least_three(repeats, ok):
    if ok:
        assert common.check_repeats(repeats) == repeats
    else:
        with pytest.raises(common.UserError, match="at least 3"):
            common.check_repeats(repeats)


# --------------------------------------------------------------------------- search efficiency


def _history(start: float, times: list[float], f1: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time_total_s": times,
            "timestamp": [int(start + t) for t in times],
            "val_macro_f1": f1,
        }
    )


def test_time_to_reach_recovers_trial_start_from_whole_second_stamps():
    # The trial started at t = 100.3 s; Ray stamps whole seconds, time_total_s counts from start.
    trial = _history(100.3, [1.9, 2.7, 5.9], [0.2, 0.5, 0.6])  # at t = 102.2, 103.0, 106.2
    never = pd.DataFrame({"time_total_s": [1.0], "timestamp": [101], "val_macro_f1": [0.1]})
    assert search_efficiency.result_times(trial).tolist() == pytest.approx([102.2, 103.0, 106.2])
    assert search_efficiency.time_to_reach([never, trial], 0.45, 100.0) == pytest.approx(3.0)
    assert search_efficiency.time_to_reach([never], 0.45, 100.0) == math.inf
    assert common.ratio(math.inf, 10.0) == math.inf and not common.at_most(0.25)(math.inf)


def test_best_so_far_curves_are_plotted_to_a_png(tmp_path):
    a = _history(100.3, [0.7, 1.9, 2.7], [0.3, 0.2, 0.4])  # both started at t = 100.3
    b = _history(100.3, [0.7, 2.2], [0.35, 0.1])
    curve = search_efficiency.best_so_far([a, None, b], 100.0)
    assert curve["seconds"].tolist() == pytest.approx([1.0, 1.0, 2.2, 2.5, 3.0])
    assert curve["best"].tolist() == [0.3, 0.35, 0.35, 0.35, 0.4]
    held = search_efficiency.until(curve, 9.0)  # to the sweep's end
    assert held.iloc[-1].tolist() == [9.0, 0.4] and len(held) == len(curve) + 1
    empty = search_efficiency.best_so_far([], 100.0)
    repeats = [
        {"sides": {"course": {"curve": curve}, "optuna_median": {"curve": curve}}},
        {"sides": {"course": {"curve": curve}, "optuna_median": {"curve": empty}}},
    ]
    png = search_efficiency.plot_curves(repeats, tmp_path / "plots" / "search.png", "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


# --------------------------------------------------------------------------- GPU check, no GPU


def test_gpu_sampler_parses_nvidia_smi_and_summarises():
    text = "37, 1024\n[N/A], [N/A]\n63, 2048\nnot a line\n"
    assert gpu_check.parse_smi(text) == [(37.0, 1024.0), (63.0, 2048.0)]
    readings = iter([[(40.0, 100.0), (60.0, 300.0)], RuntimeError("smi gone"), [(90.0, 500.0)]])

    def query():
        reading = next(readings)
        if isinstance(reading, Exception):
            raise reading
        return reading

    sampler = gpu_check.UtilisationSampler(query)
    for _ in range(3):
        sampler._sample()
    assert sampler.samples == [(50.0, 400.0), (90.0, 500.0)] and sampler.failures == 1
    assert sampler.stats() == {"util_mean": 70.0, "util_max": 90.0, "mem_max": 500.0}
    assert all(math.isnan(v) for v in gpu_check.UtilisationSampler(None).stats().values())
    # In its thread: samples until stopped, then stops.
    with gpu_check.UtilisationSampler(lambda: [(10.0, 1.0)], every_s=0.01) as live:
        for _ in range(200):
            if len(live.samples) >= 3:
                break
            live._stop.wait(0.01)
    assert len(live.samples) >= 3 and not live._thread.is_alive()


def test_gpu_check_alternates_sides_and_separates_start_from_throughput():
    assert [gpu_check.run_order([1, 0.5], r) for r in range(3)] == [[1, 0.5], [0.5, 1], [1, 0.5]]
    firsts = [gpu_check.run_order([1, 0.5, 0.25], r)[0] for r in range(3)]
    assert sorted(firsts) == [0.25, 0.5, 1]
    figures = gpu_check.sweep_figures(4.0, 30.0, [(10.0, 20.0), (12.0, 25.0)], [10, 13], [0.2, 0.4])
    assert figures["start_s"] == 6.0 and figures["training_s"] == 15.0
    assert figures["trials_per_hour_training"] == pytest.approx(2 * 3600 / 15)
    assert figures["trials_per_hour_all"] == pytest.approx(2 * 3600 / 26)
    assert figures["mean_running"] == pytest.approx(23 / 15)
    runs = [
        {**figures, "util_mean": u, "util_max": u, "mem_max": 1.0, "fraction": f}
        for f, u in [(1.0, 40.0), (1.0, 50.0), (1.0, 60.0), (0.5, 70.0)]
    ]
    table = gpu_check.table([1.0, 0.5], runs)
    assert "| GPU utilisation mean % | 50 (40 – 60) | 70 |" in table


@pytest.mark.skipif(torch_has_cuda(), reason="this machine has a GPU: the check would run")
def test_gpu_check_without_a_gpu_says_what_it_would_run_and_exits_0(tmp_path):
    results = tmp_path / "R.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "gpu_check.py"), "--results", str(results)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stdout.strip().splitlines()
    assert line.startswith("gpu_check.py: no GPU") and "nothing run" in line
    assert "lab's smoke budget" in line and "0.25 GPU against 1 GPU" in line and "AMP" in line
    assert not results.exists()


def test_gpu_check_cpu_timing_writes_its_table(tmp_path):
    """--cpu-timing at a toy size (the full size takes minutes a batch on 2 cores): the
    training step runs, and the table, with how it was made, goes to the results file."""
    results = tmp_path / "R.md"
    argv = ["--cpu-timing", "--frames", "32", "--batch-size", "4", "--batches", "2"]
    assert gpu_check.main([*argv, "--train-clips", "10", "--results", str(results)]) == 0
    text = results.read_text()
    assert "## Full-length course model epoch on the CPU" in text and "- commit: " in text
    assert "s per epoch (3 batches = 10 clips)" in text and "given train clips" in text
    for model in ("course_cnn", "course_lstm"):
        (row,) = [r for r in text.splitlines() if r.startswith(f"| {model} | cpu | off |")]
        per_batch, per_epoch = (float(c.split()[0]) for c in row.split(" | ")[3:5])
        assert 0 < per_batch and per_epoch == pytest.approx(3 * per_batch, rel=0.05), row


# --------------------------------------------------------------------------- files and errors


def test_results_are_appended_without_touching_other_sections(tmp_path):
    results = tmp_path / "RESULTS.md"
    rows = [common.Row("overhead", "ratio", [1.05, 1.0, 1.2], "<= 1.1", common.at_most(1.1), "a|b")]
    for title in ("First", "Second"):
        if title == "Second":
            results.write_text(results.read_text() + "\n## Other\n\nkept as written\n")
        command = f"python {'x' if title == 'First' else 'y'}.py"
        common.append_results(
            common.section(rows, title, "tiny", _before(), 3, command=command), results
        )
    text = results.read_text()
    assert text.startswith("# Benchmark results\n") and text.count("# Benchmark results") == 1
    assert text.index("## First") < text.index("## Other") < text.index("## Second")
    assert "kept as written" in text and "`python y.py`" in text and "a\\|b" in text
    assert "| overhead | ratio | 1.05 | 1 – 1.2 | <= 1.1 | yes |" in text
    assert "cores" in text and "GPU:" in text and "- commit: abc1234\n" in text
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize(
    "main, argv, problem",
    [
        (data_path.main, ["--data-dir", "{missing}"], "does not exist"),
        (data_path.main, ["--cpus", "0"], "--cpus must be"),
        (run_all.main, ["--repeats", "2"], "--repeats 2: use at least 3"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(main, argv, problem, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(common, "read_load", lambda: (0.1, 0.1, 0.1))  # no busy-machine warning
    argv = [a.replace("{missing}", str(tmp_path / "missing")) for a in argv]
    assert main([*argv, "--no-save", "--results", str(tmp_path / "R.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and problem in err and "Traceback" not in err
    assert not (tmp_path / "R.md").exists()
