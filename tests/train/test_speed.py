"""train.channels_last and train.compile: same numbers as the eager model, a working fallback, trainer wiring."""

import copy
import logging

import pytest
import torch
from torch import nn

from hqnn.models import create_model
from hqnn.train.config import TrainConfig
from hqnn.train.speed import ChannelsLast, CompiledModule, prepare_model


def _outputs_and_grads(network, model, x):
    out = network(x)
    out.square().sum().backward()
    return out.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}


def test_both_options_off_returns_the_model_itself():
    model = nn.Conv2d(1, 2, 3)
    assert prepare_model(model, TrainConfig()) is model


def test_channels_last_matches_the_default_format_in_outputs_and_gradients():
    torch.manual_seed(0)
    # float64: in float32 rounding differences of the two conv layouts grow through 16 blocks and
    # their BatchNorms to ~3e-4 of the largest gradient; in float64 the two agree to ~1e-12
    model = create_model("hcqdl", num_classes=3, in_chans=1).double()
    reference = copy.deepcopy(model)
    network = prepare_model(model, TrainConfig(channels_last=True))
    assert isinstance(network, ChannelsLast) and network.model is model
    seen = []
    model.trunk.stem.register_forward_hook(lambda module, args, out: seen.append(out))
    x = torch.rand(4, 1, 32, 32, dtype=torch.float64)
    out, grads = _outputs_and_grads(network, model, x)
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    ref_out, ref_grads = _outputs_and_grads(reference, reference, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-9, atol=1e-9, msg=name)


def test_compile_failure_falls_back_to_eager_once(caplog):
    from torch._dynamo.exc import TorchDynamoException

    model = nn.Linear(3, 2)
    network = prepare_model(model, TrainConfig(compile=True))
    assert isinstance(network, CompiledModule) and network.compiled
    assert set(network.state_dict()) == {f"model.{k}" for k in model.state_dict()}  # no second copy
    calls = []

    def broken(x):
        calls.append(x)
        raise TorchDynamoException("no C compiler")

    network._compiled = broken
    x = torch.rand(5, 3)
    with caplog.at_level(logging.WARNING, logger="hqnn.train.speed"):
        torch.testing.assert_close(network(x), model(x))
        torch.testing.assert_close(network(x), model(x))
    assert len(calls) == 1 and not network.compiled
    assert "torch.compile failed" in caplog.text and "no C compiler" in caplog.text


def test_errors_of_the_model_itself_are_not_swallowed():
    network = prepare_model(nn.Linear(3, 2), TrainConfig(compile=True))

    def shape_error(x):
        raise ValueError("mat1 and mat2 shapes cannot be multiplied")

    network._compiled = shape_error
    with pytest.raises(ValueError, match="shapes"):
        network(torch.rand(2, 4))
    assert network.compiled


def test_trainer_steps_through_the_channels_last_network(tiny_config, tmp_path):
    from hqnn.train.loaders import build_data
    from hqnn.train.trainer import Trainer

    config = tiny_config("train.channels_last=true")
    data = build_data(config.data, tmp_path)
    trainer = Trainer(config, data, "cnn_qnn", tmp_path / "cnn_qnn")
    assert isinstance(trainer.network, ChannelsLast) and trainer.network.model is trainer.model
    images, labels, index = next(iter(trainer.loaders["train"]))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss = trainer.train_step(data.prepare("train", images, index, True), labels)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_small_map_convs_swap_in_place_and_can_be_switched_off():
    from hqnn.layers.small_conv import SmallMapConv2d

    on, off = create_model("hcqdl", num_classes=3, in_chans=1), create_model("hcqdl", num_classes=3, in_chans=1)
    keys = set(on.state_dict())
    assert prepare_model(on, TrainConfig()) is on  # in place: no wrapper
    assert sum(isinstance(m, SmallMapConv2d) for m in on.modules()) > 50
    assert set(on.state_dict()) == keys
    prepare_model(off, TrainConfig(small_map_convs=False))
    assert not any(isinstance(m, SmallMapConv2d) for m in off.modules())


@pytest.mark.parametrize("name, fused", [("adamw", True), ("adam", True), ("sgd", True), ("nadam", None)])
def test_fused_optimizer_where_torch_has_one(name, fused):
    from hqnn.train.config import OptimConfig
    from hqnn.train.optim import build_optimizer

    params = list(nn.Linear(3, 2).parameters())
    config = OptimConfig(name=name, lr=0.1)
    assert build_optimizer(params, config, fused=True).defaults.get("fused") is fused
    assert not build_optimizer(params, config).defaults.get("fused")  # plain PyTorch unless asked
    complex_param = [nn.Parameter(torch.zeros(2, dtype=torch.complex64))]
    assert not build_optimizer(complex_param, config, fused=True).defaults.get("fused")


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_fused_and_plain_optimizers_take_the_same_steps(name):
    from hqnn.train.config import OptimConfig
    from hqnn.train.optim import build_optimizer

    torch.manual_seed(0)
    a = nn.Linear(6, 4).double()
    b = copy.deepcopy(a)
    config = OptimConfig(name=name, lr=0.05, weight_decay=0.01, nesterov=True)
    opt_a, opt_b = build_optimizer(a.parameters(), config, fused=True), build_optimizer(b.parameters(), config)
    x = torch.randn(8, 6, dtype=torch.float64)
    for _ in range(5):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_native_layers_swap_in_place_and_can_be_switched_off():
    from hqnn.layers.native_layers import NativeIFNeuron, NativeIFPool, layers_library

    if layers_library(torch.float32) is None:
        pytest.skip("needs a C compiler for the native layer kernels")
    on, off = create_model("sqdr_cnn", time_steps=2), create_model("sqdr_cnn", time_steps=2)
    keys = set(on.state_dict())
    assert prepare_model(on, TrainConfig()) is on
    assert sum(type(m) is NativeIFPool for m in on.modules()) == 3
    assert sum(type(m) is NativeIFNeuron for m in on.modules()) == 1
    assert set(on.state_dict()) == keys
    prepare_model(off, TrainConfig(native_layers=False))
    assert not any(isinstance(m, NativeIFNeuron | NativeIFPool) for m in off.modules())


def test_deterministic_training_does_not_fill_new_tensors_and_restores_the_setting():
    from hqnn.train.trainer import runtime_settings

    settings = torch.utils.deterministic
    before = settings.fill_uninitialized_memory
    with runtime_settings(deterministic=True):
        assert torch.are_deterministic_algorithms_enabled()
        assert settings.fill_uninitialized_memory is False
        assert torch.empty(4).shape == (4,)
    assert settings.fill_uninitialized_memory is before
