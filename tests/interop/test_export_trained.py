"""``hqnn export`` of a trained model's circuit (``--model``) and of a recipe with the weights file
training writes (``--weights model.pt``), checked by simulating the exported program with Qiskit;
bad weight files and inputs give one line and exit status 2."""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hqnn.cli import main
from hqnn.interop import conventions
from hqnn.interop.qasm import format_float
from hqnn.sim import run
from hqnn.train import load_config, load_trained, run_experiment

TINY = ["train.epochs=1", "run.progress=false", "data.limit=40", "data.image_size=12", "train.threads=1"]
INPUT = [0.1, -0.2, 0.3, 0.45]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return run_experiment(load_config(
        "digits_cnn_qnn_faithful", ["run.name=digits_cnn_qnn", *TINY, "train.compare=true", f"run.out_dir={out}"])).run_dir


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hqnn export: error:"), captured.err
    return lines[0]


def _trained_layer(run_dir: Path):
    from hqnn.models.arms import quantum_layers

    ((_, layer),) = quantum_layers(load_trained(run_dir / "cnn_qnn").model)
    return layer


def test_export_model_declares_inputs_and_binds_the_trained_weights(run_dir, capsys):
    openqasm3 = pytest.importorskip("openqasm3")
    assert main(["export", "qasm", "--model", str(run_dir / "cnn_qnn" / "model.pt")]) == 0
    text = capsys.readouterr().out
    layer = _trained_layer(run_dir)
    program = openqasm3.parse(text)
    declared = [s.identifier.name for s in program.statements if type(s).__name__ == "IODeclaration"]
    assert declared == [f"x_{i}" for i in range(layer.n_inputs)]  # inputs stay inputs, weights are bound
    assert "w_0" not in text
    for value in layer.weights.detach().double().tolist():
        assert f"({format_float(value)})" in text


def test_exported_program_computes_the_trained_layer(run_dir, tmp_path, capsys):
    qasm2 = pytest.importorskip("qiskit.qasm2")
    from qiskit.quantum_info import Statevector

    out = tmp_path / "model.qasm"
    assert main(["export", "qasm", "--model", str(run_dir / "cnn_qnn"), "--input", ",".join(map(str, INPUT)),
                 "--version", "2", "-o", str(out)]) == 0
    qc = qasm2.loads(out.read_text()).remove_final_measurements(inplace=False)
    probabilities = Statevector(qc)
    z = [1 - 2 * probabilities.probabilities([conventions.qiskit_qubit(w)])[1] for w in range(qc.num_qubits)]
    layer = _trained_layer(run_dir)
    expected = run(layer.circuit, torch.tensor([INPUT], dtype=torch.float64), layer.weights.detach().double())[0]
    np.testing.assert_allclose(z, expected.numpy(), atol=1e-9)


def test_recipe_with_the_model_file_training_writes(run_dir, capsys):
    model_pt = str(run_dir / "cnn_qnn" / "model.pt")
    argv = ["--input", ",".join(map(str, INPUT)), "--version", "2"]
    assert main(["export", "qasm", "--recipe", "rezk_qnn", "--weights", model_pt, *argv]) == 0
    from_recipe = capsys.readouterr().out
    assert main(["export", "qasm", "--model", model_pt, *argv]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == from_recipe.splitlines()[2:]  # the same gates and angles
    assert main(["export", "resources", "--model", model_pt]) == 0
    assert '"n_weights": 8' in capsys.readouterr().out


def _hostile(path: Path, marker: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path.write_bytes(pickle.dumps({"quantum.weights": Payload()}, protocol=2))


def test_bad_weight_files_are_refused(run_dir, tmp_path, capsys):
    good = (run_dir / "cnn_qnn" / "model.pt").read_bytes()
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 3])
    (tmp_path / "corrupt.pt").write_bytes(os.urandom(256))
    torch.save({"quantum.weights": torch.full((8,), math.nan)}, tmp_path / "nan.pt")
    torch.save(["not", "a", "state", "dict"], tmp_path / "list.pt")
    torch.save({"head.bias": torch.zeros(3)}, tmp_path / "no_match.pt")
    marker = tmp_path / "ran"
    _hostile(tmp_path / "hostile.pt", marker)
    expected = {
        "missing.pt": "no such file", "empty.pt": "empty", "truncated.pt": "not a readable torch file",
        "corrupt.pt": "not a readable torch file", "hostile.pt": "not a readable torch file",
        "nan.pt": "NaN", "list.pt": "expected a tensor or a state dict", "no_match.pt": "8 weights",
    }
    out = tmp_path / "out.qasm"
    for name, message in expected.items():
        for source in (["--recipe", "rezk_qnn", "--weights"], ["--model"]):
            assert main(["export", "qasm", *source, str(tmp_path / name), "-o", str(out)]) == 2, (name, source)
            line = _one_error_line(capsys)
            if source[0] == "--recipe" or name not in ("nan.pt", "list.pt", "no_match.pt"):
                assert message in line, (name, line)
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--input", "0.1,nan,0.3,0.4"], "finite numbers"),
    (["--input", "0.1,inf,0.3,0.4"], "finite numbers"),
    (["--input", "0.1,-inf,0.3,0.4"], "finite numbers"),
    (["--input", "0.1,x,0.3,0.4"], "comma-separated numbers"),
    (["--input", "0.1,0.2"], "inputs"),
    (["--layer", "head.9"], "no circuit layer 'head.9'"),
    (["--weights", "w.pt"], "--weights goes with --recipe"),
    (["-o", "/nonexistent/folder/out.qasm"], "-o"),
])
def test_bad_arguments_are_refused(run_dir, capsys, argv, message):
    assert main(["export", "qasm", "--model", str(run_dir / "cnn_qnn"), *argv]) == 2
    assert message in _one_error_line(capsys)


def test_a_classical_model_or_nan_weights_give_nothing_to_export(run_dir, tmp_path, capsys):
    assert main(["export", "qasm", "--model", str(run_dir / "cnn_qnn_classical")]) == 2
    assert "has no circuit layer" in _one_error_line(capsys)
    stored = torch.load(run_dir / "cnn_qnn" / "model.pt", weights_only=True)
    (key,) = [k for k in stored["state_dict"] if k.endswith(".weights") and stored["state_dict"][k].numel() == 8]
    stored["state_dict"][key] = torch.full((8,), math.inf)
    torch.save(stored, tmp_path / "model.pt")
    assert main(["export", "qasm", "--model", str(tmp_path / "model.pt"), "-o", str(tmp_path / "out.qasm")]) == 2
    assert "NaN or infinite" in _one_error_line(capsys)
    assert not (tmp_path / "out.qasm").exists()
