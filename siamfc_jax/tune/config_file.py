"""Tracker config files: the JSON that ``python -m siamfc_jax.tune`` writes and ``track.py --config`` reads.

A config file is a JSON object of :class:`~siamfc_jax.config.TrackerConfig` fields, e.g.
``{"window_influence": 0.25, "scale_lr": 0.5}``; fields left out keep their defaults.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from siamfc_jax.config import ConfigError, TrackerConfig
from siamfc_jax.files import write_text_atomic

_FIELDS = {field.name for field in dataclasses.fields(TrackerConfig)}


class ConfigFileError(ValueError):
    """A config file that cannot be read; the message names the file."""


def config_values(config: TrackerConfig) -> dict:
    """The fields of ``config`` as a JSON-ready dict (unset network-derived fields left out)."""
    return {name: value for name, value in dataclasses.asdict(config).items() if value is not None}


def read_config_file(path: str | os.PathLike) -> dict:
    """The TrackerConfig field values in ``path`` (checked: known fields, valid values).

    Raises:
      ConfigFileError: the file is missing, not a JSON object, names an unknown field, or holds an
        invalid value (the message names the file and the field).
    """
    location = Path(path)
    try:
        values = json.loads(location.read_text())
    except OSError as error:
        raise ConfigFileError(f"{location}: cannot read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise ConfigFileError(f"{location}: not JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(values, dict):
        raise ConfigFileError(f"{location}: expected a JSON object of tracker settings")
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ConfigFileError(f"{location}: unknown tracker setting {unknown[0]!r}")
    try:
        TrackerConfig(**values)
    except ConfigError as error:
        raise ConfigFileError(f"{location}: {error}") from None
    except TypeError as error:
        raise ConfigFileError(f"{location}: {error}") from None
    return values


def write_config_file(path: str | os.PathLike, config: TrackerConfig) -> None:
    """Write ``config`` as a config file (atomically)."""
    write_text_atomic(path, json.dumps(config_values(config), indent=1) + "\n")
