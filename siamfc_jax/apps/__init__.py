"""The command-line tools behind ``track.py`` / ``siamfc-track`` and ``train.py`` / ``siamfc-train``.

Each module has a ``main(argv) -> exit status`` (the convention of :mod:`siamfc_jax.cli`); the
top-level scripts and the console entry points installed with the package only call it.
``siamfc-convert`` is :func:`siamfc_jax.convert.main`.
"""
