"""Process-level setup: the allocator, the JAX platform, XLA:CPU's flags, the compilation cache and
FFmpeg's log level.

Nothing here runs on import. :func:`setup_process` is the one call that configures the process:
every program (the command lines, the speed benchmarks, the test suite) makes it first thing,
before it imports JAX; library code sets no environment variable and installs no warning filter.

``pip install jax[cuda12]`` on a machine without an NVIDIA driver makes JAX print a long traceback
from the CUDA plugin on first use before it falls back to the CPU. Users of a CPU-only machine (and
CI) should see one clear line about the device instead, so when the plugin is installed, no driver is
present and the user has not chosen platforms, we ask JAX for the CPU explicitly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import importlib.util
import os
import sys
import warnings
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


def _select_platform() -> None:
    """Ask JAX for the CPU when its CUDA plugin is installed but no NVIDIA driver is present.

    Leaves an explicit ``JAX_PLATFORMS`` alone. Must run before JAX initialises a backend; if JAX is
    already imported, the setting goes through ``jax.config`` as well as the environment.
    """
    if os.environ.get("JAX_PLATFORMS") or not _cuda_plugin_installed() or _nvidia_driver_present():
        return
    os.environ["JAX_PLATFORMS"] = "cpu"
    if "jax" in sys.modules:
        sys.modules["jax"].config.update("jax_platforms", "cpu")


# mimalloc, from this wheel; the file the dynamic loader preloads (its soname).
_MIMALLOC_DISTRIBUTION = "cmeel-mimalloc"
_MIMALLOC_LIBRARY = "libmimalloc.so.3"
# Set to 0, the command-line tools keep the C library's malloc.
MIMALLOC_SWITCH = "SIAMFC_JAX_MIMALLOC"
# mimalloc hands freed pages back to the system 10 ms after they fall free, by default; XLA then
# pays a page fault on every page of its large buffers at every call, as with glibc's defaults
# (:func:`keep_freed_host_memory`). Never handing them back: a train step of 8 pairs (2-core Xeon) 2,272
# faults and 53 ms of system time a step with mimalloc's default, none and 4 ms this way. A value
# the user set is kept.
_MIMALLOC_SETTINGS = (("MIMALLOC_PURGE_DELAY", "-1"),)


class _DlInfo(ctypes.Structure):
    """dladdr(3)'s Dl_info."""

    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def malloc_library() -> str | None:
    """The file of the shared object whose ``malloc`` this process calls: the C library's (e.g.
    ``/lib/x86_64-linux-gnu/libc.so.6``) unless another allocator was preloaded. None where the
    dynamic loader cannot tell (no ``dladdr``, e.g. Windows)."""
    try:
        process = ctypes.CDLL(None)
    except (OSError, TypeError):
        return None
    dladdr = getattr(process, "dladdr", None)
    if dladdr is None:  # glibc before 2.34 keeps it in libdl
        try:
            dladdr = ctypes.CDLL(ctypes.util.find_library("dl")).dladdr
        except (OSError, TypeError, AttributeError):
            return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    info = _DlInfo()
    address = ctypes.cast(process.malloc, ctypes.c_void_p)
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.fsdecode(info.dli_fname)


def _is_c_library(path: str) -> bool:
    # libc.so.6, or libc-2.31.so before glibc 2.34 named its file by version.
    return Path(path).name.startswith(("libc.so", "libc-"))


def mimalloc_path() -> Path | None:
    """mimalloc's shared library from the ``cmeel-mimalloc`` wheel; None where it is not installed."""
    try:
        files = importlib.metadata.files(_MIMALLOC_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == _MIMALLOC_LIBRARY:
            path = Path(file.locate()).resolve()
            return path if path.is_file() else None
    return None


def _relaunch_with_mimalloc() -> None:
    """Run this command line again in this process (``execve``), with mimalloc as its allocator.

    XLA:CPU allocates and frees buffers all through a program's run, from all its threads. glibc's
    malloc makes that cost either page faults (its defaults) or, with
    :func:`keep_freed_host_memory`'s settings, a single arena whose lock the threads queue on and
    whose free lists its searches walk: a train step of 8 pairs (2-core Xeon) spent 9 % of its CPU
    time in ``_int_malloc`` and switched threads 1,900 times a step. On mimalloc, with freed pages
    kept, the same step took 586 against 720 ms (and its process peaked at 1.9 against 2.5 GB);
    the tracker gains less (``benchmarks/RESULTS.md``).

    The dynamic loader chooses the allocator before the program starts, so this starts the
    program again with mimalloc in ``LD_PRELOAD`` and the same arguments (``sys.orig_argv``) and
    environment; the process keeps its ID and its open files. Nothing happens (it returns) where:
    the system is not Linux; ``SIAMFC_JAX_MIMALLOC=0``; the ``cmeel-mimalloc`` wheel is not
    installed; ``malloc`` is not the C library's already (mimalloc, or an allocator the user
    preloaded); or mimalloc was preloaded and did not take (one line on stderr says so, rather than
    starting again forever).
    """
    if not sys.platform.startswith("linux") or os.environ.get(MIMALLOC_SWITCH) == "0":
        return
    # The cheap check first: the process started again on mimalloc returns here, without reading
    # the wheel's file list a second time.
    current = malloc_library()
    if current is None or not _is_c_library(current) or not sys.executable:
        return
    library = mimalloc_path()
    if library is None:
        return
    preloaded = os.environ.get("LD_PRELOAD", "")
    if str(library) in preloaded.replace(" ", ":").split(":"):
        print(
            f"siamfc_jax: mimalloc ({library}) is in LD_PRELOAD but malloc is {current}'s; running on it",
            file=sys.stderr,
        )
        return
    environment = dict(os.environ)
    environment["LD_PRELOAD"] = ":".join(filter(None, (str(library), preloaded)))
    for name, value in _MIMALLOC_SETTINGS:
        environment.setdefault(name, value)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, environment)
    except OSError as error:
        print(
            f"siamfc_jax: could not start again on mimalloc ({error}); running on {current}'s malloc",
            file=sys.stderr,
        )


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
    when a thread first allocates, so :func:`setup_process` calls it first thing, before JAX starts
    its threads, where the process stays on glibc's malloc; a library user may call it too.

    Returns:
      True where it took effect (glibc's malloc serves the process), False elsewhere (another C
      library, or another allocator preloaded, e.g. mimalloc by :func:`setup_process`: nothing
      changes).
    """
    current = malloc_library()
    if current is not None and not _is_c_library(current):
        return False
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


# XLA:CPU's choice of library for each kind of operation. YNNPACK takes matrix products,
# convolutions and reductions by default; the "-" form of its list removes one kind and keeps the
# rest, so convolutions run on XLA's own kernels and reductions (BatchNorm's statistics) stay with
# YNNPACK. Matrix products may go to oneDNN instead, whose fusions XLA forms before YNNPACK's, one
# product per fusion ("individual_dot"): the fusion type "dot", which also takes the additions
# between products, failed to compile some of ours (oneDNN's "partition compile failed", then the
# process died).
_YNNPACK_FLAGS = (("--xla_cpu_experimental_ynn_fusion_type", "-individual_convolution"),)
_ONEDNN_FLAGS = (
    ("--xla_cpu_use_onednn", "true"),
    ("--xla_cpu_experimental_onednn_fusion_type", "individual_dot"),
)
MATRIX_PRODUCT_LIBRARIES = ("onednn", "ynnpack")
_COLLECTIVE_TIMEOUT_FLAG = "--xla_cpu_collective_timeout_seconds"
# What JAX warns, once per program, when it cannot write a program with oneDNN fusions to its
# persistent compilation cache (jaxlib 0.10.2 cannot serialise them): such programs are compiled
# again in every process, which is the price of oneDNN's products, not an error to report.
_UNCACHEABLE_ONEDNN_WARNING = r"Error writing persistent compilation cache entry .*thunk kind: onednn-fusion"


def xla_flags_with(
    flags: str, matrix_products: str | None = "ynnpack", collective_timeout_s: int | None = None
) -> str:
    """``flags`` (an ``XLA_FLAGS`` value) with the flags it lacks appended: XLA:CPU's libraries
    unless ``matrix_products`` is None, and the CPU collectives' timeout where given.

    Libraries: ``lax`` convolutions on XLA's own kernels, matrix products on ``matrix_products``'s
    (``"ynnpack"`` or ``"onednn"``), reductions on YNNPACK's. On SiamFC's layers XLA's convolution
    kernels are faster than YNNPACK's, most of all on grouped layers (3 AlexNetV1 searches, 2-core
    AMD EPYC: conv2 39 ms against 168 ms, conv1 20 ms against 55 ms; a train step's 8 searches,
    forward: conv2 by groups 72 ms against 220 ms, conv1 48 ms against 400 ms); with reductions left
    to XLA as well, a train step ran about 12 % slower.

    oneDNN's matrix products are faster than YNNPACK's (2-core Xeon: conv3's input gradient as
    im2col for 8 searches, (4608 × 384) × (384 × 2304), 23.0 against 26.3 ms, as fast as
    siamfc-pytorch's GEMM), which takes tracking there from 0.97x to 1.08-1.10x siamfc-pytorch's
    speed (benchmarks/RESULTS.md). Their price: JAX cannot keep programs that hold them in its
    persistent compilation cache, so every process compiles the tracker again (``track.py`` on
    the demo, with a warm cache: 16 s against 13 s). That outweighs the gain on fewer than about
    700 frames in one process, and the train step was not measurably faster with them
    (0.94-0.97x siamfc-pytorch's either way), so the command-line tools keep YNNPACK's; with
    ``XLA_FLAGS="--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=individual_dot"``
    a user chooses oneDNN's for them.

    Collective timeout: a CPU collective whose peers do not answer (a process of a multi-host run
    died or stalls) fails after this many seconds instead of waiting forever. No ``jax.config``
    option sets it (jaxlib 0.10.2), so it travels in ``XLA_FLAGS`` like the others. Convolution
    plans are measured under whatever flags are set (part of :mod:`siamfc_jax.plans`' machine key).

    A flag already in ``flags`` (the user's choice) is left as it is. The flags are the pinned
    jaxlib's (``tests/test_runtime.py`` runs JAX with them, as XLA aborts on a flag it does not
    know).

    Raises:
      ValueError: ``matrix_products`` is neither None nor one of :data:`MATRIX_PRODUCT_LIBRARIES`.
    """
    wanted: tuple[tuple[str, str], ...] = ()
    if matrix_products is not None:
        if matrix_products not in MATRIX_PRODUCT_LIBRARIES:
            raise ValueError(
                f"matrix_products must be one of {MATRIX_PRODUCT_LIBRARIES}, got {matrix_products!r}"
            )
        wanted = _YNNPACK_FLAGS + (_ONEDNN_FLAGS if matrix_products == "onednn" else ())
    if collective_timeout_s is not None:
        wanted += ((_COLLECTIVE_TIMEOUT_FLAG, str(collective_timeout_s)),)
    missing = [f"{flag}={value}" for flag, value in wanted if flag not in flags]
    return " ".join([flags, *missing]).strip()


def _onednn_products_on(flags: str) -> bool:
    return all(f"{flag}={value}" in flags for flag, value in _ONEDNN_FLAGS)


def describe_allocator() -> str:
    """One line naming the file whose ``malloc`` the process calls, e.g. ``malloc: libmimalloc.so.3``
    (:func:`setup_process`) or ``malloc: libc.so.6``."""
    library = malloc_library()
    return f"malloc: {Path(library).name if library else 'unknown'}"


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


def _enable_compilation_cache() -> None:
    """Point JAX's persistent compilation cache at ``cache_dir() / "jax"``.

    Left alone when ``JAX_COMPILATION_CACHE_DIR`` is set and skipped when the folder cannot be
    created: the cache only saves time. JAX reads the variable when it is imported and decides on
    the cache once, so a JAX already imported gets the folder through ``jax.config`` as well.
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    directory = cache_dir() / "jax"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(directory)
    if "jax" in sys.modules:
        sys.modules["jax"].config.update("jax_compilation_cache_dir", str(directory))


def setup_process(
    *,
    allocator: bool = True,
    xla_cpu_libraries: bool = True,
    compilation_cache: bool = True,
    collective_timeout_s: int | None = None,
    matrix_products: str = "ynnpack",
) -> None:
    """Configure this process for siamfc_jax's programs; the one place that does.

    In order:

    1. ``allocator``: start the program again on mimalloc (:func:`_relaunch_with_mimalloc`, an
       ``execve`` that does not return; where it does not apply, e.g. ``SIAMFC_JAX_MIMALLOC=0``,
       have glibc's malloc keep freed memory, :func:`keep_freed_host_memory`). Only for a program:
       a test, or a library user's process, would be replaced.
    2. The platform: the CPU where JAX's CUDA plugin is installed and no NVIDIA driver is present,
       unless ``JAX_PLATFORMS`` says otherwise.
    3. ``XLA_FLAGS``: XLA:CPU's libraries (``xla_cpu_libraries``, matrix products on
       ``matrix_products``'s) and the CPU collectives' ``collective_timeout_s`` (see
       :func:`xla_flags_with`); where oneDNN's products are on (by the argument or the user's
       ``XLA_FLAGS``), the warning JAX gives for each program it cannot cache is filtered: it is
       their known price, not an error.
    4. ``compilation_cache``: JAX's persistent compilation cache in ``cache_dir() / "jax"``.
    5. FFmpeg's errors through PyAV's log callback (``av.logging.set_level(av.logging.ERROR)``), so
       that :mod:`siamfc_jax.sequences.frames` catches a damaged video's messages per thread and
       names the frame (PyAV drops them at its default level); errors no capture takes go to
       Python's ``logging`` (``libav.*``). The level is PyAV's, process-wide: hence here.

    Call it first thing, before importing JAX (whose import the restart would repeat): JAX reads the
    platform, the flags and the cache folder once, when it creates its backend. A second call adds
    only what the first did not (a flag already set, by the user or an earlier call, is kept), so
    ``train.py --distributed`` passes its collective timeout once its arguments are parsed, before
    the backend starts.

    Raises:
      ValueError: ``matrix_products`` is not one of :data:`MATRIX_PRODUCT_LIBRARIES`.
    """
    if allocator:
        _relaunch_with_mimalloc()
        keep_freed_host_memory()
    _select_platform()
    flags = xla_flags_with(
        os.environ.get("XLA_FLAGS", ""), matrix_products if xla_cpu_libraries else None, collective_timeout_s
    )
    if flags:
        os.environ["XLA_FLAGS"] = flags
    if _onednn_products_on(flags):
        warnings.filterwarnings("ignore", message=_UNCACHEABLE_ONEDNN_WARNING, category=UserWarning)
    if compilation_cache:
        _enable_compilation_cache()
    import av.logging  # FFmpeg's bindings, not JAX: cheap, and after the restart

    av.logging.set_level(av.logging.ERROR)
