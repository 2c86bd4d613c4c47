"""The import rules of docs/ARCHITECTURE.md, checked on the source with ``ast``.

Every ``import`` counts, at module level or inside a function (a lazy import is still a
dependency). A new dependency between packages is a design decision: make it in ARCHITECTURE.md
and in :data:`ALLOWED` together (a test compares the two), and keep the rules free of cycles.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from siamfc_jax.cli import COMMAND_MODULES

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "siamfc_jax"

# Unit (sub-package or top-level module of siamfc_jax) -> the units it may import.
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "configs": {"config"},
    "files": set(),
    "runtime": set(),
    "cli": set(),
    "ops": {"config"},
    "models": {"config", "ops"},
    "plans": {"config", "files", "models", "ops", "runtime"},
    "losses": {"config"},
    "interop": {"config", "files", "models"},
    "weights": {"config", "interop", "files", "models"},
    "sequences": {"files"},
    "synthetic": {"cli", "config", "files", "runtime"},
    "pipeline": {"cli", "config", "files", "runtime", "sequences", "synthetic"},
    "tracker": {"config", "models", "ops", "plans", "sequences", "weights"},
    "visualize": {"files"},
    "evaluation": {"config", "files", "ops", "sequences", "tracker", "visualize"},
    "training": {"config", "evaluation", "interop", "files", "losses", "models", "ops", "pipeline"}
    | {"plans", "runtime", "sequences", "tracker", "weights"},
    "convert": {"cli", "interop", "files", "runtime", "weights"},
    "live": {"evaluation", "files", "sequences", "tracker", "visualize"},
    "export": {"cli", "config", "files", "models", "ops", "runtime", "tracker", "weights"},
    "tune": {"cli", "config", "evaluation", "files", "ops", "plans", "runtime", "sequences", "tracker"}
    | {"training", "visualize", "weights"},
    "apps": {"cli", "config", "configs", "evaluation", "files", "live", "ops", "pipeline", "plans"}
    | {"runtime", "sequences", "synthetic", "tracker", "training", "tune", "weights"},
}

# Modules allowed what their unit is not, and why.
EXCEPTIONS: dict[str, set[str]] = {
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
    assert violations("models/siamfc.py", [("cv2", True), ("siamfc_jax.files", True)]) == [
        "models may not import cv2",
        "models may not import siamfc_jax.files",
    ]


def rule_cycle(rules: dict[str, set[str]]) -> list[str]:
    """A cycle of units in ``rules`` (unit -> units it may import), as the path that closes it
    (``["a", "b", "a"]``); empty where there is none. Depth-first search, colouring units as
    unvisited, on the current path, or finished."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(unit: str) -> list[str]:
        state[unit] = "on path"
        path.append(unit)
        for target in sorted(rules.get(unit, ())):
            if state.get(target) == "on path":
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[unit] = "done"
        return []

    for unit in sorted(rules):
        if unit not in state and (found := visit(unit)):
            return found
    return []


def test_the_rules_have_no_cycle():
    assert rule_cycle(ALLOWED) == []


def test_a_cycle_in_the_rules_is_found():
    assert rule_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert rule_cycle({"tracker": {"visualize"}, "visualize": {"evaluation"}, "evaluation": {"tracker"}}) == [
        "evaluation",
        "tracker",
        "visualize",
        "evaluation",
    ]
    assert rule_cycle({"a": {"a"}}) == ["a", "a"]


ARCHITECTURE = REPO_ROOT / "docs" / "ARCHITECTURE.md"
_CODE = re.compile(r"`([^`]+)`")


def documented_rules(text: str) -> dict[str, set[str]]:
    """Unit -> the units its row of ARCHITECTURE.md's package table lets it import: the names in
    backticks of the row's last column (``nothing``: none); a row may name several units."""
    rules: dict[str, set[str]] = {}
    section = text.split("## Packages", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or cells[0] in ("unit", "---"):
            continue
        allowed = set() if cells[2] == "nothing" else set(_CODE.findall(cells[2]))
        for unit in _CODE.findall(cells[0]):
            assert unit not in rules, f"ARCHITECTURE.md: two rows for {unit}"
            rules[unit] = allowed
    return rules


def test_the_documented_table_is_the_rules():
    assert documented_rules(ARCHITECTURE.read_text()) == ALLOWED


def test_the_table_reader_sees_the_columns():
    text = (
        "## Packages\n\n| unit | job | may import (of siamfc_jax) |\n| --- | --- | --- |\n"
        "| `config` | the `x` configs | nothing |\n| `ops`, `models` | ops | `config`, `io` |\n\n## Next\n"
        "| `late` | not in the section | `config` |\n"
    )
    assert documented_rules(text) == {"config": set(), "ops": {"config", "io"}, "models": {"config", "io"}}


def test_the_command_modules_exist_and_the_docs_point_to_their_list():
    for module in COMMAND_MODULES:
        assert (REPO_ROOT / (module.replace(".", "/") + ".py")).is_file(), module
    for document in (ARCHITECTURE, REPO_ROOT / "docs" / "tracking.md"):
        assert "siamfc_jax.cli.COMMAND_MODULES" in document.read_text(), document.name


def entry_problems(tree: ast.Module) -> list[str]:
    """What keeps a ``__main__`` module from setting the process up before its heavy imports: at
    module level only ``sys`` and ``siamfc_jax.runtime`` imported, and the ``__main__`` block
    calling ``setup_process`` before anything else."""
    problems = []
    light = ("sys", "siamfc_jax.runtime")
    for node in tree.body:
        if isinstance(node, ast.Import):
            heavy = [alias.name for alias in node.names if alias.name not in light]
            problems += [f"imports {name} before setup" for name in heavy]
        elif isinstance(node, ast.ImportFrom) and node.module not in light:
            problems.append(f"imports {node.module} before setup")
    blocks = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
    first = blocks[0].body[0] if blocks else None
    calls_setup = isinstance(first, ast.Expr) and isinstance(first.value, ast.Call)
    if not (calls_setup and ast.unparse(first.value.func) == "setup_process"):
        problems.append("the __main__ block does not start with setup_process()")
    return problems


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("__main__.py")), ids=lambda path: path.parent.name)
def test_python_m_sets_the_process_up_first(path):
    assert entry_problems(ast.parse(path.read_text())) == []


def test_a_heavy_main_module_is_caught():
    heavy = "import sys\nimport jax\nfrom siamfc_jax.runtime import setup_process\n\n"
    heavy += "if __name__ == '__main__':\n"
    heavy += "    from siamfc_jax.tune.command import main\n    setup_process()\n    sys.exit(main())\n"
    assert entry_problems(ast.parse(heavy)) == [
        "imports jax before setup",
        "the __main__ block does not start with setup_process()",
    ]
