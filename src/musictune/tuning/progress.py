"""The sweep's console: a progress bar over trials that also notes Ctrl-C, and the quieting of
Ray's own resume notes (the sweep prints its own resume command)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from ray import tune


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the sweep: finished trials are saved and the message says how to resume."""


class HideRayResumeNotes(logging.Filter):
    """Ray's own notes on an interrupted run name its Python API (`Tuner.restore(...)`) and
    list unfinished trials; the sweep prints the command to resume and the trial summary."""

    NOTES = ("Experiment has been interrupted", "Trials did not complete")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.NOTES)


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
