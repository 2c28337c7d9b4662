"""Scaling out: ``hqnn train`` under ``torchrun`` (gloo, CPU) against a one-process run, killing a
rank and resuming, the rank shares of the batches, the loss decomposition DDP relies on, the
quantum layer under ``nn.DataParallel``, and the worker pool of studies.

The torchrun runs are real ``python -m torch.distributed.run --nproc-per-node 2`` jobs. A small
wrapper (below) records each rank's pid, saves each rank's final weights (only rank 0 writes the
run directory, so the other rank's weights are otherwise invisible) and, on request, makes rank 0
pause after its first checkpoint so that a kill of rank 1 lands between epochs for certain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hqnn.exceptions import ConfigError
from hqnn.train.distributed import run_in_workers, shard, worker_threads
from hqnn.train.loaders import RankBatches, build_data, make_loader

# 49 items per split with batch 16: the last global batch has one item, so rank 1's share of it
# is empty, and the evaluation shards are uneven (25 + 24)
OVERRIDES = [
    "model.name=cnn_qnn", "epochs=2", "data.limit=49", "data.image_size=12", "batch_size=16", "train.compare=false",
    "train.threads=1", "run.progress=false", "run.tensorboard=false",
]
TIMING_KEYS = ("seconds", "samples_per_s")

_WRAPPER = r"""
import os, sys, time
from pathlib import Path
import torch
import hqnn.train.trainer as trainer_module
from hqnn.cli import main

events = Path(os.environ["HQNN_TEST_EVENTS"])
rank = os.environ.get("RANK", "0")

def log(line):
    with open(events, "a") as handle:
        handle.write(line + "\n")

real_save, real_finish = trainer_module.save_checkpoint, trainer_module.Trainer._finish

def save_checkpoint(state, path):
    real_save(state, path)
    log("epoch")
    if os.environ.get("HQNN_TEST_PAUSE") == "1":
        time.sleep(120)  # until the test kills rank 1 (torchrun then stops this rank)

def finish(self, labels, logits):
    torch.save(self.model.state_dict(), events.with_name(f"weights{rank}.pt"))
    return real_finish(self, labels, logits)

trainer_module.save_checkpoint, trainer_module.Trainer._finish = save_checkpoint, finish
log(f"pid {rank} {os.getpid()}")
sys.exit(main(sys.argv[1:]))
"""


def _torchrun(tmp: Path, out: Path, name: str, *extra: str, pause: bool = False) -> subprocess.Popen:
    wrapper = tmp / "wrapper.py"
    wrapper.write_text(_WRAPPER)
    events = out / "events" / "log"
    events.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(wrapper),
        "train", "digits_cnn_qnn", *OVERRIDES, f"run.out_dir={out / 'runs'}", f"run.name={name}", *extra,
    ]
    env = {**os.environ, "HQNN_TEST_EVENTS": str(events), "HQNN_TEST_PAUSE": str(int(pause)), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]


def _results(run_dir: Path):
    model_dir = run_dir / "cnn_qnn"
    rows = json.loads((model_dir / "metrics.json").read_text())
    rows = [_untimed(row) for row in rows]
    summary = json.loads((model_dir / "summary.json").read_text())
    weights = torch.load(model_dir / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    predictions = np.load(model_dir / "test_predictions.npz")
    return rows, summary, weights, predictions


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One uninterrupted 2-rank run (shared by the tests that compare with it)."""
    tmp = tmp_path_factory.mktemp("ddp")
    _finish(_torchrun(tmp, tmp / "full", "ddp"))
    return tmp


def test_torchrun_two_ranks_equals_one_process(ddp_run, tmp_path):
    from hqnn.train.experiment import run_experiment
    from hqnn.train.presets import load_config

    runs = ddp_run / "full" / "runs"
    assert sorted(p.name for p in runs.iterdir() if p.name != "splits") == ["ddp"]  # one run directory
    rows, summary, weights, predictions = _results(runs / "ddp")
    rank_weights = [torch.load(ddp_run / "full" / "events" / f"weights{r}.pt", weights_only=True) for r in (0, 1)]
    circuit = [k for k in weights if k.startswith("head.1.")]
    assert circuit, "cnn_qnn's circuit is head.1"
    for key in weights:  # DDP kept the ranks' weights, circuit weights included, identical
        assert torch.equal(rank_weights[0][key], rank_weights[1][key]), key
        assert torch.equal(rank_weights[0][key], weights[key]), key

    one = run_experiment(load_config("digits_cnn_qnn", [*OVERRIDES, f"run.out_dir={tmp_path}", "run.name=one"]))
    one_rows, one_summary, one_weights, one_predictions = _results(one.run_dir)
    assert len(predictions["labels"]) == 49  # the whole test split, gathered from both ranks
    np.testing.assert_array_equal(predictions["labels"], one_predictions["labels"])  # in the split's order
    np.testing.assert_array_equal(predictions["predictions"], one_predictions["predictions"])
    np.testing.assert_allclose(predictions["probabilities"], one_predictions["probabilities"], atol=1e-5)
    for key in weights:
        torch.testing.assert_close(weights[key], one_weights[key], atol=1e-5, rtol=1e-4)
    assert len(rows) == len(one_rows) == 2
    for row, one_row in zip(rows, one_rows):  # train and validation metrics over the whole splits
        assert row.keys() == one_row.keys()
        for key, value in row.items():
            if key.startswith("head.1.") and key != "head.1.grad_norm":  # forward statistics: rank 0's items
                continue
            expected = one_row[key]
            if isinstance(expected, float):
                expected = pytest.approx(expected, rel=1e-4, abs=1e-5)
            assert value == expected, key
    for key, value in one_summary["test"].items():
        assert summary["test"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killing_a_rank_then_resuming_matches_the_uninterrupted_run(ddp_run):
    out = ddp_run / "killed"
    process = _torchrun(ddp_run, out, "ddp", pause=True)
    events = out / "events" / "log"
    deadline = time.monotonic() + 300
    while not (events.exists() and "epoch" in events.read_text().split()):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.05)
    pids = dict(line.split()[1:] for line in events.read_text().splitlines() if line.startswith("pid"))
    os.kill(int(pids["1"]), signal.SIGKILL)  # rank 1 dies while rank 0 sleeps after epoch 1's checkpoint
    process.communicate(timeout=300)
    assert process.returncode != 0
    run_dir = out / "runs" / "ddp"
    assert not (run_dir / "cnn_qnn" / "model.pt").exists()
    _finish(_torchrun(ddp_run, out, "ddp", "run.resume=true"))

    rows, summary, weights, _ = _results(run_dir)
    full_rows, full_summary, full_weights, _ = _results(ddp_run / "full" / "runs" / "ddp")
    assert rows == full_rows and summary["test"] == full_summary["test"]
    for key in weights:
        assert torch.equal(weights[key], full_weights[key]), key


def test_rank_shares_together_are_the_one_process_batches():
    def batches(n, size):
        order = torch.utils.data.RandomSampler(range(n), generator=torch.Generator().manual_seed(3))
        return torch.utils.data.BatchSampler(order, size, drop_last=False)

    one = list(batches(37, 8))
    for world in (2, 3, 5):
        shares = [list(RankBatches(batches(37, 8), rank, world)) for rank in range(world)]
        assert all(len(share) == len(one) for share in shares)
        for k, batch in enumerate(one):
            merged = [i for share in shares for i in share[k]]
            assert sorted(merged) == sorted(batch) and len(merged) == len(set(merged))
    assert list(RankBatches(batches(37, 8), 5, 6))[-1] == []  # the last batch has 5 items: rank 5 gets none


def test_evaluation_shards_cover_the_split_once(tiny_config):
    config = tiny_config("data.limit=11")
    data = build_data(config.data, config.run.out_dir, progress=False)
    loaders = [make_loader(data.val, 4, False, rank=r, world_size=3) for r in range(3)]
    seen = [[int(i) for _, _, index in loader for i in index] for loader in loaders]
    assert seen == [list(range(r, 11, 3)) for r in range(3)]  # rank r: items r, r + 3, ... (gather_split's layout)
    images, labels, index = next(iter(make_loader(data.train, 16, True, torch.Generator(), rank=0, world_size=1)))
    assert images.shape[0] == labels.shape[0] == index.shape[0] == 11


def test_rank_sums_over_the_global_weight_are_the_global_mean_loss():
    """What the trainer's DDP loss relies on: with class weights and label smoothing, the mean
    cross-entropy of a batch is the sum of its parts' summed losses over the batch's summed item
    weights, whatever the parts' sizes (one empty)."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(13, 5, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 5, (13,), generator=generator)
    weight = torch.rand(5, generator=generator, dtype=torch.float64) + 0.5
    mean = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)(logits, labels)
    summed = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1, reduction="sum")
    parts = [slice(0, 9), slice(9, 13), slice(13, 13)]
    total = sum(summed(logits[p], labels[p]) for p in parts)
    assert float(total / weight[labels].sum()) == pytest.approx(float(mean), rel=1e-12)


def test_quantum_layer_under_data_parallel():
    """``nn.DataParallel`` (PennyLane TorchLayer's long-standing failure): the layer's weights are
    plain Parameters, so it wraps, runs and backpropagates as the bare layer does. Without GPUs
    DataParallel calls the module directly; a multi-GPU replica is not exercised here."""
    from hqnn.qnn import QuantumLayer
    from hqnn.templates.recipes import rezk_qnn

    torch.manual_seed(0)
    layer = QuantumLayer(rezk_qnn())
    wrapped = nn.DataParallel(layer)
    inputs = torch.rand(6, 4)
    out, wrapped_out = layer(inputs), wrapped(inputs)
    torch.testing.assert_close(wrapped_out, out)
    (grad,) = torch.autograd.grad(out.sum(), layer.weights)
    (wrapped_grad,) = torch.autograd.grad(wrapped(inputs).sum(), layer.weights)
    torch.testing.assert_close(wrapped_grad, grad)
    assert grad.abs().sum() > 0


def test_shard_splits_a_task_list_once():
    tasks = [(seed, arm) for seed in range(3) for arm in ("hybrid", "twin")]
    shards = [shard(tasks, k, 4) for k in range(4)]
    assert sorted(t for s in shards for t in s) == sorted(tasks) and shards[0] == [tasks[0], tasks[4]]
    with pytest.raises(ConfigError, match="0 <= INDEX < COUNT"):
        shard(tasks, 4, 4)
    assert worker_threads(2, cores=16) == 8 and worker_threads(32, cores=16) == 1


def test_run_in_workers_returns_the_results_in_task_order():
    tasks = [(k,) for k in range(5)]
    assert run_in_workers(_square_and_threads, tasks, workers=2, threads_per_worker=1) == [(k * k, 1) for k in range(5)]
    with pytest.raises(ConfigError, match="at least 1"):
        run_in_workers(_square_and_threads, tasks, workers=0)


def _square_and_threads(k: int) -> tuple[int, int]:
    return k * k, torch.get_num_threads()


def _untimed(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.endswith(TIMING_KEYS)}


def _study_numbers(result) -> tuple:
    """Every number of a study but the timings."""
    runs = {
        arm: [
            (run.seed, run.test, run.best_epoch, [_untimed(row) for row in run.history])
            for run in arm_result.runs
        ]
        for arm, arm_result in result.arms.items()
    }
    return runs, repr(result.comparisons)  # repr: a NaN statistic equals itself


def test_study_workers_and_shards_give_the_sequential_numbers(tiny_config, tmp_path):
    import shutil
    from dataclasses import replace

    from hqnn.train.study import run_study

    config = tiny_config("model.name=cnn_qnn", "epochs=1")
    arms = ("hybrid", "twin")
    sequential = run_study(config, 2, arms, tmp_path / "sequential", report=False)
    parallel = run_study(config, 2, arms, tmp_path / "workers", report=False, workers=2)
    assert _study_numbers(parallel) == _study_numbers(sequential)

    for k in range(2):  # two "machines", each with its own study directory
        assert run_study(config, 2, arms, tmp_path / f"shard{k}", report=False, shard=(k, 2)) is None
    shutil.copytree(tmp_path / "shard1" / "runs", tmp_path / "shard0" / "runs", dirs_exist_ok=True)
    trained = {p: p.stat().st_mtime_ns for p in (tmp_path / "shard0" / "runs").rglob("model.pt")}
    assert len(trained) == 4
    resumed = replace(config, run=replace(config.run, resume=True))
    merged = run_study(resumed, 2, arms, tmp_path / "shard0", report=False)
    assert _study_numbers(merged) == _study_numbers(sequential)
    assert {p: p.stat().st_mtime_ns for p in trained} == trained  # the merge trained nothing again


_STUDY_OVERRIDES = [
    "model.name=cnn_qnn", "model.twin=cnn_qnn_classical", "epochs=1", "data.limit=33", "data.image_size=12",
    "batch_size=16", "train.threads=1", "run.progress=false", "run.tensorboard=false",
]


def _study_json_numbers(study: dict) -> dict:
    """study.json's per-seed scores and comparisons (no timings, paths or machine)."""
    arms = {name: {k: v for k, v in arm["per_seed"].items() if k not in TIMING_KEYS + ("seconds_per_epoch",)}
            for name, arm in study["arms"].items()}
    return {"arms": arms, "comparisons": study["comparisons"]}


def test_compare_under_torchrun_equals_one_process(tmp_path):
    """``hqnn compare`` in 2 ranks: one study directory, one study.json, its numbers those of the
    one-process study; and --workers above 1 is refused under torchrun before anything trains."""
    from hqnn.train.presets import load_config
    from hqnn.train.study import run_study

    common = [*_STUDY_OVERRIDES, f"run.out_dir={tmp_path / 'runs'}"]
    argv = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "hqnn.cli",
        "compare", "digits_cnn_qnn", "--seeds", "1", "--arms", "hybrid,twin", "--out", str(tmp_path / "ddp"), *common,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("report:") == 1  # rank 0 alone prints
    ddp = json.loads((tmp_path / "ddp" / "study.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "runs"]  # no second study directory

    one = run_study(load_config("digits_cnn_qnn", common), 1, ("hybrid", "twin"), tmp_path / "one", report=False)
    expected = json.loads((one.study_dir / "study.json").read_text())
    got, want = _study_json_numbers(ddp), _study_json_numbers(expected)
    assert got.keys() == want.keys() and got["arms"].keys() == {"hybrid", "twin"}
    for arm in want["arms"]:
        for metric in ("accuracy", "f1", "balanced_accuracy"):
            np.testing.assert_allclose(got["arms"][arm][metric], want["arms"][arm][metric], atol=1e-5)
        assert got["arms"][arm]["confusion"] == want["arms"][arm]["confusion"]
        np.testing.assert_allclose(got["arms"][arm]["per_class_f1"], want["arms"][arm]["per_class_f1"], atol=1e-5)
    for name, comparison in want["comparisons"].items():
        assert got["comparisons"][name]["difference"] == pytest.approx(comparison["difference"], abs=1e-5)

    refused = subprocess.run([*argv[:-len(common)], "--workers", "2", *common], env=env, capture_output=True, text=True,
                             timeout=600)
    assert refused.returncode != 0 and "does not apply under torchrun" in refused.stderr


def test_quantum_channel_shares_joined_equal_the_unsplit_descriptors(tmp_path):
    """data.quantum_channels under torchrun: each rank computes a strided share; the shares joined
    (here two simulated ranks, 7 images: uneven shares) are the one-process descriptors, and the
    cache file written from them is the one a one-process run writes and reads."""
    from hqnn.data.quantum_features import (
        cached_quantum_descriptors, descriptor_share, join_shares, quantum_cache_file, quantum_descriptors,
    )
    from hqnn.exceptions import ShapeError

    images = torch.randint(0, 256, (7, 3, 10, 10), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    whole = quantum_descriptors(images, "texture", progress=False)
    shares = [descriptor_share(images, rank, 2, "texture", progress=False) for rank in range(2)]
    assert [len(share) for share in shares] == [4, 3]
    np.testing.assert_array_equal(shares[1], whole[1::2])
    np.testing.assert_array_equal(join_shares(shares), whole)
    with pytest.raises(ShapeError, match="strided split"):
        join_shares(shares[::-1])

    calls = []
    joined = cached_quantum_descriptors(
        images, tmp_path, "toy", "train", "texture", progress=False,
        compute=lambda all_images: calls.append(len(all_images)) or join_shares(shares),
    )
    assert calls == [7] and quantum_cache_file(images, tmp_path, "toy", "train", "texture").is_file()
    np.testing.assert_array_equal(joined, whole)
    again = cached_quantum_descriptors(images, tmp_path, "toy", "train", "texture", progress=False, compute=calls.append)
    assert calls == [7]  # read from the cache the shares wrote
    np.testing.assert_array_equal(again, whole)
    with pytest.raises(ShapeError, match=r"\(7, 4\)"):
        cached_quantum_descriptors(images, tmp_path, "toy", "val", "texture", progress=False, compute=lambda x: whole[:3])

