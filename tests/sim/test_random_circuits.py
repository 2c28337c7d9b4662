"""Random circuits over the whole gate set: ``run`` (both methods) against the dense reference."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from circuit_strategies import circuit_specs, examples, layered_circuit_specs
from hqnn.sim import run
from reference import evaluate_batch

METHODS = ["auto", "engine", "gates"]


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
