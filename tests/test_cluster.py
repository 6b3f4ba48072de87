"""Clusters: the `ray up` file against Ray's own schema, sweeps on a real two-node Ray cluster
(a node lost mid-sweep, more GPUs than any node has), and cluster input that must fail fast.
Trials placed on both nodes: test_lab's two-node lab.

The two-node cluster runs in a subprocess: the session's `ray_local` may already own this
process's Ray connection.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from musictune.errors import UserError
from musictune.tuning.cluster import autoscaler_node_types, check_address, check_resources
from musictune.tuning.summary import print_summary

from .conftest import sweep_options, write_layout

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# Runs in its own process: a head and a worker node of one CPU each, then two sweeps.
CLUSTER_SCRIPT = r"""
import json, sys, threading, time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from musictune.errors import UserError
from musictune.tuning.runner import run_sweep
from tests.conftest import sweep_options

data_dir, storage, out = sys.argv[1:4]
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
worker = cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
report = {"head": cluster.head_node.node_id, "worker": worker.node_id}
common = ["--data-dir", data_dir, "--storage", storage, "--address", cluster.address,
          "--scheduler", "fifo", "--patience", "0"]


def history(results):
    rows = []
    for r in results:
        df = r.metrics_dataframe
        rows.append({"name": Path(r.path).name, "status": "ERROR" if r.error else "TERMINATED",
                     "epochs": [int(e) for e in df["epoch"]], "nodes": list(df["node_id"]),
                     "devices": sorted(set(df["device"])),
                     "iterations": int(r.metrics["training_iteration"])})
    return rows


# 1. More GPUs per trial than any node has. (Trials placed on both nodes: test_lab's cluster.)
t = time.time()
try:
    run_sweep(sweep_options("lstm_spectrogram_beat", *common, "--gpus-per-trial", "1",
                            "--name", "gpu"))
except UserError as exc:
    report["gpu_error"] = str(exc)
report["gpu_error_s"] = time.time() - t

# 2. The worker node goes away once a trial there has reported its second epoch (so the
# driver has registered the epoch-1 checkpoint, not just seen its folder). The driver's live
# result.json files sit in the session folder; storage gets copies only now and then.
session = Path(cluster.head_node.get_session_dir_path())
removed = {}


def remove_worker():
    deadline = time.time() + 120
    while time.time() < deadline and not removed:
        for trial in session.glob("artifacts/*/lost/driver_artifacts/*/result.json"):
            lines = [json.loads(x) for x in trial.read_text().splitlines() if x.strip()]
            on_worker = lines and lines[-1].get("node_id") == worker.node_id
            if on_worker and 2 <= lines[-1]["epoch"] <= 4:  # mid-trial (of 6 epochs)
                cluster.remove_node(worker)
                removed.update(trial=trial.parent.name, epoch=lines[-1]["epoch"])
                return
        time.sleep(0.05)


watcher = threading.Thread(target=remove_worker, daemon=True)
watcher.start()
t = time.time()
results = run_sweep(sweep_options("lstm_spectrogram", *common, "--samples", "2",
                                  "--max-epochs", "6", "--checkpoint-every", "1",
                                  "--max-failures", "2", "--name", "lost"))
watcher.join(timeout=5)
report["lost"] = history(results)
report["removed"] = removed
report["lost_s"] = time.time() - t
Path(out).write_text(json.dumps(report))
ray.shutdown()
cluster.shutdown()
"""


# --------------------------------------------------------------------------- cluster.yaml


def load_cluster_yaml() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def validate(config: dict) -> None:
    """Ray's own offline check of a `ray up` file (no cloud call)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(config)))


def test_cluster_yaml_passes_ray_autoscaler_schema():
    config = load_cluster_yaml()
    validate(config)
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    head, workers = config["head_node_type"], [t for t in types if t != config["head_node_type"]]
    assert not types[head]["node_config"]["InstanceType"].startswith(("g", "p"))  # a CPU head
    (gpu,) = workers
    assert types[gpu]["node_config"]["InstanceType"].startswith(("g", "p"))
    assert 1 <= types[gpu]["min_workers"] <= types[gpu]["max_workers"] <= config["max_workers"]
    # Every node gets this working tree and installs it; the data comes from the bucket.
    assert config["file_mounts"]["~/musictune"] == "."
    setup = " ".join(config["setup_commands"])
    assert "pip install -q -e ~/musictune" in setup and "s3 sync" in setup


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c.update(head_node_type="nope"),  # not one of the node types
        lambda c: c["available_node_types"]["gpu_worker"].update(min_workers=9),  # > max_workers
        lambda c: c["available_node_types"]["gpu_worker"].update(gpus=1),  # unknown key
    ],
)
def test_schema_check_catches_broken_variants(break_it):
    config = load_cluster_yaml()
    break_it(config)
    with pytest.raises(Exception):  # noqa: B017 - jsonschema or ValueError, both are Ray's
        validate(config)


# --------------------------------------------------------------------------- two nodes


@pytest.fixture(scope="module")
def two_node_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    # 400 frames: an epoch of 60 frames took 0.03 s, so the node-loss watcher had a window of
    # about 0.1 s to catch epochs 2-4; at 400 it has about a second (the sweeps take ~4 s more).
    data = write_layout(root / "data", n_train=120, n_test=20, frames=400)
    out = root / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run(
        [sys.executable, "-c", CLUSTER_SCRIPT, str(data), str(root / "results"), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_lost_worker_node_does_not_stop_the_sweep(two_node_report):
    report = two_node_report
    removed = report["removed"]
    assert removed, "the worker node was never removed: trials finished too fast"
    trials = report["lost"]
    assert all(t["status"] == "TERMINATED" and t["epochs"][-1] == 6 for t in trials), trials
    # The trial that lost its node carried on on the head from its checkpoint, not from epoch 1.
    # (Its rows from the lost node may or may not survive in its history; the head's rows do.)
    (moved,) = [t for t in trials if t["name"] == removed["trial"]]
    first_on_head = moved["nodes"].index(report["head"])
    assert set(moved["nodes"][:first_on_head]) <= {report["worker"]}
    assert moved["epochs"][first_on_head] > 1, moved


def test_more_gpus_than_any_node_is_refused(two_node_report):
    message = two_node_report["gpu_error"]
    assert "--gpus-per-trial 1" in message and "0 GPU" in message
    assert two_node_report["gpu_error_s"] < 10


# --------------------------------------------------------------------------- bad addresses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_address_where_nothing_listens_fails_in_one_line_fast(tmp_path, fake_root):
    address = f"127.0.0.1:{free_port()}"
    storage = tmp_path / "results"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "musictune", "sweep", "lstm_spectrogram_beat", "--smoke-test",
         "--data-dir", str(fake_root), "--storage", str(storage), "--address", address],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"no Ray cluster answers at {address}" in lines[0] and "--address" in lines[0]
    # Start-up imports dominate (seconds on a busy CI box); a hang would be minutes.
    assert elapsed < 60, elapsed
    assert not storage.exists() or not any(storage.iterdir()), "a sweep that never ran left files"


def test_silent_listener_is_not_mistaken_for_a_cluster():
    """A port that accepts TCP but never speaks gRPC: ray.init would retry it for minutes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    started = time.monotonic()
    with pytest.raises(UserError, match="no answer within 1 s"):
        check_address(address, timeout=1.0)
    assert time.monotonic() - started < 5
    server.close()


@pytest.mark.parametrize("address", ["localhost", "10.0.0.5:port", "ray://nohost"])
def test_malformed_address_is_refused(address):
    with pytest.raises(UserError, match="is not host:port"):
        check_address(address)


# --------------------------------------------------------------------------- autoscaling


def test_gpus_the_autoscaler_can_add_count(ray_local, tmp_path):
    """min_workers 0: no live GPU node yet, but the head's autoscaler config has a GPU type."""
    options = sweep_options("lstm_spectrogram_beat", "--gpus-per-trial", "0.25")
    missing = tmp_path / "absent.yaml"
    with pytest.raises(UserError, match="--gpus-per-trial 0.25"):
        check_resources(options, missing)

    config = load_cluster_yaml()
    config["available_node_types"]["gpu_worker"].update(
        min_workers=0, resources={"CPU": 8, "GPU": 1}
    )
    bootstrap = tmp_path / "ray_bootstrap_config.yaml"
    bootstrap.write_text(json.dumps(config))  # `ray up` writes it as JSON
    assert autoscaler_node_types(bootstrap) == {"gpu_worker": {"CPU": 8, "GPU": 1}}
    check_resources(options, bootstrap)  # accepted: the autoscaler adds a GPU node

    too_many = sweep_options("lstm_spectrogram_beat", "--gpus-per-trial", "2")
    with pytest.raises(UserError, match="nor any node type it can add"):
        check_resources(too_many, bootstrap)


# --------------------------------------------------------------------------- data on the device


def test_batches_from_a_device_copy_match_the_array_path(fake_root):
    """The GPU path gathers batches from a copy made once; they must equal the CPU batches.

    Run here on CPU tensors (no GPU in CI): the indexing is the same code on any device.
    """
    import numpy as np
    import torch

    from musictune.data.batches import DeviceSplit, iterate_batches, to_device
    from musictune.data.dataset import load_task

    split = load_task("genre", fake_root, "mel", False).train
    assert to_device(split, torch.device("cpu")) is None  # CPU: batches come from the arrays
    copy_ = DeviceSplit(torch.from_numpy(split.frames.copy()), torch.from_numpy(split.y.copy()))
    order = np.random.default_rng(0).permutation(len(split))
    for crop in (0, 9):  # whole clips, and random crops drawn from the same generator state
        plain = iterate_batches(split, 7, order, crop=crop, rng=np.random.default_rng(1))
        gathered = iterate_batches(split, 7, order, copy_, crop, np.random.default_rng(1))
        assert len(plain) == len(gathered) > 1
        for (x1, l1, y1), (x2, l2, y2) in zip(plain, gathered):
            assert torch.equal(x1, x2) and torch.equal(l1, l2) and torch.equal(y1, y2)


def test_evaluation_from_a_device_copy_matches_the_array_path(fake_root):
    """Evaluation on the GPU path keeps outputs and targets on the device (one copy to the host
    for the metrics); on CPU tensors it must give exactly the figures of the array path."""
    import numpy as np
    import torch

    from musictune.data.batches import DeviceSplit
    from musictune.data.dataset import load_task
    from musictune.training.loop import build_model
    from musictune.training.scoring import evaluate

    data = load_task("genre", fake_root, "mel", False)
    split = data.val
    copy_ = DeviceSplit(torch.from_numpy(split.frames.copy()), torch.from_numpy(split.y.copy()))
    model = build_model(data, "lstm", seed=0, hidden_size=16)
    assert evaluate(model, split, on_device=copy_) == evaluate(model, split)
    model.window = 9  # scored over windows; a fold's clips by index
    index = np.arange(0, len(split), 2)
    assert evaluate(model, split, on_device=copy_) == evaluate(model, split)
    on_gpu_path = evaluate(model, split, on_device=copy_, index=index)
    assert on_gpu_path == evaluate(model, split, index=index)


def test_summary_of_an_object_storage_sweep_says_how_to_copy_it_down(capsys):
    """Reports read local folders: for an S3 sweep the summary gives the copy, then the report."""
    import pandas as pd

    table = pd.DataFrame(
        {"lr": [1e-3], "epochs": [3], "best_val_macro_f1": [0.3], "status": ["TERMINATED"]}
    )
    root = "s3://bkt/musictune/results"
    print_summary(table, "val_macro_f1", f"{root}/lstm-gpu", root, "lstm-gpu", ["lr", "dropout"])
    out = capsys.readouterr().out
    assert f"trial table: {root}/lstm-gpu/trials.csv" in out
    assert f"aws s3 sync {root}/lstm-gpu results/lstm-gpu" in out
    assert "       musictune report --storage results --sweep lstm-gpu\n" in out
