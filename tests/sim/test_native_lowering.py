"""The native kernel lowers through hqnn.sim.prims and keeps its compact forms (folded controlled gates)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference import evaluate_batch

from hqnn.sim import Circuit, run
from hqnn.sim.native import lower, native_available

# gate -> kernel ops: a controlled group (folded basis change), or CNOT · rotation · CNOT
CASES = [("crx", 1), ("cry", 1), ("crz", 1), ("cy", 1), ("cz", 1), ("isingzz", 3), ("isingxx", 3), ("isingyy", 5)]


@pytest.mark.parametrize("gate, n_ops", CASES)
def test_kernel_program_and_values(gate, n_ops):
    c = Circuit(2, n_inputs=2)
    c.ry(c.inputs[0], 0).ry(c.inputs[1], 1)
    args = () if gate in ("cy", "cz") else (c.inputs[0],)
    getattr(c, gate)(*args, 0, 1)
    c.expval_z().probs()
    prog, _ = lower(c)
    assert prog[3] == 2 + n_ops  # the header's op count: two initial RY groups, then the gate's
    if not native_available(torch.float64):
        pytest.skip("no native kernel")
    x = np.random.default_rng(0).uniform(-3, 3, (5, 2))
    out = run(c, torch.tensor(x), method="native")
    np.testing.assert_allclose(out.numpy(), evaluate_batch(c, x, []), atol=1e-12)
