"""Density matrices, channels, noise models and trajectories against PennyLane default.mixed and each other."""

import math

import numpy as np
import pytest
import torch

from hqnn.exceptions import GateError, ResourceError, ValueRangeError
from hqnn.sim import Circuit, run
from hqnn.sim.density import DensityPlan
from hqnn.sim.noise import NoiseModel
from hqnn.sim.trajectories import run_trajectories
from hqnn.templates.noisy_recipes import sqdr_reupload_noisy
from hqnn.templates.recipes import rezk_qnn

SQDR_NOISY = [0.572089, 0.593158, 0.658028, 0.683956, 0.657296, 0.614079, 0.589112, 0.593600, 0.619231]

# (our method, PennyLane op name, n_params, n_wires)
GATES = [("rx", "RX", 1, 1), ("ry", "RY", 1, 1), ("rz", "RZ", 1, 1), ("rot", "Rot", 3, 1), ("h", "Hadamard", 0, 1),
         ("u3", "U3", 3, 1), ("cnot", "CNOT", 0, 2), ("cz", "CZ", 0, 2), ("crx", "CRX", 1, 2), ("isingxx", "IsingXX", 1, 2),
         ("isingzz", "IsingZZ", 1, 2), ("swap", "SWAP", 0, 2), ("cry", "CRY", 1, 2)]
CHANNELS = [("bit_flip", "BitFlip", 1), ("phase_flip", "PhaseFlip", 1), ("depolarizing", "DepolarizingChannel", 1),
            ("amplitude_damping", "AmplitudeDamping", 1), ("phase_damping", "PhaseDamping", 1),
            ("generalized_amplitude_damping", "GeneralizedAmplitudeDamping", 2)]


def _random_program(seed, n_qubits=3, length=14):
    rng = np.random.default_rng(seed)
    program = []
    for _ in range(length):
        if rng.random() < 0.4:
            ours, theirs, k = CHANNELS[rng.integers(len(CHANNELS))]
            program.append((ours, theirs, tuple(rng.uniform(0, 0.5, k)), (int(rng.integers(n_qubits)),), "channel"))
        else:
            ours, theirs, k, nw = GATES[rng.integers(len(GATES))]
            wires = tuple(int(w) for w in rng.choice(n_qubits, nw, replace=False))
            program.append((ours, theirs, tuple(rng.uniform(-math.pi, math.pi, k)), wires, "gate"))
    program.append(("thermal_relaxation", "ThermalRelaxationError", (0.1, 1.2, 1.3, 0.1), (0,), "channel"))
    program.append(("thermal_relaxation", "ThermalRelaxationError", (0.2, 1.0, 0.6, 0.3), (1,), "channel"))
    return program


def _ours(program, n_qubits=3):
    c = Circuit(n_qubits)
    for ours, _, params, wires, _ in program:
        getattr(c, ours)(*params, *wires)
    c.expval("Z0").expval("X1 Y2").expval("Z0 Z2").probs([2, 0])
    return c


def _theirs(program, n_qubits=3):
    qml = pytest.importorskip("pennylane")

    @qml.qnode(qml.device("default.mixed", wires=n_qubits))
    def circuit():
        for _, theirs, params, wires, _ in program:
            getattr(qml, theirs)(*params, wires=list(wires))
        return (qml.expval(qml.Z(0)), qml.expval(qml.X(1) @ qml.Y(2)), qml.expval(qml.Z(0) @ qml.Z(2)),
                qml.probs(wires=[2, 0]))

    return np.concatenate([np.atleast_1d(np.asarray(v)) for v in circuit()])


@pytest.mark.parametrize("seed", range(6))
def test_random_noisy_circuits_match_default_mixed(seed):
    program = _random_program(seed)
    expected = _theirs(program)
    out = run(_ours(program), dtype=torch.float64)[0]
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-8)


def test_density_matrix_matches_default_mixed_state():
    qml = pytest.importorskip("pennylane")
    program = _random_program(11)
    c = _ours(program)
    rho = DensityPlan(c).density_matrix(torch.zeros(1, 0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64),
                                        torch.complex128)[0]

    @qml.qnode(qml.device("default.mixed", wires=3))
    def state():
        for _, theirs, params, wires, _ in program:
            getattr(qml, theirs)(*params, wires=list(wires))
        return qml.density_matrix(wires=[0, 1, 2])

    np.testing.assert_allclose(rho.numpy(), np.asarray(state()), atol=1e-10)
    assert torch.allclose(torch.diagonal(rho).real.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_sqdr_noisy_reference_numbers():
    c = sqdr_reupload_noisy()
    out = run(c, torch.linspace(0, 1, 27, dtype=torch.float64)[None], 0.05 * torch.arange(54.0, dtype=torch.float64))
    torch.testing.assert_close(out[0], torch.tensor(SQDR_NOISY, dtype=torch.float64), atol=1e-6, rtol=0)


def test_sqdr_noisy_matches_default_mixed_with_per_sample_damping():
    qml = pytest.importorskip("pennylane")
    n, blocks = 4, 2
    x = torch.rand(2, 3 * n, dtype=torch.float64)
    w = torch.rand(blocks * n * 3, dtype=torch.float64)
    out = run(sqdr_reupload_noisy(n, blocks, damping_index=1), x, w)

    @qml.qnode(qml.device("default.mixed", wires=n))
    def published(inputs, weights):
        weights = weights.reshape(blocks, n, 3)
        for b in range(blocks):
            for i in range(n):
                qml.Rot(inputs[3 * i], inputs[3 * i + 1], inputs[3 * i + 2], wires=i)
                qml.Rot(*weights[b, i], wires=i)
                qml.BitFlip(0.02, wires=i)
                qml.DepolarizingChannel(0.03, wires=i)
                qml.AmplitudeDamping(1 / (1 + np.exp(-inputs[3 * i + 1])), wires=i)
            if b < blocks - 1:
                for j in range(n - 1):
                    qml.CZ(wires=[j, j + 1])
                qml.BitFlip(0.02, wires=i)
                qml.DepolarizingChannel(0.03, wires=i)
        return [qml.expval(qml.Z(i)) for i in range(n)]

    for b in range(2):
        np.testing.assert_allclose(out[b].numpy(), np.asarray(published(x[b].numpy(), w.numpy())), atol=1e-8)


def test_sqdr_random_damping_is_seeded_and_averages_the_fixed_indices():
    c = sqdr_reupload_noisy(3, 2, damping_index="random")
    plan = DensityPlan(c)
    x = torch.rand(1, 9, dtype=torch.float64).expand(300, 9)
    w = torch.rand(18, dtype=torch.float64)

    def draw(seed):
        return plan.execute(x, w, torch.complex128, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(1), draw(1))
    outs = draw(2)
    fixed = torch.stack([run(sqdr_reupload_noisy(3, 2, damping_index=r), x[:1], w)[0] for r in range(3)])
    # every sample is one of the three fixed-index results
    distance = (outs[:, None, :] - fixed[None]).abs().amax(-1).amin(-1)
    assert distance.max() < 1e-12
    assert len({tuple(o.round(decimals=9).tolist()) for o in outs}) == 3


def test_noise_model_inserts_channels_without_editing_the_circuit():
    clean = rezk_qnn()
    model = NoiseModel().add("DepolarizingChannel", 0.05).add("AmplitudeDamping", 0.1, after="CNOT", wires=[0, 1])
    noisy = model.apply(clean)
    assert not clean.has_noise and noisy.has_noise
    n_gates = sum(len(op.wires) for op in clean.ops)
    n_cnot_on_01 = sum(w in (0, 1) for op in clean.ops if op.name == "CNOT" for w in op.wires)
    assert len(noisy.ops) == len(clean.ops) + n_gates + n_cnot_on_01
    x, w = torch.rand(3, 4, dtype=torch.float64), torch.rand(8, dtype=torch.float64)
    assert not torch.allclose(run(noisy, x, w), run(clean, x, w))
    assert torch.allclose(run(NoiseModel().apply(clean), x, w), run(clean, x, w))


def test_readout_error_on_expvals_and_probs():
    c = Circuit(2)
    c.ry(0.7, 0).h(1).cnot(0, 1)
    c.expval("Z0").expval("Z0 Z1").expval("X1").probs([0, 1])
    noisy = NoiseModel().add_readout_error(0.1, 0.2).apply(c)
    clean_out, noisy_out = run(c, dtype=torch.float64)[0], run(noisy, dtype=torch.float64)[0]
    probs = clean_out[3:].reshape(2, 2)
    confusion = torch.tensor([[0.9, 0.2], [0.1, 0.8]], dtype=torch.float64)
    expected_probs = confusion @ probs @ confusion.T
    torch.testing.assert_close(noisy_out[3:], expected_probs.reshape(-1))
    signs = torch.tensor([1.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(noisy_out[0], signs @ expected_probs.sum(1))
    torch.testing.assert_close(noisy_out[1], (signs[:, None] * signs[None, :] * expected_probs).sum())
    torch.testing.assert_close(noisy_out[2], (0.2 - 0.1) + (1 - 0.3) * clean_out[2])


def test_trainable_and_per_sample_strengths_are_differentiable():
    c = Circuit(2, n_inputs=1)
    w = c.add_weights("p", (1,))
    c.h(0).h(1).amplitude_damping(c.inputs[0].sigmoid(), 0).depolarizing(w[0], 1).expval("X0").expval("X1")
    x = torch.tensor([[0.3], [-1.0]], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([0.2], dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda x, p: run(c, x, p), (x, p))
    out = run(c, x, p)
    gamma = torch.sigmoid(x[:, 0])
    torch.testing.assert_close(out[:, 0], torch.sqrt(1 - gamma))  # AD damps coherences by sqrt(1 - γ)
    torch.testing.assert_close(out[:, 1], (1 - 4 * p / 3).expand(2))


def test_kraus_channel_is_validated_and_matches_builtin():
    with pytest.raises(ValueRangeError):
        Circuit(1).kraus([np.eye(2), np.eye(2)], 0)
    with pytest.raises(ValueRangeError):
        Circuit(1).bit_flip(1.5, 0)
    with pytest.raises(GateError):
        Circuit(1, 1).rx(Circuit(1, 1).inputs[0].sigmoid(), 0)
    p = 0.3
    kraus = [np.sqrt(1 - p) * np.eye(2), np.sqrt(p) * np.array([[0, 1], [1, 0]])]
    a, b = Circuit(1), Circuit(1)
    a.ry(0.4, 0).kraus(kraus, 0).expval("Z0")
    b.ry(0.4, 0).bit_flip(p, 0).expval("Z0")
    torch.testing.assert_close(run(a, dtype=torch.float64), run(b, dtype=torch.float64))


def test_density_matrix_too_large_raises_resource_error():
    c = Circuit(20)
    c.h(0).depolarizing(0.1, 0).cnot(0, 1).expval_z([0])
    with pytest.raises(ResourceError, match="density matrix"):
        run(c)


def test_trajectories_agree_with_density_matrix_within_five_sigma():
    c = Circuit(3, n_inputs=3)
    for i in range(3):
        c.ry(c.inputs[i], i)
    c.amplitude_damping(0.3, 0).cnot(0, 1).depolarizing(0.2, 1).crx(0.8, 1, 2).phase_damping(0.4, 2)
    c.bit_flip(0.1, 0).readout_error(0.05, 0.1, 2)
    c.expval("Z0").expval("X1 Z2").probs([2])
    x = torch.rand(4, 3, dtype=torch.float64)
    exact = run(c, x)
    mean, stderr = run_trajectories(c, x, n_trajectories=2000, generator=torch.Generator().manual_seed(0),
                                    return_stderr=True)
    assert ((mean - exact).abs() <= 5 * stderr + 1e-9).all()
    again = run_trajectories(c, x, n_trajectories=2000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mean, again)
