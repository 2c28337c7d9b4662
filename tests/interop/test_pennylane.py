"""hqnn.interop.pennylane against PennyLane itself: values and gradients to 1e-8 in float64."""

from __future__ import annotations

import math
import pickle
import io

import numpy as np
import pytest
import torch

from hqnn.exceptions import ConfigError, UnsupportedError
from hqnn.sim import run
from hqnn.templates.recipes import RECIPES

qml = pytest.importorskip("pennylane", reason="PennyLane is not installed (pip install 'hqnn[pennylane]')")
from hqnn.interop.pennylane import TorchLayer, to_pennylane, trace_qnode  # noqa: E402

TOL = 1e-8
# Comparisons run the default engine, which is what users of the drop-in get (the engine is also
# checked against the plain gate-by-gate path in tests/sim).
METHOD = "auto"


def _qnode(n_wires, wires=None):
    return lambda func: qml.qnode(qml.device("default.qubit", wires=wires or n_wires), interface="torch")(func)


def _z_all(n):
    return [qml.expval(qml.PauliZ(i)) for i in range(n)]


# ---- the seed circuits of seed_models.md section 5, written as PennyLane users write them ----------
@_qnode(4)
def diana_edge(inputs):
    for i in range(4):
        qml.RY(inputs[i], wires=i)
    for i in range(4):
        qml.CNOT(wires=[i, (i + 1) % 4])
    for i in range(4):
        qml.RY(inputs[i] / 2, wires=i)
        qml.RZ(inputs[(i + 1) % 4] / 2, wires=i)
    return _z_all(4)


@_qnode(4)
def diana_texture(inputs):
    for i in range(4):
        qml.Hadamard(wires=i)
        qml.RX(inputs[i], wires=i)
    for i in range(1, 4):
        qml.CNOT(wires=[0, i])
    for i in range(4):
        qml.RY(0.7 * inputs[i], wires=i)
    for i in range(3):
        qml.CZ(wires=[i, i + 1])
    return _z_all(4)


@_qnode(4)
def diana_qhead(inputs, weights):
    qml.AngleEmbedding(inputs, wires=range(4))
    qml.StronglyEntanglingLayers(weights, wires=range(4))
    return _z_all(4)


@_qnode(10)
def hcqdl_code(inputs, w0, w1):
    qml.RX(inputs[0], wires=0)
    qml.RX(inputs[1], wires=1)
    qml.Rot(*w0, wires=0)
    qml.RY(w1, wires=1)
    qml.CNOT(wires=[0, 1])
    return [qml.expval(qml.PauliZ(0)), qml.expval(qml.PauliZ(1))]


@_qnode(4)
def rezk(inputs, params):
    for i in range(4):
        qml.RY(np.pi * inputs[i], wires=i)
        qml.RZ(params[0, i], wires=i)
    for i in range(4):
        qml.CNOT(wires=[i, (i + 1) % 4])
    for i in range(4):
        qml.RY(params[1, i], wires=i)
    return _z_all(4)


@_qnode(9)
def sqdr(inputs, weights):
    for block in range(2):
        for i in range(9):
            qml.Rot(inputs[3 * i], inputs[3 * i + 1], inputs[3 * i + 2], wires=i)
            qml.Rot(*weights[block, i], wires=i)
        if block < 1:
            for j in range(8):
                qml.CZ(wires=[j, j + 1])
    return _z_all(9)


V = [0.3, -0.5, 1.2, -1.0]
SEEDS = [  # (qnode, weight_shapes, n_inputs, inputs, weights, expected <Z> from seed_models.md section 5)
    (diana_edge, {}, 4, V, {}, [0.191059, 0.701772, 0.693574, 0.201205]),
    (diana_texture, {}, 4, V, {}, [-0.208460, 0.342898, -0.744643, 0.644218]),
    (diana_qhead, {"weights": (2, 4, 3)}, 4, [0.1, -0.2, 0.3, -0.4],
     {"weights": 0.1 * torch.arange(24.0).reshape(2, 4, 3)}, [-0.156795, -0.245745, 0.030677, -0.010243]),
    (hcqdl_code, {"w0": 3, "w1": 1}, 2, [0.1, 0.2], {"w0": torch.tensor([0.3, 0.4, 0.5]), "w1": torch.tensor(0.6)},
     [0.904971, 0.732016]),
    (rezk, {"params": (2, 4)}, 4, [0.1, 0.2, 0.3, 0.4], {"params": 0.1 * torch.arange(8.0).reshape(2, 4) + 0.1},
     [0.044039, 0.383632, -0.090252, -0.013936]),
    (sqdr, {"weights": (2, 9, 3)}, 27, torch.linspace(0, 1, 27).tolist(),
     {"weights": 0.05 * torch.arange(54.0).reshape(2, 9, 3)},
     [0.162388, 0.203979, 0.332539, 0.285034, 0.108530, -0.060336, -0.184346, -0.280338, -0.455552]),
]


def _pair(qnode, shapes, n_inputs=None, weights=None):
    """(hqnn TorchLayer, PennyLane TorchLayer) in float64 with the same weights."""
    init = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in (weights or {}).items()} or None
    ours = TorchLayer(qnode, shapes, init_method=init, method=METHOD).double()  # width from the first call
    theirs = qml.qnn.TorchLayer(qnode, shapes, init_method=init).double()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _values_and_grads(layer, x, per_sample=False):
    x = x.clone().requires_grad_(True)
    out = torch.stack([layer(row) for row in x]) if per_sample else layer(x)
    params = list(layer.parameters())
    grads = torch.autograd.grad(out.sum() + (out**2).sum(), [x] + params)
    return out.detach(), grads


def _assert_match(ours, theirs, x):
    out_a, grads_a = _values_and_grads(ours, x)
    out_b, grads_b = _values_and_grads(theirs, x, per_sample=True)  # the seed QNodes index inputs[i]
    assert out_a.shape == out_b.shape
    torch.testing.assert_close(out_a, out_b, atol=TOL, rtol=0)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, atol=TOL, rtol=0)


@pytest.mark.parametrize("qnode, shapes, n_inputs, x, weights, expected", SEEDS,
                         ids=[case[0].func.__name__ for case in SEEDS])
def test_seed_circuits_match_spec_and_pennylane(qnode, shapes, n_inputs, x, weights, expected):
    ours, theirs = _pair(qnode, shapes, n_inputs, weights)
    x = torch.tensor(x, dtype=torch.float64)
    np.testing.assert_allclose(ours(x).detach().numpy(), expected, atol=1e-6)
    batch = x + 0.3 * torch.randn(3, x.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    _assert_match(ours, theirs, batch)
    # and the traced circuit is the hand-written hqnn recipe
    recipe = {"diana_edge": "diana_edge", "diana_texture": "diana_texture", "diana_qhead": "diana_qhead",
              "hcqdl_code": "hcqdl_code_qnode", "rezk": "rezk_qnn", "sqdr": "sqdr_reupload"}[qnode.func.__name__]
    flat = torch.cat([torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in weights.values()]) \
        if weights else None
    expected = run(RECIPES[recipe](), batch, flat, method=METHOD)
    torch.testing.assert_close(expected, ours(batch).detach(), atol=TOL, rtol=0)


_GATES_1 = ["RX", "RY", "RZ", "PhaseShift"]
_GATES_2 = ["CRX", "CRY", "CRZ", "IsingXX", "IsingYY", "IsingZZ"]
_FIXED = ["Hadamard", "PauliX", "PauliY", "PauliZ", "S", "T", "SX", "CNOT", "CZ", "CY", "SWAP", "Toffoli"]


def _random_program(seed, n_wires=3, n_gates=25):
    """A random gate list over hqnn's gate set: (gate, wires, angle recipe)."""
    rng = np.random.default_rng(seed)
    program = []
    for _ in range(n_gates):
        kind = rng.integers(4)
        if kind == 0:
            name = str(rng.choice(_FIXED))
            k = {"CNOT": 2, "CZ": 2, "CY": 2, "SWAP": 2, "Toffoli": 3}.get(name, 1)
        elif kind == 1:
            name, k = str(rng.choice(_GATES_1)), 1
        elif kind == 2:
            name, k = str(rng.choice(_GATES_2)), 2
        else:
            name, k = str(rng.choice(["Rot", "U3", "CRot"])), (2 if rng.random() < 0.3 else 1)
            name = "CRot" if k == 2 else str(rng.choice(["Rot", "U3"]))
        wires = [int(w) for w in rng.permutation(n_wires)[:k]]
        n_params = {"Rot": 3, "U3": 3, "CRot": 3}.get(name, 1 if name in _GATES_1 + _GATES_2 else 0)
        # each angle: ("x", i, scale), ("w", j, scale), ("c", value), or ("xw", i, j): x_i + w_j
        angles = []
        for _ in range(n_params):
            r = rng.integers(4)
            angles.append(("x", int(rng.integers(n_wires)), float(rng.normal())) if r == 0 else
                          ("w", int(rng.integers(6)), float(rng.normal())) if r == 1 else
                          ("c", float(rng.normal())) if r == 2 else
                          ("xw", int(rng.integers(n_wires)), int(rng.integers(6))))
        program.append((name, wires, angles))
    return program


def _program_qnode(program, n_wires=3):
    def value(a, inputs, weights):
        if a[0] == "x":
            return a[2] * inputs[a[1]]
        if a[0] == "w":
            return weights[a[1]] * a[2]
        if a[0] == "c":  # a tensor: PennyLane's Rot/U3 matrices cannot mix numpy floats and tensors
            return torch.tensor(a[1], dtype=torch.float64)
        return inputs[a[1]] + weights[a[2]] - 0.25

    @_qnode(n_wires)
    def circuit(inputs, weights):
        for name, wires, angles in program:
            getattr(qml, name)(*(value(a, inputs, weights) for a in angles), wires=wires)
        return [qml.expval(qml.PauliZ(0) @ qml.PauliX(2)), qml.expval(qml.PauliY(1)), qml.probs(wires=[2, 0])]

    return circuit


@pytest.mark.parametrize("seed", range(6))
def test_random_circuits_match_pennylane(seed):
    qnode = _program_qnode(_random_program(seed))
    weights = torch.randn(6, generator=torch.Generator().manual_seed(seed))
    ours, theirs = _pair(qnode, {"weights": 6}, 3, {"weights": weights})
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(100 + seed))
    _assert_match(ours, theirs, x)


def test_leading_batch_dims_single_expval_and_default_init():
    @_qnode(2)
    def circuit(inputs, weights):
        qml.AngleEmbedding(inputs, wires=range(2), rotation="Y")
        qml.BasicEntanglerLayers(weights, wires=range(2))
        return qml.expval(qml.PauliZ(1))

    torch.manual_seed(0)
    ours = TorchLayer(circuit, {"weights": (2, 2)})
    assert [n for n, _ in ours.named_parameters()] == ["weights"]
    w = ours.weights.detach()
    assert w.dtype == torch.float32 and (w >= 0).all() and (w < 2 * math.pi).all()
    theirs = qml.qnn.TorchLayer(circuit, {"weights": (2, 2)})
    theirs.load_state_dict(ours.state_dict())
    x = torch.rand(2, 3, 2)
    assert ours(x).shape == theirs(x).shape == (2, 3)
    torch.testing.assert_close(ours(x), theirs(x).float(), atol=1e-5, rtol=0)
    assert ours(x[0, 0]).shape == theirs(x[0, 0]).shape


def test_tuple_of_expvals_is_concatenated():
    """PennyLane stacks a returned tuple into (n, ..., 1); hqnn returns (..., n) like a list."""

    @_qnode(2)
    def circuit(inputs):
        qml.AngleEmbedding(inputs, wires=range(2))
        return qml.expval(qml.PauliZ(0)), qml.expval(qml.PauliY(1))

    x = torch.rand(3, 2, dtype=torch.float64)
    torch.testing.assert_close(TorchLayer(circuit, {})(x), qml.qnn.TorchLayer(circuit, {})(x)[..., 0].T)


def test_init_method_callable_and_dict():
    @_qnode(2)
    def circuit(inputs, a, b):
        qml.RX(inputs[0] + a, wires=0)
        qml.RY(b[1], wires=1)
        return [qml.expval(qml.PauliZ(0)), qml.expval(qml.PauliZ(1))]

    layer = TorchLayer(circuit, {"a": 1, "b": 2}, init_method=torch.nn.init.zeros_)
    assert layer.a.shape == () and layer.b.shape == (2,) and float(layer.b.detach().abs().sum()) == 0
    layer = TorchLayer(circuit, {"a": 1, "b": 2}, init_method={"a": torch.nn.init.ones_, "b": torch.tensor([1.0, 2.0])})
    assert float(layer.a) == 1.0 and layer.b.tolist() == [1.0, 2.0]
    assert set(layer.qnode_weights) == {"a", "b"}
    with pytest.raises(ValueError, match="shape"):
        TorchLayer(circuit, {"a": 1, "b": 2}, init_method={"a": torch.nn.init.ones_, "b": torch.zeros(3)})
    with pytest.raises(ConfigError, match="every non-input argument"):
        TorchLayer(circuit, {"a": 1})


def test_pickle_and_torch_save_roundtrip():
    layer = TorchLayer(diana_qhead, {"weights": (2, 4, 3)})
    assert not any("QNode" in type(v).__name__ for v in vars(layer).values())
    x = torch.rand(5, 4)
    layer(x)  # traced for width 4: the pickles keep that trace (the QNode's function does not pickle)
    clone = pickle.loads(pickle.dumps(layer))
    torch.testing.assert_close(clone(x), layer(x))
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=False)(x), layer(x))
    with pytest.raises(ValueError, match="width 3"):
        clone(torch.rand(5, 3))


@pytest.mark.parametrize("body, message", [
    # non-linear angles become derived features computed in torch: these must simply work
    (lambda x, w: (qml.RX(qml.math.sin(x[0]), wires=0), qml.RY(w[1], 1), qml.expval(qml.Z(0)))[-1], None),
    (lambda x, w: (qml.RX(torch.sigmoid(x[1] + w[0]), wires=0), qml.RY(w[1], 1), qml.expval(qml.Z(0)))[-1], None),
    (lambda x, w: (qml.RX(torch.cos(x[0]), wires=0), qml.RY(w[1], 1), qml.expval(qml.Z(0)))[-1], None),
    (lambda x, w: (qml.RX(x[0] * w[0], wires=0), qml.RY(x[1] ** 2 / w[1], 1),
                   qml.expval(qml.Z(0) @ qml.Z(1)))[-1], None),
    (lambda x, w: (qml.RX(x[0], 0), qml.RY(w[0], 1), qml.expval(0.5 * qml.Z(0) + qml.X(1) - 0.25))[-1], None),
    (lambda x, w: (qml.RX(x[0], 0), qml.RY(w[0], 0),
                   qml.expval(qml.Hermitian(np.array([[0.5, 0.2 - 0.1j], [0.2 + 0.1j, -1.0]]), wires=0)))[-1], None),
    (lambda x, w: (qml.RX(w[0] - x[1], 0), qml.QFT(wires=[0, 1]), qml.adjoint(qml.T(1)),
                   qml.expval(qml.Y(0)))[-1], None),
    # a Python number is needed while tracing, or an operation hqnn lacks: refused, named
    (lambda x, w: (qml.RX(math.sin(x[0]), wires=0), qml.expval(qml.Z(0)))[-1], "non-linear"),
    (lambda x, w: (qml.measure(0), qml.expval(qml.Z(1)))[-1], "mid-circuit"),
    (lambda x, w: qml.var(qml.Z(0)), "measurement"),
    (lambda x, w: (qml.RX(x[0], 0), qml.expval(qml.Hermitian(qml.math.diag(w), wires=0)))[-1], "Hermitian"),
])
def test_unsupported_features_are_named(body, message):
    @_qnode(2)
    def circuit(inputs, weights):
        return body(inputs, weights)

    if message is None:  # QFT and adjoints decompose into supported gates: this must simply work
        ours, theirs = _pair(circuit, {"weights": 2}, 2, {"weights": torch.tensor([0.3, 0.1])})
        _assert_match(ours, theirs, torch.rand(2, 2, dtype=torch.float64))
        return
    with pytest.raises(UnsupportedError, match=message):
        TorchLayer(circuit, {"weights": 2}, n_inputs=2)


def test_trace_decomposes_templates_to_hqnn_gates():
    trace = trace_qnode(diana_qhead, {"weights": (2, 4, 3)})
    circuit = trace.circuit
    assert not trace.single_expval and not trace.features and trace.readout is None
    assert {op.name for op in circuit.ops} == {"RX", "Rot", "CNOT"}
    assert circuit.n_weights == 24 and circuit.n_inputs == 4


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_to_pennylane_matches_run(name):
    circuit = RECIPES[name]() if name != "strongly_entangling" else RECIPES[name](4, 2)
    gen = torch.Generator().manual_seed(1)
    w = torch.rand(circuit.n_weights, dtype=torch.float64, generator=gen) * 2 * math.pi
    x = torch.rand(2, circuit.n_inputs, dtype=torch.float64, generator=gen)
    qnode = to_pennylane(circuit, weights=w)
    for b in range(2):
        values = torch.hstack([torch.as_tensor(v).reshape(-1) for v in qnode(x[b])])
        torch.testing.assert_close(values, run(circuit, x[b : b + 1], w, method=METHOD)[0], atol=TOL, rtol=0)


def test_to_pennylane_measurements_and_device_object():
    from hqnn.sim import Circuit

    c = Circuit(3, n_inputs=1)
    w = c.add_weights("w", (2,))
    c.h(0).crot(w[0], c.inputs[0], 0.4, 0, 2).isingyy(w[1], 1, 2).unitary(np.array([[0, 1j], [1j, 0]]), [1])
    c.expval("X0 Y1").probs([2, 1])
    weights, x = torch.tensor([0.2, -0.7], dtype=torch.float64), torch.tensor([[0.9]], dtype=torch.float64)
    qnode = to_pennylane(c, device=qml.device("default.qubit", wires=3))
    values = torch.hstack([torch.as_tensor(v).reshape(-1) for v in qnode(x[0], weights)])
    torch.testing.assert_close(values, run(c, x, weights, method=METHOD)[0], atol=TOL, rtol=0)
