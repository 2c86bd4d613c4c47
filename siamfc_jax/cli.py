"""What every command-line tool of siamfc_jax shares: one-line errors, exit codes, value parsers.

The convention (README, "Errors and exit codes"), the same for every command line, whose modules
:data:`COMMAND_MODULES` lists:

- a user mistake prints one line ``error: <message>`` on stderr, never a traceback; the message
  names the argument (``argument --box: …``) or the file (``path/to/file: …``);
- exit status :data:`EXIT_USAGE` (2) for a bad command line, :data:`EXIT_INPUT` (1) for bad or
  missing input data, weights or an output that cannot be written, :data:`EXIT_INTERRUPTED` (130)
  after Ctrl-C, 0 on success.

Host code; nothing here imports JAX.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import TextIO

# The modules that hold a command line, the only ones that use this module or argparse
# (tests/test_architecture.py checks the code, docs/ARCHITECTURE.md and README.md against it).
COMMAND_MODULES = (
    "siamfc_jax.apps.track",  # track.py, siamfc-track
    "siamfc_jax.apps.track_arguments",  # track.py's arguments
    "siamfc_jax.apps.train",  # train.py, siamfc-train
    "siamfc_jax.convert",  # python -m siamfc_jax.convert, siamfc-convert
    "siamfc_jax.export.command",  # python -m siamfc_jax.export
    "siamfc_jax.tune.command",  # python -m siamfc_jax.tune
    "siamfc_jax.synthetic.command",  # python -m siamfc_jax.synthetic
    "siamfc_jax.pipeline.tfds_builder",  # python -m siamfc_jax.pipeline.tfds_builder
)

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_SEPARATORS = re.compile(r"[,\s]+")


class UsageError(Exception):
    """A bad command line; the message names the argument."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors raise :class:`UsageError` instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        head, _, extra = message.partition(": ")
        if head == "unrecognized arguments" and any(os.path.exists(word) for word in extra.split()):
            # The shell expanded an unquoted glob into many file names.
            message += " (quote a glob pattern: --seq 'frames/*.jpg')"
        raise UsageError(message)


def program_name(default: str) -> str:
    """The name a tool is run by, for its usage line: the console script's (``siamfc-track``) when
    installed, else ``default`` (``python track.py``)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name.startswith("siamfc-") else default


def one_line(message: str) -> str:
    """``message`` on one line: messages from libraries (PyTorch, OpenCV) may span several."""
    return " ".join(str(message).split())


def fail(message: str, status: int) -> int:
    """Print ``error: <message>`` as one line on stderr and return ``status``."""
    print("error: " + one_line(message), file=sys.stderr)
    return status


def run(body: Callable[[], int], input_errors: tuple[type[BaseException], ...]) -> int:
    """Run a tool's ``body`` and turn the user's mistakes into the convention's line and status.

    Args:
      body: everything after the platform choice; returns the exit status.
      input_errors: exception types that mean bad input data, weights or outputs (status 1);
        :class:`UsageError` gives 2 and Ctrl-C 130.
    """
    try:
        return body()
    except UsageError as error:
        return fail(str(error), EXIT_USAGE)
    except input_errors as error:
        return fail(str(error), EXIT_INPUT)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)


def flag(field_name: str) -> str:
    """The command-line flag of a config field: ``scale_step`` -> ``--scale-step``, a nested one
    ``optim.batch_size`` -> ``--optim.batch-size``."""
    return "--" + field_name.replace("_", "-")


def _field_parser(annotation: str) -> tuple[Callable[[str], object], str | None]:
    """Value parser and metavar (None: the field's name) of a config field from its annotation's text."""
    kind = annotation.removesuffix(" | None")
    if kind == "int":
        return integer, "N"
    if kind == "float":
        return finite_float, "X"
    if kind == "str":
        return str, None
    raise TypeError(f"no command-line flag for a field of type {annotation}")


def add_config_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config: object,
    help: Mapping[str, str],
    aliases: Mapping[str, tuple[str, ...]] = MappingProxyType({}),
    prefix: str = "",
) -> list[str]:
    """Add one flag per field of the frozen dataclass ``config``, recursing into nested configs.

    A field ``optim.batch_size`` gets ``--optim.batch-size`` (top-level ``seed``: ``--seed``), plus
    the spellings in ``aliases`` (``{"optim.batch_size": ("--batch-size",)}``); a bool field gets
    ``--x``/``--no-x``. Values are only parsed as numbers here: the config's own checks judge them
    (:func:`siamfc_jax.config.override`). Flags not given leave no attribute on the namespace, so
    :func:`config_changes` sees only what the user set. ``help`` gives each field's text by path.

    Returns:
      The dotted paths of the fields, which are also the flags' ``dest``.
    """
    paths = []
    for field in dataclasses.fields(config):  # type: ignore[arg-type]
        path = prefix + field.name
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            paths += add_config_flags(parser, value, help, aliases, path + ".")
            continue
        names = (flag(path), *aliases.get(path, ()))
        text = help.get(path, path.replace("_", " "))
        if str(field.type) == "bool":
            parser.add_argument(
                *names, dest=path, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text
            )
        else:
            parse, metavar = _field_parser(str(field.type))
            parser.add_argument(
                *names,
                dest=path,
                type=parse,
                metavar=metavar or field.name.upper(),
                default=argparse.SUPPRESS,
                help=text,
            )
        paths.append(path)
    return paths


def add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    """``--distributed`` and the three flags that place this process in a ``jax.distributed`` run
    (left out: auto-detected, e.g. under SLURM); the same flags for every multi-host tool."""
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="multi-host: jax.distributed.initialize() (auto-detected, or the 3 flags below)",
    )
    parser.add_argument("--coordinator", help="host:port of process 0 (with --distributed)")
    parser.add_argument(
        "--num-processes", type=positive_integer, help="number of processes (with --distributed)"
    )
    parser.add_argument(
        "--process-id", type=non_negative_integer, help="this process's index (with --distributed)"
    )


def check_distributed_flags(args: argparse.Namespace) -> None:
    """Refuse the placement flags of :func:`add_distributed_flags` without ``--distributed``.

    Raises:
      UsageError: naming the first such flag given.
    """
    if args.distributed:
        return
    for name in ("coordinator", "num_processes", "process_id"):
        if getattr(args, name) is not None:
            raise UsageError(f"argument {flag(name)}: only with --distributed")


def config_changes(args: argparse.Namespace, paths: list[str]) -> dict[str, object]:
    """``{path: value}`` of the config flags (from :func:`add_config_flags`) given on the command line."""
    given = vars(args)
    return {path: given[path] for path in paths if path in given}


def integer(text: str) -> int:
    """An integer flag value."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_integer(text: str) -> int:
    """An integer flag value >= 1."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def non_negative_integer(text: str) -> int:
    """An integer flag value >= 0."""
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A finite number."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def non_empty_path(text: str) -> str:
    """A path flag value; an empty one is refused rather than read as the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    return text


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x,y,w,h"`` (commas and/or spaces) -> four finite floats, 1-indexed pixels, w and h > 0."""
    parts = [part for part in _SEPARATORS.split(text.strip()) if part]
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError(f"expected 4 numbers x,y,w,h (1-indexed pixels), got {text!r}")
    if values[2] <= 0 or values[3] <= 0:
        raise argparse.ArgumentTypeError(f"width and height must be > 0, got {text!r}")
    return values  # type: ignore[return-value]


def frame_size(text: str) -> tuple[int, int]:
    """``"WIDTHxHEIGHT"`` -> (width, height), both >= 1."""
    try:
        width, height = (int(value) for value in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 320x240, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"width and height must be >= 1, got {text!r}")
    return width, height


class Heartbeat:
    """Context manager repeating the current status at least every ``interval`` seconds.

    For output that is not a terminal (a pipe, a CI log), where progress bars are off and a long
    compilation or validation would otherwise show nothing. The tool keeps :attr:`status` up to date
    (:meth:`set_status`: "compiling the train step", "epoch 2/6, step 40 of 300"), and a daemon thread
    prints ``... <status> (<seconds> s)`` on stderr when ``interval`` seconds passed since the last
    line printed. The tool's own output lines go through :meth:`say` (stdout), which never changes
    the status: a heartbeat says what is being done now, not what was last printed. Disabled, it
    prints only what :meth:`say` gets.

    Args:
      enabled: whether to print heartbeat lines (e.g. ``not sys.stderr.isatty()``).
      interval: seconds of silence before a heartbeat line.
      stream: where all lines go (default: :meth:`say`'s to ``sys.stdout``, heartbeat lines to
        ``sys.stderr``, each at the time of printing).
    """

    def __init__(self, enabled: bool, interval: float = 10.0, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.interval = interval
        self.status = "starting"
        self._stream = stream
        self._start = self._last = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _print(self, line: str, stream: TextIO) -> None:
        with self._lock:
            print(line, file=stream, flush=True)
            self._last = time.monotonic()

    def say(self, message: str) -> None:
        """Print ``message``, a line of the tool's own output, on stdout; the status stays as it is."""
        self._print(message, self._stream or sys.stdout)

    def set_status(self, status: str) -> None:
        """Make ``status`` (what the tool is doing now) what heartbeat lines repeat; prints nothing."""
        self.status = status

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self.interval / 4)):
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._print(f"... {self.status} ({now - self._start:.0f} s)", self._stream or sys.stderr)

    def __enter__(self) -> Heartbeat:
        if self.enabled:
            self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
