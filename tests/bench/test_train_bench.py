"""`hqnn bench train`: both paths timed per model, shares in range, the quantum timer's hooks, the JSON report."""

import json

import torch
from torch import nn

from hqnn.bench import train as bench_train
from hqnn.bench.train import QuantumTimer, synthetic_data, train_table
from hqnn.cli import main
from hqnn.qnn import QuantumLayer
from hqnn.templates.recipes import rezk_qnn
from hqnn.train.loaders import make_loader
from hqnn.train.presets import load_config


def test_train_suite_writes_both_paths_with_shares_and_ratio(tmp_path, capsys):
    path = tmp_path / "train.json"
    assert main(["bench", "train", "--json", str(path), "--models", "sqdr_cnn", "--repeats", "1",
                 "--budget", "0.1", "--threads", "1"]) == 0
    report = json.loads(path.read_text())
    assert report["suite"] == "train" and report["machine"]["torch_threads"] == 1
    assert "load_avg_1m" in report["machine"] and report["versions"]["torch"] == torch.__version__
    rows = {r["path"]: r for r in report["results"]}
    assert set(rows) == {"hqnn", "eager"}
    for row in rows.values():
        assert row["model"] == "sqdr_cnn" and row["batch"] == 16 and row["input"] == [1, 28, 28]
        assert row["samples_per_s"] > 0 and abs(row["samples_per_s"] * row["ms_per_step"] / 1e3 - 16) < 0.1
        assert 0 < row["quantum_share"] < 1
    assert rows["eager"]["data_share"] == 0 and 0 < rows["hqnn"]["data_share"] < 1
    assert rows["hqnn"]["epoch_minutes"] > 0
    (ratio,) = report["ratios"]
    assert abs(ratio["hqnn_vs_eager"] - rows["hqnn"]["samples_per_s"] / rows["eager"]["samples_per_s"]) < 0.01
    assert "| sqdr_cnn | 16 |" in capsys.readouterr().out


def test_unknown_model_is_a_clear_error(tmp_path, capsys):
    assert main(["bench", "train", "--json", str(tmp_path / "x.json"), "--models", "resnet99"]) == 2
    assert "unknown bench models ['resnet99']" in capsys.readouterr().err


def test_quantum_timer_counts_forward_and_backward_once_each():
    ticks = iter(range(1000))
    circuit = rezk_qnn()
    model = nn.Sequential(nn.Linear(3, circuit.n_inputs), QuantumLayer(circuit), nn.Linear(circuit.n_outputs, 2))
    timer = QuantumTimer(model, clock=lambda: float(next(ticks)))
    model(torch.rand(5, 3)).sum().backward()
    # a fake clock that ticks once per reading: forward (pre-hook -> hook) and backward (output grad
    # -> input grad) each span exactly one tick when the four readings come in that order
    assert timer.seconds == 2.0
    timer.remove()
    model(torch.rand(5, 3)).sum().backward()
    assert timer.seconds == 2.0


def test_synthetic_data_has_the_presets_shape_and_weights():
    config = load_config("wm811k_hcqdl", ["run.progress=false"])
    data = synthetic_data(config, n_batches=2)
    assert len(data.train) == 2 * config.train.batch_size and data.n_classes == 9 and data.in_chans == 1
    images, labels, index = next(iter(make_loader(data.train, config.train.batch_size, False)))
    assert data.prepare("train", images, index, True).shape == (32, 1, 32, 32)
    assert data.class_weights is not None and data.class_weights.shape == (9,)


def test_table_lists_both_paths_and_the_ratio():
    rows = [
        {"model": "m", "path": "hqnn", "batch": 8, "samples_per_s": 40.0, "quantum_share": 0.1, "data_share": 0.05,
         "options": ["train.channels_last=true"], "epoch_minutes": 2.0},
        {"model": "m", "path": "eager", "batch": 8, "samples_per_s": 10.0, "quantum_share": 0.4, "data_share": 0.0,
         "options": []},
    ]
    table = train_table({"results": rows, "ratios": bench_train.train_ratios(rows)})
    assert "| m | 8 | 10.0 | 40.0 | 4.0 | 10.0% | 5.0% | channels_last | 2.0 |" in table
