"""Self-Proliferate module, the two self-attention readings, the SP&A block and the classical twin."""

import pytest
import torch
import torch.nn.functional as F

from hqnn.exceptions import ConfigError
from hqnn.layers import (
    ChannelLayerNorm,
    ClassicalTwin,
    GlobalContextAttention,
    PixelGateAttention,
    SelfProliferate,
    SPABlock,
    keras_hard_sigmoid,
    make_attention,
)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("out_chs", [16, 5])
def test_self_proliferate_concatenates_primary_and_cheap_maps(out_chs):
    module = SelfProliferate(8, out_chs)
    x = torch.randn(2, 8, 7, 9)
    out = module(x)
    primary_chs = (out_chs + 1) // 2
    assert out.shape == (2, out_chs, 7, 9)
    primary = module.primary(x)
    torch.testing.assert_close(out[:, :primary_chs], primary)
    torch.testing.assert_close(out[:, primary_chs:], module.cheap(primary)[:, : out_chs - primary_chs])
    assert n_params(module) == 8 * primary_chs + 9 * primary_chs


def test_self_proliferate_ratio_one_is_the_primary_conv_and_rejects_bad_args():
    module = SelfProliferate(4, 6, ratio=1)
    assert module.cheap is None and module(torch.randn(1, 4, 3, 3)).shape == (1, 6, 3, 3)
    with pytest.raises(ConfigError):
        SelfProliferate(4, 6, dw_kernel=2)
    with pytest.raises(ConfigError):
        SelfProliferate(0, 6)


def test_keras_hard_sigmoid_is_the_keras2_form():
    x = torch.tensor([-3.0, -2.5, 0.0, 1.0, 2.5, 4.0])
    torch.testing.assert_close(keras_hard_sigmoid(x), torch.tensor([0.0, 0.0, 0.5, 0.7, 1.0, 1.0]))
    assert not torch.allclose(keras_hard_sigmoid(x), F.hardsigmoid(x))


def test_channel_layer_norm_normalises_each_pixel_over_channels():
    x = torch.randn(2, 6, 3, 4)
    out = ChannelLayerNorm(6)(x)
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    torch.testing.assert_close(out, (x - mean) / torch.sqrt(var + 1e-3))


def test_pixel_gate_attention_parameters_and_gate():
    channels = 8
    module = PixelGateAttention(channels)
    assert n_params(module) == channels + channels // 2 + 2 * (channels // 2) + channels * channels // 2
    y = torch.randn(2, channels, 5, 5)
    expected = y * keras_hard_sigmoid(module.gate(F.relu(module.norm(module.expand(module.score(y))))))
    torch.testing.assert_close(module(y), expected)
    torch.nn.init.zeros_(module.gate.weight)
    torch.testing.assert_close(module(y), 0.5 * y)


def test_global_context_attention_matches_manual_gcnet():
    channels = 6
    module = GlobalContextAttention(channels)
    assert n_params(module) == channels + channels * channels + channels
    y = torch.randn(2, channels, 4, 5)
    weights = torch.softmax(torch.einsum("c,bchw->bhw", module.score.weight.flatten(), y).flatten(1), dim=1)
    context = torch.einsum("bcp,bp->bc", y.flatten(2), weights)[:, :, None, None]
    transform = module.expand(F.relu(module.norm(module.reduce(context))))
    torch.testing.assert_close(module(y), y + transform)


def test_make_attention_names():
    assert isinstance(make_attention(None, 4), torch.nn.Identity)
    assert isinstance(make_attention("none", 4), torch.nn.Identity)
    assert isinstance(make_attention("code", 4), PixelGateAttention)
    assert isinstance(make_attention("gc", 4), GlobalContextAttention)
    with pytest.raises(ConfigError, match="unknown attention 'se'"):
        make_attention("se", 4)


@pytest.mark.parametrize("stride,size,out_size", [(1, 9, 9), (2, 9, 5), (2, 8, 4)])
def test_spa_block_shapes_and_projection_shortcut(stride, size, out_size):
    block = SPABlock(16, 32, 16, dw_kernel=5, stride=stride, attention="code")
    out = block(torch.randn(2, 16, size, size))
    assert out.shape == (2, 16, out_size, out_size)
    assert len(block.shortcut) == 4  # depthwise, BN, 1x1, BN even when shapes agree
    bn = block.expand_bn
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)
    assert (block.downsample is None) == (stride == 1)


def test_classical_twin_is_linear_then_tanh():
    twin = ClassicalTwin(27, 9)
    x = torch.randn(3, 27)
    torch.testing.assert_close(twin(x), torch.tanh(twin.linear(x)))
