"""Shared test fixtures: locating ../shared test material, CI strictness, this machine's plans,
and the synthetic training data and short training run that several test files read."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import jax
import numpy as np
import pytest

from siamfc_jax.config import ModelConfig, OptimConfig, PairConfig, TrackerConfig, TrainConfig
from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.plans import Workload, machine_plan
from siamfc_jax.runtime import setup_process

if TYPE_CHECKING:  # the training loop loads TFDS and Orbax: imported where a fixture trains
    from siamfc_jax.training.loop import TrainResult

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


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> Path:
    """A ``--data-dir`` shared by the in-process training runs of the suite (:func:`small_run`'s):
    the first run curates the synthetic world into it (about 20 s), the others read it."""
    return tmp_path_factory.mktemp("synthetic_tfds")


def small_run(data_dir: Path, workdir: Path, **changes) -> TrainConfig:
    """A small synthetic run (6 sequences, 2 epochs of 3 steps of 4 pairs, no validation) on
    ``data_dir``, with ``changes``. Crops smaller than SiamFC's (exemplar 103, instance 175, search
    159: 8×8 responses) make a few dozen steps take seconds on a CPU; the loop does not depend on
    the sizes. Runs that keep the crops, batch and sequences share the curated data and the
    measured convolution plan."""
    defaults = dict(
        model=ModelConfig("v1"),
        optim=OptimConfig(epochs=2, batch_size=4),
        pairs=PairConfig(exemplar_sz=103, instance_sz=175, pairs_per_seq=2),
        data="synthetic",
        data_dir=str(data_dir),
        workdir=str(workdir),
        synthetic_sequences=6,
        val_sequences=0,
        log_every_steps=2,
    )
    defaults.update(changes)
    return TrainConfig(**defaults)


@dataclasses.dataclass(frozen=True)
class GuardedRun:
    """A finished :func:`small_run` of one epoch validated on one sequence, and the bytes of every
    ``jax.device_get`` it made."""

    config: TrainConfig
    result: TrainResult
    fetched: tuple[int, ...]


@pytest.fixture(scope="session")
def guarded_run(synthetic_data_dir, tmp_path_factory) -> GuardedRun:
    """One epoch (3 steps of 4 pairs), validated untrained and after it on one sequence, trained
    under ``jax.transfer_guard("disallow")`` with the size of every ``jax.device_get`` recorded.
    tests/test_training_loop.py checks its transfers; tests/test_tune.py sweeps its checkpoint (one
    run for both: training it takes about 15 s)."""
    from siamfc_jax.training.loop import train

    fetched: list[int] = []
    device_get = jax.device_get

    def recording(tree):
        fetched.append(sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(device_get(tree))))
        return device_get(tree)

    config = small_run(
        synthetic_data_dir,
        tmp_path_factory.mktemp("guarded"),
        optim=OptimConfig(epochs=1, batch_size=4),
        val_sequences=1,
    )
    with pytest.MonkeyPatch.context() as patch, jax.transfer_guard("disallow"):
        patch.setattr(jax, "device_get", recording)
        result = train(config, progress=False, log=lambda message: None)
    return GuardedRun(config, result, tuple(fetched))


def write_noise_got10k(
    root: Path,
    num_sequences: int,
    num_frames: int,
    seed: int,
    box: Callable[[int, int], tuple[int, int, int, int]],
) -> Path:
    """A GOT-10k-layout ``root/train`` of ``num_sequences`` sequences of ``num_frames`` 160 x 120
    uniform-noise JPEG frames, target always present; ``box(sequence, frame)`` is the 1-indexed
    ``(x, y, w, h)`` of 0-based frame ``frame`` of sequence ``sequence``. Returns ``root``."""
    rng = np.random.default_rng(seed)
    for number in range(num_sequences):
        directory = root / "train" / f"SEQ_{number:03d}"
        directory.mkdir(parents=True)
        boxes = []
        for index in range(num_frames):
            frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
            cv2.imwrite(str(directory / f"{index + 1:08d}.jpg"), frame)
            boxes.append(",".join(str(value) for value in box(number, index)))
        (directory / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
        (directory / "absence.label").write_text("0\n" * num_frames)
    return root


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
