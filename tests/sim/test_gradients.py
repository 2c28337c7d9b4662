"""Adjoint, parameter-shift and finite differences against backprop, clean, noisy and with shots."""

import pytest
import torch

from hqnn.exceptions import ConfigError, UnsupportedError
from hqnn.qnn import QuantumLayer
from hqnn.sim import Circuit
from hqnn.sim.gradients import execute
from hqnn.sim.noise import NoiseModel

METHODS_TOL = [("adjoint", 1e-8), ("parameter-shift", 1e-8), ("finite-diff", 1e-5)]


def _clean():
    c = Circuit(3, n_inputs=3)
    w = c.add_weights("w", (13,))
    c.rx(c.inputs[0], 0).ry(2.0 * c.inputs[1], 1).rot(w[0], w[1], w[2], 2).cnot(0, 1).crx(w[3], 1, 2)
    c.u3(w[4], w[5], w[6], 0).isingzz(w[7], 0, 2).cry(w[8], 2, 0).crot(w[9], w[10], w[11], 1, 0)
    c.phase_shift(c.inputs[2], 1).crz(w[3], 0, 1).isingxx(w[12], 1, 2).isingyy(-0.5 * c.inputs[0], 0, 2).rz(w[0], 2)
    return c.expval("Z0").expval("X1 Y2").probs([0, 2])


def _noisy():
    c = Circuit(2, n_inputs=2)
    w = c.add_weights("w", (4,))
    c.ry(c.inputs[0], 0).crx(w[0], 0, 1).amplitude_damping(c.inputs[1].sigmoid(), 1).depolarizing(w[1], 0)
    c.rot(w[2], w[3], w[0], 1).cz(0, 1).bit_flip(0.1, 1).readout_error(0.02, 0.05, 0)
    return c.expval_z().expval("X0 X1")


def _grads(c, method, x, w, seed_grad):
    out = execute(c, x, w, diff_method=method)
    return (out, *torch.autograd.grad((out * seed_grad).sum(), [x, w]))


@pytest.mark.parametrize("method,tol", METHODS_TOL)
def test_methods_agree_with_backprop(method, tol):
    torch.manual_seed(0)
    c = _clean()
    x = torch.rand(4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.rand(13, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, c.n_outputs, dtype=torch.float64)
    for ours, ref in zip(_grads(c, method, x, w, g), _grads(c, "backprop", x, w, g)):
        torch.testing.assert_close(ours, ref, atol=tol, rtol=0)


@pytest.mark.parametrize("method,tol", [("parameter-shift", 1e-8), ("finite-diff", 1e-5)])
def test_noisy_methods_agree_with_backprop(method, tol):
    torch.manual_seed(1)
    c = _noisy()
    x = torch.rand(3, 2, dtype=torch.float64, requires_grad=True)
    w = torch.rand(4, dtype=torch.float64, requires_grad=True) * 0.5
    g = torch.randn(3, c.n_outputs, dtype=torch.float64)
    for ours, ref in zip(_grads(c, method, x, w, g), _grads(c, "backprop", x, w, g)):
        torch.testing.assert_close(ours, ref, atol=tol, rtol=0)


def test_adjoint_rejects_noise_and_backprop_rejects_shots():
    x, w = torch.rand(1, 2), torch.rand(4)
    with pytest.raises(UnsupportedError):
        execute(_noisy(), x, w, diff_method="adjoint")
    with pytest.raises(ConfigError):
        execute(_noisy(), x, w, shots=10)
    with pytest.raises(ConfigError):
        execute(_noisy(), x, w, diff_method="magic")


@pytest.mark.parametrize("method", ["adjoint", "parameter-shift", "finite-diff"])
def test_through_quantum_layer(method):
    torch.manual_seed(2)
    c = _clean()
    ref = QuantumLayer(c).double()
    layer = QuantumLayer(c, diff_method=method).double()
    layer.load_state_dict(ref.state_dict())
    x = torch.rand(2, 3, 3, dtype=torch.float64, requires_grad=True)
    for lyr in (ref, layer):
        (lyr(x) ** 2).sum().backward()
    tol = 1e-5 if method == "finite-diff" else 1e-8
    torch.testing.assert_close(layer.weights.grad, ref.weights.grad, atol=tol, rtol=0)


def test_parameter_shift_with_many_shots_converges():
    c = Circuit(2, n_inputs=1)
    w = c.add_weights("w", (3,))
    c.ry(c.inputs[0], 0).crx(w[0], 0, 1).rot(w[1], w[2], w[0], 1).cnot(1, 0).expval_z()
    x = torch.tensor([[0.7]], dtype=torch.float64)
    weights = torch.tensor([0.4, -1.1, 0.8], dtype=torch.float64, requires_grad=True)
    exact = torch.autograd.grad(execute(c, x, weights).sum(), weights)[0]
    shots = 40000
    out = execute(c, x, weights, diff_method="parameter-shift", shots=shots, generator=torch.Generator().manual_seed(0))
    sampled = torch.autograd.grad(out.sum(), weights)[0]
    # each derivative is a combination of <= 4 two-output estimates per rule term: sigma <= ~2/sqrt(shots)
    assert (sampled - exact).abs().max() < 5 * 2.5 / shots**0.5


def test_noisy_layer_parameter_shift_matches_backprop():
    torch.manual_seed(3)
    from hqnn.templates.recipes import rezk_qnn

    model = NoiseModel().add("DepolarizingChannel", 0.05).add("PhaseDamping", 0.1, after="CNOT")
    ref = QuantumLayer(rezk_qnn(), noise_model=model).double()
    ps = QuantumLayer(rezk_qnn(), noise_model=model, diff_method="parameter-shift").double()
    ps.load_state_dict(ref.state_dict())
    x = torch.rand(3, 4, dtype=torch.float64)
    for lyr in (ref, ps):
        lyr(x).sum().backward()
    torch.testing.assert_close(ps.weights.grad, ref.weights.grad, atol=1e-8, rtol=0)
