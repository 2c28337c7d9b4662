"""SmallMapConv2d against torch's own convolution: values, gradients, layouts, whole models."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hqnn.layers.small_conv import SmallMapConv2d, use_small_map_convs

# (in, out, kernel, stride, padding, groups, map size): the short way for the first five, the
# ordinary convolution for the rest (output larger than one pixel, or not pointwise/depthwise)
CASES = [
    (6, 5, 1, 1, 0, 1, 1),   # pointwise on 1x1
    (4, 4, 3, 1, 1, 4, 1),   # depthwise 3x3 "same" on 1x1
    (4, 4, 5, 2, 2, 4, 2),   # depthwise 5x5 stride 2 on 2x2 -> 1x1
    (4, 4, 3, 2, 1, 4, 2),   # depthwise 3x3 stride 2 on 2x2 -> 1x1
    (3, 3, 5, 1, 2, 3, 1),   # depthwise 5x5 on 1x1
    (6, 5, 1, 1, 0, 1, 3),   # pointwise on 3x3: ordinary
    (4, 4, 3, 1, 1, 4, 2),   # depthwise on 2x2 -> 2x2: ordinary
    (4, 8, 3, 1, 1, 4, 1),   # depth multiplier 2: ordinary
    (4, 6, 3, 1, 1, 1, 1),   # full 3x3 conv on 1x1: ordinary
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_matches_conv2d_values_and_gradients(case, bias):
    cin, cout, k, s, p, g, size = case
    torch.manual_seed(0)
    conv = SmallMapConv2d(cin, cout, k, s, p, groups=g, bias=bias).double()
    x = torch.randn(3, cin, size, size, dtype=torch.float64, requires_grad=True)
    out = conv(x)
    ref = F.conv2d(x, conv.weight, conv.bias, s, p, groups=g)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, conv.weight, *([conv.bias] if bias else [])], grad)
    want = torch.autograd.grad(ref, [x, conv.weight, *([conv.bias] if bias else [])], grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_short_way_is_taken_only_where_it_applies():
    assert SmallMapConv2d(6, 5, 1).short_way == "pointwise"
    assert SmallMapConv2d(4, 4, 3, padding=1, groups=4).short_way == "depthwise"
    assert SmallMapConv2d(4, 8, 3, padding=1, groups=4).short_way is None
    assert SmallMapConv2d(4, 4, 3, padding=1, groups=4, dilation=2).short_way is None
    assert SmallMapConv2d(4, 4, 3, padding=1, groups=4, padding_mode="reflect").short_way is None


def test_gradcheck_short_ways():
    torch.manual_seed(1)
    for conv, size in ((SmallMapConv2d(3, 2, 1, bias=True), 1), (SmallMapConv2d(3, 3, 5, 2, 2, groups=3), 2)):
        conv = conv.double()
        x = torch.randn(2, conv.in_channels, size, size, dtype=torch.float64, requires_grad=True)
        # gradcheck perturbs the weight tensor in place, so conv(x) sees each perturbation
        assert torch.autograd.gradcheck(lambda x, w, conv=conv: conv(x), (x, conv.weight))


def test_channels_last_input():
    conv = SmallMapConv2d(8, 8, 5, 2, 2, groups=8, bias=False)
    x = torch.randn(4, 8, 2, 2).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, None, 2, 2, groups=8))


def test_use_small_map_convs_on_spanet_keeps_state_and_outputs():
    from hqnn.models import create_model

    torch.manual_seed(0)
    model = create_model("hcqdl", num_classes=9, in_chans=1).double().eval()
    plain = copy.deepcopy(model)
    params = {name: p for name, p in model.named_parameters()}
    replaced = use_small_map_convs(model)
    assert replaced > 50  # ghost primaries, cheap and stride-2 depthwise convs, shortcuts, the head
    assert sum(isinstance(m, SmallMapConv2d) for m in model.modules()) == replaced
    assert not any(type(m) is nn.Conv2d and m.groups == m.in_channels == m.out_channels for m in model.modules())
    assert dict(model.named_parameters()).keys() == params.keys()
    assert all(p is params[name] for name, p in model.named_parameters())  # the same Parameter objects
    assert model.state_dict().keys() == plain.state_dict().keys()
    x = torch.rand(4, 1, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(model(x), plain(x), rtol=1e-10, atol=1e-10)
    model.train(), plain.train()
    model(x).square().sum().backward()
    plain(x).square().sum().backward()
    for (name, a), b in zip(model.named_parameters(), plain.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-10, msg=name)
    assert use_small_map_convs(model) == 0  # nothing left to replace
