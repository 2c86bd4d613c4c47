"""Named training runs: one module per run, each with ``get_config() -> TrainConfig``.

Like flax's ``examples/imagenet/configs`` and big_vision's configs: a run is a named, documented
config, and every variant overrides a few fields of :mod:`siamfc_jax.configs.default`
(siamfc-pytorch's recipe). Each module's docstring holds the exact command, its wall time and the
success AUC to expect. The configs import nothing of siamfc_jax but :mod:`siamfc_jax.config`.

==================  ===============================================================================
``default``         siamfc-pytorch's recipe (50 epochs, batch 8, …) on the data ``--data`` names
``synthetic``       the basic synthetic world, 6 epochs: what ``python train.py`` runs (9 minutes)
``synthetic_rich``  the rich synthetic world, 6 epochs of 2,400 pairs: the packaged weights
``got10k``          siamfc-pytorch's recipe on GOT-10k
``vid``             siamfc-pytorch's recipe on ImageNet VID 2015
``ci``              a tiny synthetic run for tests: smaller crops, 2 short epochs
==================  ===============================================================================

``python train.py --config NAME`` runs one; any field can be changed from the command line by its
dotted path (``--optim.epochs 3``, ``--pairs.color-jitter``; see ``python train.py --help``).
Without ``--config`` the config follows ``--data`` (:func:`config_for_data`): ``synthetic`` for
the synthetic world, ``got10k``, ``vid``, and ``default`` for ``folder:DIR``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from siamfc_jax.config import TrainConfig, override

NAMES = ("default", "synthetic", "synthetic_rich", "got10k", "vid", "ci")
_BY_DATA_KIND = {"synthetic": "synthetic", "got10k": "got10k", "vid": "vid"}


def get_config(name: str) -> TrainConfig:
    """The config of the run ``name`` (one of :data:`NAMES`).

    Raises:
      ValueError: ``name`` is not a known run.
    """
    if name not in NAMES:
        raise ValueError(f"unknown config {name!r}; choose one of {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").get_config()


def config_for_data(data: str) -> str:
    """The config a ``--data`` spec selects when no ``--config`` is given (``default`` for others)."""
    return _BY_DATA_KIND.get(data.partition(":")[0], "default")


def build(name: str | None, changes: Mapping[str, object]) -> TrainConfig:
    """The run's config: ``name`` (or the one ``changes["data"]`` selects) with ``changes`` applied.

    ``changes`` maps dotted field paths to values (:func:`siamfc_jax.config.override`). A config's
    ``workdir`` may name ``{backbone}`` and ``{data}`` (the data kind: ``runs/{backbone}-{data}``
    gives ``runs/v1-synthetic``), filled in from the result; a ``workdir`` change is taken as given.

    Raises:
      ValueError: an unknown config name.
      ConfigError: an unknown field or a value the config refuses (``field`` is the dotted path).
    """
    if name is None:
        name = config_for_data(str(changes.get("data", get_config("synthetic").data)))
    config = override(get_config(name), changes)
    if "workdir" not in changes:
        kind = config.data.partition(":")[0]
        workdir = config.workdir.format(backbone=config.model.backbone, data=kind)
        config = override(config, {"workdir": workdir})
    return config
