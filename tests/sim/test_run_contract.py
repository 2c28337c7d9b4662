"""The contract of ``hqnn.sim.run`` beyond the values: caching, dtypes, layouts, edge cases."""

import math

import numpy as np
import pytest
import torch

from hqnn.exceptions import ResourceError
from hqnn.sim import Circuit, run
from hqnn.templates import recipes
from reference import evaluate_batch, random_unitary

METHODS = ["auto", "engine", "gates"]


@pytest.mark.parametrize("method", METHODS)
def test_plan_cache_tells_circuits_apart(method, rng):
    """Circuits equal but for a unitary's entries or a constant angle must not share a result."""
    outs = []
    for k in range(2):
        c = Circuit(2).unitary(random_unitary(4, rng), (0, 1)).rx(0.3 + k, 1).expval_z()
        outs.append(run(c, dtype=torch.float64, method=method))
        np.testing.assert_allclose(outs[-1].numpy(), evaluate_batch(c, np.zeros((1, 0)), []), atol=1e-12)
    assert not torch.allclose(outs[0], outs[1])


@pytest.mark.parametrize("method", METHODS)
def test_circuit_grown_after_a_run(method):
    """A gate added after a run is simulated by the next run (no stale compiled plan)."""
    c = Circuit(2, n_inputs=1).ry(math.pi, 0).expval_z()
    before = run(c, torch.zeros(1, 1), method=method)
    c.cnot(0, 1)
    after = run(c, torch.zeros(1, 1), method=method)
    torch.testing.assert_close(before, torch.tensor([[-1.0, 1.0]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(after, torch.tensor([[-1.0, -1.0]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_empty_circuit_and_no_inputs(method):
    out = run(Circuit(3).expval_z(), method=method)
    torch.testing.assert_close(out, torch.ones(1, 3))
    out = run(Circuit(2).probs(), method=method)
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("wires", [(0, 2), (1, 3), (0, 3), (0, 2, 4)])
def test_untouched_wires_between_rotated_wires(method, wires):
    """A first layer of rotations that skips wires in the middle (the product-state fast path)."""
    c = Circuit(5)
    for k, wire in enumerate(wires):
        c.ry(1.0 + k, wire)
    c.expval_z().probs((4, 1, 2))
    out = run(c, dtype=torch.float64, method=method)
    np.testing.assert_allclose(out.numpy(), evaluate_batch(c, np.zeros((1, 0)), []), atol=1e-12, rtol=0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("measure", ["state", "expval", "probs"])
def test_outputs_own_their_memory(method, measure):
    """Outputs can be modified in place, also when no row depends on the inputs (same as method="gates")."""
    c = Circuit(2).h(0).cnot(0, 1)
    getattr(c, {"state": "state", "expval": "expval_z", "probs": "probs"}[measure])()
    out = run(c, torch.zeros(3, 0), method=method)
    out.mul_(2)
    assert torch.equal(out[0], out[2])


@pytest.mark.parametrize("method", METHODS)
def test_same_circuit_in_both_precisions(method, rng):
    """One cached plan serves float32 and float64 calls, in either order."""
    c = recipes.strongly_entangling(4, 2)
    x, w = rng.uniform(-3, 3, (3, 4)), rng.uniform(0, 6, c.n_weights)
    expected = evaluate_batch(c, x, w)
    for real, tol in [(torch.float32, 1e-5), (torch.float64, 1e-12), (torch.float32, 1e-5)]:
        out = run(c, torch.tensor(x, dtype=real), torch.tensor(w, dtype=real), method=method)
        assert out.dtype == real
        np.testing.assert_allclose(out.numpy(), expected, atol=tol, rtol=0)
    out = run(c, torch.tensor(x, dtype=torch.float32), torch.tensor(w, dtype=torch.float32), dtype=torch.float64,
              method=method)
    assert out.dtype == torch.float64


@pytest.mark.parametrize("method", METHODS)
def test_non_contiguous_arguments(method):
    c = recipes.rezk_qnn()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 6, generator=g, dtype=torch.float64)[:, 1:5]  # a strided view
    w = torch.rand(16, generator=g, dtype=torch.float64)[::2]
    torch.testing.assert_close(run(c, x, w, method=method), run(c, x.contiguous(), w.contiguous(), method=method))
    torch.testing.assert_close(run(c, x.T.contiguous().T, w, method=method), run(c, x, w, method=method))


@pytest.mark.parametrize("method", METHODS)
def test_empty_batch(method):
    """Like torch.nn layers, a batch of 0 samples gives 0 output rows."""
    out = run(recipes.rezk_qnn(), torch.zeros(0, 4), torch.zeros(8), method=method)
    assert out.shape == (0, 4)


@pytest.mark.parametrize("method", METHODS)
def test_python_lists_and_numpy_arguments(method):
    c = recipes.hcqdl_code_qnode()
    expected = run(c, torch.tensor([[0.1, 0.2]]), torch.tensor([0.3, 0.4, 0.5, 0.6]), method=method)
    torch.testing.assert_close(run(c, [[0.1, 0.2]], [0.3, 0.4, 0.5, 0.6], method=method), expected)
    out = run(c, np.array([[0.1, 0.2]]), np.array([0.3, 0.4, 0.5, 0.6]), method=method)
    torch.testing.assert_close(out.float(), expected)


@pytest.mark.parametrize("method", METHODS)
def test_register_too_large_is_refused_before_allocating(method):
    """A 34-qubit statevector cannot fit: a ResourceError naming the memory, not a MemoryError from deep inside."""
    c = Circuit(34)
    c.h(0).cnot(0, 33).expval_z([0])
    with pytest.raises(ResourceError, match=r"needs about [0-9.]+ GiB .* available"):
        run(c, method=method)
