"""Every registered model: builds, keeps its documented parameter count, runs forward and backward."""

import argparse

import pytest
import torch

from hqnn.exceptions import ConfigError
from hqnn.models import create_model, get_model_entry, list_models, register_model
from hqnn.models import cli as models_cli

ALL_MODELS = list_models()


def test_the_zoo_is_registered():
    expected = {"spanet", "spanet_sa_code", "hcqdl", "hcqdl_figure2", "hcqdl_classical", "sqdr_cnn",
                "sqdr_cnn_classical", "cnn_qnn", "cnn_qnn_classical", "resnet18", "resnet34",
                "resnet34_qchannels", "resnet34_qhead", "resnet34_qhead_classical"}
    assert expected <= set(ALL_MODELS)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_builds_counts_and_trains_one_step(name):
    torch.manual_seed(0)
    entry = get_model_entry(name)
    model = create_model(name)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert entry.param_count is not None, "every variant documents its parameter count"
    assert sum(p.numel() for p in trainable) == entry.param_count
    assert entry.summary

    x = torch.rand(2, *entry.input_size)
    logits = model(x)
    assert logits.shape == (2, model.num_classes)
    assert torch.isfinite(logits).all()
    logits.square().sum().backward()
    assert all(p.grad is not None for p in trainable)

    model.eval()
    with torch.no_grad():  # same seed for both: sqdr_cnn_noisy redraws its damping index per call
        torch.manual_seed(1)
        whole = model(x)
        torch.manual_seed(1)
        torch.testing.assert_close(whole, model.forward_head(model.forward_features(x)))


@pytest.mark.parametrize("name", ["hcqdl", "spanet_sa_gc_hybrid", "sqdr_cnn", "resnet18", "resnet34_qhead"])
def test_models_take_other_classes_channels_and_odd_sizes(name):
    model = create_model(name, num_classes=3, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.rand(3, 1, 29, 35)).shape == (3, 3)


def test_unknown_model_lists_close_matches():
    with pytest.raises(ConfigError, match="unknown model 'spanet_sa_cod'.*spanet_sa_code"):
        create_model("spanet_sa_cod")


def test_unknown_override_names_the_accepted_arguments():
    with pytest.raises(ConfigError, match="takes no argument.*num_classes"):
        create_model("spanet", num_clases=4)


def test_list_models_pattern_and_duplicate_registration():
    assert list_models("sqdr*") == [
        "sqdr_cnn", "sqdr_cnn_classical", "sqdr_cnn_noisy", "sqdr_cnn_plus", "sqdr_cnn_plus_classical", "sqdr_cnn_plus_noisy"
    ]
    assert list_models("nothing*") == []
    with pytest.raises(ConfigError, match="already registered"):
        register_model("spanet")(torch.nn.Identity)


def test_models_cli_lists_counts(capsys):
    parser = argparse.ArgumentParser()
    models_cli.add_arguments(parser)
    assert models_cli.run(parser.parse_args(["sqdr_cnn*l", "--num-classes", "4"])) == 0
    out = capsys.readouterr().out
    assert "sqdr_cnn_classical " in out and " 941 " in out  # 649 + Linear(27, 9) + Linear(9, 4)
    with pytest.raises(ConfigError, match="no model matches 'nothing\\*'"):
        models_cli.run(parser.parse_args(["nothing*"]))
