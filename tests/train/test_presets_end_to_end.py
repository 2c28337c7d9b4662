"""The data-hungry presets, end to end on tiny inputs: a fake CIFAR-100 folder in the real format,
and the shared MNIST files where present."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from hqnn.cli import main

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SMALL = ["model.args={depth: 18, stem: small}", "data.image_size=16", "batch_size=8", "threads=1", "run.progress=false"]


@pytest.fixture
def fake_cifar100(tmp_path):
    """A cifar-100-python folder with 40 train and 10 test random images in 5 of the 100 classes."""
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 10)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"fine_labels": [i % 5 for i in range(n)],
                 b"coarse_labels": [0] * n}
        (folder / split).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"fine_label_names": [f"c{i}".encode() for i in range(100)], b"coarse_label_names": [b"x"] * 20}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def test_cifar100_qhead_two_phase_with_twin(fake_cifar100, tmp_path, capsys):
    args = ["train", "cifar100_resnet34_qhead", *SMALL, "epochs=2", "warmup_epochs=1", f"data.path={fake_cifar100}",
            f"run.out_dir={tmp_path / 'runs'}", "train.device=cpu"]
    assert main(args) == 0
    run_dir = tmp_path / "runs" / "cifar100_resnet34_qhead"
    rows = json.loads((run_dir / "resnet34_qhead" / "metrics.json").read_text())
    assert [r["phase"] for r in rows] == ["A", "B"]
    assert len(json.loads((run_dir / "comparison.json").read_text())) == 2
    split = np.load(next((tmp_path / "runs" / "splits").glob("cifar100_train_val_diana_*.npz")))
    assert len(split["val"]) == 8 and len(split["train"]) == 32


def test_cifar100_quantum_channels(fake_cifar100, tmp_path):
    args = ["train", "cifar100_resnet34_qchannels", *SMALL, "epochs=1", f"data.path={fake_cifar100}",
            f"run.out_dir={tmp_path / 'runs'}", "train.device=cpu"]
    assert main(args) == 0
    assert len(list((tmp_path / "runs" / "cache").glob("*.npz"))) == 6  # edge + texture for train, val, test
    summary = json.loads((tmp_path / "runs" / "cifar100_resnet34_qchannels" / "resnet34_qchannels" / "summary.json").read_text())
    assert summary["status"] == "finished"


def test_mnist_sqdr_on_shared_data(tmp_path):
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (only present on the project's machines)")
    args = ["train", "mnist_sqdr", "epochs=1", "data.limit=32", "threads=1", "run.progress=false",
            f"data.path={SHARED_DATA / 'mnist'}", f"run.out_dir={tmp_path}", "train.device=cpu"]
    assert main(args) == 0
