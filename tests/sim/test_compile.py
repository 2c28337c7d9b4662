"""torch.compile(fullgraph=True) of QuantumLayers and whole hybrid models: no graph breaks, and the
eager values and gradients, on every method (the native kernel and the engine are opaque or
traceable ops; adjoint and parameter-shift are traceable autograd Functions).

The tests use the "aot_eager" backend (dynamo + AOTAutograd, no code generation), which checks
exactly what fullgraph compilation needs and keeps CI fast; inductor is checked by hand (docs/simulator.md).
"""

import pytest
import torch

from hqnn.models import create_model
from hqnn.qnn import QuantumLayer
from hqnn.templates import recipes

BACKEND = "aot_eager"

SEED_LAYERS = {
    "rezk_qnn": recipes.rezk_qnn,
    "hcqdl_crx_ring": recipes.hcqdl_crx_ring,
    "hcqdl_figure2": recipes.hcqdl_figure2,
    "hcqdl_code_qnode": recipes.hcqdl_code_qnode,
    "sqdr_reupload": lambda: recipes.sqdr_reupload(n_qubits=4, n_blocks=2),
    "diana_edge": recipes.diana_edge,
    "diana_texture": recipes.diana_texture,
    "diana_qhead": recipes.diana_qhead,
    "strongly_entangling": lambda: recipes.strongly_entangling(4, n_layers=2),
}
METHODS = [dict(method="auto"), dict(method="engine"), dict(diff_method="adjoint"),
           dict(diff_method="parameter-shift")]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Each test compiles new modules: start from empty dynamo caches (no recompile limits hit)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _values_and_grads(module, x, input_grad):
    x = x.clone().requires_grad_(input_grad)
    out = module(x)
    probe = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)  # weights every output
    return (out, *torch.autograd.grad((out * probe).sum(), [x] * input_grad + list(module.parameters())))


def _check_compiled(module, x, atol=1e-12, input_grad=True):
    want = _values_and_grads(module, x, input_grad)
    got = _values_and_grads(torch.compile(module, fullgraph=True, backend=BACKEND), x, input_grad)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=atol, rtol=0)


def test_seed_layers_cover_every_recipe():
    assert set(SEED_LAYERS) == set(recipes.RECIPES)


@pytest.mark.parametrize("name", sorted(SEED_LAYERS))
def test_every_seed_layer_compiles_on_the_default_method(name):
    torch.manual_seed(0)
    layer = QuantumLayer(SEED_LAYERS[name]()).double()
    _check_compiled(layer, torch.rand(5, layer.n_inputs, dtype=torch.float64))


@pytest.mark.parametrize("name,kwargs", [("hcqdl_crx_ring", k) for k in METHODS[1:]] + [("diana_qhead", METHODS[1])],
                         ids=lambda v: v if isinstance(v, str) else next(iter(v.values())))
def test_seed_layers_compile_on_every_method(name, kwargs):
    torch.manual_seed(1)
    layer = QuantumLayer(SEED_LAYERS[name](), **kwargs).double()
    _check_compiled(layer, torch.rand(3, layer.n_inputs, dtype=torch.float64))


def test_compiled_layer_keeps_leading_dimensions_and_float32():
    layer = QuantumLayer(recipes.rezk_qnn())
    compiled = torch.compile(layer, fullgraph=True, backend=BACKEND)
    x = torch.rand(2, 3, 4)
    torch.testing.assert_close(compiled(x), layer(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name,kwargs,shape", [
    ("cnn_qnn", dict(img_size=16), (3, 3, 16, 16)),
    ("sqdr_cnn", dict(time_steps=3), (3, 1, 16, 16)),
])
def test_whole_hybrid_model_compiles_without_graph_breaks(name, kwargs, shape):
    """The CNN (or spiking CNN, with its surrogate-gradient neurons), the circuit and the head in one graph."""
    torch.manual_seed(2)
    model = create_model(name, **kwargs).double().eval()
    _check_compiled(model, torch.rand(shape, dtype=torch.float64) * 0.99, atol=1e-10, input_grad=name != "sqdr_cnn")
