"""The command-line tools behind ``track.py`` / ``siamfc-track`` and ``train.py`` / ``siamfc-train``.

Each tool's module has a ``main(argv) -> exit status`` (the convention of :mod:`siamfc_jax.cli`).
The top-level scripts and the console entry points installed with the package run it through
:func:`track_command` and :func:`train_command`, which first configure the process
(:func:`siamfc_jax.runtime.setup_process`, which starts the program again on mimalloc) before
anything heavy is imported; this module imports nothing else, so the restart costs one more
interpreter start (about 50 ms). ``siamfc-convert`` is :func:`siamfc_jax.convert.main`.
"""

from siamfc_jax.runtime import setup_process


def track_command() -> int:
    """``python track.py`` / ``siamfc-track``: :func:`siamfc_jax.apps.track.main` on the command
    line's arguments, in a process set up by :func:`~siamfc_jax.runtime.setup_process`; returns the
    exit status."""
    setup_process()
    from siamfc_jax.apps.track import main

    return main()


def train_command() -> int:
    """``python train.py`` / ``siamfc-train``: :func:`siamfc_jax.apps.train.main` on the command
    line's arguments, in a process set up by :func:`~siamfc_jax.runtime.setup_process` (``--distributed``
    adds its collective timeout once the arguments are parsed); returns the exit status."""
    setup_process()
    from siamfc_jax.apps.train import main

    return main()

