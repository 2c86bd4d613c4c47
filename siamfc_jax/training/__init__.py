"""Training SiamFC: the train state and optimiser, the data-parallel step, checkpoints, the loop.

- :mod:`~siamfc_jax.training.state`: :class:`TrainState`, SGD and the learning-rate schedule;
- :mod:`~siamfc_jax.training.step`: the jitted ``shard_map`` train step and validation step;
- :mod:`~siamfc_jax.training.checkpoint`: Orbax checkpoints with exact resume;
- :mod:`~siamfc_jax.training.evaluators`: validation during training, ``run(state)`` -> ``(name, value)``;
- :mod:`~siamfc_jax.training.distributed`: host reads and agreements legal across processes;
- :mod:`~siamfc_jax.training.meters`: an epoch's loss and time, the throughput;
- :mod:`~siamfc_jax.training.stopping`: Ctrl-C during training;
- :mod:`~siamfc_jax.training.loop`: the epoch loop, validation, logging and export.
"""
