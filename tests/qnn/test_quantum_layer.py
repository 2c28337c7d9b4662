"""QuantumLayer: shapes, saving and copying, statelessness, initialisers, precision, errors."""

import copy
import io
import math
import pickle

import pytest
import torch

from hqnn.exceptions import ConfigError, ShapeError, ValueRangeError
from hqnn.qnn import INITIALIZERS, QuantumLayer, initialize
from hqnn.sim import Circuit, run
from hqnn.templates import recipes


@pytest.fixture
def layer() -> QuantumLayer:
    torch.manual_seed(0)
    return QuantumLayer(recipes.rezk_qnn())


def _x(*shape, seed=1) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_one_parameter_and_sizes(layer):
    assert [name for name, _ in layer.named_parameters()] == ["weights"]
    assert layer.weights.shape == (8,) and layer.n_inputs == 4 and layer.n_outputs == 4
    assert {k: tuple(v.shape) for k, v in layer.weight_blocks().items()} == {"params": (2, 4)}
    assert "n_qubits=4" in repr(layer)


@pytest.mark.parametrize("lead", [(), (1,), (5,), (2, 3), (2, 1, 3)])
def test_leading_dimensions(layer, lead):
    x = _x(*lead, 4)
    out = layer(x)
    assert out.shape == (*lead, 4)
    flat = run(layer.circuit, x.reshape(-1, 4), layer.weights.detach())
    torch.testing.assert_close(out.detach().reshape(-1, 4), flat)


def test_matches_run_and_backpropagates(layer):
    x = _x(6, 4)
    out = layer(x)
    torch.testing.assert_close(out.detach(), run(layer.circuit, x, layer.weights.detach()))
    out.square().sum().backward()
    assert layer.weights.grad is not None and layer.weights.grad.shape == (8,)
    assert torch.isfinite(layer.weights.grad).all() and layer.weights.grad.abs().sum() > 0


def test_no_hidden_state(layer):
    x = _x(5, 4)
    first = layer(x)
    torch.testing.assert_close(layer(x), first)
    torch.testing.assert_close(layer(x[:3]), first[:3])  # a smaller batch after a larger one
    torch.testing.assert_close(layer(x[3:]), first[3:])
    torch.testing.assert_close(layer(x), first)


def test_state_dict_round_trip(layer):
    x = _x(3, 4)
    other = QuantumLayer(recipes.rezk_qnn(), init="zeros")
    assert not torch.allclose(other(x), layer(x))
    other.load_state_dict(layer.state_dict())
    torch.testing.assert_close(other(x), layer(x))
    assert list(layer.state_dict()) == ["weights"]


def test_torch_save_whole_module(layer):
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = _x(3, 4)
    torch.testing.assert_close(loaded(x), layer(x))


def test_pickle_and_deepcopy(layer):
    x = _x(3, 4)
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        torch.testing.assert_close(clone(x), layer(x))
        assert clone.weights is not layer.weights
        with torch.no_grad():
            clone.weights.add_(1.0)
        assert not torch.allclose(clone(x), layer(x))


def test_copies_keep_a_qubit_unitary():
    c = Circuit(2, n_inputs=1)
    c.ry(c.inputs[0], 0)
    c.unitary([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1j], [0, 0, 1j, 0]], (1, 0))
    c.expval("X0 Z1")
    layer = QuantumLayer(c)
    x = _x(4, 1)
    torch.testing.assert_close(copy.deepcopy(layer)(x), layer(x))
    torch.testing.assert_close(pickle.loads(pickle.dumps(layer))(x), layer(x))


def test_double_precision(layer):
    layer = layer.double()
    assert layer.weights.dtype == torch.float64
    x = _x(3, 4).double()
    out = layer(x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, run(layer.circuit, x, layer.weights.detach()), atol=1e-12, rtol=0)
    torch.testing.assert_close(out.float(), layer.float()(x.float()), atol=1e-5, rtol=0)


def test_uniform_initialiser_range():
    torch.manual_seed(0)
    w = QuantumLayer(recipes.strongly_entangling(6, 6)).weights.detach()  # 108 weights
    assert w.min() >= 0 and w.max() < 2 * math.pi
    assert w.max() - w.min() > math.pi  # spread over the range, not constant


def test_truncated_normal_initialiser_range():
    torch.manual_seed(0)
    w = QuantumLayer(recipes.strongly_entangling(6, 6), init="truncated_normal").weights.detach()
    assert w.min() >= 0 and w.max() <= 2 * math.pi
    assert 0.4 < w.mean() < 1.2  # a half-normal N(0, 1) on [0, 2π] has mean ≈ 0.80
    torch.manual_seed(0)
    narrow = QuantumLayer(recipes.strongly_entangling(6, 6), init="truncated_normal",
                          init_kwargs={"mean": 1.0, "std": 0.1, "a": 0.9, "b": 1.1}).weights.detach()
    assert narrow.min() >= 0.9 and narrow.max() <= 1.1


def test_other_initialisers():
    assert set(INITIALIZERS) >= {"uniform", "normal", "truncated_normal", "zeros"}
    assert QuantumLayer(recipes.rezk_qnn(), init="zeros").weights.abs().sum() == 0
    w = torch.empty(1000)
    initialize(w, "normal", std=0.01)
    assert w.abs().max() < 0.1
    initialize(w, "uniform", low=-1.0, high=-0.5)
    assert w.min() >= -1.0 and w.max() <= -0.5


def test_reset_parameters_redraws(layer):
    before = layer.weights.detach().clone()
    layer.reset_parameters()
    assert not torch.equal(before, layer.weights.detach())


def test_circuit_without_inputs():
    """A purely variational circuit: inputs of width 0, one output row per input row."""
    c = Circuit(2)
    w = c.add_weights("w", (2,))
    c.ry(w[0], 0).ry(w[1], 1).expval_z()
    layer = QuantumLayer(c)
    out = layer(torch.zeros(3, 0))
    assert out.shape == (3, 2)
    torch.testing.assert_close(out, run(c, torch.zeros(3, 0), layer.weights.detach()))
    assert layer(torch.zeros(2, 5, 0)).shape == (2, 5, 2)


def test_errors(layer):
    with pytest.raises(ShapeError, match=r"\(\.\.\., 4\); got \(2, 3\)"):
        layer(torch.zeros(2, 3))
    with pytest.raises(ShapeError, match=r"\(\.\.\., 4\); got \(\)"):
        layer(torch.tensor(0.0))
    with pytest.raises(ValueRangeError, match="inputs contain NaN"):
        layer(torch.full((2, 4), float("nan")))
    with torch.no_grad():
        layer.weights[3] = float("nan")
    with pytest.raises(ValueRangeError, match="weights contain NaN"):
        layer(torch.zeros(2, 4))
    with pytest.raises(ConfigError, match=r"unknown initialiser 'glorot'; valid: uniform"):
        QuantumLayer(recipes.rezk_qnn(), init="glorot")
    with pytest.raises(TypeError, match="needs an hqnn Circuit; got str"):
        QuantumLayer("rezk_qnn")
