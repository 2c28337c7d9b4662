"""PennyLane parity: the seed recipes, written by hand as QNodes, and random circuits over the gate set.

Values and Jacobians (w.r.t. inputs and weights) must agree to 1e-8 in float64 with
``default.qubit`` (backprop, torch interface).
"""

import math
from functools import reduce

import pytest
import torch
from hypothesis import given, settings

from circuit_strategies import circuit_specs, examples
from hqnn.sim import run
from hqnn.templates import recipes

qml = pytest.importorskip("pennylane", reason="PennyLane parity tests need the 'pennylane' extra")

TOL = 1e-8


def _z(n):
    return [qml.expval(qml.PauliZ(i)) for i in range(n)]


# Each seed recipe, written from its description (../shared/specs/seed_models.md), not from hqnn's code.
# A function takes one sample x (n_inputs,) and the weight blocks by name, in hqnn's shapes.
def pl_rezk(x, w, n=4):
    for i in range(n):
        qml.RY(math.pi * x[i], wires=i)
        qml.RZ(w["params"][0, i], wires=i)
    for i in range(n):
        qml.CNOT(wires=[i, (i + 1) % n])
    for i in range(n):
        qml.RY(w["params"][1, i], wires=i)
    return _z(n)


def pl_hcqdl_crx_ring(x, w, n=4):
    for i in range(n):
        qml.RY(x[i], wires=i)
    for k, control in enumerate([3, 2, 1, 0]):  # CRX(q4->q1), CRX(q3->q4), CRX(q2->q3), CRX(q1->q2)
        qml.CRX(w["crx"][k], wires=[control, (control + 1) % n])
    return _z(n)


def pl_hcqdl_figure2(x, w, n=4):
    for i in range(n):
        qml.RY(x[i], wires=i)
    for i in range(n):
        qml.RX(w["theta"][0, i], wires=i)
    for i in range(n - 1):
        qml.CNOT(wires=[i, i + 1])
    for i in range(n):
        qml.RY(w["theta"][1, i], wires=i)
    for i in range(n - 1):
        qml.CNOT(wires=[i, i + 1])
    for i in range(n):
        qml.RZ(w["theta"][2, i], wires=i)
    return _z(n)


def pl_hcqdl_code_qnode(x, w):
    qml.RX(x[0], wires=0)
    qml.RX(x[1], wires=1)
    qml.Rot(*w["w0"], wires=0)
    qml.RY(w["w1"][0], wires=1)
    qml.CNOT(wires=[0, 1])
    return _z(2)


def pl_sqdr(x, w, n=9, ring=False):
    n_blocks = w["weights"].shape[0]
    for b in range(n_blocks):
        for i in range(n):
            qml.Rot(x[3 * i], x[3 * i + 1], x[3 * i + 2], wires=i)
            qml.Rot(*w["weights"][b, i], wires=i)
        if ring:  # TorchQuantum's EntangleCircular(CZ) after every block
            for i in range(n):
                qml.CZ(wires=[i, (i + 1) % n])
        elif b < n_blocks - 1:  # the PennyLane code: a CZ chain between blocks
            for i in range(n - 1):
                qml.CZ(wires=[i, i + 1])
    return _z(n)


def pl_diana_edge(x, w, n=4):
    for i in range(n):
        qml.RY(x[i], wires=i)
    for i in range(n):
        qml.CNOT(wires=[i, (i + 1) % n])
    for i in range(n):
        qml.RY(0.5 * x[i], wires=i)
        qml.RZ(0.5 * x[(i + 1) % n], wires=i)
    return _z(n)


def pl_diana_texture(x, w, n=4):
    for i in range(n):
        qml.Hadamard(wires=i)
        qml.RX(x[i], wires=i)
    for i in range(1, n):
        qml.CNOT(wires=[0, i])
    for i in range(n):
        qml.RY(0.7 * x[i], wires=i)
    for i in range(n - 1):
        qml.CZ(wires=[i, i + 1])
    return _z(n)


def pl_angle_sel(x, w, n=4, rotation="X"):
    qml.AngleEmbedding(x, wires=range(n), rotation=rotation)
    qml.StronglyEntanglingLayers(w["weights"], wires=range(n))
    return _z(n)


# name -> (hqnn circuit, hand-written QNode body, n_qubits). strongly_entangling (the benchmark circuit,
# 12 qubits by default) is checked at a smaller size, with the Y embedding.
SEEDS = {
    "rezk_qnn": (recipes.rezk_qnn(), pl_rezk, 4),
    "hcqdl_crx_ring": (recipes.hcqdl_crx_ring(), pl_hcqdl_crx_ring, 4),
    "hcqdl_figure2": (recipes.hcqdl_figure2(), pl_hcqdl_figure2, 4),
    "hcqdl_code_qnode": (recipes.hcqdl_code_qnode(), pl_hcqdl_code_qnode, 2),
    "sqdr_reupload": (recipes.sqdr_reupload(), pl_sqdr, 9),
    "sqdr_reupload_ring": (recipes.sqdr_reupload(entangler="ring"), lambda x, w: pl_sqdr(x, w, ring=True), 9),
    "diana_edge": (recipes.diana_edge(), pl_diana_edge, 4),
    "diana_texture": (recipes.diana_texture(), pl_diana_texture, 4),
    "diana_qhead": (recipes.diana_qhead(), pl_angle_sel, 4),
    "strongly_entangling": (recipes.strongly_entangling(5, 3, rotation="Y"),
                            lambda x, w: pl_angle_sel(x, w, 5, "Y"), 5),
}


def _qnode(body, n_qubits):
    return qml.QNode(body, qml.device("default.qubit", wires=n_qubits), interface="torch", diff_method="backprop")


def _flat(result) -> torch.Tensor:
    """A QNode's result (a tensor or a tuple of them) as one real vector."""
    parts = result if isinstance(result, (tuple, list)) else [result]
    parts = [torch.view_as_real(p) if p.is_complex() else p for p in parts]
    return torch.cat([p.reshape(-1) for p in parts])


def _compare(circuit, pl_function, x: torch.Tensor, w: torch.Tensor) -> None:
    """Values and Jacobians of hqnn's run and of the QNode for each row of x (B, n_in), weights w."""
    for row in x:
        args = (row, w)

        def hqnn_fn(xi, wi):
            out = run(circuit, xi[None], wi)[0]
            return torch.view_as_real(out).reshape(-1) if out.is_complex() else out

        torch.testing.assert_close(hqnn_fn(*args), pl_function(*args), atol=TOL, rtol=0)
        jac_hqnn = torch.autograd.functional.jacobian(hqnn_fn, args)
        jac_pl = torch.autograd.functional.jacobian(pl_function, args)
        for got, expected in zip(jac_hqnn, jac_pl):
            torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


def _blocks(circuit, w: torch.Tensor) -> dict:
    return {name: w[sl].reshape(shape) for name, (sl, shape) in circuit.weight_slices().items()}


def test_every_recipe_is_covered():
    assert set(recipes.RECIPES) <= set(SEEDS)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_recipe_matches_pennylane(name):
    circuit, body, n_qubits = SEEDS[name]
    qnode = _qnode(body, n_qubits)
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(2, circuit.n_inputs, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    w = torch.rand(circuit.n_weights, generator=g, dtype=torch.float64) * 2 * math.pi
    _compare(circuit, lambda xi, wi: _flat(qnode(xi, _blocks(circuit, wi))), x, w)


def _pl_angle(angle, x, w):
    if angle[0] == "input":
        return angle[2] * x[angle[1]]
    if angle[0] == "weight":
        return angle[2] * w[angle[1]]
    return torch.tensor(angle[1], dtype=torch.float64)


def _pl_body(spec, circuit):
    """A QNode body replaying a random circuit spec with the qml op of the same name."""
    unitaries = [op.matrix for op in circuit.ops if op.name == "QubitUnitary"]

    def body(x, w):
        matrices = iter(unitaries)
        for name, wires, angles, _ in spec.ops:
            if name == "QubitUnitary":
                qml.QubitUnitary(next(matrices), wires=list(wires))
            else:
                getattr(qml, name)(*[_pl_angle(a, x, w) for a in angles], wires=list(wires))
        out = []
        for m in spec.measurements:
            if m[0] == "state":
                return qml.state()
            if m[0] == "probs":
                out.append(qml.probs(wires=list(m[1])))
            else:
                paulis = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
                factors = [paulis[t[0]](int(t[1:])) for t in m[1].split()]
                out.append(qml.expval(reduce(lambda a, b: a @ b, factors)))
        return out

    return body


@settings(max_examples=examples(20))
@given(spec=circuit_specs(max_qubits=4, max_ops=10, max_batch=2))
def test_random_circuits_match_pennylane(spec):
    circuit = spec.build()
    inputs, weights = spec.arguments()
    qnode = _qnode(_pl_body(spec, circuit), spec.n_qubits)
    _compare(circuit, lambda xi, wi: _flat(qnode(xi, wi)), torch.tensor(inputs), torch.tensor(weights))
