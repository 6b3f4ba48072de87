"""The benchmarks: the data-path benchmark end to end at its smallest size on a real local Ray,
the time-to-target arithmetic, RESULTS.md appends, and one-line errors. No speed targets here:
timings on a shared test machine mean nothing."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from .conftest import write_layout

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import data_path  # noqa: E402
import overhead  # noqa: E402
import search_efficiency  # noqa: E402


def test_data_path_benchmark_runs_at_its_smallest_size(ray_local, tmp_path):
    root = write_layout(tmp_path / "data", n_train=40, n_test=10, frames=30)
    rows = data_path.run(root, "lstm_spectrogram", epochs=1, repeats=1)
    assert [r.benchmark for r in rows] == ["data path"] * 4
    values = [r.value for r in rows]
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in values)
    start, _, speedup, _ = rows
    assert start.target == "< 0.1" and start.met == (start.value < 0.1)
    assert speedup.target == ">= 10" and speedup.met == (speedup.value >= 10)
    lines = common.markdown_table(rows).strip().splitlines()
    assert len(lines) == 2 + len(rows)
    assert all(line.count(" | ") == len(common.COLUMNS) - 1 for line in lines if "---" not in line)


def test_overhead_benchmark_splits_ray_time_into_a_timeline(ray_local, tmp_path):
    """The timed trainable reaches Ray's workers from an imported module, and its spans add up."""
    root = write_layout(tmp_path / "data", n_train=40, n_test=10, frames=30)
    rows = {r.figure: r for r in overhead.run(root, "lstm_spectrogram", trials=3, epochs=1)}
    ray_s = rows["Ray Tune sweep, Ray already running (s)"].value
    inside = rows["Ray: inside the trial functions (s)"].value
    start = rows["Ray: sweep start to the first trial's first line (s)"].value
    gap = rows["Ray: between one trial's end and the next one's start, mean (s)"]
    tail = rows["Ray: last trial's end to the sweep's return (s)"].value
    assert gap.note.startswith("2 gaps")  # three trials, three spans
    assert 0 < inside and 0 < start and 0 <= gap.value and 0 <= tail
    assert start + inside + 2 * gap.value + tail == pytest.approx(ray_s, abs=1e-6)
    ratio = rows["time ratio Ray Tune / Optuna, Ray running"]
    assert ratio.value == pytest.approx(ray_s / rows["plain Optuna loop, one process (s)"].value)


def test_time_to_reach_recovers_trial_start_from_whole_second_stamps():
    # The trial started at t = 100.3 s; Ray stamps whole seconds, time_total_s counts from start.
    trial = pd.DataFrame(
        {
            "time_total_s": [1.9, 2.7, 5.9],  # at t = 102.2, 103.0, 106.2
            "timestamp": [102, 103, 106],
            "val_macro_f1": [0.2, 0.5, 0.6],
        }
    )
    never = pd.DataFrame({"time_total_s": [1.0], "timestamp": [101], "val_macro_f1": [0.1]})
    assert search_efficiency.result_times(trial).tolist() == pytest.approx([102.2, 103.0, 106.2])
    assert search_efficiency.time_to_reach([never, trial], 0.45, 100.0) == pytest.approx(3.0)
    assert search_efficiency.time_to_reach([never], 0.45, 100.0) == math.inf
    assert common.ratio(math.inf, 10.0) == math.inf and not common.at_most(math.inf, 0.25)


def test_results_are_appended_without_touching_other_sections(tmp_path):
    results = tmp_path / "RESULTS.md"
    rows = [common.Row("overhead", "ratio", 1.05, "<= 1.1", True, "a | b")]
    common.append_results(common.section(rows, "First", "tiny", command="python x.py"), results)
    results.write_text(results.read_text() + "\n## GPU check\n\nkept as written\n")
    common.append_results(common.section(rows, "Second", "tiny", command="python y.py"), results)
    text = results.read_text()
    assert text.startswith("# Benchmark results\n") and text.count("# Benchmark results") == 1
    assert text.index("## First") < text.index("## GPU check") < text.index("## Second")
    assert "kept as written" in text and "`python y.py`" in text and "a \\| b" in text
    assert "| overhead | ratio | 1.05 | <= 1.1 | yes |" in text
    assert "cores" in text and "GPU:" in text
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize(
    "argv, problem",
    [(["--data-dir", "{missing}"], "does not exist"), (["--cpus", "0"], "--cpus must be")],
)
def test_bad_input_is_one_line_and_exit_2(argv, problem, tmp_path, capsys):
    argv = [a.replace("{missing}", str(tmp_path / "missing")) for a in argv]
    assert data_path.main([*argv, "--no-save", "--results", str(tmp_path / "R.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and problem in err and "Traceback" not in err
    assert not (tmp_path / "R.md").exists()
