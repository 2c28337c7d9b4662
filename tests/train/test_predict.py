"""``hqnn predict`` and ``predict_proba``: images given as PNG, ``.npy`` stacks or folders get the
probabilities the trainer itself computed for them (``test_predictions.npz``), and bad inputs are
refused with one line and exit status 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hqnn.cli import main
from hqnn.train import build_data, load_config, load_trained, predict_proba, read_images, run_experiment

TINY = ["train.epochs=1", "run.progress=false", "data.limit=60", "data.image_size=12", "train.threads=1"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """(model folder, the run's test images (N, 1, 8, 8) float) of a tiny digits hybrid."""
    out = tmp_path_factory.mktemp("runs")
    config = load_config(
        "digits_cnn_qnn_faithful", ["run.name=digits_cnn_qnn", *TINY, "train.compare=false", f"run.out_dir={out}"])
    run_dir = run_experiment(config).run_dir
    test_images = build_data(config.data, out, progress=False).test.float_images().numpy()
    return run_dir / "cnn_qnn", test_images


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hqnn predict: error:"), captured.err
    return lines[0]


def _png(path: Path, grey: np.ndarray, rgb: bool = False) -> np.ndarray:
    """Write a float (H, W) image as an 8-bit PNG; returns the values the file holds, as floats."""
    from PIL import Image

    pixels = np.round(grey * 255).astype(np.uint8)
    Image.fromarray(np.stack([pixels] * 3, axis=-1) if rgb else pixels).save(path)
    return pixels.astype(np.float32) / 255


def test_a_npy_stack_gets_the_trainers_test_probabilities(trained_run, tmp_path, capsys):
    model_dir, images = trained_run
    np.save(tmp_path / "test.npy", images)  # (N, 1, 8, 8) float
    assert main(["predict", str(model_dir), str(tmp_path / "test.npy"), "--top-k", "10",
                 "--json", str(tmp_path / "p.json"), "--csv", str(tmp_path / "p.csv")]) == 0
    assert "probability" in capsys.readouterr().out
    rows = json.loads((tmp_path / "p.json").read_text())["predictions"]
    saved = np.load(model_dir / "test_predictions.npz")
    assert [r["item"] for r in rows] == [f"{tmp_path / 'test.npy'}[{i}]" for i in range(len(images))]
    assert [int(r["class"]) for r in rows] == saved["predictions"].tolist()
    ours = np.array([[t["probability"] for t in sorted(r["top_k"], key=lambda t: int(t["class"]))] for r in rows])
    np.testing.assert_allclose(ours, saved["probabilities"], atol=1e-6)
    for r in rows:
        probabilities = [t["probability"] for t in r["top_k"]]
        assert probabilities == sorted(probabilities, reverse=True) and r["probability"] == probabilities[0]
    with open(tmp_path / "p.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(t["item"], t["class"], float(t["probability"])) for t in table] == [
        (r["item"], r["class"], r["probability"]) for r in rows]


def test_png_files_and_folders(trained_run, tmp_path, capsys):
    model_dir, images = trained_run
    (tmp_path / "pngs" / "sub").mkdir(parents=True)
    held = [_png(tmp_path / "pngs" / "a.png", images[0, 0]), _png(tmp_path / "pngs" / "sub" / "b.png", images[1, 0])]
    _png(tmp_path / "rgb.png", images[0, 0], rgb=True)
    np.save(tmp_path / "held.npy", np.stack(held))  # (2, 8, 8): the values the PNG files hold
    trained = load_trained(model_dir)
    expected = predict_proba(trained, [image for _, image in read_images([tmp_path / "held.npy"], 1)])
    assert main(["predict", str(model_dir), str(tmp_path / "pngs"), str(tmp_path / "rgb.png"), "--top-k", "2",
                 "--json", str(tmp_path / "p.json")]) == 0
    rows = json.loads((tmp_path / "p.json").read_text())["predictions"]
    assert [Path(r["item"]).name for r in rows] == ["a.png", "b.png", "rgb.png"]  # folder recursive, sorted
    assert all(len(r["top_k"]) == 2 for r in rows)
    for row, probabilities in zip(rows, [expected[0], expected[1], expected[0]]):
        assert row["class"] == trained.classes[int(probabilities.argmax())]
        assert row["probability"] == pytest.approx(float(probabilities.max()), abs=1e-6)


def test_bad_inputs_are_refused(trained_run, tmp_path, capsys):
    model_dir, images = trained_run
    np.save(tmp_path / "good.npy", images[:2])
    np.save(tmp_path / "nan.npy", np.full((8, 8), np.nan, dtype=np.float32))
    np.save(tmp_path / "five_channels.npy", np.zeros((2, 5, 8, 7), dtype=np.float32))
    np.save(tmp_path / "negative.npy", np.full((8, 8), -3, dtype=np.int64))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty_folder").mkdir()
    good = str(tmp_path / "good.npy")
    cases = [
        ([str(model_dir), str(tmp_path / "missing.png")], "no such file"),
        ([str(model_dir), str(tmp_path / "nan.npy")], "NaN"),
        ([str(model_dir), str(tmp_path / "five_channels.npy")], "expected images"),
        ([str(model_dir), str(tmp_path / "negative.npy")], "0..255"),
        ([str(model_dir), str(tmp_path / "broken.png")], "cannot read the image"),
        ([str(model_dir), str(tmp_path / "notes.txt")], "unsupported file"),
        ([str(model_dir), str(tmp_path / "empty_folder")], "holds no PNG"),
        ([str(model_dir), good, "--top-k", "0"], "--top-k must be >= 1"),
        ([str(model_dir), good, "--csv", str(tmp_path / "no_such_folder" / "p.csv")], "--csv"),
        ([str(tmp_path / "notes.txt"), good], "not a readable torch file"),
        ([str(tmp_path / "empty_folder"), good], "no model.pt"),
    ]
    for argv, message in cases:
        assert main(["predict", *argv, "--json", str(tmp_path / "p.json")]) == 2, argv
        assert message in _one_error_line(capsys), argv
    assert not (tmp_path / "p.json").exists()
