"""The engine's compiled steps: one frozen object per stage kind, in schedule order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.stats
import torch
from reference import evaluate_batch

from hqnn.sim import Circuit, run
from hqnn.sim.engine import DenseStep, EnginePlan, LocalStep, PermStep, PhaseStep, ProductStep


def _circuit() -> Circuit:
    unitary = scipy.stats.unitary_group.rvs(4, random_state=1)
    c = Circuit(3, n_inputs=3)
    for w in range(3):
        c.ry(c.inputs[w], w)
    c.cnot(0, 1).rx(0.4, 1).crz(c.inputs[0], 1, 2).unitary(unitary, (0, 2))
    return c.expval("X0 X1 X2").probs((1,))


def test_steps_are_typed_and_frozen():
    plan = EnginePlan(_circuit())
    assert [type(s) for s in plan.steps] == [ProductStep, PermStep, LocalStep, PhaseStep, DenseStep]
    product, _, local, phase, _ = plan.steps
    assert product.per_sample and product.wires == (0, 1, 2) and local.wires == (1,) and not local.per_sample
    assert phase.per_sample and phase.slots.tolist() == [0]  # the angle is input 0
    for step in plan.steps:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(step, dataclasses.fields(step)[0].name, None)
    x = np.random.default_rng(0).uniform(-3, 3, (4, 3))
    out = run(_circuit(), torch.tensor(x), method="engine")
    np.testing.assert_allclose(out.numpy(), evaluate_batch(_circuit(), x, []), atol=1e-12)
