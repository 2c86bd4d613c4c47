"""select_platform: the CPU only where JAX's CUDA plugin is installed and no NVIDIA driver is.

The markers (plugin, driver files) and the environment are mocked; the real JAX is never touched.
"""

from __future__ import annotations

import sys
import types

import pytest

from siamfc_jax import runtime


@pytest.fixture
def fake_jax(monkeypatch):
    updates = []
    fake = types.SimpleNamespace(config=types.SimpleNamespace(update=lambda *a: updates.append(a)))
    monkeypatch.setitem(sys.modules, "jax", fake)
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    return updates


def markers(monkeypatch, plugin: bool, driver: bool) -> None:
    monkeypatch.setattr(runtime, "_cuda_plugin_installed", lambda: plugin)
    monkeypatch.setattr(
        runtime.os.path, "exists", lambda path: driver and path in runtime._NVIDIA_DRIVER_MARKERS
    )


def test_plugin_without_driver_selects_the_cpu(monkeypatch, fake_jax):
    markers(monkeypatch, plugin=True, driver=False)
    runtime.select_platform()
    assert runtime.os.environ["JAX_PLATFORMS"] == "cpu"
    assert fake_jax == [("jax_platforms", "cpu")]


def test_before_jax_is_imported_only_the_environment_is_set(monkeypatch, fake_jax):
    monkeypatch.delitem(sys.modules, "jax")
    markers(monkeypatch, plugin=True, driver=False)
    runtime.select_platform()
    assert runtime.os.environ["JAX_PLATFORMS"] == "cpu"
    assert fake_jax == []


@pytest.mark.parametrize(("plugin", "driver"), [(True, True), (False, False), (False, True)])
def test_left_alone_with_a_driver_or_without_the_plugin(monkeypatch, fake_jax, plugin, driver):
    markers(monkeypatch, plugin=plugin, driver=driver)
    runtime.select_platform()
    assert "JAX_PLATFORMS" not in runtime.os.environ
    assert fake_jax == []


def test_an_explicit_choice_is_kept(monkeypatch, fake_jax):
    markers(monkeypatch, plugin=True, driver=False)
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    runtime.select_platform()
    assert runtime.os.environ["JAX_PLATFORMS"] == "cuda"
    assert fake_jax == []


def test_driver_markers_are_files(monkeypatch):
    monkeypatch.setattr(runtime.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    assert runtime._nvidia_driver_present()
    monkeypatch.setattr(runtime.os.path, "exists", lambda path: False)
    assert not runtime._nvidia_driver_present()
