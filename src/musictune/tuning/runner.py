"""Build and run the Ray Tune sweep: the one place that knows Tuner, searchers and schedulers."""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from ray import tune

from musictune import paths
from musictune.atomic import write_text_atomic
from musictune.data import Dataset, load_task
from musictune.errors import UserError
from musictune.metrics import PRIMARY_METRIC
from musictune.tuning.affect import plan_affect
from musictune.tuning.options import SweepOptions
from musictune.tuning.presets import get_preset
from musictune.tuning.space import search_space

SWEEP_FILE = "sweep.json"
TRIALS_FILE = "trials.csv"
MODE = "max"
# Save the experiment state every second, so a killed driver loses no finished trial.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
# The classic console output honours verbose=0: our progress bar and summary replace Ray's.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

log = logging.getLogger("musictune")


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the sweep: finished trials are saved and the message says how to resume."""


class _HideRayResumeNotes(logging.Filter):
    """Ray's own notes on an interrupted run name its Python API (`Tuner.restore(...)`) and
    list unfinished trials; the sweep prints the command to resume and the trial summary."""

    NOTES = ("Experiment has been interrupted", "Trials did not complete")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.NOTES)


logging.getLogger("ray.tune.tune").addFilter(_HideRayResumeNotes())


# --------------------------------------------------------------------------- storage and names


def is_uri(storage: str) -> bool:
    return "://" in storage and not storage.startswith("file://")


def storage_root(storage: str | None) -> str:
    """A writable absolute folder, or a URI Ray's storage layer accepts (s3://, gs://)."""
    if storage and is_uri(storage):
        return storage
    path = Path(storage.removeprefix("file://")).expanduser() if storage else None
    path = (path or paths.default_results_dir()).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(
            f"storage {path} is not writable ({exc.strerror}): pass --storage to a folder you "
            "can write"
        ) from None
    return str(path)


def experiment_path(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def choose_name(options: SweepOptions, root: str) -> str:
    """A new timestamped name, or with --resume the named (or latest) restorable experiment."""
    if options.resume:
        if options.name:
            if not tune.Tuner.can_restore(experiment_path(root, options.name)):
                raise UserError(
                    f"no experiment {options.name!r} to resume in {root}: check --name and "
                    "--storage (run without --resume to start it)"
                )
            return options.name
        if is_uri(root):
            raise UserError("--resume with a URI --storage needs --name")
        candidates = sorted(
            p.name for p in Path(root).glob(f"{options.preset}-*") if tune.Tuner.can_restore(str(p))
        )
        if not candidates:
            raise UserError(
                f"no experiment of preset {options.preset} to resume in {root}: "
                "run it without --resume first"
            )
        return candidates[-1]
    name = options.name or f"{options.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not is_uri(root) and (Path(root) / name).exists():
        raise UserError(
            f"experiment {name!r} already exists in {root}: pass --resume to continue it, "
            "or choose another --name"
        )
    return name


# --------------------------------------------------------------------------- cluster


# `ray up` leaves the autoscaler's config (node types with their resources) here on the head node.
AUTOSCALER_CONFIG = "~/ray_bootstrap_config.yaml"


def check_address(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds, not a hang, when a cluster address does not answer as Ray.

    `ray.init` retries for minutes an address where nothing listens, where a listener stays
    silent, or where something other than Ray answers; one gRPC call to the head's GCS
    (or, for a `ray://` client address, a gRPC handshake) settles it within `timeout`.
    """
    if address in ("auto", "local"):
        return
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r} is not host:port (e.g. 10.0.0.5:6379) or auto")
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    channel = grpc.insecure_channel(target)
    try:
        if address.startswith("ray://"):
            grpc.channel_ready_future(channel).result(timeout=timeout)
        else:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout)
        return
    except grpc.FutureTimeoutError:
        problem = "nothing answers there"
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            return  # a Ray head with token authentication: ray.init brings the token
        problem = {
            grpc.StatusCode.UNAVAILABLE: "unknown host, or nothing listens on that port",
            grpc.StatusCode.DEADLINE_EXCEEDED: f"no answer within {timeout:g} s",
        }.get(exc.code(), "what answers there is not a Ray head")
    finally:
        channel.close()
    raise UserError(
        f"no Ray cluster answers at {address} ({problem}): start one with `ray start --head` "
        "or `ray up cluster.yaml`, or fix --address / RAY_ADDRESS"
    )


def connect(options: SweepOptions) -> None:
    import ray

    if ray.is_initialized():
        return
    if options.address:
        check_address(options.address)
        try:
            ray.init(
                address=options.address,
                logging_level=logging.WARNING,
                logging_config=ray.LoggingConfig(log_level="WARNING"),
            )
        except (ConnectionError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot join the Ray cluster at {options.address}: {first}") from None
    else:
        # A local cluster we start ourselves: its token-auth notice is noise to the user.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
            logging.ERROR
        )
        ray.init(
            address="local",
            logging_level=logging.WARNING,
            # Workers log every checkpoint at INFO: the progress bar already says enough.
            logging_config=ray.LoggingConfig(log_level="WARNING"),
            include_dashboard=False,
        )


def autoscaler_node_types(config_file: str | os.PathLike = AUTOSCALER_CONFIG) -> dict[str, dict]:
    """Resources of each node type the autoscaler may still start: {type: {"GPU": 1, ...}}.

    Empty off an autoscaling cluster (no config file: a laptop, `ray start`, a test cluster).
    """
    import yaml

    path = Path(config_file).expanduser()
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    return {
        name: dict(spec.get("resources") or {})
        for name, spec in types.items()
        if isinstance(spec, dict) and name != head and spec.get("max_workers", 1) > 0
    }


def check_resources(
    options: SweepOptions, autoscaler_config: str | os.PathLike = AUTOSCALER_CONFIG
) -> None:
    """A trial that no node can ever hold would wait forever: refuse it up front.

    On an autoscaling cluster a GPU type with min_workers 0 has no live node yet, so node
    types the autoscaler can add count as well as live nodes.
    """
    import ray

    live = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    addable = autoscaler_node_types(autoscaler_config)
    nodes = live + list(addable.values())
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    where = "no node of the cluster" + (" (nor any node type it can add)" if addable else "")
    if options.gpus_per_trial > most_gpus:
        raise UserError(
            f"--gpus-per-trial {options.gpus_per_trial:g} but {where} has more than "
            f"{most_gpus:g} GPU(s): lower it (0 trains on CPUs)"
        )
    if options.cpus_per_trial > most_cpus:
        raise UserError(
            f"--cpus-per-trial {options.cpus_per_trial:g} but {where} has more than "
            f"{most_cpus:g} CPUs: lower it"
        )
    live_gpus = max((n.get("GPU", 0) for n in live), default=0)
    if options.gpus_per_trial > live_gpus:
        print(
            f"no live node has {options.gpus_per_trial:g} GPU(s) yet: trials wait until the "
            "autoscaler adds one (minutes)",
            flush=True,
        )


# --------------------------------------------------------------------------- tuner


def build_param_space(options: SweepOptions, model: str) -> dict:
    return {
        **search_space(model, options.lr_range, options.dropout_range),
        "model": model,
        "max_epochs": options.max_epochs,
        "patience": options.patience,
        "batch_size": options.batch_size,
        "checkpoint_every": options.checkpoint_every,
        "seed": options.seed,
        "threads": max(1, int(options.cpus_per_trial)),
        "amp": options.amp,
        **options.extra,
    }


def build_search(options: SweepOptions, metric: str):
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if options.search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        limit = options.max_concurrent or 2
        return ConcurrencyLimiter(
            OptunaSearch(metric=metric, mode=MODE, seed=options.seed), max_concurrent=limit
        )
    return BasicVariantGenerator(
        random_state=options.seed, max_concurrent=options.max_concurrent or 0
    )


def build_scheduler(options: SweepOptions):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if options.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=options.max_epochs,
        grace_period=options.grace_period,
        reduction_factor=3,
    )


def build_trainable(options: SweepOptions, data: Dataset, trainable=None, source=None):
    from trainables import train_supervised

    resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
    # A transfer sweep also shares the genre checkpoint's weights through the object store.
    shared = {"data": data} if source is None else {"data": data, "source": source}
    return tune.with_resources(
        tune.with_parameters(trainable or train_supervised, **shared), resources
    )


class SweepProgress(tune.Callback):
    """A progress bar over trials: done / running / total and the best metric so far.

    It also notes for `run_sweep` what Ray 2.60 keeps private: whether Ctrl-C stopped the run,
    and each trial's status before Tune's clean-up marks the stopped ones TERMINATED. Kept on
    the class: a resumed sweep runs the instance Tune unpickles, not the one run_sweep made.
    """

    ctrl_c: bool = False
    status: dict[str, str] = {}

    def __init__(self, total: int, metric: str):
        self.total, self.metric = total, metric
        self.best = None
        self.bar = None

    def setup(self, **info) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, desc="trials", unit="trial", file=sys.stderr)
        self._watch_ctrl_c()

    @staticmethod
    def _watch_ctrl_c() -> None:
        """Wrap Tune's SIGINT handler (installed before callbacks are set up): note the
        Ctrl-C, then let Tune stop the trials and save the experiment state."""
        tune_handler = signal.getsignal(signal.SIGINT)
        if not callable(tune_handler) or threading.current_thread() is not threading.main_thread():
            return

        def noted(sig, frame) -> None:
            SweepProgress.ctrl_c = True
            tune_handler(sig, frame)  # it puts the previous handler back for a second Ctrl-C

        signal.signal(signal.SIGINT, noted)

    def on_step_end(self, iteration, trials, **info) -> None:
        SweepProgress.status = {t.trial_id: t.status for t in trials}

    def _show(self, trials) -> None:
        running = sum(t.status == "RUNNING" for t in trials)
        best = "-" if self.best is None else f"{self.best:.4f}"
        self.bar.set_postfix_str(f"running {running}, best {self.metric} {best}")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        value = result.get(self.metric)
        if value is not None and (self.best is None or value > self.best):
            self.best = value
        self._show(trials)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.bar.update(1)
        self._show(trials)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.bar.update(1)
        self._show(trials)

    def on_experiment_end(self, trials, **info) -> None:
        self.bar.close()


# --------------------------------------------------------------------------- results


def json_text(payload: dict) -> str:
    return json.dumps(payload, indent=2, default=str)


def write_json_atomic(path: Path, payload: dict) -> None:
    write_experiment_file(path.parent, path.name, json_text(payload))


def write_experiment_file(folder: str | Path, name: str, text: str) -> None:
    """Write one whole file into an experiment folder, local or a URI (s3://, gs://).

    Locally through a temporary file and a rename; to object storage as one upload through
    pyarrow (Ray's own storage layer), where an object appears whole or not at all. Either way
    a reader never sees half a file.
    """
    folder = str(folder)
    if is_uri(folder):
        from pyarrow import fs

        filesystem, base = fs.FileSystem.from_uri(folder)
        with filesystem.open_output_stream(f"{base.rstrip('/')}/{name}") as stream:
            stream.write(text.encode())
        return
    write_text_atomic(Path(folder) / name, text)


def read_experiment_file(folder: str | Path, name: str) -> str | None:
    """The text of `folder/name`, local or a URI; None when it is not there."""
    folder = str(folder)
    try:
        if is_uri(folder):
            from pyarrow import fs

            filesystem, base = fs.FileSystem.from_uri(folder)
            with filesystem.open_input_stream(f"{base.rstrip('/')}/{name}") as stream:
                return stream.read().decode()
        return (Path(folder) / name).read_text()
    except (OSError, UnicodeDecodeError):  # pyarrow raises FileNotFoundError / OSError
        return None


def write_sweep_meta(folder: str | Path, meta: dict) -> None:
    write_experiment_file(folder, SWEEP_FILE, json_text(meta))


def read_sweep_meta(folder: str | Path) -> dict:
    """An experiment's sweep.json, or {} when absent or damaged (a resume rewrites it)."""
    try:
        meta = json.loads(read_experiment_file(folder, SWEEP_FILE) or "")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def ray_trials(results) -> list:
    """Ray's Trial objects behind a ResultGrid, in its order: status and crash count live there
    (Ray 2.60 has no public accessor for them)."""
    analysis = getattr(results, "_experiment_analysis", None)
    trials = list(getattr(analysis, "trials", None) or [])
    return trials if len(trials) == len(results) else []


def first_error(result) -> str:
    """The trial's error, or the first crash a retry survived (Ray logs those in error.txt)."""
    if result.error:
        return (str(result.error).strip().splitlines() or [type(result.error).__name__])[0][:200]
    log = Path(result.path) / "error.txt"
    if not log.is_file():
        return ""
    lines = [s for s in log.read_text(errors="replace").splitlines() if s.strip()]
    return next((s.strip()[:200] for s in lines if not s.startswith("Failure #")), "")


def trial_table(results, metric: str, status: dict[str, str] | None = None) -> pd.DataFrame:
    """One tidy row per trial: status, config, last and best metrics, epochs, folder.

    `status` (trial id -> status) overrides the statuses the ResultGrid carries.
    """
    status = status or {}
    rows = []
    trials = ray_trials(results)
    for i, result in enumerate(results):
        history = result.metrics_dataframe
        last = result.metrics or {}
        trial = trials[i] if trials else None
        row = {
            "trial_id": last.get("trial_id") or Path(result.path).name,
            # RUNNING / PENDING / PAUSED only after Ctrl-C: those trials resume with --resume.
            "status": status.get(trial.trial_id, trial.status)
            if trial
            else ("ERROR" if result.error else "TERMINATED"),
            # Times the trial's process died; each is retried from the last checkpoint while
            # --max-failures allows.
            "crashes": int(getattr(trial, "num_failures", 0) or 0),
            **{k: v for k, v in (result.config or {}).items()},
            "epochs": last.get("training_iteration", 0),
            "diverged": int(last.get("diverged", 0) or 0),
            "error": first_error(result),
            "time_total_s": last.get("time_total_s"),
            "path": result.path,
        }
        per_target = [] if history is None else [c for c in history if c.startswith("val_spearman")]
        for key in dict.fromkeys(
            ("val_macro_f1", "val_accuracy", "val_loss", "train_loss", metric, *per_target)
        ):
            if history is not None and key in history:
                row[f"last_{key}"] = history[key].iloc[-1]
                row[f"best_{key}"] = history[key].min() if "loss" in key else history[key].max()
        rows.append(row)
    table = pd.DataFrame(rows)
    if f"best_{metric}" in table:
        table = table.sort_values(f"best_{metric}", ascending=False, na_position="last")
    return table.reset_index(drop=True)


def failure_lines(table: pd.DataFrame) -> list[str]:
    """What went wrong in a sweep, one line per kind: crashes retried, failures, divergence."""
    lines = []
    crashes = table.get("crashes", pd.Series(dtype=int)).fillna(0)
    if (crashes > 0).any():
        lines.append(
            f"{int((crashes > 0).sum())} trial(s) crashed ({int(crashes.sum())} crash(es)) and "
            "were retried from their last checkpoint up to --max-failures times "
            "(crashes and error columns of trials.csv)"
        )
    errors = int((table["status"] == "ERROR").sum()) if "status" in table else 0
    if errors:
        lines.append(
            f"{errors} trial(s) failed after all retries (--max-failures): see the error column "
            "of trials.csv and error.txt in the trial folder"
        )
    diverged = int(table.get("diverged", pd.Series(dtype=int)).fillna(0).sum())
    if diverged:
        lines.append(
            f"{diverged} trial(s) diverged (NaN/inf loss): stopped at once and scored the worst "
            "value (try a lower --lr-max)"
        )
    return lines


def print_summary(
    table: pd.DataFrame,
    metric: str,
    path: str,
    root: str,
    name: str,
    comparison: Callable[[], None] | None = None,
) -> None:
    """The top 5 trials, what went wrong, then `comparison` (the test-split table), then where
    the results are and what to run next."""
    shown = [
        c
        for c in (
            "lr",
            "dropout",
            "num_layers",
            "hidden_size",
            "bidirectional",
            "conv_blocks",
            "freeze_backbone",
            "epochs",
            f"best_{metric}",
        )
        if c in table
    ]
    if "status" in table and (table["status"] != "TERMINATED").any():
        shown.append("status")  # ERROR, or RUNNING / PENDING after Ctrl-C
    print(f"\ntop 5 of {len(table)} trials by best {metric}:")
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 120):
        print(table[shown].head(5).to_string(index=False))
    for line in failure_lines(table):
        print(line)
    if comparison is not None:
        comparison()
    print(f"\nexperiment: {path}")
    print(f"trial table: {path}/{TRIALS_FILE}")
    print(f"next:  tensorboard --logdir {path}")
    if "status" not in table or table["status"].isin(["TERMINATED", "ERROR"]).all():
        if is_uri(root):  # reports read a local copy
            copy = "aws s3 sync" if root.startswith("s3://") else "copy"
            print(f"       {copy} {path} results/{name}")
            root = "results"
        print(f"       python analysis/report.py --storage {root} --sweep {name}")


# --------------------------------------------------------------------------- test split


def best_checkpoint(results, metric: str) -> tuple[object, object, str] | None:
    """The tuned best trial (Ray's `get_best_result(scope="all")`) and its best checkpoint.

    Trials checkpoint every --checkpoint-every epochs and at their end, and ASHA can stop a trial
    before it saves one; then the best trial that has a checkpoint stands in, with a note.
    """

    def peak(result) -> float:
        history = result.metrics_dataframe
        if history is None or metric not in history or history[metric].isna().all():
            return float("-inf")
        return float(history[metric].max())

    try:
        best = results.get_best_result(metric, MODE, scope="all")
    except (RuntimeError, ValueError):
        return None
    for result in [best, *sorted(results, key=peak, reverse=True)]:
        if result.error is None and result.best_checkpoints:
            best_id = (best.metrics or {}).get("trial_id") or Path(best.path).name
            note = "" if result is best else f"; the best trial, {best_id}, saved none"
            return result, result.get_best_checkpoint(metric, MODE), note
    return None


def compare_on_test(
    results,
    data: Dataset,
    options: SweepOptions,
    meta: dict,
    metric: str,
    source: dict | None = None,
) -> dict:
    """Print the tuned best beside the untuned default and chance on the test split; return the
    figures for sweep.json ("test").

    The tuned best is its best saved checkpoint (trials save one every --checkpoint-every epochs
    and at their end), tested once; the untuned default (`baselines`) is
    trained here, once, with the sweep's seed, epoch budget and patience, unless
    --no-baseline-train; stratified guessing is averaged over the seeds a report's reruns use.
    """
    from musictune import baselines
    from musictune.reporting.options import RerunSettings
    from musictune.reporting.testing import evaluate_model
    from musictune.training import CHECKPOINT_FILE, load_checkpoint, model_from_checkpoint

    metrics = baselines.shown_metrics(data)
    where = f"{data.test_note}, {len(data.test)} clips"
    found = best_checkpoint(results, metric)
    if found is None:
        print("\ntest split: no trial saved a checkpoint to test; no comparison")
        return {"skipped": "no trial saved a checkpoint"}
    result, checkpoint, note = found
    with checkpoint.as_directory() as folder:
        saved = load_checkpoint(Path(folder) / CHECKPOINT_FILE)
    seed = int(result.config.get("seed", options.seed))
    evaluation = evaluate_model(model_from_checkpoint(saved), data, seed, baselines.head_task(data))
    trial = (result.metrics or {}).get("trial_id") or Path(result.path).name
    epoch = int(saved["state"]["epoch"])
    tuned = baselines.Figures(
        "tuned",
        "tuned best",
        [evaluation.metrics],
        [seed],
        f"trial {trial}, checkpoint of epoch {epoch}{note}",
    )
    config = baselines.default_config(dict(result.config), meta)
    default = baselines.Figures("default", "untuned default", note="not trained")
    trained = None
    print(f"\ntest split ({where}): the tuned best beside baselines")
    if options.baseline_train:
        threads = max(1, int(options.cpus_per_trial))
        print(
            f"training the untuned default for comparison ({baselines.describe_default(meta)}; "
            f"up to {options.max_epochs} epochs, patience {options.patience}, seed {seed}, "
            f"{threads} thread(s)) ...",
            flush=True,
        )
        try:
            trained = baselines.train_default(data, config, source, threads)
            default = trained.figures
            print(
                f"  done in {trained.wall_time_s:.1f} s ({trained.epochs} epochs, best epoch "
                f"{trained.best_epoch})"
            )
        except KeyboardInterrupt:
            default.note = "stopped by Ctrl-C"
            print("  stopped (Ctrl-C): no untuned default in this comparison")
    else:
        default.note = "not trained: --no-baseline-train"
    seeds = [seed + i for i in range(RerunSettings().seeds)]
    rows = [tuned, default, *baselines.chance_baselines(data, seeds)]
    print(baselines.text_table(rows, metrics))
    test = {
        "split": data.test_note,
        "clips": len(data.test),
        "metrics": metrics,
        "tuned": tuned.as_json(metrics)
        | {"trial": trial, "checkpoint": checkpoint.path, "checkpoint_epoch": epoch},
        "default": trained.as_json(metrics) if trained else default.as_json(metrics),
    }
    return test | {f.key: f.as_json(metrics) for f in rows[2:]}


# --------------------------------------------------------------------------- run


def resume_command(options: SweepOptions, name: str, root: str) -> str:
    """The user's own command line with `--resume --name NAME --storage ROOT` in place of any
    earlier ones; for a call from Python, the preset script with the data options."""
    argv, preset = sys.argv, options.preset
    if argv[1:3] == ["sweep", preset]:
        head, rest = ["musictune", "sweep", preset], argv[3:]
    elif Path(argv[0]).name == f"{preset}.py":
        head, rest = ["python", argv[0]], argv[1:]
    else:
        head, rest = ["python", f"sweeps/{preset}.py"], []
        rest += ["--data-dir", options.data_dir] if options.data_dir else []
        rest += ["--smoke-test"] if options.smoke_test else []
        rest += ["--target", options.target] if options.target else []
    kept, skip = [], False
    for arg in rest:
        option = arg.split("=", 1)[0]
        if skip or option == "--resume":
            skip = False
        elif option in ("--name", "--storage"):
            skip = "=" not in arg  # the value is the next argument
        else:
            kept.append(arg)
    return shlex.join([*head, *kept, "--resume", "--name", name, "--storage", root])


def run_sweep(options: SweepOptions, trainable=None):
    """Run (or resume) one sweep and return Ray's ResultGrid."""
    preset = get_preset(options.preset)
    task = preset.task
    root = storage_root(options.storage)
    if options.address:
        check_address(options.address)  # in seconds, before any minutes of data loading
    # Affect presets: target, feature view, loss weights, transfer source (genre: nothing).
    affect = plan_affect(options.preset, preset, options.target, options.extra, root)
    preset = affect.preset
    name = choose_name(options, root)
    path = experiment_path(root, name)
    demo_size = "tiny" if options.smoke_test else "small"
    # A resumed sweep trains on the data it started with, unless --data-dir says otherwise.
    earlier = read_sweep_meta(path) if options.resume else {}
    data_dir = (
        options.data_dir
        or earlier.get("data_dir")
        or os.environ.get(paths.DATA_ENV)
        or affect.data_dir
    )
    if not data_dir:
        from musictune.demo import ensure_demo

        data_dir = ensure_demo(demo_size)
    data = load_task(task, data_dir, preset.features, preset.beat, affect.target)
    affect.check(data)
    head_task = {"genre": "classification"}.get(task, task)
    metric = PRIMARY_METRIC[head_task]

    connect(options)
    check_resources(options)
    started = time.time()
    print(
        f"musictune sweep {options.preset}: {options.samples} trials, {options.search} search, "
        f"{options.scheduler.upper()} (max {options.max_epochs} epochs"
        + (f", grace {options.grace_period}" if options.scheduler == "asha" else "")
        + f"), {options.cpus_per_trial:g} CPU / {options.gpus_per_trial:g} GPU per trial"
    )
    print(
        f"data: {data.task} {data.features}{' beat-synced' if data.beat else ''} from {data_dir}: "
        f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test clips, "
        "loaded once and shared through the object store"
    )
    for note in affect.notes:
        print(note)
    print(f"experiment: {path}{'  (resumed)' if options.resume else ''}")
    print(f"watch live: tensorboard --logdir {path}", flush=True)

    if affect.source is not None:
        from trainables.transfer import train_transfer

        trainable = build_trainable(options, data, trainable or train_transfer, affect.source)
    else:
        trainable = build_trainable(options, data, trainable)
    progress = SweepProgress(options.samples, metric)
    if options.resume:
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={**build_param_space(options, preset.model), **affect.extra},
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=MODE,
                num_samples=options.samples,
                search_alg=build_search(options, metric),
                scheduler=build_scheduler(options),
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=root,
                failure_config=tune.FailureConfig(max_failures=options.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                callbacks=[progress],
                verbose=0,
            ),
        )
    meta = {
        "preset": options.preset,
        "task": task,
        "model": preset.model,
        "features": preset.features,
        "beat": preset.beat,
        "target": affect.target,
        "metric": metric,
        "mode": MODE,
        "samples": options.samples,
        "search": options.search,
        "scheduler": options.scheduler,
        "max_epochs": options.max_epochs,
        "seed": options.seed,
        "data_dir": str(data_dir),
        "smoke_test": options.smoke_test,
        "command": " ".join(sys.argv),
        "status": "running",
        "started": started,
        "classes": list(data.classes),
        "targets": list(data.targets),
        **affect.meta,
    }
    if earlier:
        # The experiment's own settings: options repeated with --resume do not change them.
        kept = ("samples", "search", "scheduler", "max_epochs", "seed", "smoke_test")
        kept += ("command", "started", "wall_time_s")
        meta |= {k: earlier[k] for k in kept if k in earlier}
    write_sweep_meta(path, meta)
    SweepProgress.ctrl_c, SweepProgress.status = False, {}
    before = signal.getsignal(signal.SIGINT)
    try:
        # Ctrl-C: Tune stops the trials, saves the experiment state and returns.
        results = tuner.fit()
    except KeyboardInterrupt:
        # A second Ctrl-C skipped that last save; the state of a second earlier is on disk.
        raise SweepInterrupted(f"resume with: {resume_command(options, name, root)}") from None
    finally:
        if before is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, before)  # Tune leaves its handler behind
    status = {t.trial_id: t.status for t in ray_trials(results)} | SweepProgress.status
    unfinished = [i for i, s in status.items() if s not in ("TERMINATED", "ERROR")]
    interrupted = SweepProgress.ctrl_c or bool(unfinished) or len(results) < meta["samples"]
    table = trial_table(results, metric, status)
    write_experiment_file(path, TRIALS_FILE, table.to_csv(index=False))
    meta["wall_time_s"] = meta.get("wall_time_s", 0.0) + time.time() - started
    meta["status"] = "interrupted" if interrupted else "finished"
    if not interrupted:
        meta["finished"] = time.time()
    meta["trials"] = len(table)
    write_sweep_meta(path, meta)

    def comparison() -> None:
        meta["test"] = compare_on_test(results, data, options, meta, metric, affect.source)
        write_sweep_meta(path, meta)

    # An interrupted sweep has no tuned best yet: no test-split comparison.
    print_summary(table, metric, path, root, name, None if interrupted else comparison)
    if interrupted:
        ended = len(results) - len(unfinished)
        raise SweepInterrupted(
            f"{ended} of {meta['samples']} trials ended and are kept in {path}; "
            f"resume with: {resume_command(options, name, root)}"
        )
    return results
