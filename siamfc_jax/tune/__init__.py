"""Tuning the tracker: hyper-parameter search and checkpoint sweeps over a folder of sequences.

- :mod:`~siamfc_jax.tune.search`: grid or random search over TrackerConfig fields, the configs
  being a batch axis of one compiled step;
- :mod:`~siamfc_jax.tune.sweep`: every checkpoint of a training run, scored on the sequences;
- :mod:`~siamfc_jax.tune.config_file`: the config files ``track.py --config`` reads;
- ``python -m siamfc_jax.tune``: the command line of both (see ``--help``).
"""
