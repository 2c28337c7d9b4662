"""Smoke tests of the benchmark harness: every installed backend runs one circuit at batch 2 and the
report is valid JSON; the per-gate baseline agrees with hqnn; partial runs merge."""

import json
import time

import pytest
import torch

from hqnn.bench import PerGateLayer, Settings, available_backends, measure, plot_scaling, run_scaling
from hqnn.bench.harness import skip_reason
from hqnn.bench.peers import PEER_PACKAGES
from hqnn.bench.report import merge_reports, new_report, speedups
from hqnn.cli import main
from hqnn.sim import run
from hqnn.templates.recipes import sqdr_reupload, strongly_entangling


def test_circuits_suite_writes_valid_json(tmp_path, capsys):
    path = tmp_path / "circuits.json"
    argv = ["bench", "circuits", "--json", str(path), "--circuits", "rezk_qnn", "--batches", "2",
            "--repeats", "1", "--budget", "0", "--threads", "1", "--fresh"]
    assert main(argv) == 0
    report = json.loads(path.read_text())
    backends = [b for b in available_backends() if b != "pennylane-mixed"]
    checks = {c["backend"]: c for c in report["checks"]}
    assert set(checks) == set(backends) | set(PEER_PACKAGES)  # absent peers: a check row saying why
    assert all(checks[b]["ok"] for b in backends)
    assert all("bench-peers" in checks[b]["skipped"] for b in set(PEER_PACKAGES) - set(backends))
    assert len(report["results"]) == 2 * len(backends)
    for r in report["results"]:
        assert r["status"] == "ok" and r["ms"] > 0 and r["batch"] == 2
        assert {"circuit", "backend", "batch", "mode", "ms", "peak_mb"} <= set(r)
    assert report["machine"]["torch_threads"] == 1 and report["versions"]["torch"]
    assert any("hqnn_vs_pergate-torch" in r for r in report["ratios"])
    assert "| rezk_qnn | 2 | forward |" in capsys.readouterr().out


@pytest.mark.parametrize("circuit", [strongly_entangling(3, 2), sqdr_reupload(2, 2)], ids=["sel", "sqdr"])
def test_pergate_baseline_matches_hqnn(circuit):
    layer = PerGateLayer(circuit)
    torch.nn.init.uniform_(layer.weights, 0, 6)
    x = torch.rand(5, circuit.n_inputs)
    expected = run(circuit, x.double(), layer.weights.detach().double())
    torch.testing.assert_close(layer(x).double(), expected, atol=1e-5, rtol=0)


def test_measure_counts_calls_and_memory():
    calls = []
    t = measure(lambda: calls.append(torch.ones(1000).sum()), repeats=3, budget_s=10)
    # warm-up + calibration, then 3 samples of equally many calls (about 20 ms each)
    assert len(calls) == 2 + t.n_calls and t.n_calls % 3 == 0 and t.n_calls > 3
    assert 0 < t.ms_min <= t.ms and t.n_calls // 3 >= 100  # a microsecond call is looped, not timed alone
    assert t.peak_mb is None or t.peak_mb >= 0


def test_measure_times_slow_calls_one_by_one():
    t = measure(lambda: time.sleep(0.03), repeats=2, budget_s=10)
    assert t.n_calls == 2 and 30 <= t.ms_min <= t.ms


def test_skip_reason_predicts_from_a_smaller_configuration():
    settings = Settings(max_call_s=1.0)
    assert skip_reason(None, 4, settings) is None
    assert skip_reason({"ms": 900.0, "ms_min": 100.0, "peak_mb": 1.0}, 4, settings) is None
    assert "predicted" in skip_reason({"ms": 400.0, "ms_min": 400.0, "peak_mb": 1.0}, 4, settings)
    assert "skipped" in skip_reason({"ms": None}, 4, settings)


def test_partial_runs_merge_and_give_ratios():
    machine = {"cpu": "x", "device": "cpu"}
    row = {"circuit": "c", "batch": 1, "mode": "forward"}
    old = new_report("circuits", machine, {}, {}, [], [{**row, "backend": "hqnn", "ms": 9.0},
                                                       {**row, "backend": "pergate-torch", "ms": 8.0}])
    new = new_report("circuits", machine, {}, {}, [], [{**row, "backend": "hqnn", "ms": 2.0}])
    merged = merge_reports(old, new)
    assert sorted(r["ms"] for r in merged["results"]) == [2.0, 8.0]
    assert speedups(merged["results"]) == [{**row, "hqnn_vs_pergate-torch": 4.0, "fastest_peer": "pergate-torch",
                                            "hqnn_vs_fastest_peer": 4.0}]
    assert merge_reports(old, new_report("circuits", {"cpu": "y", "device": "cpu"}, {}, {}, [], []))["results"] == []


def test_scaling_sweep_and_plot(tmp_path):
    out = run_scaling([2, 4], [1, 2], ["hqnn"], Settings(repeats=1, budget_s=0))
    assert len(out["results"]) == 4 and all(r["ms"] > 0 for r in out["results"])
    assert all(c["ok"] for c in out["checks"])
    png = plot_scaling(out["results"], tmp_path / "scaling.png")
    assert png.stat().st_size > 1000


def test_unknown_backend_is_a_clear_error(tmp_path, capsys):
    assert main(["bench", "circuits", "--json", str(tmp_path / "x.json"), "--backends", "qiskit"]) == 2
    assert "unknown backends ['qiskit']" in capsys.readouterr().err


def test_memory_suite_rows_over_depth_and_batch(tmp_path):
    """`hqnn bench memory` writes one row per (backend, batch, depth) with the peak and one state's size."""
    path = tmp_path / "memory.json"
    assert main(["bench", "memory", "--json", str(path), "--qubits", "4", "--backends", "hqnn",
                 "--repeats", "1", "--budget", "0"]) == 0
    rows = json.loads(path.read_text())["results"]
    assert {(r["batch"], r["n_layers"]) for r in rows} == {(1024, 1), (1024, 2), (1024, 4), (1024, 8), (64, 8),
                                                          (256, 8)}
    assert all(r["status"] == "ok" and r["state_mb"] == r["batch"] * 16 * 8 / 2**20 for r in rows)


def test_write_report_is_atomic(tmp_path, monkeypatch):
    import pathlib

    from hqnn.bench.report import write_report

    path = tmp_path / "out" / "bench.json"
    write_report(path, {"results": [1]})
    real_write = pathlib.Path.write_text

    def disk_full(self, text, *args, **kwargs):  # half the text lands, then the write fails
        real_write(self, text[: len(text) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_report(path, {"results": [2, 3, 4]})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"results": [1]}
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]  # no temporary left behind
