"""Config parsing, presets, key=value overrides and their errors."""

import dataclasses

import pytest

from hqnn.exceptions import ConfigError
from hqnn.train.config import (
    ExperimentConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_yaml,
    load_yaml,
)
from hqnn.train.presets import DEFAULT_PRESET, list_presets, load_config, resolve_preset


def test_defaults_are_frozen():
    config = ExperimentConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.epochs = 3


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads(name):
    config = load_config(name)
    assert config.preset == name and config.description


def test_expected_presets_present():
    expected = {
        "digits_cnn_qnn", "mnist_sqdr", "wm811k_hcqdl", "cifar10_cnn_qnn",
        "cifar100_resnet34_baseline", "cifar100_resnet34_qchannels", "cifar100_resnet34_qhead",
    }
    assert expected <= set(list_presets())
    assert DEFAULT_PRESET == "digits_cnn_qnn"


def test_cifar100_recipe_values():
    config = load_config("cifar100_resnet34_qhead")
    assert (config.optim.name, config.optim.lr, config.optim.weight_decay) == ("adamw", 3e-4, 1e-4)
    assert (config.schedule.name, config.schedule.max_lr) == ("onecycle", 7e-4)
    assert (config.train.batch_size, config.train.epochs, config.train.warmup_epochs) == (128, 40, 5)
    assert config.train.label_smoothing == 0.05 and config.data.split_method == "diana"


def test_overrides_qualified_bare_and_model_args():
    config = apply_overrides(
        ExperimentConfig(),
        ["epochs=3", "optim.lr=3e-4", "model.args.img_size=12", "data.limit=none", "train.compare=true", "seed=7"],
    )
    assert config.train.epochs == 3 and config.optim.lr == 3e-4
    assert config.model.args == {"img_size": 12} and config.data.limit is None
    assert config.train.compare is True and config.run.seed == 7


def test_model_args_as_mapping():
    config = apply_overrides(ExperimentConfig(), ["model.args={depth: 18, stem: small}"])
    assert config.model.args == {"depth": 18, "stem": "small"}


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"train.epoch'.*did you mean train.epochs.*keys of train: .*train.batch_size"):
        apply_overrides(ExperimentConfig(), ["train.epoch=3"])
    with pytest.raises(ConfigError, match="valid keys: preset, description, model.name"):
        apply_overrides(ExperimentConfig(), ["nonsense=1"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("epochs=abc", "train.epochs must be an int; got 'abc'"),
        ("optim.lr=fast", "optim.lr must be a float"),
        ("compare=maybe", "train.compare must be a bool"),
        ("name=x", "ambiguous"),
        ("epochs", "key=value"),
        ("optim.name=rmsprop", "optim.name must be one of adamw, adam, sgd, nadam"),
        ("warmup_epochs=9", "warmup_epochs"),
        ("data.val_fraction=1.5", r"data.val_fraction must lie in \(0, 1\)"),
    ],
)
def test_bad_values(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(ExperimentConfig(), [override])


def test_wrong_type_in_yaml_section():
    with pytest.raises(ConfigError, match="train.epochs must be an int"):
        config_from_dict({"train": {"epochs": "many"}})
    with pytest.raises(ConfigError, match="unknown config key 'optimizer'"):
        config_from_dict({"optimizer": {"lr": 1.0}})


def test_yaml_round_trip(tmp_path):
    config = load_config(DEFAULT_PRESET, ["epochs=2", "model.args.img_size=12"])
    dump_yaml(config, tmp_path / "config.yaml")
    assert config_from_dict(load_yaml(tmp_path / "config.yaml")) == config
    assert load_config(str(tmp_path / "config.yaml")) == config
    assert config_to_dict(config)["train"]["epochs"] == 2


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="digits_cnn_qnn"):
        resolve_preset("no_such_preset")


def test_float_accepts_yaml_exponent_string():
    assert TrainConfig().epochs == 5
    assert config_from_dict({"optim": {"lr": "3e-4"}}).optim.lr == 3e-4
