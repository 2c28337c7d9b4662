"""Gradients w.r.t. inputs and weights: ``torch.autograd.gradcheck`` in float64 through ``run`` and
``QuantumLayer``, on the seed recipes and on random small circuits."""

import math

import pytest
import torch
from hypothesis import assume, given, settings

from circuit_strategies import circuit_specs, examples, layered_circuit_specs
from hqnn.qnn import QuantumLayer
from hqnn.sim import Circuit, run
from hqnn.templates import recipes

METHODS = ["auto", "engine", "gates"]

# Every seed recipe at a size that keeps gradcheck fast (the structure does not depend on the size).
SMALL_RECIPES = {
    "rezk_qnn": lambda: recipes.rezk_qnn(3),
    "hcqdl_crx_ring": lambda: recipes.hcqdl_crx_ring(3),
    "hcqdl_figure2": lambda: recipes.hcqdl_figure2(3),
    "hcqdl_code_qnode": recipes.hcqdl_code_qnode,
    "sqdr_reupload": lambda: recipes.sqdr_reupload(n_qubits=3, n_blocks=2),
    "sqdr_reupload_ring": lambda: recipes.sqdr_reupload(n_qubits=3, n_blocks=2, entangler="ring"),
    "diana_edge": lambda: recipes.diana_edge(3, depth=2),
    "diana_texture": lambda: recipes.diana_texture(3),
    "diana_qhead": lambda: recipes.diana_qhead(3, n_layers=2),
    "strongly_entangling": lambda: recipes.strongly_entangling(3, n_layers=2),
}


def test_small_recipes_cover_every_recipe():
    assert set(recipes.RECIPES) <= set(SMALL_RECIPES)


def _arguments(circuit: Circuit, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, circuit.n_inputs, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    w = torch.rand(circuit.n_weights, generator=g, dtype=torch.float64) * 2 * math.pi
    return x.requires_grad_(), w.requires_grad_()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(SMALL_RECIPES))
def test_gradcheck_recipes_through_run(name, method):
    circuit = SMALL_RECIPES[name]()
    x, w = _arguments(circuit)
    assert torch.autograd.gradcheck(lambda x, w: run(circuit, x, w, method=method), (x, w))


@pytest.mark.parametrize("name", sorted(SMALL_RECIPES))
def test_gradcheck_recipes_through_quantum_layer(name):
    layer = QuantumLayer(SMALL_RECIPES[name]()).double()
    x, w = _arguments(layer.circuit, batch=3, seed=1)

    def forward(x, w):
        return torch.func.functional_call(layer, {"weights": w}, (x,))

    assert torch.autograd.gradcheck(forward, (x, w))


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=examples(25))
@given(spec=circuit_specs(max_qubits=3, max_ops=8, max_batch=2))
def test_gradcheck_random_circuits(method, spec):
    circuit = spec.build()
    inputs, weights = spec.arguments()
    x, w = torch.tensor(inputs), torch.tensor(weights)
    assume(x.numel() or w.numel())
    # gradcheck rejects empty tensors: differentiate w.r.t. the non-empty ones only.
    if not x.numel():
        assert torch.autograd.gradcheck(lambda w: run(circuit, x, w, method=method), (w.requires_grad_(),))
    elif not w.numel():
        assert torch.autograd.gradcheck(lambda x: run(circuit, x, w, method=method), (x.requires_grad_(),))
    else:
        args = (x.requires_grad_(), w.requires_grad_())
        assert torch.autograd.gradcheck(lambda x, w: run(circuit, x, w, method=method), args)


@settings(max_examples=examples(20))
@given(spec=circuit_specs(max_qubits=3, max_ops=8, max_batch=2))
def test_gradcheck_random_circuits_through_quantum_layer(spec):
    assume(spec.n_inputs and spec.n_weights)  # layers without inputs: tests/qnn/test_quantum_layer.py
    layer = QuantumLayer(spec.build()).double()
    inputs, weights = spec.arguments()
    args = (torch.tensor(inputs).requires_grad_(), torch.tensor(weights).requires_grad_())
    assert torch.autograd.gradcheck(lambda x, w: torch.func.functional_call(layer, {"weights": w}, (x,)), args)


@settings(max_examples=examples(8))
@given(spec=layered_circuit_specs(min_qubits=6, max_qubits=8, max_layers=2))
def test_gradcheck_wide_layered_circuits(spec):
    """Wide circuits take the engine's blocked paths (long runs of touched wires)."""
    circuit = spec.build()
    inputs, weights = spec.arguments()
    args = (torch.tensor(inputs).requires_grad_(), torch.tensor(weights).requires_grad_())
    assert torch.autograd.gradcheck(lambda x, w: run(circuit, x, w), args)


def test_parameter_shift_rule_on_rx():
    """d<Z>/dθ of RX(θ)|0> is -sin θ; the autograd gradient matches the parameter-shift value."""
    c = Circuit(1)
    w = c.add_weights("theta", (1,))
    c.rx(w[0], 0).expval_z()
    theta = torch.tensor([0.37], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(run(c, None, theta).sum(), theta)
    shift = (run(c, None, theta.detach() + math.pi / 2) - run(c, None, theta.detach() - math.pi / 2)) / 2
    torch.testing.assert_close(grad, shift[0])
    torch.testing.assert_close(grad, -torch.sin(theta.detach()))


# The engine's autograd node differentiates a recomputation under create_graph=True (regression:
# it once returned halved second derivatives through a CNOT).
SECOND_ORDER_METHODS = ["auto", "engine", "gates"]


@pytest.mark.parametrize("method", SECOND_ORDER_METHODS)
@pytest.mark.parametrize("name", ["hcqdl_code_qnode", "hcqdl_crx_ring", "sqdr_reupload"])
def test_second_derivatives(name, method):
    """Double backward (Hessians, gradient penalties) goes through the simulator too."""
    circuit = SMALL_RECIPES[name]()
    x, w = _arguments(circuit, batch=1, seed=2)
    assert torch.autograd.gradgradcheck(lambda x, w: run(circuit, x, w, method=method), (x, w))


@pytest.mark.parametrize("method", SECOND_ORDER_METHODS)
def test_hessian_through_a_cnot(method):
    """<Z1> of RX(a)⊗RX(b) then CNOT(0, 1) is cos a cos b: its Hessian, by double backward."""
    c = Circuit(2, n_inputs=2)
    c.rx(c.inputs[0], 0).rx(c.inputs[1], 1).cnot(0, 1).expval_z([1])
    x = torch.tensor([[0.3, 0.7]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(run(c, x, method=method).sum(), x, create_graph=True)
    hessian = torch.stack([torch.autograd.grad(grad[0, i], x, retain_graph=True)[0][0] for i in range(2)])
    a, b = 0.3, 0.7
    expected = torch.tensor([[-math.cos(a) * math.cos(b), math.sin(a) * math.sin(b)],
                             [math.sin(a) * math.sin(b), -math.cos(a) * math.cos(b)]], dtype=torch.float64)
    torch.testing.assert_close(hessian, expected, atol=1e-12, rtol=0)
