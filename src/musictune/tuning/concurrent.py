"""Several sweeps at once on one Ray cluster, each in a Ray task of its own.

A sweep's driver keeps state per process (Tune's signal handler, the Ctrl-C watch, the progress
callbacks), so sweeps that run side by side get a process each: a Ray task that asks for no CPU
(its trials ask for theirs), pinned to the caller's node, where the storage folder and the data
are. Ray's docs run Tune inside a Ray task the same way. A job may name another job of the batch
that must finish first (a transfer sweep starts from its genre sweep's best checkpoint).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from musictune.tuning.cluster import Resources, connect
from musictune.tuning.options import SweepOptions

INTERRUPTED = "finished experiments are kept and cut ones resume: run the same command again"


@dataclass(frozen=True)
class Job:
    name: str  # the experiment's name
    label: str  # printed when it starts
    options: Callable[[], SweepOptions]  # called when it starts (a cut run then resumes)
    after: str | None = None  # a job of the same batch that must finish first


def sweep_in_task(options: SweepOptions, argv: list[str]) -> str:
    """One sweep, in a Ray worker; sweep.json's command and the resume hint name `argv`, the
    caller's command line, not the worker's.

    Tune keeps a sweep's trainable (with its bound data and settings) in the cluster's key-value
    store under the job's id and the trainable's name, so sweeps side by side in one job would
    overwrite each other's and train each other's model on each other's data: this sweep's
    registry gets a prefix of its own."""
    import ray
    from ray.tune.registry import TRAINABLE_CLASS, _global_registry

    from musictune.tuning.runner import run_sweep

    sys.argv = list(argv)
    _global_registry._prefix = f"{ray.get_runtime_context().get_job_id()}-{uuid.uuid4().hex}"
    try:
        run_sweep(options)
    finally:
        _global_registry.unregister_all(TRAINABLE_CLASS)  # with no category it keeps all
    return options.name


def _task():
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(num_cpus=0, max_retries=0, scheduling_strategy=here)(sweep_in_task)


def run_concurrently(jobs: list[Job], at_once: int, address: str | None = None) -> None:
    """Run `jobs` `at_once` at a time, each when the job it waits for has finished, in list
    order. After a failure no new job starts; the running ones finish, then the first error is
    raised as the sweep raised it. Ctrl-C cancels the running sweeps (their state is saved)."""
    import ray

    connect(Resources(address=address))
    task, names = _task(), {job.name for job in jobs}
    pending, running, done, errors = list(jobs), {}, set(), []
    try:
        while pending or running:
            ready = [j for j in pending if j.after not in names or j.after in done]
            for job in [] if errors else ready[: at_once - len(running)]:
                pending.remove(job)
                print(f"\n{job.label}: started ({len(running) + 1} running)", flush=True)
                running[task.remote(job.options(), sys.argv)] = job
            if not running:  # what is left waits for a job that failed
                break
            (ref,), _ = ray.wait(list(running), num_returns=1)
            job = running.pop(ref)
            try:
                ray.get(ref)
                done.add(job.name)
                print(f"{job.label}: finished", flush=True)
            except ray.exceptions.RayError as exc:
                errors.append(exc)
    except KeyboardInterrupt:
        for ref in running:
            ray.cancel(ref)
        raise KeyboardInterrupt(INTERRUPTED) from None
    if errors:
        error = errors[0]
        raise getattr(error, "cause", None) or error from None
