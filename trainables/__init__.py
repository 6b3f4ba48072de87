"""Ray Tune function trainables: thin adapters from a trial config to `musictune.training`."""

from trainables.supervised import train_trial

__all__ = ["train_trial"]
