"""Ray Tune function trainables: thin adapters from a trial config to `musictune.training.loop`."""

from trainables.supervised import train_trial

__all__ = ["train_trial"]
