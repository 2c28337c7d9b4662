"""``load_trained`` and ``hqnn evaluate``: a tiny digits run (hybrid and twin, one epoch) is trained
once; evaluation must give back exactly what training recorded, map other data by class name, show
the circuit under shots and noise, and refuse bad inputs with one line and exit status 2."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hqnn.cli import main
from hqnn.exceptions import DataError
from hqnn.train import load_config, load_trained, run_experiment
from hqnn.train.inference import evaluate, evaluation_data

TINY = ["train.epochs=1", "run.progress=false", "data.limit=60", "data.image_size=12", "train.threads=1"]
SCORES = ("loss", "accuracy", "balanced_accuracy", "precision", "recall", "f1")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return run_experiment(load_config(
        "digits_cnn_qnn_faithful", ["run.name=digits_cnn_qnn", *TINY, "train.compare=true", f"run.out_dir={out}"])).run_dir


def _summary(model_dir: Path) -> dict:
    return json.loads((model_dir / "summary.json").read_text())


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hqnn "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_evaluate_reproduces_the_recorded_test_metrics_exactly(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir / "cnn_qnn"), "--json", str(out)]) == 0
    assert "confusion matrix" in capsys.readouterr().out
    (entry,) = json.loads(out.read_text())["models"]
    summary = _summary(run_dir / "cnn_qnn")
    assert {k: entry[k] for k in SCORES} == {k: summary["test"][k] for k in SCORES}
    for key in ("per_class", "confusion", "roc_auc_ovr"):
        assert entry[key] == summary["test_report"][key]
    saved = np.load(run_dir / "cnn_qnn" / "test_predictions.npz")
    assert entry["n_items"] == len(saved["labels"]) == sum(row["support"] for row in entry["per_class"])
    assert np.array(entry["confusion"]).trace() == int((saved["labels"] == saved["predictions"]).sum())


def test_a_run_directory_evaluates_each_of_its_models(run_dir, tmp_path):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir), "--json", str(out)]) == 0
    entries = json.loads(out.read_text())["models"]
    assert [e["model_name"] for e in entries] == ["cnn_qnn", "cnn_qnn_classical"]
    for entry in entries:
        assert entry["accuracy"] == _summary(run_dir / entry["model_name"])["test"]["accuracy"]


def test_a_study_layout_finds_its_models_and_the_split_files_above_them(run_dir, tmp_path, monkeypatch):
    stored = torch.load(run_dir / "cnn_qnn" / "model.pt", weights_only=True)
    stored["config"]["run"]["out_dir"] = "elsewhere"  # a relative out_dir from another working folder
    seed_dir = run_dir.parent / "study" / "runs" / "hybrid" / "seed0"
    seed_dir.mkdir(parents=True)
    torch.save(stored, seed_dir / "model.pt")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir.parent / "study"), "--json", str(out)]) == 0
    (entry,) = json.loads(out.read_text())["models"]
    assert entry["model"] == str(seed_dir / "model.pt")
    assert {k: entry[k] for k in SCORES} == {k: _summary(run_dir / "cnn_qnn")["test"][k] for k in SCORES}
    assert not (tmp_path / "elsewhere").exists()  # the split files above the model were used


def test_load_trained_gives_a_ready_model_and_leaves_the_rng_alone(run_dir):
    state = torch.get_rng_state()
    trained = load_trained(run_dir / "cnn_qnn" / "model.pt")
    assert torch.equal(state, torch.get_rng_state())
    assert trained.classes == tuple(str(d) for d in range(10)) and not trained.model.training
    saved = torch.load(run_dir / "cnn_qnn" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in trained.model.state_dict().items())
    assert trained.model(torch.zeros(2, 1, 12, 12)).shape == (2, 10)


def test_a_model_file_without_its_config_uses_the_run_config(run_dir, tmp_path):
    stored = torch.load(run_dir / "cnn_qnn" / "model.pt", weights_only=True)
    legacy = {k: stored[k] for k in ("model_name", "model_args", "classes", "state_dict")}
    torch.save(legacy, run_dir / "cnn_qnn" / "legacy.pt")  # beside model.pt: the run's config.yaml is found
    try:
        trained = load_trained(run_dir / "cnn_qnn" / "legacy.pt")
        report = evaluate(trained, *evaluation_data(trained))
    finally:
        (run_dir / "cnn_qnn" / "legacy.pt").unlink()
    assert report["accuracy"] == _summary(run_dir / "cnn_qnn")["test"]["accuracy"]
    torch.save(legacy, tmp_path / "model.pt")
    with pytest.raises(DataError, match="holds no config"):
        load_trained(tmp_path / "model.pt")


def test_other_data_is_matched_to_the_model_classes_by_name(run_dir, tmp_path, capsys):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    chosen = {"7": 4, "2": 3}  # folder order (2, 7) differs from the model's label numbers
    for name, count in chosen.items():
        (tmp_path / "folder" / name).mkdir(parents=True)
        for i in np.flatnonzero(digits.target == int(name))[:count]:
            grey = np.round(digits.images[i] * 255 / 16).astype(np.uint8)
            Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "folder" / name / f"{i}.png")  # RGB files
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir / "cnn_qnn"), "--data", "image_folder", "--path", str(tmp_path / "folder"),
                 "--split", "all", "--json", str(out)]) == 0
    entry = json.loads(out.read_text())["models"][0]
    support = {row["class"]: row["support"] for row in entry["per_class"]}
    assert support == {str(d): chosen.get(str(d), 0) for d in range(10)}
    # the same files through `hqnn predict`: its classes give the same accuracy
    capsys.readouterr()
    assert main(["predict", str(run_dir / "cnn_qnn"), str(tmp_path / "folder"), "--json", str(tmp_path / "p.json")]) == 0
    rows = json.loads((tmp_path / "p.json").read_text())["predictions"]
    hits = [row["class"] == Path(row["item"]).parent.name for row in rows]
    assert len(rows) == 7 and entry["accuracy"] == pytest.approx(np.mean(hits))
    (tmp_path / "folder" / "cat").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "folder" / "cat" / "0.png")
    assert main(["evaluate", str(run_dir / "cnn_qnn"), "--data", "image_folder", "--path", str(tmp_path / "folder"),
                 "--split", "all"]) == 2
    assert "['cat'] are not classes of the model" in _one_error_line(capsys)


def test_shots_and_noise_table(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir / "cnn_qnn"), "--shots", "100000,10", "--noise", "depolarizing=0,0.75",
                 "--noise", "amplitude_damping=0.1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "circuit setting" in printed and "depolarizing=0.75" in printed
    entry = json.loads(out.read_text())["models"][0]
    rows = {row["setting"]: row for row in entry["robustness"]}
    assert list(rows) == ["exact", "shots=100000", "shots=10", "depolarizing=0", "depolarizing=0.75", "amplitude_damping=0.1"]
    assert rows["exact"]["accuracy"] == entry["accuracy"]
    assert rows["depolarizing=0"]["accuracy"] == entry["accuracy"]  # a noiseless density matrix: the same predictions
    assert abs(rows["shots=100000"]["accuracy"] - entry["accuracy"]) <= 3 / entry["n_items"]
    # p = 3/4 depolarises every wire completely: <Z_i> = 0, one constant prediction, balanced accuracy 1/classes
    present = sum(1 for row in entry["per_class"] if row["support"])
    assert rows["depolarizing=0.75"]["balanced_accuracy"] == pytest.approx(1 / present)


@pytest.mark.parametrize("shots", ["0", "-5", "abc", "", "10,,100", "1.5"])
def test_bad_shots_are_refused(run_dir, tmp_path, capsys, shots):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir / "cnn_qnn"), f"--shots={shots}", "--json", str(out)]) == 2
    assert "--shots must be whole numbers >= 1" in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("spec, message", [
    ("depolarizing", "CHANNEL=STRENGTH"),
    ("no_such_channel=0.1", "unknown channel 'no_such_channel'; choose one of depolarizing"),
    ("depolarizing=2", "must lie in"),
    ("depolarizing=x", "strengths must be finite numbers"),
    ("depolarizing=nan", "strengths must be finite numbers"),
    ("generalized_amplitude_damping=0.1", "strength"),
    ("readout=1.5", "readout=P"),
])
def test_bad_noise_specs_are_refused(run_dir, tmp_path, capsys, spec, message):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run_dir / "cnn_qnn"), "--noise", spec, "--json", str(out)]) == 2
    assert message in _one_error_line(capsys)
    assert not out.exists()


def _hostile(path: Path, marker: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path.write_bytes(pickle.dumps({"state_dict": Payload()}, protocol=2))


def test_bad_model_files_are_refused(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    good = (run_dir / "cnn_qnn" / "model.pt").read_bytes()
    files = {
        "missing.pt": None,
        "empty.pt": b"",
        "truncated.pt": good[: len(good) // 2],
        "corrupt.pt": b"\x00not a torch file" * 10,
        "plain_state_dict.pt": "state",
    }
    for name, content in files.items():
        if content == "state":
            torch.save({"weights": torch.zeros(3)}, tmp_path / name)
        elif content is not None:
            (tmp_path / name).write_bytes(content)
    marker = tmp_path / "ran"
    _hostile(tmp_path / "hostile.pt", marker)
    for name in [*files, "hostile.pt"]:
        assert main(["evaluate", str(tmp_path / name), "--json", str(out)]) == 2, name
        _one_error_line(capsys)
    assert not marker.exists() and not out.exists()
    assert main(["evaluate", str(run_dir / "cnn_qnn" / "checkpoint.pt")]) == 2  # a resume checkpoint, not a model
    assert "not a trained-model file" in _one_error_line(capsys)
    (tmp_path / "empty_run").mkdir()
    assert main(["evaluate", str(tmp_path / "empty_run")]) == 2
    assert "no model.pt" in _one_error_line(capsys)


@pytest.mark.parametrize("change, message", [
    ({"model_name": "no_such_model"}, "no_such_model"),
    ({"model_args": {"img_size": "twelve"}}, "cannot build cnn_qnn"),
    ({"classes": ["a", "b"]}, "2 class names for a model of 10 classes"),
    ({"state_dict": {"conv1.weight": torch.zeros(2)}}, "its weights do not fit cnn_qnn"),
    ({"format": 99}, "format 99"),
    ({"config": {"train": {"epochs": -1}}}, "train.epochs"),
])
def test_model_files_with_bad_contents_are_refused(run_dir, tmp_path, capsys, change, message):
    stored = torch.load(run_dir / "cnn_qnn" / "model.pt", weights_only=True)
    if "model_args" in change:
        change = {"model_args": {**stored["model_args"], **change["model_args"]}}
    torch.save({**stored, **change}, tmp_path / "model.pt")
    assert main(["evaluate", str(tmp_path / "model.pt")]) == 2
    assert message in _one_error_line(capsys)


@pytest.mark.parametrize("extra, message", [
    (["--data", "no_such_data"], "unknown dataset"),
    (["--split", "holdout"], "splits train, val, test"),
    (["--data", "mnist", "--path", "/nonexistent/mnist"], "/nonexistent/mnist"),
    (["--shots", "10"], None),  # on the classical twin: no circuit
])
def test_bad_data_and_settings_are_refused(run_dir, tmp_path, capsys, extra, message):
    model = run_dir / ("cnn_qnn_classical" if message is None else "cnn_qnn")
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(model), *extra, "--json", str(out)]) == 2
    assert (message or "no circuit layer") in _one_error_line(capsys)
    assert not out.exists()


def test_unwritable_json_is_refused_before_any_work(run_dir, tmp_path, capsys):
    for target in (tmp_path / "no_such_folder" / "eval.json", tmp_path):
        assert main(["evaluate", str(run_dir / "cnn_qnn"), "--json", str(target)]) == 2
        assert "--json" in _one_error_line(capsys)
    assert not (tmp_path / "no_such_folder").exists()
