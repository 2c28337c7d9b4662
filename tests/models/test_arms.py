"""Study arms: the unentangled circuit is a product circuit with the same weights, the frozen circuit
never trains, and arms that do not apply are refused."""

import math

import pytest
import torch

from hqnn.exceptions import ConfigError
from hqnn.models import create_model
from hqnn.models.arms import ARMS, apply_arm, circuit_without_entanglement, quantum_layers
from hqnn.sim import Circuit, run
from hqnn.train.trainer import count_parameters


def every_gate_circuit(measure_state: bool) -> Circuit:
    """Four wires, every kind of multi-qubit gate, weights in every parametrised one."""
    c = Circuit(4, n_inputs=4)
    w = c.add_weights("w", (12,))
    for i in range(4):
        c.ry(math.pi * c.inputs[i], i)
        c.rx(w[i], i)
    c.cnot(0, 1).cz(1, 2).cy(2, 3).swap(0, 3).toffoli(0, 1, 2)
    c.crx(w[4], 0, 1).cry(w[5], 1, 2).crz(w[6], 2, 3).crot(w[7], w[8], w[9], 3, 0)
    c.isingxx(w[10], 0, 2).isingzz(w[11], 1, 3)
    c.unitary(torch.eye(4)[[0, 1, 3, 2]], [2, 0])  # a CNOT as a matrix
    c.h(1)
    return c.state() if measure_state else c.expval_z()


def single_qubit_purities(state: torch.Tensor, n_qubits: int) -> torch.Tensor:
    """Tr(rho_i^2) of each wire's reduced state; all 1 exactly when the state is a product state."""
    psi = state.reshape((state.shape[0],) + (2,) * n_qubits)
    purities = []
    for wire in range(n_qubits):
        moved = psi.movedim(wire + 1, 1).reshape(state.shape[0], 2, -1)  # (B, 2, rest)
        rho = moved @ moved.conj().transpose(1, 2)  # (B, 2, 2)
        purities.append((rho @ rho).diagonal(dim1=1, dim2=2).sum(-1).real)
    return torch.stack(purities, dim=1)  # (B, n)


def test_removing_entanglement_leaves_a_product_state():
    torch.manual_seed(0)
    circuit = every_gate_circuit(measure_state=True)
    inputs, weights = torch.rand(16, 4, dtype=torch.float64), 2 * math.pi * torch.rand(12, dtype=torch.float64)
    entangled = single_qubit_purities(run(circuit, inputs, weights), 4)
    assert entangled.min() < 0.9  # the oracle can fail: the original circuit entangles
    local, changed = circuit_without_entanglement(circuit)
    product = single_qubit_purities(run(local, inputs, weights), 4)
    torch.testing.assert_close(product, torch.ones_like(product), atol=1e-10, rtol=0)
    assert changed == 11  # CNOT, CZ, CY, Toffoli, 4 controlled rotations, 2 Ising, the 2-qubit unitary


def test_removal_rules_keep_every_weight():
    circuit = every_gate_circuit(measure_state=False)
    local, _ = circuit_without_entanglement(circuit)
    names = [(op.name, op.wires) for op in local.ops[8:]]
    assert names == [
        ("SWAP", (0, 3)), ("RX", (1,)), ("RY", (2,)), ("RZ", (3,)), ("Rot", (0,)),
        ("RX", (0,)), ("RX", (2,)), ("RZ", (1,)), ("RZ", (3,)), ("Hadamard", (1,)),
    ]
    used = {a.index for op in local.ops for a in op.params if a.source == "weight"}
    assert used == set(range(12))
    assert (local.n_weights, local.weight_shapes, local.measurements) == (12, circuit.weight_shapes, circuit.measurements)
    assert len(circuit.ops) == 21  # the original is untouched


def build(name, arm=None, seed=0):
    torch.manual_seed(seed)
    model = create_model(name, in_chans=1, img_size=16)
    return model if arm is None else apply_arm(model, arm)


def test_no_entanglement_model_matches_the_analytic_product_circuit():
    model = build("cnn_qnn", "no_entanglement")
    after = torch.rand(3)
    hybrid = build("cnn_qnn")
    assert torch.equal(after, torch.rand(3))  # the arm drew nothing from the global RNG
    assert count_parameters(model) == count_parameters(hybrid) == (count_parameters(hybrid)[0], 8)
    (_, layer), (_, original) = quantum_layers(model)[0], quantum_layers(hybrid)[0]
    assert torch.equal(layer.weights, original.weights) and layer is not original
    x = torch.rand(5, 4)
    w = layer.weights.detach()
    # without the CNOT ring each wire is RY(pi x) RZ(w0) RY(w1) |0>: <Z> = cos a cos c - sin a cos b sin c
    a, b, c = math.pi * x, w[:4], w[4:]
    expected = torch.cos(a) * torch.cos(c) - torch.sin(a) * torch.cos(b) * torch.sin(c)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=0)
    assert not torch.allclose(original(x), expected, atol=1e-3)


def test_frozen_circuit_never_trains_and_keeps_its_state_dict_key():
    model = build("cnn_qnn", "frozen")
    hybrid = build("cnn_qnn")
    assert set(model.state_dict()) == set(hybrid.state_dict())
    total, quantum = count_parameters(model)
    assert quantum == 0 and total == count_parameters(hybrid)[0] - 8
    (_, layer), = quantum_layers(model)
    before = layer.weights.clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.rand(4, 1, 16, 16)).sum().backward()
    optimizer.step()
    assert torch.equal(layer.weights, before)
    torch.testing.assert_close(model(torch.ones(2, 1, 16, 16)), model(torch.ones(2, 1, 16, 16)))


def test_frozen_survives_set_phase():
    torch.manual_seed(0)
    model = apply_arm(create_model("resnet34_qhead", num_classes=4), "frozen")
    (_, layer), = quantum_layers(model)
    for phase in ("A", "B"):
        trainable = {id(p) for p in model.set_phase(phase)}
        assert id(layer.weights) not in trainable and not layer.weights.requires_grad


@pytest.mark.parametrize("arm", ["hybrid", "no_entanglement", "frozen"])
def test_circuit_arms_refuse_a_classical_model(arm):
    with pytest.raises(ConfigError, match=f"the {arm} arm needs a model with a quantum circuit layer"):
        build("cnn_qnn_classical", arm)


def test_twin_and_unknown_arms():
    twin = build("cnn_qnn_classical")
    assert apply_arm(twin, "twin") is twin
    with pytest.raises(ConfigError, match="build the twin"):
        build("cnn_qnn", "twin")
    with pytest.raises(ConfigError, match="unknown arm 'entangled'; valid arms: " + ", ".join(ARMS)):
        build("cnn_qnn", "entangled")


def test_circuit_without_entangling_gates_is_kept(caplog):
    model = build("cnn_qnn", "no_entanglement")
    (_, layer), = quantum_layers(model)
    with caplog.at_level("INFO", logger="hqnn.models.arms"):
        apply_arm(model, "no_entanglement")
    assert quantum_layers(model)[0][1] is layer
    assert "equals hybrid" in caplog.text
