"""Process-level setup: the JAX platform, the persistent caches, the CPU count, and glibc's malloc.

Nothing here runs on import; the command-line tools call :func:`select_platform` and
:func:`enable_compilation_cache` first thing, before anything compiles, and the tracking and
training ones :func:`keep_freed_host_memory` and :func:`use_xla_cpu_convolutions`.

``pip install jax[cuda12]`` on a machine without an NVIDIA driver makes JAX print a long traceback
from the CUDA plugin on first use before it falls back to the CPU. Users of a CPU-only machine (and
CI) should see one clear line about the device instead, so when the plugin is installed, no driver is
present and the user has not chosen platforms, we ask JAX for the CPU explicitly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import sys
from pathlib import Path

_NVIDIA_DRIVER_MARKERS = ("/proc/driver/nvidia/version", "/dev/nvidiactl")


def _cuda_plugin_installed() -> bool:
    try:
        return any(
            importlib.util.find_spec(name) is not None
            for name in ("jax_plugins.xla_cuda12", "jax_plugins.xla_cuda13")
        )
    except (ImportError, ValueError):
        return False


def _nvidia_driver_present() -> bool:
    return any(os.path.exists(marker) for marker in _NVIDIA_DRIVER_MARKERS)


def select_platform() -> None:
    """Ask JAX for the CPU when its CUDA plugin is installed but no NVIDIA driver is present.

    Leaves an explicit ``JAX_PLATFORMS`` alone. Must run before JAX initialises a backend; if JAX is
    already imported, the setting goes through ``jax.config`` instead of the environment.
    """
    if os.environ.get("JAX_PLATFORMS") or not _cuda_plugin_installed() or _nvidia_driver_present():
        return
    os.environ["JAX_PLATFORMS"] = "cpu"
    if "jax" in sys.modules:
        sys.modules["jax"].config.update("jax_platforms", "cpu")


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# M_TRIM_THRESHOLD -1: never hand the top of the heap back to the system (mallopt(3)).
_NEVER_TRIM = -1


def keep_freed_host_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse rather than hand it back to the system.

    XLA:CPU allocates fresh buffers on every call of a compiled program. By default glibc serves
    large ones with ``mmap`` and unmaps them when freed, and serves XLA's worker threads from
    arenas of their own, whose heaps it unmaps (or empties with ``madvise``) as soon as they are
    free, whatever the trim threshold. Either way every call pays a page fault on every page of
    every large buffer it writes: the tracker's update on 2 cores spent 12-15 % of its time there,
    and a train step of 8 pairs (2-core AMD EPYC) about 106,000 faults and 200 ms of system time,
    a fifth of its CPU time, with ``mmap`` off alone. So: no ``mmap`` for allocations, one arena
    for all threads (the main heap), and no trimming; from the second call on a program reuses
    pages the process already has (that train step: no faults, about 780 ms against 850). The price: the
    process keeps its peak memory, and more of it (one heap for all threads fragments more: that
    train step's process peaked at 2.6 GB against 1.1 GB). Process-wide, and arenas are chosen
    when a thread first allocates, so the command-line tools call it first thing, before JAX starts
    its threads; a library user may call it too.

    Returns:
      True where it took effect (glibc), False elsewhere (other C libraries: nothing changes).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return False
    # Only glibc has gnu_get_libc_version, and only its mallopt takes these parameters.
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    settings = ((_M_MMAP_MAX, 0), (_M_ARENA_MAX, 1), (_M_TRIM_THRESHOLD, _NEVER_TRIM))
    # A list, not a generator: every setting is applied even where an earlier one is refused.
    return all([bool(libc.mallopt(parameter, value)) for parameter, value in settings])


# XLA:CPU's choice of library for each kind of operation (matrix products, convolutions and
# reductions go to YNNPACK by default): the default list less convolutions (the "-" form removes one
# kind and keeps the rest), so that convolutions run on XLA's own kernels while matrix products and
# reductions (BatchNorm's statistics) stay with YNNPACK.
_LIBRARY_FUSION_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
_LIBRARY_FUSIONS = "-individual_convolution"


def use_xla_cpu_convolutions() -> bool:
    """Have XLA:CPU run ``lax`` convolutions on its own kernels rather than YNNPACK's (matrix
    products and reductions stay with YNNPACK), by appending the flag to ``XLA_FLAGS``.

    On SiamFC's layers XLA's kernels are the faster ones, most of all on grouped layers (3
    AlexNetV1 searches, 2-core AMD EPYC: conv2 39 ms against 168 ms, conv1 20 ms against 55 ms;
    a train step's 8 searches, forward: conv2 by groups 72 ms against 220 ms, conv1 48 ms against
    400 ms), which makes ``"lax"`` and ``"lax_per_group"`` the fastest formulations for conv1 and
    conv2 in tracking and for most roles of a train step; the autotune measures under whatever
    flags are set (they are part of its machine key). The tracking and training command-line tools
    call it first thing, as it is process-wide and read when JAX creates its CPU backend. Only
    convolutions leave YNNPACK: with matrix products alone left there (the list ``individual_dot``,
    which takes its reductions away too), a train step ran about 12 % slower than with the default;
    with convolutions alone removed, it runs 1.4x faster (benchmarks/RESULTS.md). A flag the user
    set in ``XLA_FLAGS`` is left as it is. The flag is one of the jaxlib this project pins
    (``tests/test_runtime.py`` runs JAX with it, as XLA aborts on a flag it does not know).

    Returns:
      True where the flag was added, False where ``XLA_FLAGS`` already set it.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if _LIBRARY_FUSION_FLAG in flags:
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {_LIBRARY_FUSION_FLAG}={_LIBRARY_FUSIONS}".strip()
    return True


def describe_devices() -> str:
    """One line naming the devices JAX computes on, e.g. ``device: cpu (1 device)``."""
    import jax

    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    note = ""
    if devices[0].platform == "cpu" and os.environ.get("JAX_PLATFORMS") == "cpu" and (
        _cuda_plugin_installed() and not _nvidia_driver_present()
    ):
        note = ", no NVIDIA GPU found"
    plural = "s" if len(devices) != 1 else ""
    return f"device: {devices[0].platform} ({len(devices)} device{plural}: {', '.join(kinds)}{note})"


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cache_dir() -> Path:
    """Root of siamfc_jax's caches: ``$XDG_CACHE_HOME/siamfc_jax``, else ``~/.cache/siamfc_jax``."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "siamfc_jax"


def enable_compilation_cache() -> None:
    """Point JAX's persistent compilation cache at ``cache_dir() / "jax"``.

    Left alone when ``JAX_COMPILATION_CACHE_DIR`` is set (JAX reads it itself) and skipped when the
    folder cannot be created: the cache only saves time. Call it before anything compiles: JAX
    decides on the cache once.
    """
    import jax  # after select_platform, which must run before JAX starts

    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    directory = cache_dir() / "jax"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", str(directory))
