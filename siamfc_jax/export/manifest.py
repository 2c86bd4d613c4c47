"""The JSON description written beside every export: what the files are and how they were made."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.files import OutputError, check_writable_dir, write_text_atomic


class ExportError(Exception):
    """The export cannot be written (bad output folder, files in the way); the message names it."""


def check_outputs(out_dir: str | os.PathLike, names: Iterable[str], overwrite: bool) -> Path:
    """Create ``out_dir`` and make sure writing ``names`` into it replaces nothing unless ``overwrite``.

    Checked before the (slow) conversion, so a refusal costs nothing.

    Raises:
      ExportError: ``out_dir`` is not a folder, cannot be created or written into, or holds one of
        ``names``.
    """
    try:
        out = check_writable_dir(out_dir)
    except OutputError as error:
        raise ExportError(str(error)) from None
    present = [name for name in names if (out / name).exists()]
    if present and not overwrite:
        raise ExportError(f"{out} already holds {', '.join(present)}; pass --force to replace")
    return out


def write_manifest(
    path: Path,
    kind: str,
    config: TrackerConfig,
    model_config: ModelConfig,
    files: Mapping[str, object],
    **extra: object,
) -> None:
    """Write the manifest ``path``: format ``kind``, the network, the tracker settings, the files.

    ``extra`` entries (JSON-serialisable) are added at the top level.
    """
    manifest = {
        "format": kind,
        "version": 1,
        "model": dataclasses.asdict(model_config),
        "tracker": dataclasses.asdict(config),
        "files": dict(files),
        **extra,
    }
    write_text_atomic(path, json.dumps(manifest, indent=2) + "\n")
