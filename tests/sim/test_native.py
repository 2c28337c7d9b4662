"""The native C kernel (``hqnn.sim.native``) against the dense reference, the PyTorch engine and
finite differences; its lowering limits, batch padding, threads, and the fallback when it cannot be built."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings

from circuit_strategies import circuit_specs, examples, layered_circuit_specs
from hqnn.exceptions import UnsupportedError, ValueRangeError
from hqnn.sim import Circuit, run
from hqnn.sim.native import NativeProgram, lower, native_available, unavailable_reason
from hqnn.sim.plan import compile_circuit
from hqnn.templates.recipes import RECIPES
from reference import evaluate_batch

pytestmark = pytest.mark.skipif(not native_available(torch.float64),
                                reason=f"native kernel not built: {unavailable_reason(torch.float64)}")


def _matches_reference(spec) -> None:
    circuit = spec.build()
    inputs, weights = spec.arguments()
    out = run(circuit, torch.tensor(inputs), torch.tensor(weights), method="native")
    np.testing.assert_allclose(out.numpy(), evaluate_batch(circuit, inputs, weights), atol=1e-10, rtol=0)


@settings(max_examples=examples(60))
@given(spec=circuit_specs(max_qubits=6, max_ops=18, max_batch=20, native=True))
def test_random_circuits_match_reference(spec):
    _matches_reference(spec)


@settings(max_examples=examples(20))
@given(spec=layered_circuit_specs(native=True))
def test_wide_circuits_match_reference(spec):
    _matches_reference(spec)


@settings(max_examples=examples(30))
@given(spec=circuit_specs(max_qubits=5, max_ops=14, max_batch=4, native=True))
def test_random_circuit_gradients_match_engine(spec):
    """Adjoint gradients (grouped gates, controls, permutations) equal autograd through the engine."""
    circuit = spec.build()
    assume(any(a.source != "const" for op in circuit.ops for a in op.params))
    inputs, weights = spec.arguments()
    grads = {}
    for method in ("native", "engine"):
        x = torch.tensor(inputs, requires_grad=True)
        w = torch.tensor(weights, requires_grad=True)
        out = run(circuit, x, w, method=method)
        probe = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
        grads[method] = torch.autograd.grad((out * probe).sum(), (x, w), allow_unused=True)
    for got, want in zip(grads["native"], grads["engine"]):
        if want is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipes_gradcheck_and_float32(name):
    circuit = RECIPES[name]()
    if circuit.n_qubits > 8:  # gradcheck's finite differences over many inputs: keep it quick
        pytest.skip("covered at smaller sizes by test_gradcheck")
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, circuit.n_inputs, generator=g, dtype=torch.float64).requires_grad_()
    w = torch.rand(circuit.n_weights, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w: run(circuit, x, w, method="native"), (x, w))
    out32 = run(circuit, x.detach().float(), w.detach().float(), method="native")
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), run(circuit, x.detach(), w.detach(), method="gates"),
                               atol=2e-6, rtol=0)


def test_second_derivatives_fall_back_to_an_exact_recomputation():
    circuit = RECIPES["rezk_qnn"](3)
    x = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    w = torch.rand(circuit.n_weights, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, w: run(circuit, x, w, method="native"), (x, w))


@pytest.mark.parametrize("batch", [1, 15, 16, 17, 33, 200])
def test_batches_that_do_not_fill_the_lanes(batch):
    """Chunks of 8/16 samples with padding: every row equals the same row run alone."""
    circuit = RECIPES["sqdr_reupload"](n_qubits=4, n_blocks=2)
    g = torch.Generator().manual_seed(batch)
    x = torch.rand(batch, circuit.n_inputs, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(circuit.n_weights, generator=g, dtype=torch.float64, requires_grad=True)
    out = run(circuit, x, w, method="native")
    torch.testing.assert_close(out, run(circuit, x, w, method="gates"), atol=1e-12, rtol=0)
    gx, gw = torch.autograd.grad(out.sum(), (x, w))
    ex, ew = torch.autograd.grad(run(circuit, x, w, method="engine").sum(), (x, w))
    torch.testing.assert_close(gx, ex, atol=1e-12, rtol=0)
    torch.testing.assert_close(gw, ew, atol=1e-11, rtol=0)


def test_thread_count_does_not_change_results():
    circuit = RECIPES["strongly_entangling"](8, 2)
    x = torch.rand(100, 8, dtype=torch.float64, requires_grad=True)
    w = torch.rand(circuit.n_weights, dtype=torch.float64, requires_grad=True)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = run(circuit, x, w, method="native")
            results.append((out, *torch.autograd.grad(out.sum(), (x, w))))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_gates_are_grouped_and_permutations_cost_no_pass():
    """Rezk's circuit: RY·RZ per wire, a CNOT ring, RY per wire -> 4 opening groups (the product
    state), 4 permutations and 4 groups; SEL Rot = RZ·RY·RZ fused into one group per wire and layer."""
    program = NativeProgram(RECIPES["rezk_qnn"](4))
    ops = program.prog[10:10 + 8 * program.n_ops].reshape(-1, 8)
    kinds, initial = ops[:, 0].tolist(), ops[:, 6].tolist()
    assert kinds.count(1) == 4 and kinds.count(0) == 8
    assert sum(initial) == 4
    sel = NativeProgram(RECIPES["strongly_entangling"](5, 2))
    ops = sel.prog[10:10 + 8 * sel.n_ops].reshape(-1, 8)
    groups = ops[ops[:, 0] == 0]
    assert len(groups) == 10 and groups[:, 3].tolist()[:5] == [4] * 5  # RX embedding + first Rot on each wire


def test_state_and_non_z_measurements_are_not_native():
    c = Circuit(2, n_inputs=1)
    c.rx(c.inputs[0], 0)
    c.cnot(0, 1)
    c.state()
    with pytest.raises(UnsupportedError, match="measures <Z> words and probabilities"):
        run(c, torch.zeros(1, 1), method="native")
    assert type(compile_circuit(c, "auto")).__name__ == "EnginePlan"  # auto falls back to the engine
    x = Circuit(2, n_inputs=1)
    x.rx(x.inputs[0], 0)
    x.expval("X0 Z1")
    torch.testing.assert_close(run(x, torch.ones(2, 1, dtype=torch.float64)),
                               run(x, torch.ones(2, 1, dtype=torch.float64), method="gates"))


def test_multi_qubit_unitary_is_not_native():
    c = Circuit(2)
    c.unitary(torch.eye(4), [0, 1])
    c.expval_z()
    with pytest.raises(UnsupportedError, match="no lowering for QubitUnitary on 2 wires"):
        lower(c)


@pytest.mark.parametrize("where", ["inputs", "weights"])
def test_non_finite_angles_are_reported_by_the_kernel(where):
    circuit = RECIPES["rezk_qnn"](3)
    x, w = torch.zeros(20, 3), torch.zeros(circuit.n_weights)
    (x if where == "inputs" else w)[-1] = float("nan")
    with pytest.raises(ValueRangeError, match=f"{where} contain NaN or infinite values"):
        run(circuit, x, w, method="native")


def _run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


_FALLBACK = """
import warnings, torch
from hqnn.sim import run
from hqnn.sim.plan import compile_circuit
from hqnn.templates.recipes import rezk_qnn
c = rezk_qnn(3)
x, w = torch.rand(4, 3, dtype=torch.float64), torch.rand(6, dtype=torch.float64)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out = run(c, x, w)
print(len(caught), [str(m.message)[:60] for m in caught])
print(float((out - run(c, x, w, method="gates")).abs().max()) < 1e-12)
"""


def test_without_a_compiler_it_warns_once_and_runs_on_the_engine(tmp_path):
    done = _run_python(_FALLBACK, HQNN_CC=str(tmp_path / "no-such-cc"), HQNN_CACHE_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("1 ") and "could not be built" in lines[0] and lines[1] == "True"


def test_disabled_by_environment_runs_silently_on_the_engine():
    done = _run_python(_FALLBACK, HQNN_NATIVE="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == ["0 []", "True"]


def test_kernel_cache_is_reused(tmp_path):
    code = "import torch; from hqnn.sim.native import library; print(library(torch.float64) is not None)"
    first = _run_python(code, HQNN_CACHE_DIR=str(tmp_path))
    built = sorted((tmp_path / "kernels").glob("*.so"))
    second = _run_python(code, HQNN_CACHE_DIR=str(tmp_path))
    assert first.stdout.strip() == second.stdout.strip() == "True"
    assert len(built) == 1 and sorted((tmp_path / "kernels").glob("*.so")) == built
    assert not list((tmp_path / "kernels").glob("tmp*"))  # no half-written build left behind
