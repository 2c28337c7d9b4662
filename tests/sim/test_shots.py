"""Finite-shot estimates: reproducible under a seed, unbiased, error shrinking like 1/sqrt(shots)."""

import pytest
import torch

from hqnn.exceptions import ShapeError
from hqnn.qnn import QuantumLayer
from hqnn.sim import Circuit, run
from hqnn.sim.gradients import execute
from hqnn.sim.shots import sample_counts, sample_measurements


def _circuit():
    c = Circuit(2, n_inputs=2)
    c.ry(c.inputs[0], 0).rx(c.inputs[1], 1).cnot(0, 1)
    return c.expval("Z0").expval("X0 Y1").probs([1])


def test_shot_estimates_are_seeded_and_within_five_sigma():
    c = _circuit()
    x = torch.rand(400, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    exact = run(c, x)
    shots = 1000
    est = execute(c, x, diff_method="parameter-shift", shots=shots, generator=torch.Generator().manual_seed(3))
    again = execute(c, x, diff_method="parameter-shift", shots=shots, generator=torch.Generator().manual_seed(3))
    assert torch.equal(est, again)
    sigma = torch.cat([(1 - exact[:, :2] ** 2) / shots, exact[:, 2:] * (1 - exact[:, 2:]) / shots], dim=1).sqrt()
    # 5 sigma, plus two counts: near p = 0 or 1 the binomial is too discrete for the normal bound
    assert ((est - exact).abs() <= 5 * sigma + 2 / shots).all()
    torch.testing.assert_close(est[:, 2:].sum(1), torch.ones(400, dtype=torch.float64))


def test_error_shrinks_like_one_over_sqrt_shots():
    exact = torch.full((4000, 1), 0.3, dtype=torch.float64)
    m = Circuit(1).expval("Z0").measurements
    gen = torch.Generator().manual_seed(0)
    rms = [((sample_measurements(exact, m, s, gen) - exact) ** 2).mean().sqrt() for s in (100, 10000)]
    ratio = (rms[0] / rms[1]).item()
    assert 8.5 < ratio < 11.5  # sqrt(10000 / 100) = 10, within ~5 sigma of the RMS estimates


def test_sample_counts_and_errors():
    counts = sample_counts(torch.tensor([[0.0, 1.0], [0.25, 0.75]]), 64, torch.Generator().manual_seed(0))
    assert counts.sum(1).tolist() == [64.0, 64.0] and counts[0, 0] == 0
    with pytest.raises(ShapeError):
        sample_measurements(torch.zeros(1, 1), Circuit(1).expval("Z0").measurements, 0)


def test_layer_with_shots_uses_parameter_shift_and_trains():
    c = Circuit(2, n_inputs=2)
    w = c.add_weights("w", (2,))
    c.ry(c.inputs[0], 0).ry(w[0], 0).rx(c.inputs[1], 1).rx(w[1], 1).cz(0, 1).expval_z()
    layer = QuantumLayer(c, shots=200, generator=torch.Generator().manual_seed(0)).double()
    assert layer.diff_method == "parameter-shift"
    out = layer(torch.rand(5, 2, dtype=torch.float64))
    out.sum().backward()
    assert out.shape == (5, 2) and torch.isfinite(layer.weights.grad).all()
