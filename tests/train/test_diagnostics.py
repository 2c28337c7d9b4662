"""CircuitMonitor: input-angle statistics against numpy, gradient norms against per-step norms
computed by hand, and the warnings for dead, saturated and gradient-starved circuits."""

import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from hqnn.models import create_model
from hqnn.qnn import QuantumLayer
from hqnn.templates.recipes import rezk_qnn
from hqnn.train.diagnostics import VANISHING_GRAD_NORM, CircuitMonitor


def _identity_fed(n_out: int = 2) -> nn.Sequential:
    """Linear(4, 4) = identity -> circuit -> Linear(4, n_out): the circuit sees exactly the inputs."""
    model = nn.Sequential(nn.Linear(4, 4), QuantumLayer(rezk_qnn()), nn.Linear(4, n_out))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(4))
        model[0].bias.zero_()
    return model


def _train_batches(model, monitor, batches):
    """One backward per batch; returns the per-step gradient norms of the circuit and of model[0]."""
    circuit, before = [], []
    for x in batches:
        model.zero_grad(set_to_none=True)
        model(x).square().sum().backward()
        monitor.after_backward()
        circuit.append(np.linalg.norm(model[1].weights.grad.numpy()))
        before.append(math.sqrt(sum(np.sum(p.grad.numpy().astype(np.float64) ** 2) for p in model[0].parameters())))
    return np.array(circuit), np.array(before)


def test_stats_match_numpy_for_tanh_range(rng):
    model = _identity_fed()
    monitor = CircuitMonitor(model)
    values = rng.uniform(-1, 1, size=(40, 4)).astype(np.float32)
    values[:25, 3] = 0.995  # feature 3 saturated in 25 of 40 rows
    values[5, 1] = -0.999
    batches = [torch.from_numpy(values[i:i + 16]) for i in range(0, 40, 16)]  # 16, 16, 8 rows
    circuit, before = _train_batches(model, monitor, batches)
    stats = monitor.end_epoch()

    x = values.astype(np.float64)
    std = x.std(axis=0)  # ddof=0
    saturated = np.abs(x) >= 0.99
    assert stats["1.angle_mean"] == pytest.approx(x.mean(), abs=1e-9)
    assert stats["1.angle_std"] == pytest.approx(std.mean(), rel=1e-9)
    assert stats["1.angle_min_std"] == pytest.approx(std.min(), rel=1e-9)
    assert stats["1.min_std_input"] == np.argmin(std)
    assert (stats["1.angle_min"], stats["1.angle_max"]) == pytest.approx((x.min(), x.max()))
    assert stats["1.saturated"] == pytest.approx(saturated.mean())
    assert stats["1.max_feature_saturated"] == pytest.approx(25 / 40)
    assert stats["1.max_saturated_input"] == 3
    assert stats["1.dead_inputs"] == 0
    assert stats["1.grad_norm"] == pytest.approx(np.sqrt(np.mean(circuit ** 2)), rel=1e-5)
    assert stats["1.pre_grad_norm"] == pytest.approx(np.sqrt(np.mean(before ** 2)), rel=1e-5)
    assert stats["1.trainable"] == 1.0
    assert monitor.previous("1") == "0"


def test_unit_interval_counts_both_ends_and_unbounded_counts_none(rng):
    model = _identity_fed()
    monitor = CircuitMonitor(model)
    rates = rng.integers(0, 11, size=(32, 4)) / 10  # firing rates of 10 time steps: exact 0 and 1
    rates[:, 0] = 0.005
    _train_batches(model, monitor, [torch.tensor(rates, dtype=torch.float32)])
    stats = monitor.end_epoch()
    x = torch.tensor(rates, dtype=torch.float32).double().numpy()
    expected = (x <= 0.01) | (x >= 0.99)
    assert stats["1.saturated"] == pytest.approx(expected.mean())
    assert stats["1.max_feature_saturated"] == 1.0 and stats["1.max_saturated_input"] == 0

    angles = rates * math.pi  # an encoder's angles in [0, pi]: the ends are within pi / 100
    _train_batches(model, monitor, [torch.tensor(angles, dtype=torch.float32)])
    assert monitor.end_epoch()["1.saturated"] == pytest.approx(expected.mean())

    _train_batches(model, monitor, [torch.tensor(rates * 8 - 4, dtype=torch.float32)])  # a Linear's range
    assert monitor.end_epoch()["1.saturated"] == 0.0


def test_dead_input_is_flagged_with_exact_tiny_std():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), QuantumLayer(rezk_qnn()), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight[1].mul_(1e-5)  # alive but tiny: std ~1e-5 around a mean of tanh(0.8)
        model[0].bias.fill_(0.8)
    monitor = CircuitMonitor(model)
    inputs = torch.randn(64, 3)

    def epoch():
        for batch in inputs.split(16):
            model(batch).sum().backward()
            monitor.after_backward()
        return monitor.end_epoch()

    stats = epoch()
    angles = torch.tanh(model[0](inputs)).detach().double().numpy()  # the float32 values the circuit saw
    assert angles.std(axis=0).argmin() == 1 and angles.std(axis=0).min() < 1e-4
    assert stats["2.angle_min_std"] == pytest.approx(angles.std(axis=0).min(), rel=1e-6)
    with torch.no_grad():
        model[0].weight[2].zero_()
    history = [{"epoch": 3, **epoch()}]
    assert history[0]["2.dead_inputs"] == 2
    warnings = monitor.warnings(history)
    assert len(warnings) == 1
    assert warnings[0].startswith("2: 2 of 4 inputs are dead (std < 0.001 over epoch 3; input 2: 0)")
    (one,) = monitor.warnings([{"epoch": 1, **stats}])
    assert one.startswith(f"2: input 1 is dead (std {stats['2.angle_min_std']:.2g} over epoch 1): its rotation")



def test_saturated_tanh_inputs_are_flagged():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), QuantumLayer(rezk_qnn()), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.mul_(1e4)
    monitor = CircuitMonitor(model)
    model(torch.randn(32, 3)).sum().backward()
    monitor.after_backward()
    history = [{"epoch": 5, **monitor.end_epoch()}]
    assert history[0]["2.saturated"] > 0.95
    warnings = monitor.warnings(history)
    assert any("of input values saturated at ±1 (tanh-like) in epoch 5: little gradient reaches the layer before (0)"
               in w for w in warnings)


def test_zero_gradient_circuit_is_flagged_but_frozen_one_is_not():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), QuantumLayer(rezk_qnn()), nn.Linear(4, 2))
    nn.init.zeros_(model[3].weight)  # the circuit's output is ignored: its weights get zero gradient
    monitor = CircuitMonitor(model)
    model(torch.randn(16, 3)).sum().backward()
    monitor.after_backward()
    history = [monitor.end_epoch()]
    assert history[0]["2.grad_norm"] == 0.0
    assert monitor.warnings(history) == [
        f"2: circuit weight gradient norm 0 (< {VANISHING_GRAD_NORM:g}) in epoch 1: vanishing gradients "
        "(barren plateau, or an output the model ignores); the circuit is not learning"
    ]

    model.zero_grad(set_to_none=True)
    model[2].requires_grad_(False)  # phase A of a two-phase model: the circuit is frozen
    model[0].requires_grad_(False)
    model(torch.randn(16, 3)).sum().backward()
    monitor.after_backward()
    history.append(monitor.end_epoch())
    assert (history[1]["2.grad_norm"], history[1]["2.pre_grad_norm"], history[1]["2.trainable"]) == (0.0, 0.0, 0.0)
    assert monitor.warnings(history) == []


def test_healthy_cnn_qnn_has_no_warnings_and_eval_passes_do_not_count():
    torch.manual_seed(0)
    model = create_model("cnn_qnn", in_chans=1, img_size=16)
    monitor = CircuitMonitor(model)
    (name,) = monitor.names  # head.<index of the circuit layer>
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, labels = torch.rand(64, 1, 16, 16), torch.randint(0, 10, (64,))
    model.train()
    for x, y in zip(images.split(16), labels.split(16)):
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        monitor.after_backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        model(torch.full((32, 1, 16, 16), 5.0))  # would shift every statistic if counted
    history = [monitor.end_epoch()]
    model.train()
    with torch.no_grad():
        angles = model.head[0](torch.relu(model.dense(model.forward_features(images).flatten(1))))
    assert history[0][f"{name}.angle_max"] <= angles.max().item() + 0.5  # the 5.0 images were not counted
    assert 1e-3 < history[0][f"{name}.grad_norm"] < 10  # measured about 0.06 at init
    assert history[0][f"{name}.pre_grad_norm"] > 0
    assert monitor.previous(name) == "head.0"
    assert monitor.warnings(history) == []

    model.eval()
    with torch.no_grad():
        model(images)
    stats = monitor.end_epoch()  # an epoch of evaluation only
    assert math.isnan(stats[f"{name}.angle_mean"]) and stats[f"{name}.grad_norm"] == 0.0
    assert monitor.warnings([stats]) == []


def test_eval_mode_is_not_counted_exactly():
    model = _identity_fed()
    monitor = CircuitMonitor(model)
    x = torch.linspace(-0.9, 0.9, 32).reshape(8, 4)
    _train_batches(model, monitor, [x])
    model.eval()
    model(torch.ones(8, 4))
    model.train()
    stats = monitor.end_epoch()
    assert stats["1.angle_mean"] == pytest.approx(x.double().mean().item())
    assert stats["1.angle_max"] == pytest.approx(0.9)


def test_several_circuits_and_none():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), QuantumLayer(rezk_qnn()), QuantumLayer(rezk_qnn()))
    monitor = CircuitMonitor(model)
    model(torch.randn(8, 3)).sum().backward()
    monitor.after_backward()
    stats = monitor.end_epoch()
    assert monitor.names == ["2", "3"]
    assert monitor.previous("3") == "2"
    assert stats["3.pre_grad_norm"] == pytest.approx(stats["2.grad_norm"], rel=1e-6)
    assert -1 <= stats["3.angle_min"] <= stats["3.angle_max"] <= 1  # <Z> outputs of the first circuit

    classical = nn.Sequential(nn.Linear(3, 2))
    empty = CircuitMonitor(classical)
    classical(torch.randn(4, 3)).sum().backward()
    empty.after_backward()
    assert (empty.names, empty.end_epoch(), empty.warnings([{"epoch": 1}])) == ([], {}, [])
    assert not classical[0]._forward_hooks


def test_circuit_first_pickle_and_remove():
    layer = QuantumLayer(rezk_qnn())
    monitor = CircuitMonitor(layer)
    layer(torch.zeros(4, 4)).sum().backward()
    monitor.after_backward()
    stats = monitor.end_epoch()
    assert monitor.previous("circuit") is None and stats["circuit.pre_grad_norm"] == 0.0
    assert stats["circuit.dead_inputs"] == 4
    copy = pickle.loads(pickle.dumps(layer))  # QuantumLayer promises pickling, hooks attached or not
    torch.testing.assert_close(copy(torch.ones(2, 4)), layer(torch.ones(2, 4)))
    monitor.end_epoch()
    monitor.remove()
    layer(torch.ones(4, 4))
    assert math.isnan(monitor.end_epoch()["circuit.angle_mean"])


def test_compiled_model_keeps_module_paths():
    model = _identity_fed()
    wrapped = torch.compile(model, backend="eager")  # what train.compile hands the monitor
    monitor = CircuitMonitor(wrapped)
    assert monitor.names == ["1"]
    x = torch.linspace(-0.5, 0.5, 16).reshape(4, 4)
    wrapped(x).sum().backward()
    monitor.after_backward()
    assert monitor.end_epoch()["1.angle_mean"] == pytest.approx(0.0, abs=1e-7)


def test_a_compiled_model_is_not_recompiled_per_batch_and_still_monitored(rng):
    """The monitor's per-batch Python state must not become a dynamo guard (a recompile per step made
    a compiled training step 300x slower); the statistics match the eager model's."""
    from torch._dynamo.utils import counters

    batches = [torch.tensor(rng.uniform(-1, 1, (6, 4))) for _ in range(6)]
    torch.manual_seed(0)
    eager = _identity_fed().double()
    eager_monitor = CircuitMonitor(eager)
    _train_batches(eager, eager_monitor, batches)

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = _identity_fed().double()
    compiled = torch.compile(model, backend="eager")
    monitor = CircuitMonitor(compiled)
    frames = []
    for x in batches:
        model.zero_grad(set_to_none=True)
        compiled(x).square().sum().backward()
        monitor.after_backward()
        frames.append(sum(counters["frames"].values()))
    assert frames[2] == frames[-1], frames  # compiling stops after the first passes
    assert monitor.previous("1") == "0"
    stats, expected = monitor.end_epoch(), eager_monitor.end_epoch()
    for key in ("1.angle_mean", "1.angle_std", "1.angle_min", "1.angle_max", "1.grad_norm", "1.pre_grad_norm"):
        assert stats[key] == pytest.approx(expected[key], rel=1e-9), key
