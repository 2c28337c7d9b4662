"""OnePassNAdam against torch.optim.NAdam (multi-tensor and single-tensor) as the oracle: the same
parameters and state over many steps, state dicts that load both ways, PyTorch's path where the
kernel does not apply."""

import pytest
import torch

from hqnn.train.config import OptimConfig
from hqnn.train.optim import FlatParameters, OnePassNAdam, _optim_library, build_optimizer

pytestmark = pytest.mark.skipif(_optim_library(torch.float64) is None, reason="needs a C compiler for the kernel")

SETTINGS = [dict(lr=1e-3), dict(lr=3e-2, weight_decay=1e-2), dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True),
            dict(lr=2e-3, betas=(0.8, 0.95), eps=1e-6, momentum_decay=0.01)]


def _params(dtype, gen):
    shapes = [(5, 3), (7,), (2, 3, 4, 4), ()]
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype)) for s in shapes]


def _run(opt_class, params, steps, gen_seed, **kwargs):
    opt = opt_class(params, **kwargs)
    gen = torch.Generator().manual_seed(gen_seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        opt.step()
    return opt


@pytest.mark.parametrize("kwargs", SETTINGS)
@pytest.mark.parametrize("foreach", [True, False])
def test_matches_torch_nadam_in_float64(kwargs, foreach):
    gen = torch.Generator().manual_seed(0)
    ours = _params(torch.float64, gen)
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    a = _run(OnePassNAdam, ours, 25, 1, **kwargs)
    b = _run(torch.optim.NAdam, theirs, 25, 1, foreach=foreach, **kwargs)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)
        for key in ("exp_avg", "exp_avg_sq", "step", "mu_product"):
            torch.testing.assert_close(a.state[p][key], b.state[q][key], rtol=1e-12, atol=1e-13)
    assert not torch.equal(ours[0], _params(torch.float64, torch.Generator().manual_seed(0))[0])  # it moved


def test_float32_and_a_checkpoint_continues_in_torch_nadam():
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 3))
    flat = FlatParameters(model.parameters())
    mine = flat.tensors[0]
    theirs = torch.nn.Parameter(mine.detach().clone())
    ours = _run(OnePassNAdam, [mine], 10, 3, lr=1e-2)
    ref = _run(torch.optim.NAdam, [theirs], 10, 3, lr=1e-2, foreach=True)
    torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)
    # our state dict loads into PyTorch's NAdam (and back), and both continue alike
    torch_opt = torch.optim.NAdam([theirs], lr=1e-2, foreach=True)
    torch_opt.load_state_dict(ours.state_dict())
    back = OnePassNAdam([mine], lr=1e-2)
    back.load_state_dict(ref.state_dict())
    for opt, p in ((back, mine), (torch_opt, theirs)):
        g = torch.Generator().manual_seed(9)
        for _ in range(5):
            p.grad = torch.randn(p.shape, generator=g)
            opt.step()
    torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)


def test_groups_the_kernel_does_not_take_step_through_torch():
    gen = torch.Generator().manual_seed(4)
    ours = _params(torch.float64, gen)
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    _run(OnePassNAdam, ours, 5, 5, lr=1e-2, maximize=True)
    _run(torch.optim.NAdam, theirs, 5, 5, lr=1e-2, maximize=True)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)
    channels_last = torch.nn.Parameter(torch.randn(2, 3, 4, 4, dtype=torch.float64)
                                       .contiguous(memory_format=torch.channels_last))
    ref = torch.nn.Parameter(channels_last.detach().clone())
    _run(OnePassNAdam, [channels_last], 3, 6, lr=1e-2)
    _run(torch.optim.NAdam, [ref], 3, 6, lr=1e-2)
    torch.testing.assert_close(channels_last, ref, rtol=1e-12, atol=1e-13)


def test_build_optimizer_uses_it_for_nadam_when_fused():
    params = list(torch.nn.Linear(3, 2).parameters())
    config = OptimConfig(name="nadam", lr=0.1)
    assert type(build_optimizer(params, config, fused=True)) is OnePassNAdam
    assert type(build_optimizer(params, config)) is torch.optim.NAdam
