"""The one place that builds and runs a Ray Tune Tuner, for sweeps and best-config reruns alike.

A `TunerPlan` is the Ray side of a run (name, storage, space, search, scheduler, checkpoints);
`build_tuner` turns it into a Tuner (or restores one), `run_tuner` fits it with Ctrl-C handled
once: Tune stops the trials and saves the experiment state, and the caller learns what ended.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ray import tune

from musictune.data.dataset import Dataset
from musictune.training.trial import TrialSettings
from musictune.tuning.cluster import Resources
from musictune.tuning.progress import HideRayResumeNotes, InterruptWatch, SweepInterrupted
from musictune.tuning.storage import experiment_path
from musictune.tuning.summary import MODE, ray_trials


def tune_environment() -> None:
    """Ray Tune settings a run relies on, set by the run itself (never at import time)."""
    # Save the experiment state every second, so a killed driver loses no finished trial.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    # The classic console output honours verbose=0: our progress bars and summary replace Ray's.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    quiet = logging.getLogger("ray.tune.tune")
    if not any(isinstance(f, HideRayResumeNotes) for f in quiet.filters):
        quiet.addFilter(HideRayResumeNotes())


@dataclass
class TunerPlan:
    name: str
    root: str  # storage folder or URI; the experiment is root/name
    metric: str
    param_space: dict
    samples: int = 1
    search_alg: object = None  # None: Tune's default (grid and random variants)
    scheduler: object = None  # None: FIFO
    max_failures: int = 2
    # Keep only the best checkpoint by (attribute, mode), and the latest; None keeps them all.
    keep_best: tuple[str, str] | None = None
    callbacks: list = field(default_factory=list)
    resume: bool = False


def bind_trainable(
    data: Dataset,
    settings: TrialSettings,
    resources: Resources,
    source: dict | None = None,
    trainable: Callable | None = None,
):
    """The trainable with its data, fixed settings and (transfer) genre weights bound once
    through the object store, and its resource request."""
    from trainables import train_trial

    shared = {"data": data, "settings": settings}
    if source is not None:
        shared["source"] = source
    return tune.with_resources(
        tune.with_parameters(trainable or train_trial, **shared), resources.for_tune()
    )


def build_tuner(plan: TunerPlan, trainable) -> tune.Tuner:
    """A Tuner for `plan`, or with `plan.resume` the saved one restored (errored trials too)."""
    tune_environment()
    InterruptWatch.reset()
    if plan.resume:
        path = experiment_path(plan.root, plan.name)
        return tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    keep = (
        tune.CheckpointConfig(
            num_to_keep=1,  # Ray also keeps the latest one, for resuming
            checkpoint_score_attribute=plan.keep_best[0],
            checkpoint_score_order=plan.keep_best[1],
        )
        if plan.keep_best
        else tune.CheckpointConfig(num_to_keep=None)
    )
    return tune.Tuner(
        trainable,
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(
            metric=plan.metric,
            mode=MODE,
            num_samples=plan.samples,
            search_alg=plan.search_alg,
            scheduler=plan.scheduler,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=plan.name,
            storage_path=plan.root,
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
            checkpoint_config=keep,
            callbacks=[InterruptWatch(), *plan.callbacks],
            verbose=0,
        ),
    )


@dataclass
class Outcome:
    results: object  # Ray's ResultGrid
    status: dict[str, str]  # trial id -> status, as it was before Tune's clean-up
    ctrl_c: bool
    samples: int  # trials asked for

    @property
    def unfinished(self) -> list[str]:
        return [i for i, s in self.status.items() if s not in ("TERMINATED", "ERROR")]

    @property
    def interrupted(self) -> bool:
        """Ctrl-C, or trials left unfinished or never started: resume to finish them."""
        return self.ctrl_c or bool(self.unfinished) or len(self.results) < self.samples


def run_tuner(tuner: tune.Tuner, samples: int, resume_hint: Callable[[], str]) -> Outcome:
    """Fit; a second Ctrl-C (Tune's first one only stops the trials) ends in SweepInterrupted
    whose message is `resume_hint()`."""
    before = signal.getsignal(signal.SIGINT)
    try:
        results = tuner.fit()
    except KeyboardInterrupt:
        # The second Ctrl-C skipped Tune's last save; the state of a second earlier is on disk.
        raise SweepInterrupted(resume_hint()) from None
    finally:
        if before is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, before)  # Tune leaves its handler behind
    status = {t.trial_id: t.status for t in ray_trials(results)} | InterruptWatch.status
    return Outcome(results, status, InterruptWatch.ctrl_c, samples)
