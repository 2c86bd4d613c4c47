"""Shared test fixtures: locating ../shared test material, CI strictness."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from siamfc_jax.config import ModelConfig, TrackerConfig
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.plans import Workload, machine_plan
from siamfc_jax.runtime import setup_process

# As the command-line tools set a process up: the platform (the CPU where JAX's CUDA plugin is
# installed but no GPU is present), XLA:CPU's libraries (so that the plans measured and the
# arithmetic run are the tools'), the compilation cache (a second run of the suite compiles
# little), FFmpeg's messages for the decoders. Not the restart on mimalloc, which would replace
# pytest's process.
setup_process(allocator=False)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ROOT = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def tracking_plan() -> ConvPlan:
    """The plan track.py runs with the default settings: this machine's for AlexNetV1 tracking
    (measured once per machine, as the tools measure it, then read back)."""
    return machine_plan(ModelConfig(), Workload.tracking(TrackerConfig()))


@pytest.fixture(scope="session")
def training_plan() -> ConvPlan:
    """The plan train.py runs with the default settings: this machine's for AlexNetV1 training
    steps of 8 pairs of 127/239 images."""
    return machine_plan(ModelConfig(), Workload.training(8, 127, 239))


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
