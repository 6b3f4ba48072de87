"""Ray Tune function trainables: thin adapters from a trial config to `musictune.training`."""

from trainables.supervised import train_supervised

__all__ = ["train_supervised"]
