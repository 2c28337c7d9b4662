"""torch.func over a QuantumLayer (through torch.func.functional_call): jacrev over weights and inputs,
vmap over samples, and jacrev of jacrev (Hessians), on every method, against torch.autograd."""

import pytest
import torch
from torch.func import functional_call, jacrev, vmap

from hqnn.qnn import QuantumLayer
from hqnn.templates import recipes

METHODS = [dict(method="auto"), dict(method="engine"), dict(diff_method="adjoint"),
           dict(diff_method="parameter-shift")]
IDS = ["native", "engine", "adjoint", "parameter-shift"]


def _layer(kwargs, circuit=None):
    torch.manual_seed(0)
    return QuantumLayer(circuit or recipes.hcqdl_crx_ring(4), **kwargs).double()


def _autograd_jacobians(layer, x):
    """d out / d weights ``(B, n_out, n_w)`` and d out / d x ``(B, n_out, B, n_in)`` by torch.autograd."""
    return torch.autograd.functional.jacobian(lambda w, x: functional_call(layer, {"weights": w}, (x,)),
                                              (layer.weights.detach(), x))


@pytest.mark.parametrize("kwargs", METHODS, ids=IDS)
def test_jacrev_over_weights_and_inputs_matches_autograd(kwargs):
    layer = _layer(kwargs)
    x = torch.rand(3, 4, dtype=torch.float64)
    want_w, want_x = _autograd_jacobians(layer, x)

    def f(params, x):
        return functional_call(layer, params, (x,))

    got_w, got_x = jacrev(f, argnums=(0, 1))({"weights": layer.weights.detach()}, x)
    torch.testing.assert_close(got_w["weights"], want_w, atol=1e-12, rtol=0)
    torch.testing.assert_close(got_x, want_x, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kwargs", METHODS, ids=IDS)
def test_vmap_over_samples_matches_the_batched_call(kwargs):
    layer = _layer(kwargs, recipes.diana_qhead(4))
    x = torch.rand(5, layer.n_inputs, dtype=torch.float64)
    torch.testing.assert_close(vmap(layer)(x), layer(x), atol=1e-12, rtol=0)
    # per-sample weight gradients: vmap of a grad, against one autograd call per sample
    params = {"weights": layer.weights.detach()}

    def loss(params, xi):
        return functional_call(layer, params, (xi[None],)).square().sum()

    per_sample = vmap(torch.func.grad(loss), in_dims=(None, 0))(params, x)["weights"]
    for i in range(x.shape[0]):
        w = layer.weights.detach().requires_grad_()
        (want,) = torch.autograd.grad(functional_call(layer, {"weights": w}, (x[i:i + 1],)).square().sum(), w)
        torch.testing.assert_close(per_sample[i], want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kwargs", METHODS[:2], ids=IDS[:2])
def test_hessian_by_jacrev_of_jacrev_matches_double_backward(kwargs):
    """Second derivatives by torch.func equal torch.autograd's double backward (both exact)."""
    layer = _layer(kwargs, recipes.hcqdl_crx_ring(3))
    x = torch.rand(2, 3, dtype=torch.float64)

    def f(w):
        return functional_call(layer, {"weights": w}, (x,)).sum()

    w = layer.weights.detach()
    torch.testing.assert_close(jacrev(jacrev(f))(w), torch.autograd.functional.hessian(f, w), atol=1e-12, rtol=0)
