"""Spiking layers: weighted-phase encoder bit planes, IF neuron dynamics, ATan surrogate, no state leaks."""

import math

import pytest
import torch

from spiking_reference import unrolled_if

from hqnn.exceptions import ConfigError, ValueRangeError
from hqnn.layers import IFNeuron, TimeDistributed, WeightedPhaseEncoder, atan_spike, weighted_phase_encode


def test_encoder_bit_planes_exact_on_mnist_values():
    pixels = torch.arange(256)
    x = (pixels / 255) * (255 / 256)  # the model's rescaling of MNIST k/255 values: exactly k/256
    assert torch.equal(x, pixels / 256)
    planes = weighted_phase_encode(x, time_steps=8)
    assert planes.shape == (8, 256)
    for k in range(8):
        assert torch.equal(planes[k], ((pixels >> (7 - k)) & 1).float()), f"plane {k}"


def test_encoder_cycles_for_more_than_eight_steps_and_is_stateless():
    x = torch.rand(3, 1, 5, 5) * (255 / 256)
    encoder = WeightedPhaseEncoder(time_steps=10)
    spikes = encoder(x)
    assert spikes.shape == (10, 3, 1, 5, 5)
    assert torch.equal(spikes[8], spikes[0]) and torch.equal(spikes[9], spikes[1])
    assert torch.equal(encoder(x), spikes)  # a second call starts again at the MSB
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


def test_encoder_reconstructs_input_from_its_planes():
    x = torch.randint(0, 256, (100,)) / 256
    planes = weighted_phase_encode(x, 8)
    weights = 2.0 ** -torch.arange(1, 9)
    assert torch.equal((planes * weights[:, None]).sum(0), x)


@pytest.mark.parametrize("bad", [1.0, -0.01])
def test_encoder_rejects_out_of_range_inputs(bad):
    with pytest.raises(ValueRangeError, match="weighted-phase"):
        weighted_phase_encode(torch.tensor([0.5, bad]), 4)


def test_encoder_rejects_non_positive_steps():
    with pytest.raises(ConfigError):
        WeightedPhaseEncoder(0)


def test_if_neuron_integrates_fires_and_resets_hard():
    neuron = IFNeuron()
    assert neuron(torch.full((5, 1), 0.6)).flatten().tolist() == [0, 1, 0, 1, 0]
    # Hard reset to 0: after 1.5 fires, 0.6 stays below threshold (a soft reset would keep 0.5 and fire).
    assert neuron(torch.tensor([[1.5], [0.6], [0.6]])).flatten().tolist() == [1, 0, 1]
    assert neuron(torch.tensor([[1.0]])).item() == 1.0  # fires at exactly the threshold


@pytest.mark.parametrize("alpha", [2.0, 3.5])
def test_atan_surrogate_gradient_matches_formula(alpha):
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    spikes = atan_spike(x, alpha)
    assert torch.equal(spikes, (x >= 0).double())
    spikes.sum().backward()
    expected = (alpha / 2) / (1 + (math.pi / 2 * alpha * x.detach()) ** 2)
    torch.testing.assert_close(x.grad, expected)


def test_if_neuron_gradient_flows_through_charge_and_undetached_reset():
    x = torch.tensor([[0.3], [0.2]], requires_grad=True)
    spikes = IFNeuron()(x)
    spikes[1].sum().backward()

    def surrogate(u):
        return 1 / (1 + (math.pi * u) ** 2)  # alpha = 2

    # S[1] = spike(H[1] - 1), H[1] = V[0] + x[1], V[0] = H[0] (1 - S[0]), H[0] = x[0] = 0.3.
    d_h1 = surrogate(0.5 - 1)
    d_v0_d_h0 = 1 - 0.3 * surrogate(0.3 - 1)  # the reset is not detached (SpikingJelly detach_reset=False)
    torch.testing.assert_close(x.grad.flatten(), torch.tensor([d_h1 * d_v0_d_h0, d_h1]))


def test_if_neuron_has_no_state_between_calls_and_any_batch_size():
    neuron = IFNeuron()
    x = torch.rand(4, 5, 3) * 2
    first = neuron(x)
    assert torch.equal(neuron(x), first)
    assert neuron(torch.rand(4, 3, 3)).shape == (4, 3, 3)
    assert not list(neuron.buffers())


def test_time_distributed_folds_time_into_batch():
    layer = TimeDistributed(torch.nn.Conv2d(1, 2, 3, padding=1))
    x = torch.randn(4, 3, 1, 6, 6)
    out = layer(x)
    assert out.shape == (4, 3, 2, 6, 6)
    torch.testing.assert_close(out[2, 1], layer.layer(x[2, 1:2])[0])


@pytest.mark.parametrize("v_threshold, v_reset, alpha", [(1.0, 0.0, 2.0), (0.7, -0.2, 3.5)])
def test_if_neuron_matches_step_by_step_autograd_in_output_and_gradient(v_threshold, v_reset, alpha):
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(10, 6, 4, 5, 5, generator=gen, dtype=torch.float64) * 1.2 - 0.2).requires_grad_()
    upstream = torch.randn(10, 6, 4, 5, 5, generator=gen, dtype=torch.float64)
    ours = IFNeuron(v_threshold, v_reset, alpha)(x)
    (grad_ours,) = torch.autograd.grad((ours * upstream).sum(), x)
    theirs = unrolled_if(x, v_threshold, v_reset, alpha)
    (grad_theirs,) = torch.autograd.grad((theirs * upstream).sum(), x)
    assert torch.equal(ours, theirs)
    assert 0 < ours.mean() < 1  # some fire, some do not: both branches of the reset are exercised
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-12, atol=1e-12)


def test_if_neuron_float32_gradient_within_float_tolerance_of_reference():
    x = (torch.rand(10, 16, 27) * 1.5).requires_grad_()
    (grad_ours,) = torch.autograd.grad(IFNeuron()(x).sum(), x)
    (grad_theirs,) = torch.autograd.grad(unrolled_if(x).sum(), x)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-5, atol=1e-6)
