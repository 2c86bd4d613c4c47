"""Which of several equivalent device programs runs fastest on this machine: measured once, kept on disk.

:func:`fastest` compiles each candidate for the given shapes, times them in alternating rounds on
random inputs (so that load from other processes falls on all of them alike) and keeps the one with
the shortest best time. The answer is stored in ``cache_dir()/"autotune"/<machine>.json`` (beside
JAX's compilation cache), keyed by the problem's description (an entry counts only for the same set
of candidates); the file name is a digest of what makes timings differ between machines: the CPU
model and its instruction-set flags, the usable cores, the JAX and jaxlib versions, the backend and
``XLA_FLAGS``. Later calls, in this process or any other on the same machine, read the answer back,
so a given input runs the same program (and gives the same numbers) every time. Each measurement is
printed once, to stderr.

Measuring is bounded: after the first round, candidates more than :data:`DROP_RATIO` times slower
than the best are dropped, and after :data:`MIN_ROUNDS` rounds no new round starts once
:data:`TIMING_BUDGET_S` seconds have been spent timing one problem (compilation excluded: the
chosen program is compiled again, from JAX's cache where it is enabled, by the caller). Where the
cache folder cannot be written, the answer holds for this process only. ``SIAMFC_JAX_AUTOTUNE=0``
turns measuring off (:func:`enabled`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import jax
import jaxlib
import numpy as np

from siamfc_jax.files import write_text_atomic
from siamfc_jax.runtime import available_cores, cache_dir

# Timed rounds at most; rounds timed even past the budget (a train step's large layers used to get
# one, and a core taken by another process during it made the choice a 2x slower formulation);
# and the seconds of timing after which no new round starts.
MAX_ROUNDS = 5
MIN_ROUNDS = 3
TIMING_BUDGET_S = 1.5
# Candidates this many times slower than the best after the first round are not timed again.
DROP_RATIO = 1.5
# Part of the machine key, so raising it starts a new file: raised whenever the programs a cached
# answer chose between change, or what they cost, so that they are measured again (2: "winograd"
# added, and "rows" differentiated without keeping its patches; 3: runtime.keep_freed_host_memory
# gives XLA's threads one kept heap, so that large buffers no longer pay page faults on every call,
# which had weighed most on the formulations with the largest intermediates; 4: "winograd"
# differentiated by Winograd's own gradients for 3x3 kernels).
FORMAT_VERSION = 4


def enabled() -> bool:
    """False when the environment variable ``SIAMFC_JAX_AUTOTUNE`` is ``0``: callers then use their
    static choice and nothing is measured or cached."""
    return os.environ.get("SIAMFC_JAX_AUTOTUNE", "1") != "0"


def _cpu_description() -> str:
    """CPU model name and flags from /proc/cpuinfo (the platform's processor name elsewhere)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or platform.machine()
    flags = " ".join(sorted((fields.get("flags") or fields.get("Features") or "").split()))
    return f"{model} | {flags}"


def machine_key() -> str:
    """Digest (16 hex digits) of what makes timings differ between machines (see the module doc)."""
    parts = [
        f"format {FORMAT_VERSION}",
        _cpu_description(),
        f"cores {available_cores()}",
        f"jax {jax.__version__} jaxlib {jaxlib.__version__}",
        f"backend {jax.default_backend()} {sorted({d.device_kind for d in jax.devices()})}",
        f"XLA_FLAGS {os.environ.get('XLA_FLAGS', '')}",
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_path() -> Path:
    """The file holding this machine's measurements."""
    return cache_dir() / "autotune" / f"{machine_key()}.json"


def _read(path: Path) -> dict:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _random_inputs(shapes: Sequence[jax.ShapeDtypeStruct]) -> list[jax.Array]:
    rng = np.random.default_rng(0)
    return [
        jax.device_put(rng.uniform(-1, 1, shape.shape).astype(shape.dtype)) for shape in shapes
    ]


def measure(
    candidates: Mapping[str, Callable], shapes: Sequence[jax.ShapeDtypeStruct]
) -> dict[str, float]:
    """Best seconds per call of each candidate on random inputs of ``shapes`` (for a dropped one,
    its first round's)."""
    # Called while a program is being traced (a layer choosing its formulation): evaluate eagerly.
    with jax.ensure_compile_time_eval(), jax.transfer_guard("allow"):
        inputs = _random_inputs(shapes)
        compiled = {name: jax.jit(fn).lower(*shapes).compile() for name, fn in candidates.items()}
        for program in compiled.values():  # warm-up: first-call allocations
            jax.block_until_ready(program(*inputs))
        best = {name: float("inf") for name in compiled}
        timing = 0.0
        for round_index in range(MAX_ROUNDS):
            if round_index >= MIN_ROUNDS and timing > TIMING_BUDGET_S:
                break
            for name, program in compiled.items():
                if round_index and best[name] > DROP_RATIO * min(best.values()):
                    continue
                start = time.perf_counter()
                jax.block_until_ready(program(*inputs))
                elapsed = time.perf_counter() - start
                timing += elapsed
                best[name] = min(best[name], elapsed)
    return best


def fastest(
    problem: str,
    candidates: Mapping[str, Callable],
    shapes: Sequence[jax.ShapeDtypeStruct],
    approximate_gflop: float | None = None,
) -> str:
    """Name of the fastest of ``candidates`` (equivalent functions of arrays of ``shapes``).

    Args:
      problem: what is computed, e.g. the layer's shapes and direction: the cache key.
      candidates: name -> jittable function; each gets arrays of ``shapes`` as arguments.
      shapes: the arguments' shapes and dtypes.
      approximate_gflop: work per call, only for the printed line (GFLOP/s).

    Returns:
      The cached choice for ``problem`` on this machine, or the one measured now (and cached).
    """
    path = cache_path()
    entry = _read(path).get(problem)
    # An entry measured among other candidates (a formulation added since) is measured again.
    if (
        isinstance(entry, dict)
        and entry.get("choice") in candidates
        and set(entry.get("ms") or ()) == set(candidates)
    ):
        return entry["choice"]
    seconds = measure(candidates, shapes)
    choice = min(seconds, key=seconds.get)
    timings = ", ".join(
        f"{name} {1e3 * value:.1f} ms" for name, value in sorted(seconds.items(), key=lambda item: item[1])
    )
    rate = f", {approximate_gflop / seconds[choice]:.0f} GFLOP/s" if approximate_gflop else ""
    try:
        entries = _read(path)  # again: another process may have added entries meanwhile
        entries[problem] = {"choice": choice, "ms": {k: round(1e3 * v, 2) for k, v in seconds.items()}}
        write_text_atomic(path, json.dumps(entries, indent=1, sort_keys=True) + "\n")
        where = f"saved in {path}"
    except OSError as error:
        where = f"not saved ({error.strerror or error})"
    print(f"siamfc_jax autotune: {problem}: {timings} -> {choice}{rate} ({where})",
          file=sys.stderr, flush=True)
    return choice
