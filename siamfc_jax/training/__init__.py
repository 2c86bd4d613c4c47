"""Training SiamFC: the train state and optimiser, the data-parallel step, checkpoints, the loop.

- :mod:`~siamfc_jax.training.state`: :class:`TrainState`, SGD and the learning-rate schedule;
- :mod:`~siamfc_jax.training.step`: the jitted ``shard_map`` train step and validation step;
- :mod:`~siamfc_jax.training.checkpoint`: Orbax checkpoints with exact resume;
- :mod:`~siamfc_jax.training.loop`: the epoch loop, validation, logging and export.
"""
