"""``python -m siamfc_jax.tune``: a grid search finds and writes the best config, resumes, and the
checkpoint sweep reproduces train.py's history.json validation AUC."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from siamfc_jax.apps import track
from siamfc_jax.sequences.datasets import SequenceFolder
from siamfc_jax.tune.command import main
from tests.synthetic_folder import SLOTS, write_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("tune") / "sequences")


@pytest.mark.slow
def test_grid_search_ranks_resumes_and_writes_a_config_track_reads(folder, tmp_path, capsys):
    out = tmp_path / "search"
    base = ["--seq", str(folder), "--out", str(out), "--batch", str(SLOTS)]
    assert main([*base, "--grid", "window_influence=0.05,0.4"]) == 0
    # A larger grid over the same sequences reuses the two finished candidates.
    assert main([*base, "--grid", "window_influence=0.05,0.4", "--grid", "scale_lr=0.59,0.2"]) == 0
    printed = capsys.readouterr().out
    assert "2 candidates x 3 sequences: 6 runs to do" in printed
    assert "4 candidates x 3 sequences: 6 runs to do" in printed
    results = json.loads((out / "tune.json").read_text())["candidates"]
    assert len(results) == 4 and all(len(entry["sequences"]) == 3 for entry in results.values())

    # A candidate's AUC is the mean over the sequences (batched boxes equal one-at-a-time
    # tracking: tests/test_batched.py); the candidates really differ.
    sequences = list(SequenceFolder(folder))
    table = {
        json.dumps(entry["values"], sort_keys=True): float(
            np.mean([entry["sequences"][s.name]["auc"] for s in sequences])
        )
        for entry in results.values()
    }
    assert len(set(table.values())) > 1
    best_auc = max(table.values())
    rows = [line for line in (out / "tune.md").read_text().splitlines() if line.startswith("| 1 |")]
    assert rows and f"{best_auc:.4f}" in rows[0]

    best = json.loads((out / "best_config.json").read_text())
    winner = max(table, key=table.get)
    for name in ("window_influence", "scale_lr"):
        assert best[name] == json.loads(winner)[name]
    status = track.main(["--seq", str(folder), "--out", str(tmp_path / "t"), "--config",
                         str(out / "best_config.json"), "--batch", str(SLOTS), "--no-progress"])
    assert status == 0
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["overall"]["auc"] == pytest.approx(best_auc, abs=1e-9)


def test_search_refuses_a_folder_of_another_search_and_bad_fields(folder, tmp_path, capsys):
    (tmp_path / "tune.json").write_text(json.dumps({"settings": {"weights": "x"}, "candidates": {}}))
    args = ["--seq", str(folder), "--out", str(tmp_path), "--grid", "window_influence=0.1"]
    assert main(args) == 2
    assert "holds a search with other settings" in capsys.readouterr().err
    assert main(["--seq", str(folder), "--out", str(tmp_path / "b"), "--grid", "precision=1"]) == 2
    assert "'precision' cannot be searched" in capsys.readouterr().err


@pytest.mark.slow
def test_checkpoint_sweep_reproduces_history_validation_auc(guarded_run, tmp_path, capsys):
    # tests/conftest.py's one-epoch run on the shared synthetic data, validated on one sequence.
    result, config = guarded_run.result, guarded_run.config
    history = {record["step"]: record["val/auc"] for record in result.history if "val/auc" in record}
    # train.py validates on the first val_sequences sequences of the synthetic val split.
    val_root = next(Path(config.data_dir).glob("downloads/siamfc_synthetic_*/val"))
    first = (val_root / "list.txt").read_text().split()[0]
    assert main(["--checkpoints", config.workdir, "--seq", str(val_root / first),
                 "--out", str(tmp_path / "sweep"), "--batch", "1"]) == 0
    rows = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["checkpoints"]
    assert [row["step"] for row in rows] == [result.step]
    for row in rows:
        print(f"step {row['step']}: sweep AUC {row['auc']:.6f}, history {history[row['step']]:.6f}")
        assert row["auc"] == pytest.approx(history[row["step"]], abs=1e-3)
        assert row["history_val_auc"] == history[row["step"]]
    assert (tmp_path / "sweep" / "sweep.png").is_file()
    assert "| 1 |" in (tmp_path / "sweep" / "sweep.md").read_text()
