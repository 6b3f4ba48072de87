"""`musictune lab --budget smoke` against a real two-node Ray cluster (`ray.cluster_utils`).

One lab run serves every assertion (it takes about two minutes on 2 cores): the CLI exits 0,
every experiment of the plan finishes, the trials ran on both nodes (on the CPU), and one report
covers them all. The lab is called through its command line only, in its own process, so this
test holds whatever the lab's insides become; the cluster lives in another process (the
session's `ray_local` may own this one's Ray connection), as in test_cluster.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# A head and a worker of one CPU each, then the lab's smoke budget on it, through its CLI.
CLUSTER_LAB_SCRIPT = r"""
import json, subprocess, sys, time
from pathlib import Path

from ray.cluster_utils import Cluster

data_dir, results, reports, out = sys.argv[1:5]
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
worker = cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
report = {"head": cluster.head_node.node_id, "worker": worker.node_id}
started = time.time()
try:
    lab = subprocess.run(
        [sys.executable, "-m", "musictune", "lab", "--budget", "smoke", "--data-dir", data_dir,
         "--storage", results, "--out", reports, "--address", cluster.address],
        capture_output=True, text=True, timeout=600,
    )
    report.update(code=lab.returncode, stderr=lab.stderr[-3000:], lab_s=time.time() - started)
finally:
    Path(out).write_text(json.dumps(report))
    cluster.shutdown()
"""


def trial_rows(results: Path) -> dict[str, list[dict]]:
    """Every trial's reported rows (its result.json), by experiment/trial folder."""
    return {
        str(path.parent.relative_to(results)): [
            json.loads(line) for line in path.read_text().splitlines() if line.strip()
        ]
        for path in sorted(results.glob("*/*/result.json"))
    }


@pytest.fixture(scope="module")
def lab_on_two_nodes(tmp_path_factory, demo_tiny) -> dict:
    root = tmp_path_factory.mktemp("lab-cluster")
    results, reports, out = root / "results", root / "reports", root / "cluster.json"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-c", CLUSTER_LAB_SCRIPT, str(demo_tiny), str(results), str(reports),
         str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=700,
    )  # fmt: skip
    assert proc.returncode == 0 and out.exists(), proc.stderr[-3000:]
    return {**json.loads(out.read_text()), "results": results, "reports": reports}


def test_lab_smoke_on_two_nodes_finishes_every_experiment(lab_on_two_nodes):
    from musictune.commands.lab import lab_plan

    lab = lab_on_two_nodes
    assert lab["code"] == 0, lab["stderr"]
    names = [step.name for step in lab_plan()]
    for name in names:
        meta = json.loads((lab["results"] / name / "sweep.json").read_text())
        assert meta["status"] == "finished", (name, meta["status"])
    trials = trial_rows(lab["results"])
    assert {key.split("/")[0] for key in trials} == set(names)  # every experiment trained
    assert all(rows and rows[-1]["epoch"] == 1 for rows in trials.values()), trials  # smoke: 1


def test_lab_trials_run_on_both_nodes(lab_on_two_nodes):
    lab = lab_on_two_nodes
    rows = [row for trial in trial_rows(lab["results"]).values() for row in trial]
    nodes = {row["node_id"] for row in rows}
    assert nodes == {lab["head"], lab["worker"]}, nodes
    assert {row["device"] for row in rows} == {"cpu"}  # no GPU on either node


def test_lab_on_two_nodes_writes_one_report_over_every_experiment(lab_on_two_nodes):
    from musictune.commands.lab import lab_plan

    (report,) = lab_on_two_nodes["reports"].iterdir()
    page = (report / "index.md").read_text()
    assert all(step.name in page for step in lab_plan())
    assert "## Lab: data exploration" in page and "## Lab: overfit one batch" in page
    assert (report / "index.html").read_text().endswith("</body></html>\n")
