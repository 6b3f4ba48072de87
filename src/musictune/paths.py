"""Where data, caches and results live when the user says nothing."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

DATA_ENV = "MUSICTUNE_DATA"
CACHE_ENV = "MUSICTUNE_CACHE"
RESULTS_ENV = "MUSICTUNE_RESULTS"


def cache_dir() -> Path:
    """Root of everything musictune caches: the demo dataset and the split caches."""
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir("musictune")).expanduser()


# Bumped whenever the demo generator's output changes, so that a cache made by an older
# generator is not reused (v2: 1040 clips of 3 s with >= 150 validation and test clips).
DEMO_VERSION = 2


def demo_data_dir(size: str = "small") -> Path:
    return cache_dir() / f"demo-{size}-v{DEMO_VERSION}"


def default_results_dir() -> Path:
    """Sweep storage: `./results` unless MUSICTUNE_RESULTS says otherwise."""
    return Path(os.environ.get(RESULTS_ENV) or "results").expanduser().resolve()
