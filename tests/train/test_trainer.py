"""The trainer: run directory contents, determinism, resume, interrupts, two-phase freezing."""

import json
from pathlib import Path

import pytest
import torch

from hqnn.exceptions import ConfigError
from hqnn.train.checkpoint import CHECKPOINT_NAME, atomic_write, load_checkpoint
from hqnn.train.config import config_from_dict, load_yaml
from hqnn.train.experiment import run_experiment
from hqnn.train.loaders import build_data
from hqnn.train.trainer import Trainer


def test_run_writes_config_reports_and_checkpoint(tiny_config):
    config = tiny_config("epochs=1")
    result = run_experiment(config)
    run_dir = result.run_dir
    assert config_from_dict(load_yaml(run_dir / "config.yaml")) == config
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["seed"] == 0 and {"python", "torch", "numpy", "hqnn"} <= set(env["versions"])
    model_dir = run_dir / "cnn_qnn"
    for name in ("checkpoint.pt", "metrics.csv", "metrics.json", "model.pt", "summary.json"):
        assert (model_dir / name).is_file(), name
    rows = json.loads((model_dir / "metrics.json").read_text())
    assert len(rows) == 1 and {"train_loss", "val_f1", "val_precision", "val_recall", "lr"} <= set(rows[0])
    assert (model_dir / "metrics.csv").read_text().splitlines()[0].startswith("epoch,phase,lr,train_loss")
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["n_quantum_params"] == 8
    assert load_checkpoint(model_dir / CHECKPOINT_NAME)["epoch"] == 1
    assert list((run_dir.parent / "splits").glob("digits_*.npz"))


def test_fresh_run_never_overwrites(tiny_config):
    first = run_experiment(tiny_config("epochs=1")).run_dir
    second = run_experiment(tiny_config("epochs=1")).run_dir
    assert first != second and second.name == "tiny-2"


def test_compare_trains_twin_on_same_split_and_is_deterministic(tiny_config):
    first = run_experiment(tiny_config("epochs=1", "compare=true"))
    assert [r.model_name for r in first.results] == ["cnn_qnn", "cnn_qnn_classical"]
    assert first.results[1].n_quantum_params == 0
    again = run_experiment(tiny_config("epochs=1", "compare=true"))
    assert [r.test for r in again.results] == [r.test for r in first.results]


def _interrupt_in_epoch(monkeypatch, epoch):
    """Make the training pass of ``epoch`` (1-based) raise KeyboardInterrupt."""
    original = Trainer._pass

    def interrupted(self, split, training):
        if training and self.epoch + 1 == epoch:
            raise KeyboardInterrupt
        return original(self, split, training)

    monkeypatch.setattr(Trainer, "_pass", interrupted)


def test_interrupt_keeps_last_good_checkpoint_and_resume_matches(tiny_config, monkeypatch, tmp_path):
    straight = run_experiment(tiny_config("run.name=straight")).results[0]
    with monkeypatch.context() as patch:
        _interrupt_in_epoch(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(tiny_config())
    model_dir = tmp_path / "runs" / "tiny" / "cnn_qnn"
    assert load_checkpoint(model_dir / CHECKPOINT_NAME)["epoch"] == 1
    assert json.loads((model_dir / "summary.json").read_text())["status"] == "interrupted"
    resumed = run_experiment(tiny_config("run.resume=true")).results[0]
    assert resumed.best_epoch == straight.best_epoch
    assert resumed.test == straight.test
    rows = [json.loads((d / "metrics.json").read_text()) for d in (model_dir, straight.model_dir)]
    assert [r["val_loss"] for r in rows[0]] == [r["val_loss"] for r in rows[1]]


def test_resume_refuses_a_different_config(tiny_config):
    run_experiment(tiny_config("epochs=1"))
    with pytest.raises(ConfigError, match="train.batch_size"):
        run_experiment(tiny_config("epochs=1", "batch_size=8", "run.resume=true"))


def test_atomic_write_keeps_previous_file_when_interrupted(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_text("good")

    def half_write(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_write)
    assert target.read_text() == "good"
    assert list(tmp_path.iterdir()) == [target]


def test_two_phase_freezes_quantum_branch_in_phase_a(tiny_config):
    config = tiny_config(
        "model.name=resnet34_qhead", "model.args={depth: 18, stem: small}", "warmup_epochs=1", "data.limit=16",
        "data.image_size=8", "optim.lr=1e-3",
    )
    trainer = Trainer(config, build_data(config.data, config.run.out_dir, progress=False), "resnet34_qhead", config.run.out_dir)
    model = trainer.model
    quantum = {"alpha_raw": model.alpha_raw, "q_head": model.q_head.weights, "pre_q": model.pre_q.weight}
    trainer._enter_phase(0)
    before = {k: v.detach().clone() for k, v in quantum.items()}
    backbone_before = model.conv1.weight.detach().clone()
    trainer._pass("train", training=True)
    assert model.alpha_raw.item() == -20.0
    for name, param in quantum.items():
        assert not param.requires_grad and param.grad is None, name
        assert torch.equal(param, before[name]), name
    assert not torch.equal(model.conv1.weight, backbone_before)
    trainer._enter_phase(1)
    assert model.alpha_raw.item() == 0.0
    trainer._pass("train", training=True)
    for name, param in quantum.items():
        assert param.requires_grad and param.grad is not None and param.grad.abs().sum() > 0, name


def test_warmup_needs_a_two_phase_model(tiny_config):
    config = tiny_config("warmup_epochs=1")
    with pytest.raises(ConfigError, match="set_phase"):
        run_experiment(config)


def test_train_step_changes_the_weights_and_returns_the_loss(tiny_config):
    config = tiny_config()
    data = build_data(config.data, config.run.out_dir, progress=False)
    trainer = Trainer(config, data, "cnn_qnn", config.run.out_dir)
    images, labels, index = next(iter(trainer.loaders["train"]))
    inputs = data.prepare("train", images, index, True)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(trainer.model(inputs), labels)
    loss = trainer.train_step(inputs, labels)
    assert loss.ndim == 0 and not loss.requires_grad
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    changed = [k for k, v in trainer.model.named_parameters() if not torch.equal(v, before[k])]
    assert "head.1.weights" in changed and len(changed) == len(before)  # head.1: the circuit


def test_model_file_summary_and_predictions_reproduce_the_test_metrics(tiny_config):
    import numpy as np

    from hqnn.models import create_model
    from hqnn.train.loaders import make_loader
    from hqnn.train.metrics import METRIC_NAMES
    from hqnn.train.trainer import run_inference, runtime_settings, score_logits

    config = tiny_config()
    result = run_experiment(config).results[0]
    saved = torch.load(result.model_dir / "model.pt", map_location="cpu", weights_only=True)
    assert saved["format"] == 1 and saved["arm"] is None and saved["model_name"] == "cnn_qnn"
    assert saved["config"]["train"]["epochs"] == 2 and saved["sim_method"] in ("native", "engine")
    assert saved["classes"] == [str(k) for k in range(10)]
    summary = json.loads((result.model_dir / "summary.json").read_text())
    assert set(METRIC_NAMES) <= set(summary["test"]) and summary["test"] == result.test
    assert summary["sim_method"] == saved["sim_method"] and summary["diagnostics"] == result.diagnostics
    assert summary["seconds"] == pytest.approx(sum(row["seconds"] for row in result.history), abs=1e-3)
    assert summary["seconds_per_epoch"] == pytest.approx(summary["seconds"] / 2, abs=1e-3)
    assert "history" not in summary and len(result.history) == 2
    # a fresh model with the saved weights, scored by the same inference pass, gives the same numbers
    model = create_model(saved["model_name"], **saved["model_args"])
    model.load_state_dict(saved["state_dict"])
    data = build_data(config.data, config.run.out_dir, progress=False)
    loader = make_loader(data.test, 4 * config.train.batch_size, False)
    with runtime_settings(True, config.train.threads):
        labels, logits = run_inference(model, loader, lambda x, i: data.prepare("test", x, i, False), torch.device("cpu"))
    assert labels.dtype == torch.int64 and logits.dtype == torch.float32 and logits.shape == (len(data.test), 10)
    assert score_logits(labels, logits) == result.test
    predictions = np.load(result.model_dir / "test_predictions.npz")
    assert np.array_equal(predictions["labels"], labels.numpy())
    assert np.array_equal(predictions["predictions"], logits.argmax(1).numpy())
    assert np.allclose(predictions["probabilities"], torch.softmax(logits, 1).numpy())
    report = summary["test_report"]
    assert report["accuracy"] == result.test["accuracy"] and len(report["confusion"]) == 10
    assert sum(map(sum, report["confusion"])) == len(data.test)


def test_history_rows_have_balanced_accuracy_time_and_throughput(tiny_config):
    result = run_experiment(tiny_config("epochs=1")).results[0]
    (row,) = result.history
    assert {"train_balanced_accuracy", "val_balanced_accuracy", "seconds", "val_seconds", "samples_per_s"} <= set(row)
    assert row["samples_per_s"] == pytest.approx(48 / row["seconds"], rel=0.05)  # seconds are rounded to ms
    assert result.samples_per_s == pytest.approx(row["samples_per_s"], rel=0.05)
    assert "balanced_accuracy" in result.val and "balanced_accuracy" in result.test


def test_arm_is_applied_and_recorded(tiny_config):
    config = tiny_config("epochs=1")
    data = build_data(config.data, config.run.out_dir, progress=False)
    trainer = Trainer(config, data, "cnn_qnn", Path(config.run.out_dir) / "frozen", arm="frozen")
    assert "head.1.weights" not in dict(trainer.model.named_parameters())
    result = trainer.fit()
    assert result.arm == "frozen"
    assert torch.load(result.model_dir / "model.pt", weights_only=True)["arm"] == "frozen"
