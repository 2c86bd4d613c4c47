"""The import rules of docs/ARCHITECTURE.md, checked on the source with ``ast``.

Every ``import`` counts, at module level or inside a function (a lazy import is still a
dependency). A new dependency between packages is a design decision: make it in ARCHITECTURE.md
and in :data:`ALLOWED` together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from siamfc_jax.cli import COMMAND_MODULES

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "siamfc_jax"

# Unit (sub-package or top-level module of siamfc_jax) -> the units it may import.
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "configs": {"config"},
    "io": set(),
    "runtime": set(),
    "cli": set(),
    "ops": {"config"},
    "models": {"config", "ops"},
    "losses": {"config"},
    "interop": {"config", "io", "models"},
    "weights": {"config", "interop", "io", "models"},
    "sequences": {"io"},
    "synthetic": {"cli", "config", "io", "runtime"},
    "pipeline": {"cli", "config", "io", "runtime", "sequences", "synthetic"},
    "tracker": {"config", "models", "ops", "sequences", "visualize", "weights"},
    "visualize": {"evaluation", "io"},
    "evaluation": {"config", "io", "sequences", "tracker", "visualize"},
    "training": {"config", "evaluation", "interop", "io", "losses", "models", "pipeline", "runtime"}
    | {"sequences", "tracker", "weights"},
    "convert": {"cli", "interop", "runtime", "weights"},
    "live": {"evaluation", "io", "sequences", "tracker", "visualize"},
    "export": {"cli", "config", "io", "models", "runtime", "tracker", "weights"},
    "tune": {"cli", "config", "evaluation", "io", "runtime", "sequences", "tracker", "training"}
    | {"visualize", "weights"},
    "apps": {"cli", "config", "configs", "evaluation", "io", "live", "pipeline", "runtime", "sequences"}
    | {"synthetic", "tracker", "training", "tune", "weights"},
}

# Modules allowed what their unit is not, and why.
EXCEPTIONS: dict[str, set[str]] = {
    # The per-layer formulation choice is measured once and cached on disk, beside the
    # compilation cache: the one file that ops touches.
    "ops/autotune.py": {"os", "pathlib", "siamfc_jax.io", "siamfc_jax.runtime"},
    # Batched evaluation drives the tracker's jitted slots itself (explicit uploads of frames).
    "evaluation/batched.py": {"jax"},
}

# Third-party modules a unit must not import: models and ops know no files, the tracker and
# evaluation need no optimiser or training data, the host packages run no JAX.
FORBIDDEN: dict[str, set[str]] = {
    "ops": {"cv2", "PIL", "os", "pathlib", "flax", "optax", "orbax"},
    "models": {"cv2", "PIL", "os", "pathlib", "json", "optax", "orbax", "grain", "tensorflow_datasets"},
    "losses": {"cv2", "os", "pathlib", "optax"},
    "tracker": {"optax", "orbax", "grain", "tensorflow_datasets", "tensorboardX"},
    "evaluation": {"jax", "flax", "optax", "orbax", "grain", "tensorflow_datasets"},
    "sequences": {"jax", "flax", "optax", "orbax", "grain", "tensorflow_datasets"},
    "synthetic": {"jax", "flax", "optax", "orbax", "grain", "tensorflow_datasets"},
    "pipeline": {"jax", "flax", "optax", "orbax"},
    "visualize": {"jax", "flax", "optax"},
}

# The only modules with a command line (argparse through siamfc_jax.cli): the helper itself and
# the modules it names. Everything else is library code that a notebook can import.
CLI_MODULES = {"cli.py"} | {
    "/".join(module.split(".")[1:]) + ".py" for module in COMMAND_MODULES
}

NEVER = {"tensorflow"}  # the design card: no TensorFlow dependency (TFDS runs without it)
LAZY_ONLY = {"torch": {"interop/torch_weights.py"}}  # PyTorch only for .pth files, imported lazily


def unit_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, at_module_level)`` for every import in ``path``; ``from siamfc_jax import x`` gives
    ``siamfc_jax.x``."""
    tree = ast.parse(path.read_text(), str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "siamfc_jax":
                found += [(f"siamfc_jax.{alias.name}", id(node) in top_level) for alias in node.names]
            else:
                found.append((node.module, id(node) in top_level))
    return found


SOURCES = sorted(path for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py")


def test_every_unit_has_rules():
    assert {unit_of(path) for path in SOURCES} <= set(ALLOWED)


def violations(relative: str, found: list[tuple[str, bool]]) -> list[str]:
    """What breaks the rules among the imports ``found`` in the module ``relative`` (to siamfc_jax/)."""
    unit = relative.split("/")[0].removesuffix(".py")
    problems = []
    exempt = EXCEPTIONS.get(relative, set())
    for module, top_level in found:
        root = module.split(".")[0]
        if root in exempt or ".".join(module.split(".")[:2]) in exempt:
            continue
        if root == "siamfc_jax":
            target = module.split(".")[1] if "." in module else None
            if target is not None and target != unit and target not in ALLOWED[unit]:
                problems.append(f"{unit} may not import siamfc_jax.{target}")
            if target == "cli" and relative not in CLI_MODULES:
                problems.append("only the command-line modules use siamfc_jax.cli")
        elif root == "argparse" and relative not in CLI_MODULES:
            problems.append("only the command-line modules use argparse")
        elif root in FORBIDDEN.get(unit, ()):
            problems.append(f"{unit} may not import {root}")
        elif root in NEVER:
            problems.append(f"nothing may import {root}")
        elif root in LAZY_ONLY and (top_level or relative not in LAZY_ONLY[root]):
            problems.append(f"{root} only lazily, in {sorted(LAZY_ONLY[root])}")
    return problems


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_follow_the_rules(path):
    relative = path.relative_to(PACKAGE).as_posix()
    problems = violations(relative, imports(path))
    assert not problems, f"{relative}: " + "; ".join(problems)


def test_the_rules_can_fail(tmp_path):
    fake = tmp_path / "device.py"
    fake.write_text(
        "import argparse\nimport optax\nimport torch\nfrom siamfc_jax import cli\n"
        "from siamfc_jax.training import loop\n\ndef f():\n    import tensorflow\n"
    )
    assert violations("tracker/device.py", imports(fake)) == [
        "only the command-line modules use argparse",
        "tracker may not import optax",
        "torch only lazily, in ['interop/torch_weights.py']",
        "tracker may not import siamfc_jax.cli",
        "only the command-line modules use siamfc_jax.cli",
        "tracker may not import siamfc_jax.training",
        "nothing may import tensorflow",
    ]
    assert violations("models/siamfc.py", [("cv2", True), ("siamfc_jax.io", True)]) == [
        "models may not import cv2",
        "models may not import siamfc_jax.io",
    ]
