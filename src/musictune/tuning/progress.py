"""The console of a Tune run: progress bars (a sweep's trials, a rerun's seeds), the Ctrl-C
watch, and the quieting of Ray's own resume notes (the sweep prints its own resume command)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time

from ray import tune


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the sweep: finished trials are saved and the message says how to resume."""


class HideRayResumeNotes(logging.Filter):
    """Ray's own notes on an interrupted run name its Python API (`Tuner.restore(...)`) and
    list unfinished trials; the sweep prints the command to resume and the trial summary."""

    NOTES = ("Experiment has been interrupted", "Trials did not complete")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.NOTES)


class InterruptWatch(tune.Callback):
    """Notes what Ray 2.60 keeps private: whether Ctrl-C stopped the run, and each trial's
    status before Tune's clean-up marks the stopped ones TERMINATED. Kept on the class: a
    resumed run calls the instance Tune unpickles, not the one `build_tuner` made."""

    ctrl_c: bool = False
    status: dict[str, str] = {}

    @classmethod
    def reset(cls) -> None:
        cls.ctrl_c, cls.status = False, {}

    def setup(self, **info) -> None:
        self._watch_ctrl_c()

    @staticmethod
    def _watch_ctrl_c() -> None:
        """Wrap Tune's SIGINT handler (installed before callbacks are set up): note the
        Ctrl-C, then let Tune stop the trials and save the experiment state."""
        tune_handler = signal.getsignal(signal.SIGINT)
        if not callable(tune_handler) or threading.current_thread() is not threading.main_thread():
            return

        def noted(sig, frame) -> None:
            InterruptWatch.ctrl_c = True
            tune_handler(sig, frame)  # it puts the previous handler back for a second Ctrl-C

        signal.signal(signal.SIGINT, noted)

    def on_step_end(self, iteration, trials, **info) -> None:
        InterruptWatch.status = {t.trial_id: t.status for t in trials}


class SweepProgress(tune.Callback):
    """A progress bar over trials: done / running / total and the best metric so far."""

    def __init__(self, total: int, metric: str):
        self.total, self.metric = total, metric
        self.best = None
        self.bar = None

    def setup(self, **info) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, desc="trials", unit="trial", file=sys.stderr)

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


class RerunProgress(tune.Callback):
    """One bar over a rerun's seeds; its postfix shows each seed's epoch and best metric."""

    def __init__(self, seeds: int, metric: str):
        self.seeds, self.metric = seeds, metric
        self.state: dict[int, tuple[int, float]] = {}
        self.bar = None
        self.shown_at = 0.0

    def setup(self, **info) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.seeds, desc="rerun seeds", unit="seed", file=sys.stderr)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        seed = trial.config.get("seed")
        value = result.get(f"best_{self.metric}", result.get(self.metric, float("nan")))
        self.state[seed] = (result.get("training_iteration", 0), value)
        shown = ", ".join(
            f"seed {s}: epoch {e} best {v:.3f}" for s, (e, v) in sorted(self.state.items())
        )
        self.bar.set_postfix_str(shown, refresh=False)
        if time.monotonic() - self.shown_at > 1.0:  # one line a second in a log file
            self.bar.refresh()
            self.shown_at = time.monotonic()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.bar.update(1)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.bar.update(1)

    def on_experiment_end(self, trials, **info) -> None:
        self.bar.close()
