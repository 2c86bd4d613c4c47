"""One run per output folder: ``--out`` of track.py and of tune, ``--workdir`` of train.py.

Each test starts a real second process that holds the folder through
:func:`siamfc_jax.files.hold_folder`, as a running tool does, and checks that the tool refuses the
folder at once, in one line naming that process, before any tracking or data work; and that a
killed holder leaves no lock behind.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from siamfc_jax.apps import track
from siamfc_jax.apps import train as train_app
from siamfc_jax.files import LOCK_NAME, LockHeld, hold_folder
from siamfc_jax.training import loop
from siamfc_jax.tune import command as tune
from tests.conftest import REPO_ROOT
from tests.test_track_cli import UnusedTracker, bad_inputs, use_still_trackers  # noqa: F401

# Holds the folder given as its argument until its stdin closes.
_HOLDER = (
    "import sys\n"
    "from siamfc_jax.files import hold_folder\n"
    "with hold_folder(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"
)


class Holder:
    """A second process holding ``folder`` (:func:`hold_folder`) until :meth:`release` or :meth:`kill`."""

    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(folder)],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline() == "held\n"
        self.named = f"pid {self.process.pid} on host {socket.gethostname()}"

    def release(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=60)


@pytest.fixture
def holder() -> Iterator:
    """``holder(folder)`` starts a :class:`Holder`; all are ended after the test."""
    started: list[Holder] = []

    def start(folder: Path) -> Holder:
        started.append(Holder(folder))
        return started[-1]

    yield start
    for each in started:
        if each.process.poll() is None:
            each.kill()


def test_a_held_folder_is_refused_naming_the_holder_and_freed_when_it_dies(tmp_path, holder):
    folder = tmp_path / "out"
    first = holder(folder)
    with pytest.raises(LockHeld) as refused, hold_folder(folder, "argument --out: ", "--out"):
        pass
    assert str(refused.value) == (
        f"argument --out: {folder} is in use by another run ({first.named}); wait for it to end, "
        "or choose another --out"
    )
    first.kill()  # no clean-up: the operating system drops the lock
    assert (folder / LOCK_NAME).exists()
    with hold_folder(folder) as held:
        assert held == folder
    assert not (folder / LOCK_NAME).exists()  # a run that ends removes its lock file
    second = holder(folder)
    second.release()
    with hold_folder(folder):
        pass


def test_track_refuses_an_out_another_run_holds(bad_inputs, holder, capfd, monkeypatch):  # noqa: F811
    # Two runs into one --out mixed their files (one's strip beside the other's boxes), both exit 0.
    use_still_trackers(monkeypatch, UnusedTracker)
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(bad_inputs.root / "jax_cache"))
    out = bad_inputs.root / "out"
    first = holder(out)
    assert track.main(["--seq", str(bad_inputs.otb), "--out", str(out), "--save-strip"]) == 1
    assert capfd.readouterr().err.splitlines() == [
        f"error: argument --out: {out} is in use by another run ({first.named}); wait for it to end, "
        "or choose another --out"
    ]
    assert sorted(path.name for path in out.iterdir()) == [LOCK_NAME]
    first.release()
    use_still_trackers(monkeypatch)
    assert track.main(["--seq", str(bad_inputs.otb), "--out", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["otb.json", "otb.txt", "otb_success.png"]


def test_train_refuses_a_workdir_another_run_holds_before_any_data_work(tmp_path, holder, capfd, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(loop, "train", no_training)
    workdir = tmp_path / "run"
    first = holder(workdir)
    arguments = ["--workdir", str(workdir), "--data-dir", str(tmp_path / "tfds")]
    assert train_app.main(arguments) == 1
    assert capfd.readouterr().err.splitlines() == [
        f"error: argument --workdir: {workdir} is in use by another run ({first.named}); wait for it "
        "to end, or choose another --workdir"
    ]
    assert not (tmp_path / "tfds").exists()


def test_tune_refuses_an_out_another_run_holds(bad_inputs, holder, capfd):  # noqa: F811
    out = bad_inputs.root / "tune"
    first = holder(out)
    arguments = ["--seq", str(bad_inputs.otb), "--out", str(out), "--grid", "scale_lr=0.5,0.6"]
    assert tune.main(arguments) == 1
    lines = capfd.readouterr().err.splitlines()
    assert lines == [
        f"error: argument --out: {out} is in use by another run ({first.named}); wait for it to end, "
        "or choose another --out"
    ]
    assert sorted(path.name for path in out.iterdir()) == [LOCK_NAME]


@pytest.mark.parametrize("flag", ["--seq", "--out"])
def test_tune_refuses_an_empty_path(tmp_path, flag, capfd):
    arguments = {"--seq": str(tmp_path), "--out": str(tmp_path / "out"), flag: ""}
    assert tune.main([*(word for pair in arguments.items() for word in pair), "--grid", "scale_lr=0.5"]) == 2
    assert capfd.readouterr().err.splitlines() == [f"error: argument {flag}: expected a path, got ''"]
