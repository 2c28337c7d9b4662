"""Random circuits over the whole gate set: ``run`` (both methods) against the dense reference."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from circuit_strategies import circuit_specs, examples, layered_circuit_specs
from hqnn.sim import Circuit, run
from reference import evaluate_batch, random_unitary

METHODS = ["auto", "gates"]


@pytest.mark.parametrize("method", METHODS)
@given(spec=circuit_specs())
def test_float64_matches_reference(method, spec):
    circuit = spec.build()
    inputs, weights = spec.arguments()
    out = run(circuit, torch.tensor(inputs), torch.tensor(weights), method=method)
    expected = evaluate_batch(circuit, inputs, weights)
    assert out.shape == expected.shape == (spec.batch, circuit.n_outputs)
    assert out.dtype == (torch.complex128 if spec.measurements[0][0] == "state" else torch.float64)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-10, rtol=0)


@settings(max_examples=examples(30))
@given(spec=layered_circuit_specs())
def test_wide_layered_circuits_match_reference(spec):
    circuit = spec.build()
    inputs, weights = spec.arguments()
    expected = evaluate_batch(circuit, inputs, weights)
    for method in METHODS:
        out = run(circuit, torch.tensor(inputs), torch.tensor(weights), method=method)
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-10, rtol=0, err_msg=method)


@given(spec=circuit_specs(max_ops=10))
def test_float32_matches_reference(spec):
    circuit = spec.build()
    inputs, weights = spec.arguments()
    out = run(circuit, torch.tensor(inputs, dtype=torch.float32), torch.tensor(weights, dtype=torch.float32))
    assert out.dtype in (torch.float32, torch.complex64)
    np.testing.assert_allclose(out.numpy(), evaluate_batch(circuit, inputs, weights), atol=2e-5, rtol=0)


@given(spec=circuit_specs(max_qubits=4, max_ops=10, max_batch=4))
def test_rows_are_independent(spec):
    """Each row of a batch gives what it gives alone (no mixing across the batch)."""
    circuit = spec.build()
    inputs, weights = spec.arguments()
    w = torch.tensor(weights)
    out = run(circuit, torch.tensor(inputs), w)
    for b in range(spec.batch):
        torch.testing.assert_close(out[b : b + 1], run(circuit, torch.tensor(inputs[b : b + 1]), w),
                                   atol=1e-12, rtol=0)


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@settings(max_examples=examples(20))
@given(spec=circuit_specs())
def test_cuda_matches_cpu(spec):
    """The device follows the arguments; results agree with the CPU's."""
    circuit = spec.build()
    inputs, weights = spec.arguments()
    for method in METHODS:
        out = run(circuit, torch.tensor(inputs, device="cuda"), torch.tensor(weights, device="cuda"), method=method)
        assert out.device.type == "cuda"
        np.testing.assert_allclose(out.cpu().numpy(), evaluate_batch(circuit, inputs, weights), atol=1e-10, rtol=0)
