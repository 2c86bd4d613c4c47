"""What a tracking run writes into its output folder, and the policy that keeps runs apart (host).

A run claims its output folder before it tracks anything (:func:`claim_outputs`): the folder must
be writable, and files that an earlier run left for the same sequences make it refuse unless
``--overwrite``, which removes them all first, so a folder never mixes the files of two runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from siamfc_jax.evaluation.scoring import SUMMARY_NAME
from siamfc_jax.files import OutputError, check_writable_dir

# Everything a run writes for sequence <name> (what claim_outputs looks for).
_SEQUENCE_SUFFIXES = (".txt", ".json", "_success.png", ".mp4", "_strip.png")
_TARGET_FILE = r"_target\d+\.(?:txt|json)"
_SUMMARY_FILES = tuple(f"{SUMMARY_NAME}{suffix}" for suffix in (".json", ".md", "_success.png"))


def target_name(name: str, target: int) -> str:
    """Stem of the files of target ``target`` (0-based) of sequence ``name``: ``bag_target1``."""
    return f"{name}_target{target + 1}"


def existing_outputs(out_dir: Path, names: Iterable[str], summary: bool = False) -> list[Path]:
    """The files in ``out_dir`` that a run over sequences ``names`` could write (see the module
    docstring), summary files included when ``summary``; sorted."""
    if not out_dir.is_dir():
        return []
    names = list(names)
    wanted = {name + suffix for name in names for suffix in _SEQUENCE_SUFFIXES}
    if summary:
        wanted.update(_SUMMARY_FILES)
    targets = [re.compile(re.escape(name) + _TARGET_FILE) for name in names]
    with os.scandir(out_dir) as entries:
        found = [
            Path(entry.path)
            for entry in entries
            if entry.name in wanted or any(pattern.fullmatch(entry.name) for pattern in targets)
        ]
    return sorted(found)


def claim_outputs(
    out_dir: str | os.PathLike,
    names: Iterable[str],
    *,
    overwrite: bool = False,
    summary: bool = False,
    what: str = "",
) -> Path:
    """Make ``out_dir`` ready for a run over sequences ``names``, before anything is tracked.

    Creates the folder if needed and checks that it can be written. Files an earlier run left
    for these sequences (:func:`existing_outputs`) make it refuse, unless ``overwrite``, which
    removes them all first, so the folder never mixes the files of two runs.

    Args:
      what: how the user named the folder, put before messages (``"argument --out: "``).

    Raises:
      OutputError: the folder cannot be created or written, or holds earlier results and not
        ``overwrite`` (the message names the folder and the first files).
    """
    folder = check_writable_dir(out_dir, what)
    found = existing_outputs(folder, names, summary)
    if found and not overwrite:
        listed = ", ".join(path.name for path in found[:3]) + (", …" if len(found) > 3 else "")
        raise OutputError(
            f"{what}{folder} already holds results of this run's sequences ({listed}); pass "
            "--overwrite to replace them, or choose another --out"
        )
    for path in found:
        try:
            path.unlink()
        except OSError as error:
            raise OutputError(f"{path}: cannot remove the earlier result ({error.strerror})") from None
    return folder
