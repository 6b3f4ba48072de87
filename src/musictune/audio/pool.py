"""One process pool with a progress bar, for the two data-set writers (demo data, extract).

Workers ignore Ctrl-C: the parent gets it, cancels what has not started and lets the caller
clean up, so an interrupted run never leaves a worker writing behind its back.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_pool(
    work: Callable[[Item], Result],
    items: Sequence[Item],
    jobs: int,
    desc: str,
    unit: str,
    progress: bool | None = True,
    warm_first: bool = False,
    on_result: Callable[[Result], object] | None = None,
) -> list:
    """`work` over `items` in `jobs` processes (in this one for 1), results in completion order.

    `progress` None shows the bar only on a terminal. `warm_first`: a fresh process spends
    seconds loading librosa's numba-compiled code, and forked workers inherit what the parent
    has loaded, so the parent does the first item itself before the pool forks. `on_result`
    (run here, as each result arrives) turns a result into what is kept: a large one need not
    wait for the rest.
    """
    from tqdm import tqdm

    keep = on_result or (lambda result: result)
    results: list = []
    forked = multiprocessing.get_start_method() == "fork"
    local = len(items) if jobs == 1 else int(warm_first and forked)
    hide = None if progress is None else not progress  # tqdm: None hides it off a terminal
    with tqdm(total=len(items), desc=desc, unit=unit, disable=hide) as bar:
        for item in items[:local]:
            results.append(keep(work(item)))
            bar.update()
        if local < len(items):
            pool = ProcessPoolExecutor(jobs, initializer=_ignore_sigint)
            try:
                for future in as_completed([pool.submit(work, item) for item in items[local:]]):
                    results.append(keep(future.result()))
                    bar.update()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    return results
