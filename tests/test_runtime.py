"""setup_process: the platform (the CPU only where JAX's CUDA plugin is installed and no NVIDIA driver
is), the allocator (mimalloc, or glibc keeping freed memory), XLA:CPU's flags, the compilation cache.

For the platform the markers (plugin, driver files) and the environment are mocked and the real JAX
is never touched; the allocator and the flags are checked in fresh interpreters.
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

from siamfc_jax import runtime
from tests.conftest import REPO_ROOT, in_ci


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
    runtime._select_platform()
    assert runtime.os.environ["JAX_PLATFORMS"] == "cpu"
    assert fake_jax == [("jax_platforms", "cpu")]


def test_before_jax_is_imported_only_the_environment_is_set(monkeypatch, fake_jax):
    monkeypatch.delitem(sys.modules, "jax")
    markers(monkeypatch, plugin=True, driver=False)
    runtime._select_platform()
    assert runtime.os.environ["JAX_PLATFORMS"] == "cpu"
    assert fake_jax == []


@pytest.mark.parametrize(("plugin", "driver"), [(True, True), (False, False), (False, True)])
def test_left_alone_with_a_driver_or_without_the_plugin(monkeypatch, fake_jax, plugin, driver):
    markers(monkeypatch, plugin=plugin, driver=driver)
    runtime._select_platform()
    assert "JAX_PLATFORMS" not in runtime.os.environ
    assert fake_jax == []


def test_an_explicit_choice_is_kept(monkeypatch, fake_jax):
    markers(monkeypatch, plugin=True, driver=False)
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    runtime._select_platform()
    assert runtime.os.environ["JAX_PLATFORMS"] == "cuda"
    assert fake_jax == []


def test_driver_markers_are_files(monkeypatch):
    monkeypatch.setattr(runtime.os.path, "exists", lambda path: path == "/dev/nvidiactl")
    assert runtime._nvidia_driver_present()
    monkeypatch.setattr(runtime.os.path, "exists", lambda path: False)
    assert not runtime._nvidia_driver_present()


def on_glibc() -> dict[str, str]:
    """This environment without a preloaded allocator, for a fresh interpreter on glibc's malloc."""
    return {key: value for key, value in runtime.os.environ.items() if key != "LD_PRELOAD"}


# The check runs in a fresh interpreter: the setting is process-wide and would change the
# allocator under the rest of the suite. mallinfo2 (glibc >= 2.33) counts the bytes glibc holds
# in mmap'd chunks; a 64 MiB array is above glibc's largest dynamic mmap threshold (32 MiB), so by
# default it is always mmap'd.
MMAP_PROBE = """
import ctypes
import numpy as np
from siamfc_jax.runtime import keep_freed_host_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2

def mmapped_by_a_64_mib_array():
    before = libc.mallinfo2().hblkhd
    array = np.ones(2**26, np.uint8)
    return libc.mallinfo2().hblkhd - before

default = mmapped_by_a_64_mib_array()
took_effect = keep_freed_host_memory()
print(default, took_effect, mmapped_by_a_64_mib_array())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keep_freed_host_memory_stops_mmap_for_large_buffers():
    import ctypes
    import subprocess

    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("glibc older than 2.33 (no mallinfo2)")
    result = subprocess.run(
        [sys.executable, "-c", MMAP_PROBE], env=on_glibc(), capture_output=True, text=True, check=True
    )
    default, took_effect, after = result.stdout.split()
    assert int(default) >= 2**26 and took_effect == "True" and int(after) == 0


# glibc's malloc_info lists one <heap> per arena. By default a thread's first allocation gets it an
# arena of its own (a second heap); after keep_freed_host_memory every thread shares the main one.
ARENA_PROBE = """
import ctypes, os, sys, tempfile, threading
import numpy as np
from siamfc_jax.runtime import keep_freed_host_memory

libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]

def heaps_after_a_thread_allocates():
    thread = threading.Thread(target=lambda: np.ones(2**20, np.uint8).sum())
    thread.start()
    thread.join()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "malloc_info.xml")
        stream = libc.fopen(path.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        with open(path) as report:
            return report.read().count("<heap nr=")

took_effect = keep_freed_host_memory() if sys.argv[1] == "keep" else None
print(took_effect, heaps_after_a_thread_allocates())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keep_freed_host_memory_gives_threads_the_main_heap():
    """XLA's worker threads allocate a compiled program's buffers; in arenas of their own glibc
    unmaps a heap once it is free, so the next call would fault its pages in again."""
    import ctypes
    import subprocess

    if not hasattr(ctypes.CDLL(None), "malloc_info"):
        pytest.skip("no malloc_info in this C library")

    def probe(mode: str) -> list[str]:
        return subprocess.run(
            [sys.executable, "-c", ARENA_PROBE, mode],
            env=on_glibc(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

    assert probe("default") == ["None", "2"]
    assert probe("keep") == ["True", "1"]


# A fresh interpreter that relaunches itself: what it prints after, with its arguments; the last
# field is read from the process's memory map, independently of dladdr.
RELAUNCH_PROBE = """
import os, sys
from siamfc_jax import runtime
print("started", flush=True)
runtime.setup_process(xla_cpu_libraries=False, compilation_cache=False)
with open("/proc/self/maps") as maps:
    mapped = "libmimalloc" in maps.read()
print(sys.argv[1:], runtime.malloc_library(), os.environ.get("MIMALLOC_PURGE_DELAY"),
      runtime.keep_freed_host_memory(), mapped)
"""


def relaunch_probe(**environment: str) -> list[str]:
    done = runtime_subprocess([sys.executable, "-c", RELAUNCH_PROBE, "--seq", "a b"], environment)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def runtime_subprocess(command: list[str], environment: dict[str, str]):
    import subprocess

    return subprocess.run(command, env={**on_glibc(), **environment}, capture_output=True, text=True)


def installed_mimalloc():
    """mimalloc's library (requirements-cpu.txt installs it on Linux); skips elsewhere (fails in CI)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("LD_PRELOAD: Linux only")
    library = runtime.mimalloc_path()
    if library is None:
        if in_ci():
            pytest.fail("cmeel-mimalloc is not installed (requirements-cpu.txt)")
        pytest.skip("cmeel-mimalloc is not installed (requirements-cpu.txt)")
    return library


def test_relaunch_runs_the_same_command_on_mimalloc_once():
    library = installed_mimalloc()
    # "started" twice: the program ran again from its start, with the same arguments, on mimalloc
    # (its malloc, its library mapped), pages kept, and glibc's settings (which setup_process makes
    # where the process stays on glibc) left alone.
    first, second, result = relaunch_probe()
    assert first == second == "started"
    assert result == f"['--seq', 'a b'] {library} -1 False True"
    # Already on mimalloc (or another allocator the user preloaded): no second start.
    already = relaunch_probe(LD_PRELOAD=str(library))
    assert already[:1] == ["started"]
    assert len(already) == 2
    # A value the user set is kept.
    assert relaunch_probe(MIMALLOC_PURGE_DELAY="5")[-1].split()[-3] == "5"


def test_relaunch_is_switched_off_by_the_environment():
    installed_mimalloc()
    started, result = relaunch_probe(SIAMFC_JAX_MIMALLOC="0")
    assert started == "started"
    fields = result.split()
    assert "libc" in fields[-4] and fields[-3:] == ["None", "True", "False"]


def test_relaunch_refuses_to_loop_where_the_preload_did_not_take(monkeypatch, capsys):
    """mimalloc listed in LD_PRELOAD while malloc is still the C library's: one line, no new start."""
    library = installed_mimalloc()
    monkeypatch.setattr(runtime, "malloc_library", lambda: "/lib/x86_64-linux-gnu/libc.so.6")
    monkeypatch.setenv("LD_PRELOAD", f"/opt/other.so {library}")
    monkeypatch.delenv("SIAMFC_JAX_MIMALLOC", raising=False)
    started = []
    monkeypatch.setattr(runtime.os, "execve", lambda *arguments: started.append(arguments))
    runtime._relaunch_with_mimalloc()
    assert started == []
    assert capsys.readouterr().err.count("\n") == 1
    # Without it in LD_PRELOAD, it starts again: first in LD_PRELOAD, the user's preloads after it.
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")
    runtime._relaunch_with_mimalloc()
    ((executable, arguments, environment),) = started
    assert executable == sys.executable and arguments == sys.orig_argv
    assert environment["LD_PRELOAD"] == f"{library}:/opt/other.so"


@pytest.mark.parametrize("switch", ["1", "0"])
def test_track_py_runs_on_mimalloc_unless_switched_off(tmp_path, switch):
    """``python track.py`` as a user runs it: it names the allocator it runs on after the device
    (here before failing on a missing sequence, exit 1)."""
    library = installed_mimalloc()
    track = REPO_ROOT / "track.py"
    done = runtime_subprocess(
        [sys.executable, str(track), "--seq", str(tmp_path / "missing")], {"SIAMFC_JAX_MIMALLOC": switch}
    )
    assert done.returncode == 1 and done.stderr.startswith("error: "), done.stderr[-2000:]
    expected = library.name if switch == "1" else "libc.so.6"
    assert done.stdout.splitlines()[1] == f"malloc: {expected}"


YNNPACK_FLAGS = " --xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
ONEDNN_FLAGS = " --xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=individual_dot"


def test_xla_cpu_library_flags_are_added_once_and_a_users_choice_kept():
    flags = runtime.xla_flags_with("--xla_force_host_platform_device_count=2")
    assert flags == "--xla_force_host_platform_device_count=2" + YNNPACK_FLAGS
    assert runtime.xla_flags_with(flags) == flags  # already there: nothing appended twice
    users = "--xla_cpu_experimental_ynn_fusion_type=dot"
    assert runtime.xla_flags_with(users) == users
    assert runtime.xla_flags_with("", matrix_products="onednn") == (YNNPACK_FLAGS + ONEDNN_FLAGS).strip()
    assert runtime.xla_flags_with("", matrix_products=None) == ""
    with pytest.raises(ValueError, match="matrix_products"):
        runtime.xla_flags_with("", matrix_products="mkl")


def test_the_collective_timeout_is_a_flag_added_once():
    timeout = "--xla_cpu_collective_timeout_seconds=600"
    assert runtime.xla_flags_with("", None, collective_timeout_s=600) == timeout
    # Added by a later call to flags an earlier one set; the user's value is kept.
    flags = runtime.xla_flags_with("", "ynnpack")
    assert runtime.xla_flags_with(flags, "ynnpack", 600) == f"{flags} {timeout}"
    users = "--xla_cpu_collective_timeout_seconds=30"
    assert runtime.xla_flags_with(users, None, 600) == users


UNCACHEABLE = (
    "Error writing persistent compilation cache entry for 'jit_update_state': JaxRuntimeError: "
    "UNIMPLEMENTED: ToProto is not implemented for thunk kind: onednn-fusion"
)
DISK_FULL = "Error writing persistent compilation cache entry for 'f': disk full"


def warns_after_setup(**arguments) -> list[str]:
    """Which of two warnings about writing JAX's cache still show after setup_process(**arguments)
    under the current ``XLA_FLAGS``: JAX's for a program holding oneDNN fusions, and another."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime.setup_process(allocator=False, compilation_cache=False, **arguments)
        warnings.warn(UNCACHEABLE, UserWarning, stacklevel=1)
        warnings.warn(DISK_FULL, UserWarning, stacklevel=1)
    return [str(w.message) for w in caught]


def test_setup_sets_the_flags_and_filters_only_oneDNNs_cache_warning(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "")
    # oneDNN's products on: the warning about programs JAX cannot cache is filtered, others are not.
    assert warns_after_setup(matrix_products="onednn") == [DISK_FULL]
    assert runtime.os.environ["XLA_FLAGS"] == (YNNPACK_FLAGS + ONEDNN_FLAGS).strip()
    monkeypatch.setenv("XLA_FLAGS", ONEDNN_FLAGS.strip())  # the user's choice, kept
    assert len(warns_after_setup()) == 1
    assert runtime.os.environ["XLA_FLAGS"] == (ONEDNN_FLAGS + YNNPACK_FLAGS).strip()
    monkeypatch.setenv("XLA_FLAGS", "")  # YNNPACK's products: nothing filtered
    assert len(warns_after_setup()) == 2
    assert runtime.os.environ["XLA_FLAGS"] == YNNPACK_FLAGS.strip()


def test_setup_points_jax_at_the_compilation_cache(monkeypatch, tmp_path, fake_jax):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    runtime.setup_process(allocator=False, xla_cpu_libraries=False)
    folder = str(tmp_path / "siamfc_jax" / "jax")
    assert runtime.os.environ["JAX_COMPILATION_CACHE_DIR"] == folder
    assert fake_jax == [("jax_compilation_cache_dir", folder)]  # a JAX already imported is told too
    assert (tmp_path / "siamfc_jax" / "jax").is_dir()
    # A folder the user chose is kept.
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    runtime.setup_process(allocator=False, xla_cpu_libraries=False)
    assert runtime.os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "mine")
    assert len(fake_jax) == 1


def test_jax_computes_with_the_xla_cpu_library_flags():
    """XLA aborts on flags it does not know: this jaxlib must know the flags, and compute with them
    (a fresh interpreter, as the flags are read once per process), oneDNN's included. The compiled
    programs show their effect: the convolution is XLA's own, a matrix product a oneDNN fusion, a
    sum a YNNPACK one; the values are checked by hand."""
    import subprocess

    code = (
        "from siamfc_jax import runtime\n"
        "runtime.setup_process(allocator=False, compilation_cache=False, matrix_products='onednn')\n"
        "import jax, numpy as np, jax.numpy as jnp\n"
        "from siamfc_jax.ops.conv import conv2d\n"
        "x = np.arange(2 * 9 * 9 * 4, dtype=np.float32).reshape(2, 9, 9, 4) / 100\n"
        "k = np.ones((3, 3, 2, 6), np.float32)\n"
        "convolve = jax.jit(lambda x, k: conv2d(x, k, 1, 2, formulation='lax'))\n"
        "m = jnp.ones((64, 64))\n"
        "a = np.arange(300, dtype=np.float32).reshape(20, 15) / 50\n"
        "b = np.arange(15 * 7, dtype=np.float32).reshape(15, 7) / 30\n"
        "programs = [\n"
        # A convolution large enough for YNNPACK to take by default (small ones stay with XLA).
        "    jax.jit(lambda x, k: conv2d(x, k, formulation='lax')).lower(\n"
        "        jnp.ones((1, 32, 32, 32)), jnp.ones((3, 3, 32, 64))),\n"
        "    jax.jit(jnp.dot).lower(m, m),\n"
        "    jax.jit(jnp.sum).lower(m),\n"
        "    jax.jit(jnp.dot).lower(a, b),\n"
        "]\n"
        "texts = [p.compile().as_text() for p in programs]\n"
        "print(*[f\"{'__onednn_fusion' in t}/{'__ynn_fusion' in t}\" for t in texts])\n"
        "print(float(jnp.sum(convolve(jnp.asarray(x), jnp.asarray(k)))))\n"
        "print(*np.asarray(programs[3].compile()(a, b)).ravel())\n"
    )
    env = {key: value for key, value in runtime.os.environ.items() if key != "XLA_FLAGS"}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**env, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    libraries, total, product = done.stdout.splitlines()
    # Per program, "in oneDNN / in YNNPACK": convolution, product, sum, the small product.
    assert libraries.split() == ["False/False", "True/False", "False/True", "True/False"]
    # The last program's product, by oneDNN, against NumPy's in float64 (sums of 15 float32 products).
    a = np.arange(300, dtype=np.float64).reshape(20, 15) / 50
    b = np.arange(15 * 7, dtype=np.float64).reshape(15, 7) / 30
    expected_product = (a @ b).ravel()
    assert np.allclose(np.array(product.split(), np.float64), expected_product, rtol=1e-6, atol=0)
    # By hand: each output channel of a group sums the 3x3 windows of the group's 2 channels;
    # 3 output channels a group.
    x = np.arange(2 * 9 * 9 * 4, dtype=np.float64).reshape(2, 9, 9, 4) / 100
    expected = 3 * sum(x[:, i : i + 7, j : j + 7].sum() for i in range(3) for j in range(3))
    assert abs(float(total) - expected) <= 1e-5 * expected
