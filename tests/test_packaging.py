"""The package installs like one: a wheel built from a clean checkout of HEAD installs into a fresh
virtualenv and, from outside the repository, its console scripts track the demo and convert the
packaged weights.

Fast and offline: the wheel is built with the current environment's setuptools
(``--no-build-isolation``) and installed without dependencies (``--no-deps --no-index``); the fresh
venv reuses this environment's packages through a ``.pth`` file, after its own site-packages, so
the installed siamfc_jax is the one imported. Tracking compiles the tracker once (the demo's first
frames), hence ``slow``: with the test session's compilation cache and this machine's stored plans,
so that it does not compile or measure again what other tests did (a first run in an empty cache
folder is tests/test_track_cli.py's demo).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from siamfc_jax.ops.plan import ConvPlan
from siamfc_jax.plans import plans_path
from tests.conftest import REPO_ROOT


def _run(
    command: list, cwd: Path, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory, tracking_plan: ConvPlan) -> dict:
    """A venv holding the wheel of HEAD; its python, scripts folder and a clean environment (a fresh
    HOME and cache folder, but for the machine's plans, which hold ``tracking_plan``)."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    archive = _run(["git", "-C", REPO_ROOT, "archive", "--format=tar", "-o", root / "head.tar", "HEAD"], root)
    if archive.returncode != 0:
        pytest.skip(f"not a git checkout: {archive.stderr.strip()}")
    assert _run(["tar", "-xf", root / "head.tar", "-C", source], root).returncode == 0
    dist = root / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", dist, source],
        root,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("siamfc_jax-*.whl")
    venv = root / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", venv], root).returncode == 0
    python = venv / "bin" / "python"
    purelib = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root).stdout.strip()
    )
    # This environment's packages (JAX, OpenCV, torch ...), searched after the venv's own.
    here = sysconfig.get_path("purelib")
    (purelib / "reuse_test_environment.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    install = _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], root
    )
    assert install.returncode == 0, install.stdout + install.stderr
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(root / "home"),
        XDG_CACHE_HOME=str(root / "cache"),
    )
    # The same XLA_FLAGS, JAX and CPU: the installed package files its plans under the same name.
    plans = root / "cache" / plans_path().relative_to(plans_path().parents[2])
    plans.parent.mkdir(parents=True)
    shutil.copyfile(plans_path(), plans)
    outside = root / "elsewhere"
    outside.mkdir()
    return {
        "wheel": wheel, "python": python, "bin": venv / "bin", "env": env, "cwd": outside, "purelib": purelib
    }


def test_wheel_holds_the_weights_and_declares_dependencies(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(name for name in names if name.endswith("/METADATA"))).decode()
        entry_points = wheel.read(next(name for name in names if name.endswith("entry_points.txt"))).decode()
    assert "siamfc_jax/assets/siamfc_alexnet_v1_synthetic.msgpack" in names
    assert "siamfc_jax/configs/synthetic.py" in names
    # One top-level package: siamfc_jax (besides the wheel's own metadata folder).
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"siamfc_jax"}, tops
    requirements = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    for package in ("jax==", "flax==", "opencv-python==", "av==", "tensorflow-datasets==", "jax[cuda12]=="):
        assert any(package in line for line in requirements), package
    for script in (
        "siamfc-track = siamfc_jax.apps:track_command",
        "siamfc-train = siamfc_jax.apps:train_command",
        "siamfc-convert = siamfc_jax.convert:main",
    ):
        assert script in entry_points


def test_installed_package_is_imported_from_the_venv(installed):
    code = "import siamfc_jax, siamfc_jax.weights as w\nprint(siamfc_jax.__file__)\n"
    code += "print(w.default_weights_path())"
    probe = _run(
        [installed["python"], "-c", code],
        installed["cwd"],
        installed["env"],
    )
    assert probe.returncode == 0, probe.stderr
    module, weights = probe.stdout.splitlines()
    assert Path(module).is_relative_to(installed["purelib"]) and Path(weights).is_file()
    assert Path(weights).is_relative_to(installed["purelib"])


def test_convert_and_help_work_outside_the_repository(installed):
    cwd, env = installed["cwd"], installed["env"]
    weights = installed["purelib"] / "siamfc_jax" / "assets" / "siamfc_alexnet_v1_synthetic.msgpack"
    module = [installed["python"], "-m", "siamfc_jax.convert"]
    converted = _run([*module, weights, cwd / "packaged.pth"], cwd, env)
    assert converted.returncode == 0, converted.stderr
    assert (cwd / "packaged.pth").is_file()
    again = _run([installed["bin"] / "siamfc-convert", cwd / "packaged.pth", cwd / "back.msgpack"], cwd, env)
    assert again.returncode == 0, again.stderr
    for script in ("siamfc-track", "siamfc-train"):
        shown = _run([installed["bin"] / script, "--help"], cwd, env)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f"usage: {script}"), shown.stdout


@pytest.mark.slow
def test_console_script_tracks_the_demo_from_outside_the_repository(installed):
    cwd, env = installed["cwd"], installed["env"]
    process = _run([installed["bin"] / "siamfc-track", "--max-frames", "3", "--out", cwd / "out"], cwd, env)
    assert process.returncode == 0, process.stdout + process.stderr
    record = json.loads((cwd / "out" / "SYN_DEMO.json").read_text())
    assert record["frames_tracked"] == 3 and 0 <= record["auc"] <= 1
    assert Path(record["weights"]).is_relative_to(installed["purelib"])
    assert (cwd / "out" / "SYN_DEMO.mp4").is_file()
