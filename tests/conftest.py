"""Shared test fixtures: locating ../shared test material, CI strictness."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from siamfc_jax.runtime import setup_process

# As the command-line tools set a process up: the platform (the CPU where JAX's CUDA plugin is
# installed but no GPU is present), the compilation cache (a second run of the suite compiles
# little), FFmpeg's messages for the decoders. Not the restart on mimalloc, which would replace
# pytest's process, nor the XLA flags, which the tests of the flags set in processes of their own.
setup_process(allocator=False, xla_cpu_libraries=False)
# Convolution formulations are not measured in tests ("auto" takes its static choice): the suite
# stays quick on a cold cache and does not depend on the machine's load. tests/test_conv.py turns
# measuring on where it tests it.
os.environ.setdefault("SIAMFC_JAX_AUTOTUNE", "0")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ROOT = REPO_ROOT.parent / "shared"


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where missing test material is a failure."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_path(relative: str) -> Path:
    """Path of ``../shared/<relative>``; skips the test if it is missing (fails in CI)."""
    path = SHARED_ROOT / relative
    if not path.exists():
        message = f"test material {path} is missing (see ../shared/README.md)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path
