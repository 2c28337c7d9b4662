"""train.flat_params: parameters as views of one flat buffer take the same optimiser steps, keep their
layout, convert their optimiser state both ways, and a run resumes across the option."""

import copy
import logging

import pytest
import torch
from torch import nn

from hqnn.exceptions import ConfigError
from hqnn.train.config import OptimConfig
from hqnn.train.optim import FlatParameters, build_optimizer


def _net() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    return net.double().to(memory_format=torch.channels_last)


def _steps(net, optimizer, n, zero, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        zero()
        x = torch.randn(5, 2, 6, 6, generator=gen, dtype=torch.float64)
        net(x).square().mean().backward()
        optimizer.step()


def test_parameters_keep_identity_value_and_layout_and_share_one_buffer():
    torch.manual_seed(0)
    net = _net()
    before = {name: (p, p.detach().clone(), p.stride()) for name, p in net.named_parameters()}
    flat = FlatParameters(net.parameters())
    assert len(flat.tensors) == 1 and flat.tensors[0].numel() == sum(p.numel() for p in net.parameters())
    storage = flat.tensors[0].untyped_storage().data_ptr()
    grad_storage = flat.tensors[0].grad.untyped_storage().data_ptr()
    for name, p in net.named_parameters():
        same, value, stride = before[name]
        assert p is same and p.stride() == stride and torch.equal(p, value), name
        assert p.untyped_storage().data_ptr() == storage and p.grad.untyped_storage().data_ptr() == grad_storage
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last) and not net[0].weight.is_contiguous()


def test_one_flat_tensor_per_dtype():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2).double()
    flat = FlatParameters([*a.parameters(), *b.parameters()])
    assert [(t.dtype, t.numel()) for t in flat.tensors] == [(torch.float32, 6), (torch.float64, 6)]
    with pytest.raises(ValueError, match="more than once"):
        FlatParameters([a.weight, a.weight])


@pytest.mark.parametrize("name, fused", [("nadam", True), ("nadam", False), ("adamw", True), ("adam", False),
                                         ("sgd", True)])
def test_flat_steps_match_per_tensor_steps_and_state_converts(name, fused):
    torch.manual_seed(0)
    ref = _net()
    net = copy.deepcopy(ref)
    config = OptimConfig(name=name, lr=0.05, weight_decay=0.01, momentum=0.9)
    ref_opt = build_optimizer(ref.parameters(), config)  # PyTorch's per-tensor loop
    flat = FlatParameters(net.parameters())
    opt = build_optimizer(flat.tensors, config, fused=fused)
    _steps(ref, ref_opt, 4, lambda: ref_opt.zero_grad(set_to_none=True))
    _steps(net, opt, 4, flat.zero_grad)
    for (key, p), q in zip(net.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10, msg=key)
    # the flat optimiser's state, per tensor, is the per-tensor optimiser's state
    per, ref_state = flat.per_parameter_state(opt.state_dict()), ref_opt.state_dict()
    assert per["param_groups"][0]["params"] == ref_state["param_groups"][0]["params"]
    assert set(per["state"]) == set(ref_state["state"])
    for i, entry in ref_state["state"].items():
        assert set(per["state"][i]) == set(entry)
        for key, value in entry.items():
            if torch.is_tensor(value):
                torch.testing.assert_close(per["state"][i][key].double(), value.double(), rtol=1e-9, atol=1e-12)
    # a per-tensor state continues on flat parameters exactly as on the per-tensor optimiser
    other = copy.deepcopy(ref)
    other_flat = FlatParameters(other.parameters())
    other_opt = build_optimizer(other_flat.tensors, config, fused=fused)
    other_opt.load_state_dict(other_flat.flat_state(copy.deepcopy(ref_state)))
    _steps(ref, ref_opt, 2, lambda: ref_opt.zero_grad(set_to_none=True), seed=2)
    _steps(other, other_opt, 2, other_flat.zero_grad, seed=2)
    for p, q in zip(other.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)  # float64 rounding of foreach vs loop


def test_flat_state_refuses_a_state_of_other_parameters():
    net = _net()
    flat = FlatParameters(net.parameters())
    small = nn.Linear(2, 2).double()
    opt = torch.optim.Adam(small.parameters())
    small(torch.ones(1, 2, dtype=torch.float64)).sum().backward()
    opt.step()
    with pytest.raises(ConfigError, match="parameters in its groups"):
        flat.flat_state(opt.state_dict())
    ref = _net()
    ref_opt = torch.optim.Adam(ref.parameters())
    _steps(ref, ref_opt, 1, ref_opt.zero_grad)
    state = ref_opt.state_dict()
    state["state"][0]["step"] = torch.tensor(7.0)  # one tensor a step ahead: one flat tensor cannot continue
    with pytest.raises(ConfigError, match="'step' differ"):
        flat.flat_state(state)


def test_unused_names_parameters_without_gradient_once():
    net = nn.ModuleDict({"used": nn.Linear(2, 2), "idle": nn.Linear(2, 2)})
    flat = FlatParameters(net.parameters())
    net["used"](torch.ones(1, 2)).sum().backward()
    assert flat.unused() == [2, 3]
    assert flat.unused() is None


def test_trainer_uses_flat_parameters_and_resumes_across_the_option(tiny_config, tmp_path, caplog):
    from hqnn.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from hqnn.train.experiment import run_experiment

    straight = run_experiment(tiny_config("epochs=2", "train.flat_params=false", "run.name=straight")).results[0]
    run_experiment(tiny_config("epochs=1", "train.flat_params=false", "run.name=switch"))
    state = load_checkpoint(tmp_path / "runs" / "switch" / "cnn_qnn" / CHECKPOINT_NAME)["optimizer"]
    n_tensors = len(state["param_groups"][0]["params"])
    assert n_tensors > 1
    # the saved config says flat_params=false; resuming must use the same config, so rewrite the
    # saved one as an older run without the key would read (the default, true)
    config_file = tmp_path / "runs" / "switch" / "config.yaml"
    config_file.write_text(config_file.read_text().replace("flat_params: false", "flat_params: true"))
    with caplog.at_level(logging.WARNING, logger="hqnn.train.trainer"):
        resumed = run_experiment(tiny_config("epochs=2", "run.name=switch", "run.resume=true")).results[0]
    assert "no gradient" not in caplog.text
    saved = load_checkpoint(tmp_path / "runs" / "switch" / "cnn_qnn" / CHECKPOINT_NAME)["optimizer"]
    assert len(saved["param_groups"][0]["params"]) == n_tensors  # checkpoints stay per tensor
    assert resumed.test == pytest.approx(straight.test, abs=1e-6)


def test_nadam_takes_the_multi_tensor_implementation_when_fused_is_asked():
    params = list(nn.Linear(3, 2).parameters())
    assert build_optimizer(params, OptimConfig(name="nadam"), fused=True).defaults["foreach"] is True
    assert build_optimizer(params, OptimConfig(name="nadam")).defaults["foreach"] is None
