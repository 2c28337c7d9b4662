"""Resource estimates, the `hqnn export` command, and that optional toolchains load lazily."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hqnn.cli import main
from hqnn.exceptions import ConfigError, ShapeError, WireError
from hqnn.interop import resources
from hqnn.interop.cli import load_weights, parse_coupling
from hqnn.sim import Circuit
from hqnn.templates.recipes import RECIPES, rezk_qnn

SRC = Path(__file__).resolve().parents[2] / "src"


def test_resources_counts_depth_and_fit():
    c = Circuit(3, n_inputs=1)
    w = c.add_weights("w", (2,))
    c.ry(c.inputs[0], 0).rx(w[0], 1).cnot(0, 1).cz(1, 2).rz(w[1], 0).toffoli(0, 1, 2)
    r = resources(c.expval_z(), [(1, 0), (1, 2)])
    assert (r.n_qubits, r.depth, r.n_two_qubit_gates, r.n_weights, r.n_inputs) == (3, 4, 2, 2, 1)
    assert r.gate_counts == {"RY": 1, "RX": 1, "CNOT": 1, "CZ": 1, "RZ": 1, "Toffoli": 1} and r.n_gates == 6
    assert r.fits is False and r.offending_pairs == ((0, 2),)  # only the Toffoli spans wires 0 and 2
    assert resources(c).fits is None
    with pytest.raises(WireError):
        resources(c, [(1, 1)])


def test_resources_of_rezk_ring_on_a_line():
    r = resources(rezk_qnn(4), parse_coupling("0-1,1-2,2-3"))
    assert r.depth == 7 and r.n_two_qubit_gates == 4 and r.offending_pairs == ((0, 3),)
    assert resources(rezk_qnn(4), parse_coupling("0-1,1-2,2-3,3-0")).fits


def test_parse_errors():
    with pytest.raises(ConfigError, match="a-b"):
        parse_coupling("0-1,1:2")


def test_cli_qasm_and_resources(tmp_path, capsys):
    circuit = RECIPES["rezk_qnn"]()
    torch.save({"quantum.weights": torch.rand(circuit.n_weights), "head.bias": torch.rand(3)}, tmp_path / "m.pt")
    out = tmp_path / "rezk.qasm"
    assert main(["export", "qasm", "--recipe", "rezk_qnn", "--weights", str(tmp_path / "m.pt"),
                 "--input", "0.1,0.2,0.3,0.4", "--version", "2", "-o", str(out)]) == 0
    assert out.read_text().startswith("OPENQASM 2.0;")
    assert main(["export", "qasm", "--recipe", "diana_edge"]) == 0
    assert "input float[64] x_0;" in capsys.readouterr().out
    assert main(["export", "resources", "--recipe", "rezk_qnn", "--coupling", "0-1,1-2,2-3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fits"] is False and report["offending_pairs"] == [[0, 3]]
    assert main(["export", "qasm", "--recipe", "rezk_qnn", "--version", "2"]) == 2  # unbound: a clear error
    assert "OpenQASM 2 has no free parameters" in capsys.readouterr().err


def test_load_weights_rejects_wrong_sizes(tmp_path):
    torch.save(torch.zeros(5), tmp_path / "w.pt")
    with pytest.raises(ShapeError, match="8 weights"):
        load_weights(tmp_path / "w.pt", 8)


def test_optional_toolchains_are_imported_lazily():
    code = ("import sys, hqnn, hqnn.interop, hqnn.interop.pennylane, hqnn.interop.qiskit, hqnn.interop.cli; "
            "print(sorted(m for m in ('pennylane', 'qiskit', 'openqasm3') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(SRC), "PATH": ""})
    assert result.stdout.strip() == "[]"
