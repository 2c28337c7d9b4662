"""The seed circuits against the reference numbers of the spec (PennyLane 0.45.1, float64)."""

import pytest
import torch

from hqnn.sim import run
from hqnn.templates import recipes

SQDR_IN = torch.linspace(0, 1, 27).tolist()
SQDR_W = (0.05 * torch.arange(54.0)).tolist()
V = [0.3, -0.5, 1.2, -1.0]

CASES = [
    ("edge", recipes.diana_edge(), V, [], [0.191059, 0.701772, 0.693574, 0.201205]),
    ("texture", recipes.diana_texture(), V, [], [-0.208460, 0.342898, -0.744643, 0.644218]),
    ("qhead", recipes.diana_qhead(), [0.1, -0.2, 0.3, -0.4], (0.1 * torch.arange(24.0)).tolist(),
     [-0.156795, -0.245745, 0.030677, -0.010243]),
    ("hcqdl_code", recipes.hcqdl_code_qnode(), [0.1, 0.2], [0.3, 0.4, 0.5, 0.6], [0.904971, 0.732016]),
    ("rezk", recipes.rezk_qnn(), [0.1, 0.2, 0.3, 0.4], (0.1 * torch.arange(8.0) + 0.1).tolist(),
     [0.044039, 0.383632, -0.090252, -0.013936]),
    ("sqdr_chain", recipes.sqdr_reupload(), SQDR_IN, SQDR_W,
     [0.162388, 0.203979, 0.332539, 0.285034, 0.108530, -0.060336, -0.184346, -0.280338, -0.455552]),
    ("sqdr_ring", recipes.sqdr_reupload(entangler="ring"), SQDR_IN, SQDR_W,
     [0.162886, 0.203979, 0.332539, 0.285034, 0.108530, -0.060336, -0.184346, -0.280338, -0.454028]),
]


@pytest.mark.parametrize("method", ["auto", "engine", "gates"])
@pytest.mark.parametrize("name,circuit,x,w,expected", CASES, ids=[c[0] for c in CASES])
def test_reference_numbers(name, circuit, x, w, expected, method):
    out = run(circuit, torch.tensor([x], dtype=torch.float64), torch.tensor(w, dtype=torch.float64), method=method)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out[0], torch.tensor(expected, dtype=torch.float64), atol=1e-6, rtol=0)
