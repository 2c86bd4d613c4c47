"""Named runs (siamfc_jax.configs) and train.py's flags, generated from the config's fields.

The expected values are written out by hand from siamfc-pytorch's recipe and the README's commands,
not derived from the code under test.
"""

from __future__ import annotations

import dataclasses
import importlib
import json

import pytest

from siamfc_jax import cli, configs
from siamfc_jax.apps import train
from siamfc_jax.config import ConfigError, OptimConfig, PairConfig, TrainConfig, override


def shown_config(capsys, *argv: str) -> dict:
    assert train.main([*argv, "--show-config"]) == cli.EXIT_OK
    return json.loads(capsys.readouterr().out)


def all_paths(config, prefix=""):
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            yield from all_paths(value, prefix + field.name + ".")
        else:
            yield prefix + field.name


@pytest.mark.parametrize("name", configs.NAMES)
def test_every_config_is_a_documented_train_config(name):
    config = configs.get_config(name)
    assert isinstance(config, TrainConfig)
    doc = importlib.import_module(f"siamfc_jax.configs.{name}").__doc__
    assert "python train.py" in doc and "Wall time" in doc and "AUC" in doc


def test_the_runs_differ_from_siamfc_pytorch_where_documented():
    default = configs.get_config("default")
    assert default.optim == OptimConfig(50, 8, 1e-2, 1e-5, 5e-4, 0.9)
    assert default.pairs == PairConfig(127, 255, 0.5, pairs_per_seq=1)
    synthetic = configs.get_config("synthetic")
    assert (synthetic.data, synthetic.optim.epochs, synthetic.synthetic_sequences) == ("synthetic", 6, 300)
    rich = configs.get_config("synthetic_rich")
    assert (rich.synthetic_world, rich.synthetic_sequences, rich.optim.epochs) == ("rich", 1200, 6)
    assert (rich.pairs.pairs_per_seq, rich.pairs.min_target_side) == (2, 6.0)
    assert configs.get_config("got10k") == dataclasses.replace(default, data="got10k:/data/GOT-10k")
    assert configs.get_config("vid") == dataclasses.replace(default, data="vid:/data/ILSVRC2015")


def test_todays_command_lines_keep_their_meaning(capsys):
    # python train.py --backbone v1: the synthetic world's 6 epochs, workdir runs/v1-synthetic
    shown = shown_config(capsys, "--backbone", "v1")
    assert shown["optim"]["epochs"] == 6 and shown["data"] == "synthetic"
    assert shown["workdir"] == "runs/v1-synthetic"
    # --data got10k:DIR: siamfc-pytorch's 50 epochs; the short flags still set the fields
    shown = shown_config(
        capsys,
        *("--backbone", "v3", "--data", "got10k:/somewhere", "--batch-size", "64", "--lr", "0.02"),
        *("--final-lr", "1e-6", "--weight-decay", "0", "--pairs-per-seq", "2", "--epochs", "3"),
        *("--workdir", "w", "--data-dir", "d", "--synthetic-sequences", "9", "--val-sequences", "0"),
        *("--seed", "4", "--workers", "2", "--save-every-steps", "5", "--keep-checkpoints", "1"),
    )
    assert shown["model"]["backbone"] == "v3" and shown["data"] == "got10k:/somewhere"
    assert shown["optim"] == {
        "epochs": 3, "batch_size": 64, "initial_lr": 0.02, "ultimate_lr": 1e-6,
        "weight_decay": 0.0, "momentum": 0.9,
    }
    assert shown["pairs"]["pairs_per_seq"] == 2
    assert (shown["workdir"], shown["data_dir"], shown["synthetic_sequences"]) == ("w", "d", 9)
    assert (shown["val_sequences"], shown["seed"], shown["workers"]) == (0, 4, 2)
    assert (shown["save_every_steps"], shown["keep_checkpoints"]) == (5, 1)
    assert shown_config(capsys, "--data", "got10k:/x")["optim"]["epochs"] == 50
    assert shown_config(capsys, "--data", "folder:/x")["optim"]["epochs"] == 50
    assert shown_config(capsys, "--data", "vid:/x")["workdir"] == "runs/v1-vid"


def test_every_field_is_a_flag(capsys):
    _, paths = train.build_parser()
    assert sorted(paths) == sorted(all_paths(TrainConfig()))
    shown = shown_config(
        capsys,
        *("--config", "got10k", "--optim.epochs", "7", "--pairs.instance-sz", "271"),
        *("--pairs.color-jitter", "--loss.neg-weight", "0.5", "--log-every-steps", "3"),
    )
    assert shown["data"] == "got10k:/data/GOT-10k" and shown["workdir"] == "runs/v1-got10k"
    assert shown["optim"]["epochs"] == 7 and shown["pairs"]["instance_sz"] == 271
    assert shown["pairs"]["color_jitter"] is True and shown["loss"]["neg_weight"] == 0.5
    assert shown["log_every_steps"] == 3
    shown = shown_config(capsys, "--config", "ci", "--no-pairs.color-jitter", "--backbone", "v3")
    assert shown["pairs"]["color_jitter"] is False and shown["workdir"] == "runs/ci-v3"
    # A workdir given on the command line is taken as it is, braces included.
    assert shown_config(capsys, "--workdir", "runs/{backbone}")["workdir"] == "runs/{backbone}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "argument --optim.epochs: epochs must be a positive integer, got 0"),
        (["--optim.batch-size", "x"], "argument --optim.batch-size/--batch-size: expected an integer"),
        (["--backbone", "v9"], "argument --model.backbone: backbone must be one of"),
        (["--pairs.instance-sz", "100"], "argument --pairs.instance-sz: instance_sz must be at least"),
        (["--config", "nope"], "argument --config: invalid choice: 'nope'"),
        (["--synthetic-world", "moon"], "--synthetic-world: synthetic_world must be one of basic, rich"),
        (["--val-data", "/data/OTB"], "argument --val-data: val_data must be folder:DIR"),
        (["--optim.nope", "1"], "unrecognized arguments: --optim.nope"),
    ],
)
def test_bad_values_name_their_flag(capsys, argv, message):
    assert train.main([*argv, "--show-config"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_override_walks_dotted_paths():
    config = override(TrainConfig(), {"optim.epochs": 2, "pairs.context": 0.25, "seed": 3})
    assert (config.optim.epochs, config.pairs.context, config.seed) == (2, 0.25, 3)
    assert config.optim.batch_size == 8 and config.pairs.exemplar_sz == 127
    with pytest.raises(ConfigError) as error:
        override(TrainConfig(), {"optim.lr": 1.0})
    assert error.value.field == "optim.lr"
    with pytest.raises(ConfigError) as error:
        override(TrainConfig(), {"seed.x": 1})
    assert error.value.field == "seed.x"
    with pytest.raises(ConfigError) as error:
        override(TrainConfig(), {"pairs.grayscale_prob": 2.0})
    assert error.value.field == "pairs.grayscale_prob"


def test_config_follows_data_without_config_flag():
    assert configs.config_for_data("synthetic") == "synthetic"
    assert configs.config_for_data("got10k:/data") == "got10k"
    assert configs.config_for_data("vid:/data") == "vid"
    assert configs.config_for_data("folder:/data") == "default"
    with pytest.raises(ValueError, match="unknown config 'x'"):
        configs.get_config("x")
