"""What ``--data`` names: parse_data_spec, open_dataset's parser behind it, and crops_config.

Expected kinds, paths and TFDS config names are written out by hand.
"""

from __future__ import annotations

import shutil

import pytest

from siamfc_jax.config import PairConfig, TrainConfig
from siamfc_jax.pipeline.sources import crops_config, parse_data_spec, prepare_training_data
from siamfc_jax.pipeline.tfds_builder import SiamfcCropsConfig
from siamfc_jax.sequences.datasets import parse_dataset_spec
from siamfc_jax.sequences.frames import DataError
from siamfc_jax.synthetic.config import SyntheticConfig
from tests.synthetic_folder import write_folder


def test_parse_data_spec_kinds(tmp_path):
    assert parse_data_spec("synthetic") == ("synthetic", None)
    for kind in ("got10k", "vid", "folder"):
        assert parse_data_spec(f"{kind}:{tmp_path}") == (kind, tmp_path)


def test_parse_data_spec_expands_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "GOT-10k").mkdir()
    assert parse_data_spec("got10k:~/GOT-10k") == ("got10k", tmp_path / "GOT-10k")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("imagenet:/data", "--data 'imagenet:/data': expected synthetic, got10k:DIR, vid:DIR or folder:DIR"),
        ("", "expected synthetic, got10k:DIR"),
        ("synthetic:/data", "synthetic takes no directory"),
        ("got10k", "got10k needs a directory, e.g. got10k:/data/got10k"),
        ("vid:", "vid needs a directory"),
        ("got10k/val:{tmp}", "training reads the train split; name the root, got10k:DIR"),
        ("folder/val:{tmp}", "expected synthetic, got10k:DIR"),
        ("folder:{tmp}/missing", "missing: no such directory (from --data folder:"),
    ],
)
def test_parse_data_spec_refuses(spec, message, tmp_path):
    with pytest.raises(DataError) as error:
        parse_data_spec(spec.format(tmp=tmp_path))
    assert message in str(error.value)


def test_parse_dataset_spec():
    assert parse_dataset_spec("got10k:/d") == ("got10k", "", "/d")
    assert parse_dataset_spec("vid/val:/d/e") == ("vid", "val", "/d/e")
    assert parse_dataset_spec("folder:C:/x") == ("folder", "", "C:/x")
    for spec in ("got10k", "got10k:", "lasot:/d", "folder/val:/d"):
        with pytest.raises(DataError, match="dataset"):
            parse_dataset_spec(spec)


def test_crops_config_names(tmp_path):
    def crops(**changes):
        return crops_config(TrainConfig(**changes))

    # The registered configs for the default settings: the plain kind.
    assert crops() == "synthetic"
    assert crops(data=f"got10k:{tmp_path}") == "got10k"
    assert crops(data=f"vid:{tmp_path}", pairs=PairConfig(pairs_per_seq=5, color_jitter=True)) == "vid"
    # Another synthetic world size or crop geometry: a config of its own name.
    small = crops(synthetic_sequences=12)
    assert isinstance(small, SiamfcCropsConfig)
    assert (small.name, small.kind, small.synthetic) == (
        "synthetic_n12",
        "synthetic",
        SyntheticConfig(num_sequences=12),
    )
    assert small.pair == PairConfig()
    geometry = PairConfig(exemplar_sz=103, instance_sz=175, context=0.5)
    both = crops(synthetic_sequences=12, pairs=PairConfig(103, 175, pairs_per_seq=2))
    assert both.name == "synthetic_n12_e103_i175_c50"
    assert both.pair == geometry and both.synthetic.num_sequences == 12
    folder = crops(data=f"folder:{tmp_path}", pairs=PairConfig(context=0.25))
    assert (folder.name, folder.kind) == ("folder_e127_i255_c25", "folder")
    assert folder.pair == PairConfig(context=0.25)


def test_two_folders_in_turn_with_one_data_dir(tmp_path):
    """The second folder is curated from its own files, so its broken ground truth is reported
    instead of the first folder's crops being trained on."""
    first, second = write_folder(tmp_path / "a"), write_folder(tmp_path / "b")
    data_dir = str(tmp_path / "tfds")

    def prepared(folder):
        config = TrainConfig(data=f"folder:{folder}", data_dir=data_dir, val_sequences=0)
        return prepare_training_data(config, workers=1, progress=False)

    data = prepared(first)
    assert data.train.names == ("small", "tall", "wide") and str(first) in data.description
    broken = second / "wide" / "groundtruth.txt"
    broken.write_text("1,2,3\n")
    with pytest.raises(DataError, match=str(broken)):
        prepared(second)
    shutil.rmtree(second / "wide")
    shutil.rmtree(second / "tall")
    again = prepared(second)
    assert again.train.names == ("small",) and again.description != data.description


def test_training_data_defaults_to_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = write_folder(tmp_path / "a")
    data = prepare_training_data(TrainConfig(data=f"folder:{folder}", val_sequences=0), 1, progress=False)
    assert f"curated in {tmp_path / 'cache' / 'siamfc_jax' / 'tfds' / 'siamfc_crops'}" in data.description
