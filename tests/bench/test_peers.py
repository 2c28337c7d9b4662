"""The peer backends (TensorCircuit-NG, pyqtorch, Qiskit Machine Learning): each agrees with the dense
reference simulator and finite differences on a small circuit that uses every gate kind they are given;
an absent package is a skipped backend with the reason; the fastest-peer ratio comes from the timed rows."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hqnn.bench import Settings, available_backends, make_backend
from hqnn.bench.backends import PEERS, CircuitCase, flat_weight_grad
from hqnn.bench.harness import check_backend, sum_backward, time_config
from hqnn.bench.peers import PEER_PACKAGES, gate_list
from hqnn.bench.report import peer_table, speedups
from hqnn.cli import main
from hqnn.exceptions import ConfigError
from hqnn.sim import Circuit

_spec = importlib.util.spec_from_file_location("reference", Path(__file__).parents[1] / "sim" / "reference.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


def small_circuit() -> Circuit:
    """Two qubits, three inputs, four weights: scaled inputs, Rot, a controlled rotation, CNOT, CZ, a constant."""
    c = Circuit(2, n_inputs=3)
    w = c.add_weights("w", (4,))
    c.ry(math.pi * c.inputs[0], 0).rx(c.inputs[1], 1).rot(c.inputs[2], w[0], w[1], 0)
    c.crx(w[2], 0, 1).cnot(1, 0).rz(w[3], 1).cz(0, 1).ry(0.3, 0)
    return c.expval_z()


def finite_difference(f, point: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f`` at ``point`` (any shape)."""
    grad = np.zeros_like(point)
    for i in np.ndindex(point.shape):
        up, down = point.copy(), point.copy()
        up[i] += eps
        down[i] -= eps
        grad[i] = (f(up) - f(down)) / (2 * eps)
    return grad


def skip_if_absent(name: str) -> None:
    if name not in available_backends():
        pytest.skip(f"{name}: {', '.join(PEER_PACKAGES[name])} not installed (pip install 'hqnn[bench-peers]')")


@pytest.mark.parametrize("name", list(PEER_PACKAGES))
def test_peer_matches_the_dense_reference(name):
    skip_if_absent(name)
    circuit = small_circuit()
    x = torch.tensor([[0.2, 1.3, -0.4], [2.9, -0.7, 0.8], [1.1, 0.0, 2.5]])
    weights = torch.tensor([0.3, -1.1, 0.7, 2.0])
    backend = make_backend(name, CircuitCase("small", "unused"), circuit, weights)
    xs, ws = x.double().numpy(), weights.double().numpy()
    expected = reference.evaluate_batch(circuit, xs, ws)
    grad_x = finite_difference(lambda p: reference.evaluate_batch(circuit, p, ws).sum(), xs)
    grad_w = finite_difference(lambda p: reference.evaluate_batch(circuit, xs, p).sum(), ws)

    with torch.no_grad():
        out = backend.module(x)
    xr = x.clone().requires_grad_(True)
    sum_backward(backend.module, xr)
    np.testing.assert_allclose(out.double().numpy(), expected, atol=2e-6)
    np.testing.assert_allclose(xr.grad.double().numpy(), grad_x, atol=2e-5)
    np.testing.assert_allclose(flat_weight_grad(backend.module, circuit).numpy(), grad_w, atol=2e-5)
    assert check_backend(backend, circuit, x, weights)["ok"]


def test_tensorcircuit_records_its_compile_time_apart():
    skip_if_absent("tensorcircuit")
    circuit = small_circuit()
    backend = make_backend("tensorcircuit", CircuitCase("small", "unused"), circuit, torch.zeros(4))
    record = time_config(backend, torch.rand(5, 3), "forward+backward", Settings(repeats=1, budget_s=0))
    assert record["status"] == "ok" and record["compile_s"] >= 0 and record["ms"] > 0
    assert record["compile_s"] > record["ms"] / 1e3  # compiling a new batch size costs more than a steady call


def test_an_absent_peer_is_skipped_with_the_reason(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(PEER_PACKAGES, "pyqtorch", ("hqnn_no_such_package",))
    path = tmp_path / "c.json"
    assert main(["bench", "circuits", "--json", str(path), "--circuits", "rezk_qnn", "--batches", "2",
                 "--repeats", "1", "--budget", "0", "--threads", "1", "--backends", "hqnn,pyqtorch"]) == 0
    report = json.loads(path.read_text())
    (check,) = [c for c in report["checks"] if c["backend"] == "pyqtorch"]
    assert not check["ok"] and "hqnn_no_such_package" in check["skipped"] and "bench-peers" in check["skipped"]
    assert {r["backend"] for r in report["results"]} == {"hqnn"}
    assert "SKIPPED: rezk_qnn / pyqtorch" in capsys.readouterr().out


def test_fastest_peer_ratio_takes_the_quickest_timed_peer():
    row = {"circuit": "c", "batch": 4, "mode": "forward"}
    results = [{**row, "backend": "hqnn", "ms": 2.0}, {**row, "backend": "hqnn-engine", "ms": 1.0},
               {**row, "backend": "pennylane-default", "ms": 10.0}, {**row, "backend": "tensorcircuit", "ms": 5.0},
               {**row, "backend": "pyqtorch", "ms": None}, {**row, "batch": 8, "backend": "hqnn", "ms": 1.0}]
    (ratio,) = speedups(results)  # hqnn-engine is not a peer; the batch-8 row has no peer timed
    assert ratio["fastest_peer"] == "tensorcircuit" and ratio["hqnn_vs_fastest_peer"] == 2.5
    assert "hqnn-engine" not in PEERS and "pergate-torch" in PEERS


def test_cli_ratio_column_comes_from_the_timed_rows(tmp_path, capsys):
    path = tmp_path / "c.json"
    assert main(["bench", "circuits", "--json", str(path), "--circuits", "rezk_qnn,hcqdl_crx_ring", "--batches",
                 "2", "--repeats", "1", "--budget", "0", "--threads", "1", "--backends", "hqnn,pergate-torch",
                 "--fresh"]) == 0
    report = json.loads(path.read_text())
    ms = {(r["circuit"], r["batch"], r["mode"], r["backend"]): r["ms"] for r in report["results"]}
    assert len(report["ratios"]) == 4
    for r in report["ratios"]:
        key = (r["circuit"], r["batch"], r["mode"])
        assert r["fastest_peer"] == "pergate-torch"
        assert r["hqnn_vs_fastest_peer"] == round(ms[(*key, "pergate-torch")] / ms[(*key, "hqnn")], 2)
    out = capsys.readouterr().out
    table = peer_table(report)
    assert table in out and "hqnn against the fastest peer" in out
    assert "| hcqdl_crx_ring | forward+backward | " in table and table.count("(pergate-torch)") == 4


def test_gate_list_unrolls_rot_and_refuses_what_the_peers_are_not_given():
    gates = gate_list(small_circuit())
    assert [g[0] for g in gates[2:5]] == ["RZ", "RY", "RZ"]  # Rot(x2, w0, w1) = RZ(w1) RY(w0) RZ(x2)
    assert [a.index for g in gates[2:5] for a in g[2]] == [2, 0, 1]
    with pytest.raises(ConfigError, match="the circuit has Hadamard"):
        gate_list(Circuit(1).h(0).expval_z())
    with pytest.raises(ConfigError, match="noiseless circuits measured as <Z_i>"):
        gate_list(Circuit(1).rx(0.1, 0).bit_flip(0.1, 0).expval_z())
    with pytest.raises(ConfigError, match="noiseless circuits measured as <Z_i>"):
        gate_list(Circuit(2).rx(0.1, 0).expval("Z0 Z1"))
